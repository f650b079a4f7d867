"""A run's rows in the workspace: the ``runs`` row, its ``metrics`` (buffered) and the run
folder's ``config.json``. Short sessions only; safe to call from the training thread while
the GUI reads the same workspace.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import secrets
import time
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from core.engine.training_config import TrainingConfig
from storage.models import Metric, RunStatus, TrainingRun, utcnow
from storage.workspace import Workspace

CONFIG_FILE = "config.json"


def new_run_id() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def library_versions() -> dict[str, str]:
    import peft
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "peft": peft.__version__}


def write_run_config(run_dir: Path, config: TrainingConfig, extra: dict[str, Any]) -> Path:
    """``config.json``: the resolved config, library versions and the data/model fingerprints."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / CONFIG_FILE
    payload = {"config": config.to_dict(), "versions": library_versions(), **extra}
    path.write_text(json.dumps(payload, indent=2, sort_keys=True), encoding="utf-8")
    return path


def read_run_config(run_dir: Path) -> TrainingConfig:
    data = json.loads((Path(run_dir) / CONFIG_FILE).read_text(encoding="utf-8"))
    return TrainingConfig.from_dict(data["config"], source=str(Path(run_dir) / CONFIG_FILE))


def create_run(ws: Workspace, run_id: str, config: TrainingConfig, run_dir: Path, total_steps: int) -> None:
    with ws.writing() as session:
        session.add(TrainingRun(id=run_id, name=config.run_name or run_id, status=RunStatus.RUNNING,
                                config_json=config.to_json(), base_model=config.base_model,
                                run_dir=str(run_dir), total_steps=total_steps, started_at=utcnow()))


def get_run(ws: Workspace, run_id: str) -> TrainingRun | None:
    with ws.session() as session:
        return session.get(TrainingRun, run_id)


def list_runs(ws: Workspace) -> list[TrainingRun]:
    with ws.session() as session:
        return list(session.scalars(select(TrainingRun).order_by(TrainingRun.created_at)))


def update_run(ws: Workspace, run_id: str, **values: Any) -> None:
    with ws.writing() as session:
        run = session.get(TrainingRun, run_id)
        for key, value in values.items():
            setattr(run, key, value)


def forget_metrics_after(ws: Workspace, run_id: str, step: int) -> None:
    """Drop metrics a crashed run wrote after the checkpoint it resumes from."""
    with ws.writing() as session:
        session.execute(delete(Metric).where(Metric.run_id == run_id, Metric.step > step))


def read_metrics(ws: Workspace, run_id: str, split: str | None = None) -> dict[str, list[tuple[int, float]]]:
    """name -> [(step, value), ...] in step order."""
    out: dict[str, list[tuple[int, float]]] = {}
    with ws.session() as session:
        query = select(Metric.name, Metric.step, Metric.value).where(Metric.run_id == run_id)
        if split is not None:
            query = query.where(Metric.split == split)
        for name, step, value in session.execute(query.order_by(Metric.step, Metric.id)):
            out.setdefault(name, []).append((step, value))
    return out


class MetricWriter:
    """Buffers metric rows and writes them in one transaction at most every ``interval`` seconds
    (and on ``flush()``), so a reader sees each step within about that long without a commit
    per metric."""

    def __init__(self, ws: Workspace, run_id: str, interval: float = 0.5):
        self.ws = ws
        self.run_id = run_id
        self.interval = interval
        self._rows: list[dict] = []
        self._last_flush = time.monotonic()
        self._step: int | None = None

    def add(self, step: int, split: str, metrics: dict[str, float]) -> None:
        now = utcnow()
        self._rows.extend({"run_id": self.run_id, "step": step, "split": split, "name": name,
                           "value": float(value), "created_at": now} for name, value in metrics.items())
        self._step = step if split == "train" else self._step
        if time.monotonic() - self._last_flush >= self.interval:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        rows, self._rows = self._rows, []
        with self.ws.writing() as session:
            session.execute(Metric.__table__.insert(), rows)
            if self._step is not None:
                session.get(TrainingRun, self.run_id).step = self._step
        self._last_flush = time.monotonic()
