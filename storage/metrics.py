"""A run's ``metrics`` rows: the buffered writer the training loop uses, and reading them back.

Short sessions only; the writer commits at most every ``interval`` seconds, so a reader
(the GUI's plots, ``main.py runs``) sees each step within about that long without a commit
per metric.
"""

from __future__ import annotations

import time

from sqlalchemy import delete, select

from storage.models import Metric, TrainingRun, utcnow
from storage.workspace import Workspace


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


def forget_metrics_after(ws: Workspace, run_id: str, step: int) -> None:
    """Drop metrics a crashed run wrote after the checkpoint it resumes from."""
    with ws.writing() as session:
        session.execute(delete(Metric).where(Metric.run_id == run_id, Metric.step > step))


class MetricWriter:
    """Buffers metric rows and writes them in one transaction at most every ``interval`` seconds
    (and on ``flush()``), together with the run's step, so the runs list keeps up with the plots."""

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
