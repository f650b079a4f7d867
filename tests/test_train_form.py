"""The set-up form: defaults with tooltips, every bad setting refused with its reason before any
thread starts, the data preview, the memory estimate and presets."""

from __future__ import annotations

import pytest

from core.operations.launch_checks import DATA_KEY
from storage.settings import update_settings
from gui.train.training_form import FIELD_KEYS
from gui.common.workers import running_workers
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)
from tests.train_view_helpers import configure, make_train_view, pairs_workspace, tiny_model  # noqa: F401

pytestmark = pytest.mark.usefixtures("isolated_settings")


def _training_threads() -> list:
    return [t for t in running_workers() if t.objectName() == "worker:train_run"]


def test_every_field_has_a_tooltip_and_the_workspace_model_is_the_default(qtbot, make_train_view, pairs_workspace,
                                                                           tiny_model):
    update_settings(pairs_workspace, base_model=str(tiny_model))
    view = make_train_view(pairs_workspace)
    form = view.form
    qtbot.waitUntil(lambda: form.values()["base_model"] == str(tiny_model), timeout=10_000)   # read off the UI thread
    for key in FIELD_KEYS:
        tip = form.editor(key).toolTip()
        assert tip.endswith(".") or tip.endswith(")."), key
        assert 20 < len(tip) < 160, key          # one sentence, not an essay
    qtbot.waitUntil(lambda: form.data_preview is not None, timeout=20_000)
    assert form.data_preview.total == 24
    assert "24 pairs" in form.preview_label.text()
    qtbot.waitUntil(lambda: "fit in max length" in form.preview_label.text(), timeout=20_000)
    qtbot.waitUntil(lambda: form.memory_fits is not None, timeout=20_000)    # the device's memory comes from a worker
    assert form.memory_fits is True and "Memory: needs about" in form.memory_label.text()


@pytest.mark.parametrize("key, value, reason", [
    ("beta", "-0.5", "must be a positive number"),
    ("batch_size", "0", "must be at least 1"),
    ("learning_rate", "fast", "expected a number"),
    ("eval_split", "2", "a fraction must be in [0, 1)"),
])
def test_bad_settings_are_refused_next_to_their_field(qtbot, make_train_view, pairs_workspace, tiny_model, key,
                                                      value, reason):
    view = make_train_view(pairs_workspace)
    configure(view, tiny_model, max_steps=2)
    view.form.set_value(key, value)
    assert view.start() is False
    assert reason in view.form.error_text(key)
    assert view.form.error_label(key).isVisible()
    assert view.worker is None and _training_threads() == []
    assert key in view.message_label.text()


def test_an_empty_model_folder_is_refused_with_the_reason(qtbot, make_train_view, pairs_workspace, tmp_path):
    empty = tmp_path / "empty-model"
    empty.mkdir()
    view = make_train_view(pairs_workspace)
    configure(view, empty, max_steps=2)
    assert view.start() is False
    assert "holds no model (no config.json)" in view.form.error_text("base_model")
    view.form.set_value("base_model", str(tmp_path / "nowhere"))
    assert view.start() is False and "does not exist" in view.form.error_text("base_model")
    assert view.worker is None and _training_threads() == []


def test_a_workspace_with_no_pairs_is_refused(qtbot, make_train_view, workspace, tiny_model):
    view = make_train_view(workspace)
    configure(view, tiny_model, max_steps=2)
    # The data check reads the database, so it runs off the UI thread: Start is refused at once
    # when the form already knows (its preview came back), else a moment later by the launch
    # checks in the run's own process (core.operations.training_process), whose worker then ends.
    view.start()
    qtbot.waitUntil(lambda: not view.is_running() and _training_threads() == [], timeout=60_000)
    assert "no labelled pairs" in view.form.error_text(DATA_KEY)
    assert view.form.data_error.isVisible()
    assert view.worker is None and _training_threads() == []
    assert view.start_button.isEnabled() and view.last_status is None


def test_fixing_the_field_clears_its_message(qtbot, make_train_view, pairs_workspace, tiny_model):
    view = make_train_view(pairs_workspace)
    configure(view, tiny_model, beta="-1")
    view.form.refresh()
    assert "positive" in view.form.error_text("beta")
    view.form.set_value("beta", "0.1")
    view.form.refresh()
    assert view.form.error_text("beta") == "" and not view.form.error_label("beta").isVisible()


def test_memory_warning_when_the_run_will_not_fit(qtbot, make_train_view, pairs_workspace, tiny_model):
    view = make_train_view(pairs_workspace)
    configure(view, tiny_model, batch_size=4096, max_length=100_000)
    view.form.refresh()
    qtbot.waitUntil(lambda: view.form.memory_fits is not None, timeout=20_000)
    assert view.form.memory_fits is False
    assert "Will not fit" in view.form.memory_label.text() and "lower batch size" in view.form.memory_label.text()
    view.form.set_value("batch_size", 2)
    view.form.set_value("max_length", 128)
    view.form.refresh()
    assert view.form.memory_fits is True


def test_presets_save_and_load_through_the_form(qtbot, make_train_view, pairs_workspace, tiny_model):
    view = make_train_view(pairs_workspace)
    configure(view, tiny_model, beta="0.3", sft_weight="1", loss_type="ipo")
    assert view.form.save_preset("ipo with sft")
    assert view.form.preset_combo.findText("ipo with sft") >= 0
    view.form.set_value("beta", "0.05")
    view.form.set_value("loss_type", "sigmoid")
    view.form.load_preset("ipo with sft")
    qtbot.waitUntil(lambda: view.form.values()["loss_type"] == "ipo", timeout=10_000)   # read on the database thread
    values = view.form.values()
    assert (values["beta"], values["sft_weight"], values["loss_type"]) == (0.3, 1.0, "ipo")   # typed, as the form holds them
    assert values["base_model"] == str(tiny_model)
