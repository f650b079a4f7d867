"""Regenerate ``train-runs-delete.png`` and ``run-delete-confirm.png`` in this folder: the Train tab's
runs list after a delete was refused (a later round started from the run), and the question asked
before a run is deleted.

    QT_QPA_PLATFORM=offscreen python docs/screenshots/make_run_delete_screenshots.py

Runs are stored rows with a short loss curve each (no training: seconds, not minutes).
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
OUT = Path(__file__).resolve().parent


def add_runs(ws) -> None:
    from storage.metrics import MetricWriter
    from storage.models import RunStatus
    from storage.runs import create_run, update_run

    config = '{"loss_type": "sigmoid", "beta": 0.1, "learning_rate": 0.0005, "lora_r": 8, "batch_size": 8}'
    for number, (run_id, parent) in enumerate((("round-1", None), ("round-2", "round-1"), ("sft-trial", None)), 1):
        create_run(ws, run_id, name=run_id, config_json=config, base_model="bundled:demo_model",
                   run_dir=str(ws.runs_dir / run_id), total_steps=60)
        (ws.runs_dir / run_id / "adapter").mkdir(parents=True, exist_ok=True)
        writer = MetricWriter(ws, run_id)
        for step in range(0, 61, 5):
            writer.add(step, "train", {"loss": math.log(2) * math.exp(-step / (40 * number))})
        writer.flush()
        update_run(ws, run_id, status=RunStatus.COMPLETED, step=60, parent_run_id=parent)


def main() -> int:
    from docs.screenshots.train_view_window import train_view_window

    with tempfile.TemporaryDirectory() as tmp:
        app, ws, db, view, wait, close = train_view_window(Path(tmp))
        add_runs(ws)
        view.runs.refresh()
        wait(lambda: view.is_built and len(view.runs.run_ids()) == 3)
        view.runs.select_runs(["round-1"])
        view.runs.delete_run("round-1")          # what Delete… does once confirmed: refused, round-2 started from it
        wait(lambda: view.runs.status_label.text().startswith("Not deleted"))
        for _ in range(20):
            app.processEvents()
        view.grab().save(str(OUT / "train-runs-delete.png"))
        box, _delete = view.runs.confirmation(view.runs.run("sft-trial"))
        box.show()
        for _ in range(20):
            app.processEvents()
        box.grab().save(str(OUT / "run-delete-confirm.png"))
        box.close()
        close()
    print("saved train-runs-delete.png, run-delete-confirm.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
