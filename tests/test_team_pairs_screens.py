"""The Pairs and Team screens over the database worker: every read and write on its thread,
redrawn from ``on_changes``, the owner rule left to storage."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt
from sqlalchemy import event, select

from core.operations.changes import Changes
from gui.pairs.pairs_browser import PAGE, PairsBrowser
from gui.team.team_panel import TeamPanel
from storage.annotation_queue import AnnotationQueue, choice_for_side
from storage.ingest import ImportRecord, import_records
from storage.models import Annotator, Choice, Verdict
from storage.settings import read_settings, update_settings
from tests.gui_db import db, settle  # noqa: F401  (fixture)
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("isolated_settings")


@pytest.fixture
def filled(workspace):
    records = [ImportRecord(f"Question {i}?", [f"good {i}", f"bad {i}"], line=i + 1) for i in range(PAGE + 50)]
    import_records(workspace, records, "prefs.jsonl")
    return workspace


@pytest.fixture
def no_sql_on_ui_thread(filled):
    """Fails the test on any statement the UI thread executes from here on."""
    ui_thread = threading.get_ident()
    offending = []

    def check(_conn, _cursor, statement, *_args):
        if threading.get_ident() == ui_thread:
            offending.append(statement)
            raise AssertionError(f"SQL on the UI thread: {statement[:80]}")

    event.listen(filled.engine, "before_cursor_execute", check)
    yield offending
    event.remove(filled.engine, "before_cursor_execute", check)
    assert not offending, offending


def verdicts(ws, pair_id: int) -> list[tuple[str, Choice, bool]]:
    with ws.session() as s:
        return [tuple(r) for r in s.execute(select(Annotator.name, Verdict.choice, Verdict.is_resolution)
                                            .join(Annotator, Annotator.id == Verdict.annotator_id)
                                            .where(Verdict.pair_id == pair_id).order_by(Verdict.id))]


def test_browser_pages_filters_and_edits_through_the_worker(qtbot, filled, db, no_sql_on_ui_thread):
    browser = PairsBrowser(filled, db)
    qtbot.addWidget(browser)
    browser.set_annotator("ada")
    settle(db)
    assert browser.model.total == PAGE + 50 and len(browser.model.rows) == PAGE
    assert browser.count.text() == f"{PAGE + 50:,} pairs" and browser.source.count() == 2
    browser.model.fetchMore()
    settle(db)
    assert len(browser.model.rows) == PAGE + 50 and not browser.model.canFetchMore()

    seen = []
    browser.changes_made.connect(seen.append)
    browser.changes_made.connect(browser.on_changes)       # what the main window does for every view
    dialog = browser.open_pair(3)
    qtbot.addWidget(dialog)
    settle(db)
    assert dialog.view.pair_id == 3 and dialog.mine.isEnabled() and dialog.history.count() == 0
    dialog.note.setText("first look")
    qtbot.mouseClick(dialog.mine.buttons["tie"], Qt.MouseButton.LeftButton)
    settle(db)
    qtbot.mouseClick(dialog.mine.buttons["left"], Qt.MouseButton.LeftButton)
    settle(db)
    assert [c.pair_ids for c in seen] == [frozenset({3})] * 2 and all(c.verdicts for c in seen)
    assert dialog.history.count() == 2 and "[replaced]" in dialog.history.item(0).text()
    assert "“first look”" in dialog.history.item(0).text() and dialog.note.text() == ""
    assert browser.model.rows[2].verdicts == {"ada": choice_for_side("left", dialog.view.swapped).value}

    browser.status.setCurrentIndex(browser.status.findData("mine"))
    settle(db)
    assert [r.pair_id for r in browser.model.rows] == [3]
    browser.status.setCurrentIndex(browser.status.findData("all"))
    qtbot.keyClicks(browser.search, "Question 12")
    qtbot.waitUntil(lambda: browser.model.total == 1 + 10, timeout=3000)   # 12 and 120..129
    settle(db)


def test_browser_reloads_only_for_changes_it_shows(qtbot, filled, db):
    browser = PairsBrowser(filled, db)
    qtbot.addWidget(browser)
    settle(db)
    submitted = []
    original = db.submit
    db.submit = lambda fn, *a, **k: (submitted.append(fn.__name__), original(fn, *a, **k))[1]
    try:
        browser.on_changes(Changes(verdicts=True, pair_ids=frozenset({PAGE + 40})))  # not loaded yet
        browser.on_changes(Changes(settings=True, annotators=True))
        browser.show()
        browser.hide()
        browser.show()                                  # no refresh "just in case" when shown
        assert submitted == []
        browser.on_changes(Changes(verdicts=True, pair_ids=frozenset({5})))
        browser.on_changes(Changes(pairs=True))
        assert submitted == ["browse_pairs", "pair_sources", "browse_pairs"]
    finally:
        db.submit = original
    settle(db)


def test_team_panel_sets_overlap_and_redraws_on_changes(qtbot, filled, db, no_sql_on_ui_thread):
    panel = TeamPanel(filled, db)
    qtbot.addWidget(panel)
    settle(db)
    assert panel.overlap.value() == 1 and panel.overlap.isEnabled() and panel.stats["pairs"].text() == "0"
    seen = []
    panel.changes_made.connect(seen.append)
    panel.overlap.setValue(3)
    settle(db)
    assert seen == [Changes(settings=True)]
    db.submit(lambda: update_settings(filled, overlap=2))  # changed elsewhere (another screen, the CLI)
    db.submit(lambda: [AnnotationQueue(filled, n).record(1, c) for n, c in (("ada", Choice.A), ("bob", Choice.B))])
    settle(db)
    assert panel.overlap.value() == 3 and panel.disputes.rowCount() == 0    # not redrawn by itself
    panel.on_changes(Changes(settings=True))
    settle(db)
    assert panel.overlap.value() == 2 and panel.disputes.rowCount() == 0
    panel.on_changes(Changes(verdicts=True, pair_ids=frozenset({1})))
    settle(db)
    assert panel.disputes.rowCount() == 1 and panel.stats["percent"].text() == "0%"
    assert [panel.counts.item(r, 0).text() for r in range(panel.counts.rowCount())] == ["ada", "bob"]


def test_resolving_a_dispute_and_the_owner_rule(qtbot, filled, db):
    for name, choice in (("ada", Choice.A), ("bob", Choice.B)):
        AnnotationQueue(filled, name).record(1, choice)
    update_settings(filled, owners=("olga",))
    panel = TeamPanel(filled, db)
    qtbot.addWidget(panel)
    panel.changes_made.connect(panel.on_changes)
    panel.set_annotator("ada")
    settle(db)
    dialog = panel.open_dispute(0)
    qtbot.addWidget(dialog)
    settle(db)
    assert not dialog.resolver.isEnabled() and "Only an owner (olga)" in dialog.resolve_label.text()
    dialog.record_resolution("left")          # what a forced click would do: storage refuses it
    settle(db)
    assert dialog.error.isVisible() and "only the workspace's owners (olga)" in dialog.error.text()
    assert not any(res for _n, _c, res in verdicts(filled, 1))

    panel.set_annotator("olga")
    dialog = panel.open_dispute(0)
    qtbot.addWidget(dialog)
    settle(db)
    assert dialog.resolver.isEnabled()
    qtbot.mouseClick(dialog.resolver.buttons["right"], Qt.MouseButton.LeftButton)
    settle(db)
    assert verdicts(filled, 1)[-1] == ("olga", choice_for_side("right", dialog.view.swapped), True)
    assert panel.disputes.item(0, 2).text() != "open"              # redrawn from the resolution's Changes
    assert read_settings(filled).owners == ("olga",)


def test_a_blind_pair_opens_read_only_in_the_browser(qtbot, filled, db):
    from storage.comparisons import ComparedAnswers, ModelSide, store_comparison

    import_records(filled, [ImportRecord("Held out?", ["yes", "no"], split="eval")], "seed.jsonl")
    base = ModelSide("bundled:demo_model", None, "base")
    blind = store_comparison(filled, "seed 1 vs seed 2", base, base, {"seed": 1}, {"seed": 2},
                             [ComparedAnswers("Held out?", "answer one", "answer two")]).pair_ids[0]
    browser = PairsBrowser(filled, db)
    qtbot.addWidget(browser)
    browser.set_annotator("ada")
    settle(db)
    browser.source.setCurrentIndex(browser.source.findData("blind A/B"))
    settle(db)
    assert [row.pair_id for row in browser.model.rows] == [blind] and browser.model.rows[0].blind
    assert "read-only" in browser.model.index(0, 1).data(Qt.ItemDataRole.ToolTipRole)
    dialog = browser.open_pair(blind)
    qtbot.addWidget(dialog)
    settle(db)
    assert dialog.mine.isHidden() and dialog.resolver.isHidden() and dialog.note.isHidden()
    assert "blind A/B pair of the comparison 'seed 1 vs seed 2'" in dialog.mine_label.text()
    dialog.record_mine("left")                 # a forced click writes nothing
    dialog.record_resolution("left")           # and the operation refuses the resolution
    settle(db)
    assert dialog.error.isVisible() and f"pair #{blind} belongs to the blind A/B" in dialog.error.text()
    assert verdicts(filled, blind) == []
