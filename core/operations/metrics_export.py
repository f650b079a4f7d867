"""A run's stored metrics as a CSV file: one row per (step, split), one column per metric."""

from __future__ import annotations

import csv
from pathlib import Path

from storage.metrics import read_metrics
from storage.workspace import Workspace


def metrics_table(ws: Workspace, run_id: str) -> tuple[list[str], list[list]]:
    """(header, rows): ``step, split, <metric>...``; rows in step order, train before eval;
    a metric missing at a row (eval has no learning_rate) is an empty cell."""
    names: set[str] = set()
    by_row: dict[tuple[int, int], dict[str, float]] = {}
    for split_order, split in enumerate(("train", "eval")):
        for name, rows in read_metrics(ws, run_id, split).items():
            names.add(name)
            for step, value in rows:
                by_row.setdefault((step, split_order), {})[name] = value
    columns = sorted(names)
    header = ["step", "split"] + columns
    table = [[step, ("train", "eval")[order]] + [values.get(name, "") for name in columns]
             for (step, order), values in sorted(by_row.items())]
    return header, table


def export_metrics_csv(ws: Workspace, run_id: str, path: str | Path) -> Path:
    header, rows = metrics_table(ws, run_id)
    if not rows:
        raise ValueError(f"run {run_id} has no stored metrics to export")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path
