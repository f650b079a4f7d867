"""One list of runs with a usable adapter: Chat, Generate, Blind A/B and Learn offer the same runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.operations import blind, learn
from core.operations.chat import chat_model_choices
from core.operations.generate import GenerateError, model_choices, resolve_model
from core.operations.runs import runs_with_adapter
from storage.models import RunStatus
from storage.runs import create_run, update_run
from storage.settings import update_settings
from storage.workspace import Workspace


def add_run(ws: Workspace, tmp_path: Path, run_id: str, base: str, adapter: bool, checkpoint: bool = False) -> None:
    run_dir = tmp_path / "runs-elsewhere" / run_id
    create_run(ws, run_id, name=f"run {run_id}", config_json="{}", base_model=base, run_dir=str(run_dir), total_steps=4)
    folder = None
    if adapter:
        folder = run_dir / "adapter"
        folder.mkdir(parents=True)
        (folder / "adapter_config.json").write_text("{}", encoding="utf-8")
    if checkpoint:
        (run_dir / "checkpoints" / "step-2").mkdir(parents=True)
    update_run(ws, run_id, status=RunStatus.COMPLETED if adapter else RunStatus.INTERRUPTED, step=2,
               adapter_path=str(folder) if folder else None)


@pytest.fixture
def ws(tmp_path):
    with Workspace.open(tmp_path / "ws") as workspace:
        update_settings(workspace, base_model="base-m")
        add_run(workspace, tmp_path, "r1", "base-m", adapter=True)
        add_run(workspace, tmp_path, "r2", "base-m", adapter=False, checkpoint=True)
        add_run(workspace, tmp_path, "r3", "other-m", adapter=True)
        add_run(workspace, tmp_path, "r4", "base-m", adapter=False)
        yield workspace


def test_every_face_offers_the_same_runs(ws):
    assert [r.id for r, _ in runs_with_adapter(ws)] == ["r3", "r1"]                       # newest first
    assert [r.id for r, _ in runs_with_adapter(ws, "base-m")] == ["r1"]
    assert [(r.id, f is None) for r, f in runs_with_adapter(ws, checkpoints=True)] == [
        ("r3", False), ("r2", True), ("r1", False)]                                       # r2: a checkpoint only
    keys = ["base", "r1"]
    assert [c.key for c in model_choices(ws)] == keys
    assert [c.key for c in blind.comparable_models(ws)] == keys
    assert [c.key for c in chat_model_choices(ws, "base-m")] == keys
    assert [c.run_id for c in learn.run_choices(ws)] == ["r3", "r2", "r1"]
    assert model_choices(ws)[1].adapter_dir.endswith("adapter")


def test_generate_and_blind_resolve_a_model_alike(ws):
    assert resolve_model(ws, "base")[0] == "base-m"
    base_model, choice = resolve_model(ws, "r3")           # a run on another base loads on its own base
    assert base_model == "other-m" and choice.run_id == "r3"
    for key, words in [("r4", "run 'r4' has no saved adapter"), ("nope", "no run 'nope' in this workspace")]:
        with pytest.raises(GenerateError, match=words):
            resolve_model(ws, key)
        with pytest.raises(ValueError, match=words):
            blind.create_comparison(ws, "base", key)
