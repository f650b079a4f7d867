"""Shared fixtures. GUI tests run offscreen; every test gets real SQLite files in tmp_path."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

from storage.workspace import Workspace


@pytest.fixture(scope="session")
def _template_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("template") / "ws"
    Workspace.open(root).close()
    return root


@pytest.fixture
def workspace(tmp_path: Path, _template_workspace: Path):
    """A fresh, empty workspace: a copy of a template created once per test session."""
    root = tmp_path / "ws"
    shutil.copytree(_template_workspace, root)
    ws = Workspace.open(root)
    yield ws
    ws.close()
