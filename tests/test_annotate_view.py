"""The labelling screen driven with its keys; the database is checked after every press (once
the background commit is in: ``press`` waits for the database worker to go idle)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from sqlalchemy import select

from gui.annotate.annotate_view import AnnotateView
from storage.annotation_queue import AnnotationQueue
from storage.models import Annotator, Choice, Pair, Verdict
from storage.settings import read_settings, update_settings
from tests.annotate_samples import LONG_MARKDOWN, add_sample_pairs, add_showcase_pair
from tests.gui_db import db, settle, shown  # noqa: F401  (fixture)
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("isolated_settings")

KEYS = {"1": Qt.Key.Key_1, "2": Qt.Key.Key_2, "3": Qt.Key.Key_3, "4": Qt.Key.Key_4, "0": Qt.Key.Key_0,
        "Left": Qt.Key.Key_Left, "Right": Qt.Key.Key_Right, "T": Qt.Key.Key_T, "B": Qt.Key.Key_B,
        "S": Qt.Key.Key_S}


def make_view(qtbot, db, ws, name: str | None = "ada") -> AnnotateView:
    return shown(qtbot, db, AnnotateView(ws, db, name), (1200, 800))   # the session open, the first pairs fetched


def press(qtbot, view: AnnotateView, key: str, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(view, KEYS.get(key, key), modifier)
    settle(view.db)


def active_verdicts(ws, name: str) -> list[tuple[int, Choice, str]]:
    """(pair id, choice, note) of the annotator's unretracted verdicts, oldest first."""
    with ws.session() as s:
        rows = s.execute(select(Verdict.pair_id, Verdict.choice, Verdict.note)
                         .join(Annotator, Annotator.id == Verdict.annotator_id)
                         .where(Annotator.name == name, Verdict.retracted_at.is_(None))
                         .order_by(Verdict.id)).all()
    return [tuple(r) for r in rows]


def all_verdict_rows(ws) -> list[tuple[int, Choice, bool]]:
    with ws.session() as s:
        rows = s.execute(select(Verdict.pair_id, Verdict.choice, Verdict.retracted_at.is_not(None))
                         .order_by(Verdict.id)).all()
    return [tuple(r) for r in rows]


@pytest.fixture
def ws40(workspace):
    add_sample_pairs(workspace, 40)
    return workspace


@pytest.mark.parametrize("key, expected", [
    ("3", Choice.TIE), ("T", Choice.TIE), ("4", Choice.BOTH_BAD), ("B", Choice.BOTH_BAD),
    ("S", Choice.SKIP), ("0", Choice.SKIP)])
def test_fixed_choice_keys_commit_at_once_and_show_the_next_pair(qtbot, db, ws40, key, expected):
    view = make_view(qtbot, db, ws40)
    first = view.current.pair_id
    press(qtbot, view, key)
    # Committed: a fresh session (another connection) sees it without the view doing anything more.
    assert active_verdicts(ws40, "ada") == [(first, expected, "")]
    assert view.current is not None and view.current.pair_id != first
    assert view.display.left.text == view.current.left_text


def test_a_verdict_whose_pair_was_deleted_is_not_saved_and_the_screen_says_so(qtbot, db, ws40):
    # Verdicts are stored in the background now (the next pair is on screen at once), so a pair
    # deleted under the annotator cannot keep the screen: the banner says what was not saved.
    view = make_view(qtbot, db, ws40)
    first = view.current.pair_id
    with ws40.writing() as s:  # the pair disappears under the annotator (another process deleted it)
        s.delete(s.get(Pair, first))
    messages = []
    view.status_message.connect(messages.append)
    press(qtbot, view, "3")
    assert active_verdicts(ws40, "ada") == []
    assert view.current.pair_id != first and view.unsaved == []
    assert messages and messages[-1].startswith(f"Not saved — pair #{first} ")
    assert view.banner.isVisible() and f"pair #{first}" in view.banner.message
    assert view.pace.done == 0  # it does not count towards the session
    qtbot.mouseClick(view.banner.dismiss, Qt.MouseButton.LeftButton)
    assert not view.banner.isVisible()


@pytest.mark.parametrize("key, side", [("1", "left"), ("Left", "left"), ("2", "right"), ("Right", "right")])
def test_side_keys_store_the_response_shown_on_that_side(qtbot, db, ws40, key, side):
    # Left/right is randomised per pair: a left press on a swapped pair chose response b.
    view = make_view(qtbot, db, ws40)
    seen_swapped = set()
    for _ in range(12):
        view_pair = view.current
        press(qtbot, view, key)
        pair_id, choice, _ = active_verdicts(ws40, "ada")[-1]
        assert pair_id == view_pair.pair_id
        with ws40.session() as s:
            pair = s.get(Pair, pair_id)
            chosen_text = (pair.response_a if choice == Choice.A else pair.response_b).text
            swapped = pair.display_swapped
        assert swapped == view_pair.swapped
        assert chosen_text == (view_pair.left_text if side == "left" else view_pair.right_text)
        seen_swapped.add(swapped)
    assert seen_swapped == {True, False}, "the sample must hold pairs shown both ways"


def test_undo_walks_back_through_the_session(qtbot, db, ws40):
    view = make_view(qtbot, db, ws40)
    judged = []
    for key in ("1", "2", "3"):
        judged.append(view.current.pair_id)
        press(qtbot, view, key)
    assert [p for p, _, _ in active_verdicts(ws40, "ada")] == judged

    press(qtbot, view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert view.current.pair_id == judged[2]
    press(qtbot, view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert view.current.pair_id == judged[1]
    assert [p for p, _, _ in active_verdicts(ws40, "ada")] == judged[:1]
    # History is kept: the undone rows are retracted, not deleted.
    assert [(p, retracted) for p, _, retracted in all_verdict_rows(ws40)] == [
        (judged[0], False), (judged[1], True), (judged[2], True)]

    # Judging the re-shown pair again is a new row; the next pair is the one after it.
    press(qtbot, view, "T")
    assert active_verdicts(ws40, "ada")[-1][:2] == (judged[1], Choice.TIE)
    assert view.current.pair_id == judged[2]
    assert view.pace.done == 2

    # Undo stops at the start of the session (earlier verdicts are not this session's).
    for _ in range(4):
        press(qtbot, view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert active_verdicts(ws40, "ada") == []
    assert view.current.pair_id == judged[0]


def test_note_field_takes_typed_keys_and_the_note_is_saved_with_the_verdict(qtbot, db, ws40):
    view = make_view(qtbot, db, ws40)
    first = view.current.pair_id
    press(qtbot, view, Qt.Key.Key_N)
    assert view.note.hasFocus()
    qtbot.keyClicks(view.note, "B is 2x slower")
    qtbot.keyClick(view.note, Qt.Key.Key_Left)
    qtbot.keyClick(view.note, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # the field's own undo
    assert active_verdicts(ws40, "ada") == []  # digits, letters, arrows, Ctrl+Z all stayed in the field
    assert view.current.pair_id == first
    view.note.setText("B is 2x slower")
    qtbot.keyClick(view.note, Qt.Key.Key_Escape)
    assert not view.note.hasFocus()
    press(qtbot, view, "3")
    assert active_verdicts(ws40, "ada") == [(first, Choice.TIE, "B is 2x slower")]
    assert view.note.text() == ""


def test_buttons_record_like_keys_and_time_is_measured(qtbot, db, ws40):
    view = make_view(qtbot, db, ws40)
    first = view.current
    qtbot.wait(30)
    qtbot.mouseClick(view.verdicts.buttons["right"], Qt.MouseButton.LeftButton)
    settle(db)
    with ws40.session() as s:
        verdict = s.scalars(select(Verdict)).one()
    expected = Choice.A if first.swapped else Choice.B
    assert (verdict.pair_id, verdict.choice) == (first.pair_id, expected)
    assert verdict.seconds_spent >= 0.02
    assert view.header.progress.value() == 1 and view.pace.done == 1


def test_overlap_two_annotators_judge_the_same_pair_then_it_closes(qtbot, db, ws40):
    update_settings(ws40, overlap=2)
    ada = make_view(qtbot, db, ws40, "ada")
    first = ada.current.pair_id
    press(qtbot, ada, "1")
    bob = make_view(qtbot, db, ws40, "bob")
    # The queue finishes pairs first: bob is served the pair ada just judged.
    assert bob.current.pair_id == first
    press(qtbot, bob, "2")
    carol = AnnotationQueue(ws40, "carol")
    assert carol.next_pair().pair_id != first  # two distinct annotators: closed
    assert [p for p, _, _ in active_verdicts(ws40, "ada")] == [first]
    assert [p for p, _, _ in active_verdicts(ws40, "bob")] == [first]


def test_picker_creates_and_remembers_the_annotator(qtbot, db, ws40):
    view = make_view(qtbot, db, ws40, None)
    assert view.pages.currentWidget() is view.picker
    press(qtbot, view, "1")  # no verdict before someone is labelling
    assert all_verdict_rows(ws40) == []
    view.picker.names.lineEdit().setFocus()
    qtbot.keyClicks(view.picker.names.lineEdit(), "  Grace  Hopper 2")  # typed keys reach the field
    qtbot.keyClick(view.picker.names.lineEdit(), Qt.Key.Key_Backspace)
    assert all_verdict_rows(ws40) == []
    qtbot.keyClick(view.picker.names.lineEdit(), Qt.Key.Key_Return)
    settle(db)
    assert view.annotator_name == "Grace Hopper"
    assert view.current is not None
    again = make_view(qtbot, db, ws40, None)
    assert again.picker.name() == "Grace Hopper"  # remembered on this computer
    assert "Grace Hopper" in [again.picker.names.itemText(i) for i in range(again.picker.names.count())]


def test_empty_queue_shows_the_done_page_and_ignores_verdict_keys(qtbot, db, workspace):
    add_sample_pairs(workspace, 2)
    view = make_view(qtbot, db, workspace)
    press(qtbot, view, "1")
    press(qtbot, view, "2")
    assert view.current is None
    assert view.content.currentWidget() is view.empty
    press(qtbot, view, "3")
    assert len(all_verdict_rows(workspace)) == 2
    press(qtbot, view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert view.current is not None and view.content.currentWidget() is view.display


def test_markdown_raw_and_diff_toggles(qtbot, db, workspace):
    add_showcase_pair(workspace)
    view = make_view(qtbot, db, workspace)
    panel = view.display.left if view.current.left_text == LONG_MARKDOWN else view.display.right
    rendered = panel.browser.document().toPlainText()
    assert "**" not in rendered and "```" not in rendered and "def top_paths" in rendered
    press(qtbot, view, "R")
    assert panel.browser.document().toPlainText() == LONG_MARKDOWN.rstrip("\n") or \
        panel.browser.document().toPlainText() == LONG_MARKDOWN
    press(qtbot, view, "D")
    highlighted = [f for b in _blocks(panel.browser.document()) for f in _fragments(b)
                   if f.charFormat().background().style() != Qt.BrushStyle.NoBrush]
    assert highlighted, "word diff paints the differing words"
    # The prompt is a conversation: shown as turns with role labels.
    assert view.display.prompt.browser.document().toPlainText().startswith("System")
    assert view.display.prompt.chips["turns"].text() == "2 turns"


def _blocks(doc):
    block = doc.begin()
    while block.isValid():
        yield block
        block = block.next()


def _fragments(block):
    it = block.begin()
    while not it.atEnd():
        yield it.fragment()
        it += 1


def test_synced_scrolling(qtbot, db, workspace):
    add_showcase_pair(workspace)
    view = make_view(qtbot, db, workspace)
    view.resize(900, 500)
    view.display.right.show_text(LONG_MARKDOWN * 2, raw=False)
    view.display.left.show_text(LONG_MARKDOWN, raw=False)
    qtbot.wait(10)
    left, right = (p.browser.verticalScrollBar() for p in (view.display.left, view.display.right))
    assert left.maximum() > 0 and right.maximum() > left.maximum()
    left.setValue(left.maximum())
    assert right.value() == right.maximum()
    right.setValue(right.maximum() // 2)
    assert abs(left.value() - left.maximum() // 2) <= 1


def test_help_overlay_and_guidelines_editing(qtbot, db, ws40):
    view = make_view(qtbot, db, ws40)
    qtbot.keyClick(view, Qt.Key.Key_F1)
    assert view.help.isVisible()
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert not view.help.isVisible()
    qtbot.keyClick(view, Qt.Key.Key_Question)
    assert view.help.isVisible()
    qtbot.keyClick(view, Qt.Key.Key_Question)
    assert not view.help.isVisible()

    press(qtbot, view, Qt.Key.Key_G)
    assert view.guidelines.isVisible()
    qtbot.mouseClick(view.guidelines.edit_button, Qt.MouseButton.LeftButton)
    assert view.guidelines.editing
    view.guidelines.editor.selectAll()
    qtbot.keyClicks(view.guidelines.editor, "# Rule 1")  # digits and letters stay in the editor
    qtbot.keyClick(view.guidelines.editor, Qt.Key.Key_Return)
    qtbot.keyClicks(view.guidelines.editor, "Prefer 2 short answers")
    assert active_verdicts(ws40, "ada") == []
    qtbot.mouseClick(view.guidelines.edit_button, Qt.MouseButton.LeftButton)
    settle(db)
    assert read_settings(ws40).guidelines == "# Rule 1\nPrefer 2 short answers"
    assert "Rule 1" in view.guidelines.browser.document().toPlainText()
