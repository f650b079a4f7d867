"""The set-up form generated from TrainingConfig's metadata, driven on its own (with the GUI's
database worker): an editor per field type, every problem next to its field, the effective
epochs when max steps wins, the base model's friendly name, presets, and no SQL or torch on
the UI thread."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit, QSpinBox
from sqlalchemy import event

from core.engine.bundled_models import DEMO_MODEL
from core.engine.training_config import TrainingConfig
from gui.common.db_worker import DatabaseWorker
from gui.train.form_fields import NumberSpinBox, format_number
from storage.settings import read_settings, update_settings
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)
from tests.tiny_models import fill_workspace, make_tiny_model_dir

pytestmark = pytest.mark.usefixtures("isolated_settings")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def db(qtbot):
    worker = DatabaseWorker()
    yield worker
    worker.close()


@pytest.fixture
def make_form(qtbot, db):
    from gui.common.workers import wait_for_all_workers
    from gui.train.training_form import TrainingForm

    forms = []

    def make(ws):
        form = TrainingForm(ws, db)
        qtbot.addWidget(form)
        form.resize(420, 1600)
        form.show()
        db.wait_idle()
        forms.append(form)
        return form

    yield make
    for form in forms:
        form.stop_timers()   # as its view does when it closes: the helper process ends, its waiters return
    db.close()       # its thread counts among the workers
    assert wait_for_all_workers(60_000)


def test_each_field_gets_the_editor_its_type_calls_for(qtbot, make_form, workspace):
    form = make_form(workspace)
    specs, types = TrainingConfig.specs(), TrainingConfig.field_types()
    assert set(form.values()) == set(specs)
    for key, spec in specs.items():
        widget = form.editor(key)
        assert widget.toolTip() == spec.help, key
        expected = (QCheckBox if types[key] == "bool" else QComboBox if spec.choices else
                    QSpinBox if types[key] == "int" else NumberSpinBox if types[key] == "float" else QLineEdit)
        assert isinstance(widget, expected), key
    loss = form.editor("loss_type")
    assert [loss.itemText(i) for i in range(loss.count())][:2] == ["Sigmoid (DPO)", "IPO"]
    form.set_value("loss_type", "ipo")
    assert loss.currentText() == "IPO" and form.values()["loss_type"] == "ipo"
    assert form.editor("max_length").suffix() == " tokens"
    assert form.editor("max_steps").specialValueText() == "0 · use epochs"
    assert form.editor("learning_rate").text() == "5e-5"
    assert TrainingConfig.from_dict(form.values()).to_dict() == form.config().to_dict()


def test_every_problem_is_shown_next_to_its_field_and_unfolds_advanced_ones(qtbot, make_form, workspace):
    fill_workspace(workspace, 8)
    form = make_form(workspace)
    seen = []
    form.problems_changed.connect(seen.append)
    assert not form.editor("weight_decay").isVisible()        # advanced: folded away
    form.set_values({"beta": "-0.5", "learning_rate": "fast", "batch_size": 0, "weight_decay": -1})
    form.refresh()
    assert form.values()["learning_rate"] == "fast"            # kept as given, not silently replaced
    assert "must be a positive number" in form.error_text("beta")
    assert "expected a number" in form.error_text("learning_rate")
    assert "at least 1" in form.error_text("batch_size")
    assert "zero or positive" in form.error_text("weight_decay")
    for key in ("beta", "learning_rate", "batch_size", "weight_decay"):
        assert form.error_label(key).isVisible(), key
    assert form.editor("weight_decay").isVisible()            # its problem is never folded away
    assert form.config() is None and not form.is_valid() and "beta" in seen[-1]
    form.editor("learning_rate").setValue(1e-4)                # the user's edit replaces the kept value
    form.set_values({"beta": 0.2, "batch_size": 4, "weight_decay": 0})
    form.refresh()
    assert form.values()["learning_rate"] == pytest.approx(1e-4)
    assert form.is_valid() and not form.error_label("beta").isVisible()


def test_the_effective_epochs_are_shown_when_max_steps_wins(qtbot, make_form, workspace):
    fill_workspace(workspace, 24)
    form = make_form(workspace)
    form.set_values({"max_steps": 200, "batch_size": 8, "gradient_accumulation_steps": 1})
    form.refresh()
    qtbot.waitUntil(lambda: form.data_preview is not None, timeout=30_000)
    caption = form.fields["num_epochs"].caption
    train = form.data_preview.train_pairs                      # 3 steps an epoch at 8 pairs
    assert caption.isVisible() and caption.text() == f"≈ {200 / -(-train // 8):.1f} epochs at 200 steps (max steps wins)"
    form.set_values({"max_steps": 0, "num_epochs": 2})
    form.refresh()
    assert caption.text().startswith(f"= {2 * -(-train // 8)} optimizer steps")
    form.set_value("gradient_accumulation_steps", 4)
    form.refresh()
    assert form.fields["gradient_accumulation_steps"].caption.text() == "Effective batch: 32 pairs per step"


def test_the_base_model_is_shown_whole_with_a_friendly_name(qtbot, make_form, workspace):
    form = make_form(workspace)
    form.set_value("base_model", DEMO_MODEL)
    form.refresh()
    field = form.editor("base_model")
    assert field.text() == DEMO_MODEL
    assert field.width() > field.fontMetrics().horizontalAdvance(DEMO_MODEL) + 12   # not clipped
    assert form.fields["base_model"].caption.text() == "Demo model (bundled with the app)"


def test_workspace_settings_arrive_off_the_ui_thread_and_never_overwrite_an_edit(qtbot, make_form, workspace,
                                                                                tmp_path):
    model = make_tiny_model_dir(tmp_path / "tiny")
    update_settings(workspace, base_model=str(model), training_config={"beta": 0.4},
                    training_presets={"careful": {"beta": 0.05}})
    ui_thread = threading.current_thread()
    on_ui = []
    listener = lambda *args: on_ui.append(threading.current_thread() is ui_thread)  # noqa: E731
    event.listen(workspace.engine, "before_cursor_execute", listener)
    try:
        form = make_form(workspace)
        qtbot.waitUntil(lambda: form.values()["beta"] == 0.4, timeout=10_000)
        assert form.values()["base_model"] == str(model)        # the workspace's model wins (as in the CLI)
        assert form.preset_combo.findText("careful") >= 0
        form.refresh()
        qtbot.waitUntil(lambda: form.data_preview is not None, timeout=30_000)
        late = make_form(workspace)
        late.set_value("beta", 0.9)                            # typed before the settings came back
        qtbot.wait(300)
        assert late.values()["beta"] == 0.9
    finally:
        event.remove(workspace.engine, "before_cursor_execute", listener)
    assert on_ui and not any(on_ui)                            # statements ran, none on the UI thread


def test_presets_round_trip_through_the_database_thread(qtbot, make_form, workspace, db):
    form = make_form(workspace)
    form.set_values({"beta": 0.3, "loss_type": "ipo", "sft_weight": 1.0})
    assert form.save_preset("ipo with sft") and form.preset_combo.currentText() == "ipo with sft"
    db.wait_idle()
    assert "ipo with sft" in read_settings(workspace).training_presets
    form.set_values({"beta": 0.05, "loss_type": "sigmoid"})
    form.load_preset("ipo with sft")
    qtbot.waitUntil(lambda: form.values()["loss_type"] == "ipo", timeout=10_000)
    assert form.values()["beta"] == 0.3
    form.delete_preset("ipo with sft")
    db.wait_idle()
    assert read_settings(workspace).training_presets == {} and form.preset_combo.count() == 0


def test_number_boxes_read_and_write_short_and_scientific_numbers(qtbot):
    spec = TrainingConfig.specs()["learning_rate"]
    box = NumberSpinBox(spec)
    box.setRange(1e-10, 1)
    qtbot.addWidget(box)
    box.setValue(5e-5)
    assert box.text() == "5e-5"
    box.stepBy(1)
    assert box.value() == pytest.approx(1e-4)
    box.stepBy(-2)
    assert box.value() == pytest.approx(2e-5)
    assert box.valueFromText("0.0003") == pytest.approx(3e-4)
    assert (format_number(0.1, 4), format_number(16.0, 2), format_number(0.002, 10, True)) == ("0.1", "16", "0.002")


def test_the_first_build_imports_no_torch_in_the_window_process():
    # The device's memory (torch) and the too-long count (transformers) come from the form's helper
    # process (core.operations.child_call.HelperProcess): the window imports neither, on any thread.
    code = """
import os, sys, threading, tempfile, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
first = {}
class Watch:
    def find_spec(self, name, path=None, target=None):
        if name in ("torch", "transformers", "peft") and name not in first:
            first[name] = threading.current_thread() is threading.main_thread()
        return None
sys.meta_path.insert(0, Watch())
from PySide6.QtWidgets import QApplication
app = QApplication([])
from storage.workspace import Workspace
from gui.common.db_worker import DatabaseWorker
from gui.common.workers import wait_for_all_workers
from gui.train.training_form import TrainingForm
ws = Workspace.open(os.path.join(tempfile.mkdtemp(), "ws"))
db = DatabaseWorker()
form = TrainingForm(ws, db)
deadline = time.monotonic() + 90
while form.memory_fits is None and time.monotonic() < deadline:
    app.processEvents(); time.sleep(0.01)
form.stop_timers()
db.close()
assert wait_for_all_workers(60_000)
print("memory", form.memory_fits, "torch on ui", first.get("torch"), "transformers on ui", first.get("transformers"))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "memory True torch on ui None transformers on ui None" in done.stdout, done.stdout + done.stderr[-2000:]
