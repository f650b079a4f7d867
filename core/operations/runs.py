"""Runs, the user actions on past and present training runs: list them, say which can be
resumed (and why not), export one — its adapter, the base model with it merged in, or
its metrics as CSV — and delete one (``delete_run``: its rows, then its folder; refused while
it trains or while a later round, a comparison, a generation or the queue order depends on it).
``main.py runs`` and the Train tab's runs panel both call these.

Runs are ``storage.runs.RunRecord`` values (plain, frozen). Reading them settles runs whose
owning process is gone (they are listed as interrupted). Nothing here loads torch except
``export_merged``, which loads the base model (call it from a worker).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.engine import run_export
from core.engine.training_control import resume_refusal
from core.operations.changes import Changes
from core.operations.metrics_export import export_metrics_csv
from core.operations.metric_series import MetricSeries
from storage import runs as run_store
from storage.run_deletion import RunInUseError, delete_run_rows
from storage.runs import RunRecord
from storage.workspace import Workspace

__all__ = ["RunRecord", "ExportError", "list_runs", "get_run", "runs_with_adapter", "resume_refusal",
           "settings_summary", "run_row", "RunCurves", "load_curves", "export_adapter", "export_merged",
           "export_metrics", "RunDeleted", "RunInUseError", "delete_run"]

ExportError = run_export.ExportError


def list_runs(ws: Workspace, newest_first: bool = False) -> list[RunRecord]:
    runs = run_store.list_runs(ws)
    return list(reversed(runs)) if newest_first else runs


def get_run(ws: Workspace, run_id: str) -> RunRecord | None:
    return run_store.get_run(ws, run_id)


def runs_with_adapter(ws: Workspace, base_model: str | None = None,
                      checkpoints: bool = False) -> list[tuple[RunRecord, Path | None]]:
    """The runs with a usable adapter, newest first, each with its saved adapter folder
    (``run_start.adapter_folder``: also found after the workspace folder moved). With
    ``base_model``, only the runs trained on it (an adapter loads on its own base only); with
    ``checkpoints``, also the runs that have only checkpoints so far (their folder None)."""
    from core.engine.run_start import adapter_folder

    found = []
    for run in list_runs(ws, newest_first=True):
        if base_model is not None and run.base_model != base_model:
            continue
        folder = adapter_folder(ws, run)
        if folder is not None or (checkpoints and (Path(run.run_dir) / "checkpoints").is_dir()):
            found.append((run, folder))
    return found


def settings_summary(run: RunRecord) -> str:
    """"sigmoid β=0.1 lr=5e-05 r=8 batch 8×1" from the run's stored config."""
    config = run.config
    text = (f"{config.get('loss_type', '?')} β={config.get('beta', '?')} lr={config.get('learning_rate', '?')} "
            f"r={config.get('lora_r', '?')} batch {config.get('batch_size', '?')}"
            f"×{config.get('gradient_accumulation_steps', 1)}")
    if config.get("sft_weight"):
        text += f" sft={config['sft_weight']}"
    return text


def run_row(run: RunRecord) -> dict[str, Any]:
    """A run as plain JSON values (``main.py runs --json``)."""
    return {"id": run.id, "name": run.name, "status": run.status.value, "step": run.step,
            "total_steps": run.total_steps, "base_model": run.base_model,
            "created_at": run.created_at.isoformat(timespec="seconds"), "adapter": run.adapter_path,
            "error": run.error, "resumable": run.resumable, "settings": settings_summary(run)}


@dataclass(frozen=True)
class RunCurves:
    """A stored run and its metrics, for drawing (``load_curves``)."""

    run: RunRecord
    series: MetricSeries


def load_curves(ws: Workspace, run_ids: list[str], max_step: int | None = None) -> list[RunCurves]:
    """The runs (those that exist, in the order asked) with their stored metrics; only steps up
    to ``max_step`` when given (a resumed run's history up to its checkpoint)."""
    found = []
    for run_id in run_ids:
        run = run_store.get_run(ws, run_id)
        if run is not None:
            found.append(RunCurves(run, MetricSeries.load(ws, run_id, max_step=max_step)))
    return found


def export_adapter(ws: Workspace, run_id: str, destination: str | Path) -> Path:
    """The run's LoRA adapter copied into ``destination`` (new or empty); peft loads it."""
    return run_export.export_adapter(ws, run_id, destination)


def export_merged(ws: Workspace, run_id: str, destination: str | Path) -> Path:
    """The base model with the run's adapter merged in, as a plain model folder (slow)."""
    return run_export.export_merged(ws, run_id, destination)


def export_metrics(ws: Workspace, run_id: str, path: str | Path) -> Path:
    """Every stored metric of the run as CSV: ``step, split, <metric>...``."""
    if run_store.get_run(ws, run_id) is None:
        raise ExportError(f"no run {run_id!r} in this workspace")
    return export_metrics_csv(ws, run_id, path)


@dataclass(frozen=True)
class RunDeleted:
    run_id: str
    name: str
    metrics: int
    pair_scores: int
    folders: tuple[str, ...]          # the run's folders removed
    folder_problem: str | None        # why a folder of it could not be removed (the rows are gone)
    changes: Changes

    def describe(self) -> str:
        text = (f"Deleted run {self.name} ({self.run_id}): {self.metrics:,} metric values, "
                f"{self.pair_scores:,} pair scores" + (f", folder {self.folders[0]}" if self.folders else ""))
        return text + (f"; {self.folder_problem}" if self.folder_problem else "")


def delete_run(ws: Workspace, run_id: str, actor: str | None = None) -> RunDeleted:
    """Delete the run's rows (``storage.run_deletion``: ``RunInUseError`` while it trains or while
    something depends on it, ``LookupError`` for no such run), then its folder ``runs/<run-id>/``
    (only a folder named after the run, so a moved or odd ``run_dir`` never takes another folder)."""
    rows = delete_run_rows(ws, run_id, actor)
    candidates = {Path(rows.run_dir)}
    try:
        candidates.add(ws.runs_dir / run_id)
    except OSError:
        pass
    removed, problem = [], None
    for folder in sorted(candidates):
        if folder.name != run_id or not folder.is_dir():
            continue
        try:
            shutil.rmtree(folder)
            removed.append(str(folder))
        except OSError as exc:
            problem = f"its folder {folder} could not be removed ({exc.strerror or exc}); delete it by hand"
    return RunDeleted(rows.run_id, rows.name, rows.metrics, rows.pair_scores, tuple(removed), problem,
                      Changes(runs=True))
