"""The Learn tab under pytest-qt: the calculator follows its sliders, the worked example steps
through its six steps, and the real-pair panel shows a computed pair (and says what is missing)."""

from __future__ import annotations

import math

import pytest

from core.operations import learn
from tests.gui_db import db, settle  # noqa: F401  (fixture)
from tests.tiny_models import fill_workspace


@pytest.fixture
def view(qtbot, workspace, db):  # noqa: F811
    from gui.learn.learn_view import LearnView

    widget = LearnView(workspace, db, None)
    qtbot.addWidget(widget)
    widget.resize(1300, 820)
    widget.show()
    settle(db)
    return widget


def test_moving_a_slider_updates_the_readouts_and_the_curve(view) -> None:
    calc = view.calculator
    assert calc.loss_tile.value.text() == "0.598"              # the explainer's defaults: β 0.1, +1.5, −0.5
    assert calc.chosen_tile.value.text() == "+0.150" and calc.rejected_tile.value.text() == "−0.050"
    seen = []
    calc.numbers_changed.connect(seen.append)
    calc.beta.slider.setValue(100)                             # β 1.0
    assert calc.beta.spin.value() == pytest.approx(1.0)
    expected = learn.calculate(1.0, 1.5, -0.5)
    assert calc.loss_tile.value.text() == learn.num(expected.loss) == "0.127"
    assert calc.preference_tile.value.text() == "88.1%"
    assert seen and seen[-1] == expected
    calc.chosen.slider.setValue(-300)                          # the chosen answer now disfavoured
    assert calc.chosen.spin.value() == pytest.approx(-3.0)
    assert "prefers the rejected answer" in calc.detail.text()
    xs, ys = calc.point.getData()
    assert (xs[0], ys[0]) == (pytest.approx(-2.5), pytest.approx(learn.calculate(1.0, -3.0, -0.5).loss))
    curve_x, curve_y = calc.curve.getData()
    assert len(curve_x) == 201 and curve_y[0] > math.log(2) > curve_y[-1]


def test_the_calculator_reproduces_the_worked_example(view) -> None:
    calc = view.calculator
    view.try_button.click()
    assert calc.beta.value() == 0.1 and (calc.chosen.spin.value(), calc.rejected.spin.value()) == (0.405, -0.182)
    assert calc.chosen.value() == pytest.approx(math.log(0.30 / 0.20), abs=1e-15)   # shown rounded, computed exactly
    assert calc.loss_tile.value.text() == "0.664" and calc.preference_tile.value.text() == "51.5%"
    assert (calc.chosen_tile.value.text(), calc.rejected_tile.value.text()) == ("+0.041", "−0.018")
    calc.from_logps.setChecked(True)                           # the same from the four probabilities' logs
    for spin, p in zip(calc.logp_spins, (0.30, 0.20, 0.25, 0.30)):
        spin.setValue(math.log(p))
    assert calc.loss_tile.value.text() == "0.664"


def test_the_calculator_takes_four_log_probs(view) -> None:
    calc = view.calculator
    calc.from_logps.setChecked(True)
    assert calc.logp_row.isVisibleTo(calc)
    for spin, value in zip(calc.logp_spins, (-10.0, -12.0, -20.0, -19.0)):
        spin.setValue(value)
    assert calc.chosen.value() == pytest.approx(2.0) and calc.rejected.value() == pytest.approx(-1.0)
    assert calc.loss_tile.value.text() == learn.num(learn.from_logps(0.1, -10.0, -20.0, -12.0, -19.0).loss)


def test_stepping_through_the_worked_example(view, qtbot) -> None:
    from PySide6.QtCore import Qt

    steps = view.worked_steps
    assert steps.title.text() == "Step 1: Get model probabilities"
    assert not steps.back_button.isEnabled() and steps.next_button.isEnabled()
    titles = [steps.title.text()]
    for _ in range(5):
        qtbot.mouseClick(steps.next_button, Qt.MouseButton.LeftButton)
        titles.append(steps.title.text())
    assert titles == [f"Step {s.number}: {s.title}" for s in learn.worked_example_steps()]
    assert steps.counter.text() == "STEP 6 OF 6" and not steps.next_button.isEnabled()
    assert "0.664" in steps.numbers.text() and "0.515" in steps.numbers.text()
    assert "loss 0.664" in steps.so_far.text()
    qtbot.mouseClick(steps.back_button, Qt.MouseButton.LeftButton)
    assert steps.title.text() == "Step 5: Turn the gap into a confidence score" and "51.5%" in steps.numbers.text()
    steps.step_buttons.button(2).click()                       # straight to step 3
    assert "+0.041" in steps.numbers.text() and "−0.018" in steps.numbers.text()
    assert "…" in steps.so_far.text()                          # steps 4–6 still to come


def test_the_real_pair_panel_says_what_is_missing_then_shows_a_pair(view, workspace, db) -> None:  # noqa: F811
    from core.operations.changes import Changes

    panel = view.real_pair
    assert "No run has an adapter yet" in panel.status.text() and not panel.explain_button.isEnabled()
    fill_workspace(workspace, 3)
    panel.on_changes(Changes(verdicts=True))
    settle(db)
    assert panel.pair_combo.count() == 3 and panel.pair_combo.currentText().startswith("#")

    inputs = learn.StepInputs(beta=0.5, policy_chosen=-30.0, policy_rejected=-41.0, reference_chosen=-31.0,
                              reference_rejected=-40.0, chosen_tokens=12, rejected_tokens=10)
    result = learn.RealPair("run-1", panel.pair_combo.currentData(), True, "How do I make tea?",
                            "Sure, here is how: boil water first.", "No.", "sigmoid", inputs,
                            tuple(learn.six_steps(inputs)))
    panel._explained(result)                                   # what the worker hands back
    assert panel.texts.isVisibleTo(panel) and panel.chosen_box.text.text().startswith("Sure")
    assert "−30.00" in panel.chosen_box.meta.text() and "12 tokens" in panel.chosen_box.meta.text()
    assert "held out" in panel.prompt_box.meta.text()
    panel.steps.show_step(5)
    assert learn.num(result.numbers.loss) in panel.steps.numbers.text()
    assert learn.num(result.numbers.loss) == "0.313"           # margin 0.5·(1 − (−1)) = 1.0
    panel.calculator_button.click()                            # the pair's numbers into the calculator
    assert view.calculator.beta.value() == 0.5 and view.calculator.chosen.value() == pytest.approx(1.0)
    assert view.calculator.loss_tile.value.text() == "0.313" == learn.num(result.numbers.loss)


def test_compute_runs_on_a_worker_and_shows_the_pairs_steps(view, workspace, db, qtbot, tmp_path) -> None:  # noqa: F811
    from core.operations.changes import Changes
    from tests.test_learn import make_model_and_adapter, record_run

    model_dir, adapter_dir = make_model_and_adapter(tmp_path)
    fill_workspace(workspace, 2)
    record_run(workspace, model_dir, adapter_dir, beta=0.3)
    panel = view.real_pair
    panel.on_changes(Changes(runs=True, verdicts=True))
    settle(db)
    assert panel.run_combo.currentData() == "run-a" and panel.explain_button.isEnabled()
    messages = []
    view.status_message.connect(messages.append)
    panel.explain_button.click()
    assert panel.computing and not panel.explain_button.isEnabled()
    qtbot.waitUntil(lambda: panel.result is not None, timeout=120_000)
    expected = learn.explain_pair(workspace, "run-a", panel.pair_combo.currentData())
    assert panel.result.numbers == expected.numbers and panel.result.numbers.beta == 0.3
    assert panel.explain_button.isEnabled() and messages and learn.num(expected.numbers.loss) in messages[-1]
    panel.steps.show_step(5)
    assert learn.num(expected.numbers.loss) in panel.steps.numbers.text()
