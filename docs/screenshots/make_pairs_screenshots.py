"""Regenerate ``pairs-blind.png`` and ``pair-blind-dialog.png`` in this folder.

    QT_QPA_PLATFORM=offscreen python docs/screenshots/make_pairs_screenshots.py

A throw-away workspace: preference pairs labelled by two annotators and a blind A/B comparison
with a few verdicts. The Pairs tab is saved with the blind pairs listed (greyed: read-only there),
then one of them opened (its verdicts are given in the Blind A/B tab).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
OUT = Path(__file__).resolve().parent

QUESTIONS = ["How do I keep basil fresh?", "Why does bread go stale?", "What is a good first houseplant?",
             "How long should I rest a steak?", "Why do onions make you cry?", "How do I descale a kettle?",
             "Is it safe to refreeze thawed chicken?", "How do I stop rice sticking?"]


def build_workspace(root: Path):
    from storage.annotation_queue import AnnotationQueue
    from storage.comparisons import ComparedAnswers, ModelSide, store_comparison
    from storage.ingest import ImportRecord, import_records
    from storage.models import Choice
    from storage.workspace import Workspace

    ws = Workspace.open(root)
    records = [ImportRecord(q, [f"A clear, careful answer to: {q.lower()}", f"A curt reply to: {q.lower()}"],
                            split="eval" if i % 2 else "train", line=i + 1) for i, q in enumerate(QUESTIONS)]
    ids = import_records(ws, records, "kitchen.jsonl").pair_ids
    for name, choices in (("maria", "ABAATAAB"), ("kenji", "AAAB")):
        queue = AnnotationQueue(ws, name, overlap=2)
        for pair_id, letter in zip(ids, choices):
            queue.record(pair_id, {"A": Choice.A, "B": Choice.B, "T": Choice.TIE}[letter], seconds_spent=8.0)
    base = ModelSide("bundled:demo_model", None, "base")
    prompts = [q for i, q in enumerate(QUESTIONS) if i % 2]
    stored = store_comparison(ws, "base, seed 1 vs seed 2", base, base, {"seed": 1}, {"seed": 2},
                              [ComparedAnswers(p, f"Sampled answer one to {p.lower()}",
                                               f"Sampled answer two to {p.lower()}") for p in prompts])
    judge = AnnotationQueue(ws, "maria", comparison_id=stored.comparison_id)
    for pair_id in stored.pair_ids[:2]:
        judge.record(pair_id, Choice.A, seconds_spent=6.0)
    return ws, stored.pair_ids[0]


def main() -> int:
    from docs.screenshots.loop_tab_window import loop_tab_window

    found = {}

    def build(root: Path):
        ws, found["blind"] = build_workspace(root)
        return ws

    with loop_tab_window(build, None) as (app, window, _page):
        window.tabs.setCurrentWidget(window.pairs)
        window.db.wait_idle()
        app.processEvents()
        window.pairs.table.selectRow(1)
        app.processEvents()
        window.grab().save(str(OUT / "pairs-blind.png"))
        dialog = window.pairs.open_pair(found["blind"])
        dialog.resize(1100, 760)
        for _ in range(2):
            window.db.wait_idle()
            app.processEvents()
        dialog.grab().save(str(OUT / "pair-blind-dialog.png"))
        dialog.close()
    print("saved pairs-blind.png, pair-blind-dialog.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
