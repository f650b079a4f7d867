"""Training runs in the workspace: the ``runs`` rows, read back as plain ``RunRecord`` values.

Setting a run running (``create_run``, or ``update_run(..., status=RUNNING)`` on resume)
records the calling process as the run's owner (``storage.process_owner``). Reading runs
(``get_run``, ``list_runs``) settles the runs whose owner is gone: a run left "running" or
"paused" by a process that was killed or crashed is marked ``interrupted`` there and then,
so the GUI and the CLI agree on it, and it can be resumed like a stopped one.

Which statuses can be resumed is decided here once: ``is_resumable(status)``.
Short sessions only; safe from the training thread while the GUI reads the same workspace.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from storage.models import RunStatus, TrainingRun, utcnow
from storage.process_owner import ProcessOwner, is_gone, this_process
from storage.workspace import Workspace

#: A run in one of these is held by a live process (if its owner still runs).
LIVE_STATUSES = frozenset({RunStatus.RUNNING, RunStatus.PAUSED})
#: A run in one of these can be started again from its newest checkpoint.
RESUMABLE_STATUSES = frozenset({RunStatus.STOPPED, RunStatus.FAILED, RunStatus.INTERRUPTED})
INTERRUPTED_MESSAGE = "the process running it ended before the run finished (killed or crashed)"


def is_resumable(status: RunStatus | str) -> bool:
    """Can a run in ``status`` be resumed? (Not while a live process trains or holds it
    paused, and not once completed.)"""
    return RunStatus(status) in RESUMABLE_STATUSES


@dataclass(frozen=True)
class RunRecord:
    """One ``runs`` row as plain values."""

    id: str
    name: str
    status: RunStatus
    config_json: str
    base_model: str
    run_dir: str
    adapter_path: str | None
    error: str | None
    step: int
    total_steps: int
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    #: The process that last set the run running (None for runs recorded before owners were).
    owner: ProcessOwner | None

    @property
    def config(self) -> dict:
        return json.loads(self.config_json)

    @property
    def resumable(self) -> bool:
        return is_resumable(self.status)


def _record(row: TrainingRun) -> RunRecord:
    owner = (ProcessOwner(row.owner_host, row.owner_pid, row.owner_started)
             if row.owner_host is not None and row.owner_pid is not None else None)
    return RunRecord(row.id, row.name, RunStatus(row.status), row.config_json, row.base_model, row.run_dir,
                     row.adapter_path, row.error, row.step, row.total_steps, row.created_at, row.started_at,
                     row.finished_at, owner)


def _owner_values(owner: ProcessOwner) -> dict[str, Any]:
    return {"owner_host": owner.host, "owner_pid": owner.pid, "owner_started": owner.started}


def create_run(ws: Workspace, run_id: str, *, name: str, config_json: str, base_model: str, run_dir: str,
               total_steps: int) -> None:
    """A new run, running in (and owned by) the calling process."""
    with ws.writing() as session:
        session.add(TrainingRun(id=run_id, name=name or run_id, status=RunStatus.RUNNING, config_json=config_json,
                                base_model=base_model, run_dir=str(run_dir), total_steps=total_steps,
                                started_at=utcnow(), **_owner_values(this_process())))


def update_run(ws: Workspace, run_id: str, **values: Any) -> None:
    """Set columns of the run; setting ``status=RUNNING`` makes the calling process its owner."""
    if values.get("status") == RunStatus.RUNNING:
        values = {**_owner_values(this_process()), **values}
    with ws.writing() as session:
        run = session.get(TrainingRun, run_id)
        if run is None:
            raise LookupError(f"no run {run_id!r} in this workspace")
        for key, value in values.items():
            setattr(run, key, value)


def get_run(ws: Workspace, run_id: str) -> RunRecord | None:
    found = _settle(ws, _read(ws, run_id), run_id)
    return found[0] if found else None


def list_runs(ws: Workspace) -> list[RunRecord]:
    """Every run, oldest first; runs whose owner process is gone are marked interrupted."""
    return _settle(ws, _read(ws), None)


def _read(ws: Workspace, run_id: str | None = None) -> list[RunRecord]:
    with ws.session() as session:
        if run_id is not None:
            row = session.get(TrainingRun, run_id)
            return [_record(row)] if row is not None else []
        return [_record(r) for r in session.scalars(select(TrainingRun).order_by(TrainingRun.created_at,
                                                                                 TrainingRun.id))]


def _orphaned(run: RunRecord) -> bool:
    return run.status in LIVE_STATUSES and run.owner is not None and is_gone(run.owner)


def _settle(ws: Workspace, runs: list[RunRecord], run_id: str | None) -> list[RunRecord]:
    """``runs`` (read by ``_read(ws, run_id)``) with each orphan marked interrupted, in the
    database too."""
    orphans = [r for r in runs if _orphaned(r)]
    if not orphans:
        return runs
    with ws.writing() as session:
        for run in orphans:
            # Only while the row still shows the owner seen: a resume may just have taken it over.
            session.execute(
                update(TrainingRun)
                .where(TrainingRun.id == run.id, TrainingRun.status.in_(LIVE_STATUSES),
                       TrainingRun.owner_host == run.owner.host, TrainingRun.owner_pid == run.owner.pid)
                .values(status=RunStatus.INTERRUPTED, error=INTERRUPTED_MESSAGE))
    return _read(ws, run_id)
