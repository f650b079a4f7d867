"""Exporting a finished (or stopped) run: its LoRA adapter as a folder peft loads, or the base
model with the adapter merged in."""

from __future__ import annotations

import shutil
from pathlib import Path

from storage.runs import get_run
from storage.workspace import Workspace


class ExportError(RuntimeError):
    pass


def run_adapter_dir(ws: Workspace, run_id: str) -> Path:
    """The run's final adapter folder (written when the run completed or was stopped)."""
    run = get_run(ws, run_id)
    if run is None:
        raise ExportError(f"no run {run_id!r} in this workspace")
    adapter = Path(run.adapter_path) if run.adapter_path else Path(run.run_dir) / "adapter"
    if not (adapter / "adapter_config.json").exists():
        raise ExportError(f"run {run_id} has no saved adapter yet ({adapter}); "
                          "it is saved when a run completes or is stopped")
    return adapter


def export_adapter(ws: Workspace, run_id: str, destination: str | Path) -> Path:
    """Copy the adapter (adapter_config.json, weights, tokenizer) into ``destination``, which
    must not exist or be empty; ``PeftModel.from_pretrained(base, destination)`` loads it."""
    source = run_adapter_dir(ws, run_id)
    destination = Path(destination)
    if destination.exists() and any(destination.iterdir()):
        raise ExportError(f"{destination} is not empty; choose a new folder for the adapter")
    shutil.copytree(source, destination, dirs_exist_ok=True)
    return destination


def export_merged(ws: Workspace, run_id: str, destination: str | Path, report=None) -> Path:
    """Base model + adapter merged into one plain model folder (slow: loads the base model)."""
    from core.engine.modeling import export_merged_model

    run = get_run(ws, run_id)
    adapter = run_adapter_dir(ws, run_id)
    destination = Path(destination)
    if destination.exists() and any(destination.iterdir()):
        raise ExportError(f"{destination} is not empty; choose a new folder for the merged model")
    trust = bool(run.config.get("trust_remote_code", False))
    return export_merged_model(run.base_model, adapter, destination, trust_remote_code=trust)
