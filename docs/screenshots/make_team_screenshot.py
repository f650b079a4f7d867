"""Regenerate ``team-queue-fallback.png`` in this folder: the Team tab with "Most wrong first" chosen
at one annotator per pair, where the card (and the status bar) say the queue serves the default order.

    QT_QPA_PLATFORM=offscreen python docs/screenshots/make_team_screenshot.py

The workspace is ``make_pairs_screenshots``'s (two annotators' verdicts, one changed mind, a blind
A/B comparison), plus a run with scores on the open pairs (stored, not trained: seconds, not minutes).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
OUT = Path(__file__).resolve().parent


def build_workspace(root: Path):
    from docs.screenshots.make_pairs_screenshots import build_workspace as pairs_workspace
    from storage.annotation_queue import AnnotationQueue
    from storage.ingest import ImportRecord, import_records
    from storage.models import Choice, RunStatus
    from storage.pair_scores import pairs_to_score, store_pair_scores
    from storage.runs import create_run, update_run

    ws, _blind = pairs_workspace(root)
    import_records(ws, [ImportRecord(f"Kitchen question {n}: how do I {task}?", [f"Step by step: {task}.", "No idea."])
                        for n, task in enumerate(("sharpen a knife", "poach an egg", "store flour", "proof yeast",
                                                  "clean cast iron", "thicken a sauce"), 1)], "kitchen-2.jsonl")
    AnnotationQueue(ws, "kenji", overlap=2).record(4, Choice.A, seconds_spent=21.0)   # a changed mind
    create_run(ws, "r1", name="round 1", config_json="{}", base_model="bundled:demo_model",
               run_dir=str(root / "runs" / "r1"), total_steps=60)
    update_run(ws, "r1", status=RunStatus.COMPLETED)
    open_pairs = [example.pair_id for example in pairs_to_score(ws, 2)]
    store_pair_scores(ws, "r1", {pair_id: 0.4 - 0.15 * n for n, pair_id in enumerate(open_pairs)})
    return ws


def main() -> int:
    from docs.screenshots.loop_tab_window import loop_tab_window

    with loop_tab_window(build_workspace, None, annotator="maria") as (app, window, _page):
        window.tabs.setCurrentWidget(window.team)
        window.db.wait_idle()
        app.processEvents()
        card = window.team.queue_order
        card.order.setCurrentIndex(card.order.findData("disagree"))
        card._choose()                       # what choosing it in the combo box does
        for _ in range(4):
            window.db.wait_idle()
            app.processEvents()
        window.grab().save(str(OUT / "team-queue-fallback.png"))
    print("saved team-queue-fallback.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
