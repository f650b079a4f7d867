"""Regenerate ``adapter_preference.png`` and ``queue_order.png`` in this folder.

    QT_QPA_PLATFORM=offscreen python docs/screenshots/make_queue_order_screenshots.py

A throw-away demo workspace; a short real run ("round 1": the demo's training settings on the
bundled demo model, 60 steps of 8 pairs) scores the open pairs. The Annotate tab is saved after
one verdict (the run's preference under the buttons), then the Team tab with its Queue order
card set to serve the pairs the run is least sure about first. A few minutes on two CPU cores.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
OUT = Path(__file__).resolve().parent


def build_workspace(root: Path):
    """A demo workspace cut down so the run trains in minutes: 24 labelled prompts, 20 to label."""
    from core.demo.demo_workspace import (DEMO_ANNOTATOR, DEMO_SOURCE, DEMO_TRAINING, LABELLED_PROMPTS,
                                          demo_conversations, demo_records)
    from core.engine.trainer import train
    from core.engine.training_config import TrainingConfig
    from core.operations.pair_scores import score_pairs
    from storage.ingest import import_records
    from storage.workspace import Workspace

    ws = Workspace.open(root)
    records = list(demo_records(demo_conversations()[:LABELLED_PROMPTS + 20]))
    # Two labelled records per labelled prompt (helpful over curt, over reckless), then one
    # unlabelled record (three answers: three pairs) per candidate prompt.
    import_records(ws, records[:48] + records[2 * LABELLED_PROMPTS:], source=DEMO_SOURCE, labelled_by=DEMO_ANNOTATOR)
    config = TrainingConfig.from_dict({**DEMO_TRAINING, "max_steps": 60, "batch_size": 8, "eval_interval": 0,
                                       "checkpoint_interval": 0, "run_name": "round 1"})
    run_id = train(ws, config)
    print(score_pairs(ws, run_id).describe())
    return ws, run_id


def main() -> int:
    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtWidgets import QApplication

    from core.operations.pair_scores import set_queue_order
    from gui.common import settings
    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    app.setApplicationName("DPO Studio")
    with tempfile.TemporaryDirectory() as tmp:
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp)
        ws, run_id = build_workspace(Path(tmp) / "ws")
        settings.set_value("view/theme", "light")
        settings.set_value("view/guidelines", False)
        window = MainWindow(ws, "ana")
        window.resize(1300, 820)
        window.show()
        window.db.wait_idle()
        app.processEvents()
        window.annotate.trigger("left")
        window.db.wait_idle()
        app.processEvents()
        window.grab().save(str(OUT / "adapter_preference.png"))
        print(window.annotate.preference.text())
        # The Team tab's card, once the owner has chosen to serve the least sure pairs first.
        window.team.on_changes(set_queue_order(ws, "uncertain", run_id))
        window.tabs.setCurrentWidget(window.team)
        window.db.wait_idle()
        app.processEvents()
        window.grab().save(str(OUT / "queue_order.png"))
        window.annotate.setFocus(Qt.FocusReason.OtherFocusReason)
        window.close()
        window.deleteLater()
        app.processEvents()
        ws.close()
    print("saved adapter_preference.png, queue_order.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
