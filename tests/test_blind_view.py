"""The Blind A/B screen under pytest-qt: judging with the Annotate tab's keys and no model names,
the verdicts stored through the outbox and mapped back, and the results naming the models."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from core.operations import blind
from gui.blind.blind_view import BlindView
from tests.blind_samples import blind_workspace, model_of_left, store_sample
from tests.gui_db import db, settle, shown  # noqa: F401  (fixture)
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("isolated_settings")


def make_view(qtbot, db, ws, name: str | None = "ada") -> BlindView:
    view = shown(qtbot, db, BlindView(ws, db, name))
    settle(db)   # comparisons listed, the sitting opened, the first pairs fetched
    return view


def visible_text(view: BlindView) -> str:
    from PySide6.QtWidgets import QLabel

    return " ".join(label.text() for label in view.findChildren(QLabel) if label.isVisible())


def test_judging_by_keys_hides_the_models_and_results_reveal_them(qtbot, db, tmp_path):
    ws = blind_workspace(tmp_path)
    stored = store_sample(ws, count=4)
    view = make_view(qtbot, db, ws)
    assert view.comparison_id == stored.comparison_id
    assert view.session is not None and view.session.current is not None
    shown = view.display.view
    assert shown.source == "blind A/B"
    # Nothing on the judging page names a model (the comparison's title in the picker names the
    # two models compared, never which side is which).
    on_screen = visible_text(view.pages.currentWidget())
    assert "round 1" not in on_screen and "base" not in on_screen
    assert view.display.left.text.startswith("answer of")
    # Prefer the tuned model's answer on every pair by key, wherever it is shown.
    keys = []
    for _ in range(3):
        tuned_left = model_of_left(ws, view.session.current.pair_id) == "round 1"
        keys.append(tuned_left)
        qtbot.keyClick(view, Qt.Key.Key_1 if tuned_left else Qt.Key.Key_2)
        settle(db)
    qtbot.keyClick(view, Qt.Key.Key_3)   # a tie on the fourth
    settle(db)
    settle(db)
    assert not view.unsaved
    result = blind.comparison_result(ws, stored.comparison_id)
    assert (result.outcomes.b_won, result.outcomes.a_won, result.outcomes.ties) == (3, 0, 1)
    assert view.content.currentWidget() is view.message and "Nothing left for you" in view.message_title.text()
    view.show_page(1)
    # (3 + 1/2) / 4 = 87.5%, shown rounded; the results are read again shortly after each verdict.
    qtbot.waitUntil(lambda: "wins" in view.results.headline.text(), timeout=5000)
    assert "round 1 wins 88% against base" in view.results.headline.text()
    assert view.results.values["n"].text() == "4" and view.results.values["ties"].text() == "1"
    assert view.results.table.rowCount() == 1 and view.results.table.item(0, 0).text() == "ada"
    assert view.results.bar.rate.rate == pytest.approx(0.875)
    # The revealed pairs say which model was shown left, as stored.
    assert view.results.pairs.rowCount() == 4
    for row, tuned_left in enumerate(keys):
        assert view.results.pairs.item(row, 2).text() == ("round 1" if tuned_left else "base")
        assert view.results.pairs.item(row, 3).text() == "B won"
    assert view.results.pairs.item(3, 3).text() == "tie"


def test_undo_takes_back_the_last_verdict(qtbot, db, tmp_path):
    ws = blind_workspace(tmp_path)
    stored = store_sample(ws, count=2)
    view = make_view(qtbot, db, ws)
    first = view.session.current.pair_id
    qtbot.keyClick(view, Qt.Key.Key_4)   # both bad
    settle(db)
    assert blind.comparison_result(ws, stored.comparison_id).outcomes.both_bad == 1
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    settle(db)
    assert view.session.current.pair_id == first
    assert blind.comparison_result(ws, stored.comparison_id).outcomes.both_bad == 0


def test_without_comparisons_the_form_is_offered(qtbot, db, tmp_path):
    ws = blind_workspace(tmp_path)
    view = make_view(qtbot, db, ws)
    assert view.form.isVisible() and view.picker.count() == 0
    assert "No blind comparison yet" in view.message_title.text()
    labels = [view.form.model_b.itemText(i) for i in range(view.form.model_b.count())]
    assert labels == ["Base", "round 2  (r2)", "round 1  (r1)"]   # the newest run first
    assert view.form.model_a.currentData() == "base" and view.form.model_b.currentData() == "r2"


def test_no_annotator_yet_asks_for_one(qtbot, db, tmp_path):
    ws = blind_workspace(tmp_path)
    store_sample(ws, count=2)
    view = make_view(qtbot, db, ws, name=None)
    assert view.session is None and "Who is judging" in view.message_title.text()
    view.set_annotator("bo")
    settle(db)
    settle(db)
    assert view.session is not None and view.session.current is not None


@pytest.mark.slow
def test_a_comparison_is_created_on_a_worker_and_opened_for_judging(qtbot, db, tmp_path):
    """The form's Generate button: two model loads and 4 short replies on a worker (~30 s on busy cores)."""
    from tests.blind_samples import add_perturbed_adapter_run

    ws = blind_workspace(tmp_path)
    add_perturbed_adapter_run(ws, tmp_path / "r3", "r3", "round 3")
    view = make_view(qtbot, db, ws)
    form = view.form
    form.reload_models()
    settle(db)
    assert form.model_a.currentData() == "base" and form.model_b.currentData() == "r3"
    form.prompts.setValue(2)
    form.max_tokens.setValue(8)
    with qtbot.waitSignal(form.created, timeout=240_000) as created:
        form.create_button.click()
        assert form.worker is not None and not form.create_button.isEnabled()
    outcome = created.args[0]
    assert form.worker is None and form.create_button.isEnabled()
    assert outcome.pairs + outcome.skipped_identical == 2 and not outcome.cancelled
    settle(db)
    settle(db)
    assert view.comparison_id == outcome.comparison_id
    assert view.session is not None and (view.session.current is not None or outcome.pairs == 0)
    assert f"Comparison #{outcome.comparison_id}" in form.progress_text.text()
