"""Regenerate the annotation-screen screenshots in this folder.

    QT_QPA_PLATFORM=offscreen python docs/screenshots/make_annotate_screenshots.py

Builds a throw-away workspace with a few realistic pairs and three annotators' verdicts,
opens the real main window offscreen in the light and the dark theme and saves
``annotate-light.png``, ``annotate-dark.png``, ``annotate-help.png``, ``annotate-diff.png``,
``annotate-pairs.png`` and ``annotate-team.png``; and, on a new empty workspace, the welcome
panel as ``welcome-light.png`` and ``welcome-dark.png``. The session clock is staged (a verdict
every ~9 s) so the pace reads like a person's rather than a script's.
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

PAIRS = [
    ("What is the difference between a list and a tuple in Python?",
     "A **list** is mutable — you can append, remove and reassign items. A **tuple** is immutable, "
     "so it can be a dictionary key and signals \"this shape won't change\".\n\n```python\npoint = (3, 4)\n"
     "stack = [1, 2]\nstack.append(3)\n```",
     "Lists use [] and tuples use (). Otherwise they are the same."),
    ("Explain what a p-value is to a product manager.",
     "Imagine the change did nothing. The p-value is how surprising our data would be in that world. "
     "A small value (say 0.01) means *quite surprising*, so we doubt the \"did nothing\" story.",
     "The p-value is the probability that the hypothesis is true."),
    ("Write a haiku about code review.",
     "Small diff, patient eyes —\none comment, then another,\nmerge before the rain.",
     "Code review is good\nIt helps find bugs in the code\nReview all the code"),
    ("How do I undo the last git commit but keep my changes?",
     "Use `git reset --soft HEAD~1`: the commit is gone, your changes stay staged.",
     "Run `git reset --hard HEAD~1`."),
    ("Summarise the causes of the 2008 financial crisis in three bullet points.",
     "- Cheap credit and lax lending fuelled a housing bubble.\n- Mortgage risk was repackaged into opaque securities.\n"
     "- Banks were highly leveraged, so losses spread fast.",
     "It was caused by banks."),
    ("Is it safe to eat raw cookie dough?",
     "It carries two risks: raw eggs (salmonella) and raw flour (E. coli). Heat-treated flour and "
     "pasteurised eggs make it much safer.",
     "Yes, it's completely safe."),
    ("Translate 'Where is the train station?' into German.",
     "**Wo ist der Bahnhof?**", "Wo ist die Zugstation?"),
    ("Give me a regex for an ISO date (YYYY-MM-DD).",
     "```\n^\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])$\n```\nIt checks month 01–12 and day 01–31 "
     "(not per-month lengths).", "`\\d+-\\d+-\\d+`"),
]

DIFF_PROMPT = "How long should I rest a steak after cooking it?"
DIFF_LEFT = ("Rest it for about **5 minutes** for a thin steak and up to 10 minutes for a thick one, "
             "loosely covered with foil. The juices settle back into the meat, so less runs out when you cut it.")
DIFF_RIGHT = ("Rest it for about **10 minutes** for any steak, tightly wrapped in foil. "
              "The juices settle back into the meat, so less runs out when you cut it.")


class StagedClock:
    """A session clock that advances ~9 s per verdict."""

    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


def build_workspace(root: Path):
    from storage.annotation_queue import AnnotationQueue, choice_for_side
    from storage.ingest import ImportRecord, import_records
    from storage.models import Choice
    from storage.settings import update_settings
    from storage.workspace import Workspace
    from tests.annotate_samples import add_showcase_pair

    ws = Workspace.open(root)
    showcase = add_showcase_pair(ws)
    diff_pair = import_records(ws, [ImportRecord(DIFF_PROMPT, [DIFF_LEFT, DIFF_RIGHT])], "cooking.jsonl").pair_ids[0]
    ids = import_records(ws, [ImportRecord(p, [a, b]) for p, a, b in PAIRS], "team-round-1.jsonl").pair_ids
    update_settings(ws, overlap=3)
    votes = {"maria": "LLLLLLLL", "kenji": "LLRLLLLR", "sam": "LRLLTLLL"}
    for name, pattern in votes.items():
        queue = AnnotationQueue(ws, name)
        for pair_id, vote in zip(ids, pattern):
            view = queue.pair_view(pair_id)
            choice = Choice.TIE if vote == "T" else choice_for_side("left" if vote == "L" else "right", view.swapped)
            queue.record(pair_id, choice, seconds_spent=7.0 + (pair_id * 3) % 9)
    return ws, showcase, diff_pair


def save_welcome(app, root: Path) -> None:
    """The welcome panel of a new, empty workspace, in both themes."""
    from gui.common import settings
    from gui.main_window import MainWindow
    from storage.workspace import Workspace

    with Workspace.open(root) as ws:
        for look in ("light", "dark"):
            settings.set_value("view/theme", look)
            settings.set_value("view/guidelines", False)
            window = MainWindow(ws, "ana")
            window.resize(1400, 860)
            window.show()
            window.db.wait_idle()
            app.processEvents()
            window.grab().save(str(OUT / f"welcome-{look}.png"))
            window.close()
            window.deleteLater()
            app.processEvents()


def main() -> int:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from gui.common import settings
    from gui.main_window import MainWindow
    from storage.annotation_queue import AnnotationQueue
    from storage.annotator_session import SessionPace

    app = QApplication.instance() or QApplication([])
    app.setApplicationName("DPO Studio")
    with tempfile.TemporaryDirectory() as tmp:
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp)
        ws, showcase, diff_pair = build_workspace(Path(tmp) / "ws")
        for look in ("light", "dark"):
            settings.set_value("view/theme", look)
            settings.set_value("view/guidelines", look == "light")
            window = MainWindow(ws, "ana")
            window.resize(1600, 1000)
            window.show()
            window.db.wait_idle()
            view = window.annotate
            clock = StagedClock()
            view.session.pace = SessionPace(target=100, clock=clock)
            for _ in range(37):
                clock.now += 9.3
                view.session.pace.record()
            queue = AnnotationQueue(ws, "ana")
            view.display.show_pair(queue.pair_view(showcase))
            view.header.show_pace(view.session.pace)
            app.processEvents()
            window.grab().save(str(OUT / f"annotate-{look}.png"))
            if look == "light":
                view.help.show()
                app.processEvents()
                window.grab().save(str(OUT / "annotate-help.png"))
                view.help.hide()
                view.header.guidelines_toggle.setChecked(False)
                view.header.diff_toggle.setChecked(True)
                view.display.show_pair(queue.pair_view(diff_pair))
                app.processEvents()
                window.grab().save(str(OUT / "annotate-diff.png"))
                view.header.diff_toggle.setChecked(False)
                window.tabs.setCurrentWidget(window.pairs)
                window.pairs.table.setFocus()
                window.db.wait_idle()
                app.processEvents()
                window.grab().save(str(OUT / "annotate-pairs.png"))
                window.tabs.setCurrentWidget(window.team)
                window.team.disputes.setFocus()
                window.db.wait_idle()
                app.processEvents()
                window.grab().save(str(OUT / "annotate-team.png"))
            window.close()
            window.deleteLater()
            app.processEvents()
        ws.close()
        save_welcome(app, Path(tmp) / "empty")
    print("saved", ", ".join(sorted(p.name for p in OUT.glob("*.png") if p.stem.startswith(("annotate-", "welcome-")))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
