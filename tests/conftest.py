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


@pytest.fixture(autouse=True)
def _no_worker_thread_left_running():
    """Every test must leave no worker QThread running (STYLE.md rule 3)."""
    yield
    import sys

    workers = sys.modules.get("gui.common.workers")
    if workers is not None:
        assert workers.wait_for_all_workers(timeout_ms=5_000), "a worker QThread was left running"
