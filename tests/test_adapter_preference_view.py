"""The Annotate tab shows the run's preference on a pair only after the annotator judged it,
hides it again on undo, and follows the queue order the Team tab's card sets."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from core.operations.changes import Changes
from gui.team.queue_order_card import QueueOrderCard
from storage.pair_scores import store_pair_scores
from storage.runs import create_run
from storage.settings import read_settings
from tests.annotate_samples import add_sample_pairs
from tests.gui_db import db, settle  # noqa: F401  (fixture)
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)
from tests.test_annotate_view import make_view, press

pytestmark = pytest.mark.usefixtures("isolated_settings")


@pytest.fixture
def scored(workspace):
    pair_ids = add_sample_pairs(workspace, 6)
    create_run(workspace, "run-1", name="round 1", config_json="{}", base_model="m", run_dir="/tmp/none",
               total_steps=1)
    margins = dict(zip(pair_ids, (0.42, -0.8, 0.05, 1.3, -0.1, 0.6)))
    store_pair_scores(workspace, "run-1", margins)
    return workspace, margins


def _card(qtbot, db, ws) -> QueueOrderCard:
    card = QueueOrderCard(ws, db)
    qtbot.addWidget(card)
    card.reload()
    settle(db)
    return card


def test_the_preference_shows_only_after_the_verdict_and_hides_on_undo(qtbot, db, scored):
    ws, margins = scored
    view = make_view(qtbot, db, ws)
    first = view.current
    assert view.preference.isHidden() and view.preference.text() == ""      # never before the verdict
    press(qtbot, view, "1")                                                  # left is better
    left_margin = -margins[first.pair_id] if first.swapped else margins[first.pair_id]
    side = "left" if left_margin > 0 else "right"
    assert not view.preference.isHidden()
    assert view.preference.text() == (f"Pair #{first.pair_id}: Run round 1 preferred the {side} answer "
                                      f"(margin {abs(left_margin):+.2f})"
                                      + (" — as you did" if side == "left" else " — you chose the other one"))
    second = view.current
    assert str(second.pair_id) not in view.preference.text().split(":")[0]  # the next pair's stays unseen

    press(qtbot, view, "Z", Qt.KeyboardModifier.ControlModifier)            # undo: the pair is back, unjudged
    assert view.current.pair_id == first.pair_id
    assert view.preference.text() == ""                                     # nothing of it while judged again
    press(qtbot, view, "2")
    assert view.preference.text().startswith(f"Pair #{first.pair_id}: Run round 1 preferred the {side} answer")


def test_an_answer_arriving_after_an_undo_is_not_shown(qtbot, db, scored):
    ws, _margins = scored
    view = make_view(qtbot, db, ws)
    first = view.current.pair_id
    qtbot.keyClick(view, Qt.Key.Key_1)          # the lookup is queued on the database thread …
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)   # … and undone before it answers
    settle(db)
    assert view.current.pair_id == first and view.preference.text() == ""


def test_the_team_card_sets_the_order_and_the_annotate_tab_follows_it(qtbot, db, scored):
    ws, margins = scored
    card = _card(qtbot, db, ws)
    assert card.order.currentData() == "default" and card.run.currentData() == "run-1"
    assert "6 of 6 open pairs scored" in card.info.text()
    view = make_view(qtbot, db, ws)
    with qtbot.waitSignal(card.changes_made) as changed:
        card.order.setCurrentIndex(card.order.findData("uncertain"))
        card._choose()
        settle(db)
    assert (read_settings(ws).queue_order, read_settings(ws).queue_order_run) == ("uncertain", "run-1")
    view.on_changes(changed.args[0])
    settle(db)
    assert view.session.queue.order == ("uncertain", "run-1")
    served = [view.current.pair_id]
    for _ in range(len(margins) - 1):
        press(qtbot, view, "3")
        served.append(view.current.pair_id)
    # The first pair was on screen before the order changed; the rest come |margin| ascending.
    rest = sorted((p for p in margins if p != served[0]), key=lambda p: abs(margins[p]))
    assert served[1:] == rest
    view.on_changes(Changes(runs=True))   # a scored run: nothing to redraw on this screen


def test_the_card_says_most_wrong_first_needs_a_second_annotator(qtbot, db, scored):
    ws, _margins = scored
    card = _card(qtbot, db, ws)
    said = []
    card.status_message.connect(said.append)
    card.order.setCurrentIndex(card.order.findData("disagree"))
    card._choose()
    settle(db)
    card.on_changes(Changes(settings=True))
    settle(db)
    assert read_settings(ws).queue_order == "disagree"
    assert "set 2 or more annotators per pair" in card.info.text()
    # Said in the status bar too, once the order is stored: the queue serves the default order meanwhile.
    assert len(said) == 1 and "the queue serves the default order" in said[0]
    from core.operations.team import set_overlap
    card.on_changes(set_overlap(ws, 2))
    settle(db)
    assert "annotators per pair" not in card.info.text() and "6 of 6 open pairs scored" in card.info.text()
