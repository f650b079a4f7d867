"""Regenerate ``memory_advice.png``: the Train tab with a run that will not fit, and what to change.

    QT_QPA_PLATFORM=offscreen python docs/screenshots/make_memory_advice_screenshot.py

A workspace of labelled pairs and the tiny test model in a temporary folder; the form asks for
batch size 24 at max length 4,096 on the CPU, which the estimate (``core.engine.memory_advice``)
says will not fit in this machine's free RAM, with each change that alone would make it fit.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
OUT = Path(__file__).resolve().parent


def main() -> int:
    from PySide6.QtWidgets import QApplication

    from gui.common.db_worker import DatabaseWorker
    from gui.common.theme import apply_theme
    from gui.common.workers import wait_for_all_workers
    from gui.train.train_view import TrainView
    from storage.workspace import Workspace
    from tests.tiny_models import fill_workspace, make_tiny_model_dir

    folder = Path(tempfile.mkdtemp(prefix="memory-shot-"))
    model = make_tiny_model_dir(folder / "tiny-llama", hidden_size=256, layers=4)
    app = QApplication.instance() or QApplication([])
    apply_theme("light", app)
    ws = Workspace.open(folder / "ws")
    fill_workspace(ws, 24)
    db = DatabaseWorker()
    view = TrainView(ws, db)
    view.resize(1300, 820)
    view.show()

    def wait(condition, seconds=120.0):
        deadline = time.monotonic() + seconds
        while not condition() and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.01)

    form = view.form
    for key, value in {"base_model": str(model), "device": "cpu", "batch_size": 24, "max_length": 4096}.items():
        form.set_value(key, value)
    form.refresh()
    wait(lambda: form.memory_fits is not None and form.data_preview is not None)
    for _ in range(50):
        app.processEvents()
        time.sleep(0.02)
    print(form.memory_label.text())
    view.grab().save(str(OUT / "memory_advice.png"))
    view.stop_timers()
    db.close()
    wait_for_all_workers(30_000)
    ws.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
