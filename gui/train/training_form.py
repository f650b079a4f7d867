"""The set-up form of a training run, generated from ``TrainingConfig``'s field metadata: one
card per group (Model, LoRA adapter, Loss, Optimisation, Data, Run), each setting with the
editor its type calls for, its help as tooltip, a caption saying what the value means, and its
problem right under it. Settings marked advanced fold away under "More settings".

The form edits values only; the rules live below ``gui/``: ``TrainingConfig.problems`` and
``core.operations.launch_checks`` (checks, the default config, the run's length),
``core.engine.memory_estimate`` and ``core.operations.presets``. Database reads and writes go
through the database worker; the data preview, the tokenizer and the device's memory (torch)
never run on the UI thread (``gui.train.form_checks``).

Public API (used by the train view): ``values()`` / ``full_values()``, ``config()``,
``set_value(key, v)``, ``set_values(dict)``, ``set_config(config)``, ``show_problems(dict)``,
``problems`` (setting -> message), ``is_valid()``, the signals ``changed`` and
``problems_changed(dict)``, ``refresh()``, ``set_device_memory(memory)``,
``set_enabled_for_run(bool)``, ``on_changes(changes)`` and ``stop_timers()``. With
``gradually=True`` the cards are built one per turn of the event loop (``built`` fires after the
last); reading ``fields`` builds the rest at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (QGridLayout, QInputDialog, QLabel, QMessageBox, QToolButton,
                               QVBoxLayout, QWidget)

from core.engine.config_fields import GROUPS
from core.engine.memory_estimate import DeviceMemory
from core.engine.model_location import describe_model, inspect_model
from core.engine.training_config import TrainingConfig
from core.operations import presets
from core.operations.launch_checks import DATA_KEY, config_problems, default_config, run_length
from core.operations.wording import plural
from gui.common.staged_build import StagedBuild
from gui.train.device_picker import DevicePicker
from gui.train.form_checks import FormChecks, PreviewResult
from gui.train.form_fields import FieldEditor
from gui.train.form_parts import ModelPicker, PresetsRow, SettingsCard, SummaryCard
from storage.settings import WorkspaceSettings, read_settings
from storage.workspace import Workspace

SPECS = TrainingConfig.specs()
TYPES = TrainingConfig.field_types()
FIELD_KEYS = list(SPECS)
WIDE_FIELDS = ("base_model",)      # label above, the whole width for the value


class TrainingForm(QWidget):
    """Edits one ``TrainingConfig``. ``changed`` fires on every edit."""

    changed = Signal()
    built = Signal()                     # every card is there (at once, or one per turn: ``gradually``)
    problems_changed = Signal(dict)      # setting (or DATA_KEY) -> message; empty when all is good

    def __init__(self, workspace: Workspace, db=None, parent: QWidget | None = None, gradually: bool = False):
        super().__init__(parent)
        self.setObjectName("trainingForm")
        self.workspace = workspace
        self.db = db
        self.checks = FormChecks(workspace, db, self)
        self.checks.preview_ready.connect(self._on_preview)
        self.checks.memory_ready.connect(lambda _memory: self._update_memory())
        self._fields: dict[str, FieldEditor] = {}
        self._running = False
        self._more: dict[str, tuple[QToolButton, list[FieldEditor]]] = {}
        self._grids: list[QGridLayout] = []
        self._preset_values: dict[str, dict] = {}
        self._edited = False
        self.problems: dict[str, str] = {}
        self.data_preview = None
        self.memory_fits: bool | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 4, 0)
        layout.setSpacing(10)
        self.presets_row = PresetsRow(self._load_selected_preset, self._ask_save_preset, self._delete_selected_preset)
        self.preset_combo = self.presets_row.combo
        self.summary = SummaryCard()
        self.preview_label, self.memory_label, self.data_error = (self.summary.preview, self.summary.memory,
                                                                  self.summary.problem)
        layout.addLayout(self.presets_row)
        layout.addWidget(self.summary)
        layout.addStretch(1)

        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(250)
        self._refresh_timer.timeout.connect(self.refresh)
        self.changed.connect(self._refresh_timer.start)
        # A card's common settings, then (hidden until "More settings") its less common ones.
        self._waiting: list[tuple[str, bool]] = [(group, advanced) for group in GROUPS for advanced in (False, True)
                                                 if not advanced or any(spec.advanced and spec.group == group
                                                                        for spec in SPECS.values())]
        self._cards: dict[str, SettingsCard] = {}
        self._building = StagedBuild("form-build", self, self._build_step, lambda: bool(self._waiting))
        if not gradually:
            self.build_all()

    # -- building ---------------------------------------------------------------------------
    @property
    def fields(self) -> dict[str, FieldEditor]:
        """Every setting's editor (building the cards not built yet)."""
        self.build_all()
        return self._fields

    @property
    def is_built(self) -> bool:
        return not self._waiting

    def start_building(self, delay_ms: int | None = None) -> None:
        """Build the cards a piece per turn, the first ``delay_ms`` from now (``gradually=True``)."""
        self._building.start(delay_ms)

    def build_all(self) -> None:
        self._building.finish()

    def _build_step(self) -> None:
        group, advanced = self._waiting.pop(0)
        if advanced:
            self._add_advanced(group)
        else:
            layout = self.layout()
            layout.insertWidget(layout.count() - 1, self._build_card(group))   # above the stretch
        self._align_label_columns()
        if not self._waiting:
            self._on_built()

    def _on_built(self) -> None:
        self.set_config(default_config(WorkspaceSettings()))   # built-in defaults until the workspace's arrive
        self._edited = False
        self.checks.run_db(read_settings, self.workspace, on_done=self._on_settings,
                           on_failed=lambda message: self.summary.set_problem(f"Cannot read the settings: {message}"))
        self.refresh()
        self.built.emit()

    def _build_card(self, group: str) -> SettingsCard:
        card = SettingsCard(group, [(key, spec, key in WIDE_FIELDS) for key, spec in SPECS.items() if spec.group == group])
        self._grids.append(card.grid)
        self._cards[group] = card
        card.add_fields(self._build_field, advanced=False)
        return card

    def _add_advanced(self, group: str) -> None:
        """The less common settings of ``group``, folded, and the button that unfolds them."""
        card = self._cards[group]
        advanced = card.add_fields(self._build_field, advanced=True)
        card.add_more_button(len(advanced)).toggled.connect(lambda shown: self._show_more(group, shown))
        self._more[group] = (card.more_button, advanced)
        self._show_more(group, False)

    def _align_label_columns(self) -> None:
        """One label width for every card, so the values line up down the whole form."""
        labels = [label for label in self.findChildren(QLabel, "fieldLabel") if label.text()]
        width = max(label.sizeHint().width() for label in labels)
        for grid in self._grids:
            grid.setColumnMinimumWidth(0, width)

    def _build_field(self, key: str) -> FieldEditor:
        if key == "base_model":
            editor: FieldEditor = ModelPicker(key, SPECS[key], TYPES[key])
        elif key == "device":   # this computer's devices (asked on a worker); "all GPUs" sets processes
            editor = DevicePicker(key, SPECS[key], TYPES[key], self.checks.ask_helper)
            editor.processes_chosen.connect(lambda count: self.set_value("processes", count))
        else:
            editor = FieldEditor(key, SPECS[key], TYPES[key])
        editor.changed.connect(self._on_field_changed)
        editor.setEnabled(not self._running)
        self._fields[key] = editor
        return editor

    def _show_more(self, group: str, shown: bool) -> None:
        button, editors = self._more[group]
        for editor in editors:
            editor.set_folded(not shown)
        button.setText("▾ Fewer settings" if shown else f"▸ More settings ({len(editors)})")
        if button.isChecked() != shown:
            button.setChecked(shown)

    # -- values -----------------------------------------------------------------------------
    def editor(self, key: str) -> QWidget:
        """The input widget of one setting (a spin box, combo box, check box or line edit)."""
        return self.fields[key].widget

    def error_label(self, key: str) -> QLabel:
        return self.fields[key].error if key in self.fields else self.data_error

    def values(self) -> dict[str, Any]:
        """Every setting as the form holds it: typed values, or a kept value the editor cannot
        hold (the checks say what is wrong with it)."""
        return {key: editor.value() for key, editor in self.fields.items()}

    def full_values(self) -> dict[str, Any]:
        """The values a run would start from (the form shows every setting, so ``values()``)."""
        return self.values()

    def set_value(self, key: str, value: Any) -> None:
        self.fields[key].set_value(value)

    def set_values(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            self.set_value(key, value)

    def set_config(self, config: TrainingConfig) -> None:
        self.set_values(config.to_dict())

    def config(self) -> TrainingConfig | None:
        """The config the fields describe, or None when a field is bad (see ``problems``)."""
        config, _ = config_problems(self.values())
        return config

    def is_valid(self) -> bool:
        return not self.problems

    def _on_field_changed(self) -> None:
        self._edited = True
        self.changed.emit()

    def show_problems(self, problems: dict[str, str]) -> None:
        """Each message next to its field; problems that are no field (no pairs) in the summary."""
        self.problems = dict(problems)
        for key, editor in self.fields.items():
            editor.set_problem(problems.get(key, ""))
            group = SPECS[key].group
            if problems.get(key) and SPECS[key].advanced and group in self._more:
                self._show_more(group, True)    # a problem is never folded away
        other = [f"{key}: {message}" if key != DATA_KEY else message for key, message in problems.items()
                 if key not in self.fields]
        self.summary.set_problem("\n".join(other))
        self.problems_changed.emit(dict(self.problems))

    def error_text(self, key: str) -> str:
        if key in self.fields:
            return self.fields[key].problem()
        return self.problems.get(key, "")

    # -- the workspace's settings ----------------------------------------------------------------
    def _on_settings(self, settings: WorkspaceSettings) -> None:
        self._preset_values = dict(settings.training_presets)
        self.presets_row.set_names(sorted(self._preset_values))
        if not self._edited:    # the user's own edits are never overwritten by a late read
            self.set_config(default_config(settings))
            self._edited = False

    def on_changes(self, changes) -> None:
        """A write elsewhere changed the workspace's settings (presets, base model): re-read them."""
        if getattr(changes, "settings", False):
            self.checks.run_db(read_settings, self.workspace, on_done=self._on_settings, on_failed=lambda _m: None)

    # -- live checks ------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-check the fields, the model location, the memory estimate and the data preview."""
        values = self.values()
        config, problems = config_problems(values)
        model_check = inspect_model(str(values["base_model"]))
        if not model_check.ok:
            problems.setdefault("base_model", model_check.problem)
        if DATA_KEY in self.problems:    # stays until the data is counted again
            problems[DATA_KEY] = self.problems[DATA_KEY]
        self.show_problems(problems)
        self.fields["base_model"].set_caption(describe_model(str(values["base_model"])))
        self._update_captions(config)
        self._model_folder = model_check.folder if model_check.ok else None
        self._config = config
        self._update_memory()
        if config is not None:
            self.checks.request_preview(config, with_tokens=model_check.ok)

    def _update_captions(self, config: TrainingConfig | None) -> None:
        for key in ("num_epochs", "gradient_accumulation_steps"):
            self.fields[key].set_caption("")
        if config is None:
            return
        effective = config.batch_size * config.gradient_accumulation_steps
        if config.gradient_accumulation_steps > 1:
            self.fields["gradient_accumulation_steps"].set_caption(f"Effective batch: {plural(effective, 'pair')} per step")
        if self.data_preview is not None and self.data_preview.train_pairs:
            self.fields["num_epochs"].set_caption(run_length(config, self.data_preview.train_pairs).describe())

    def _update_memory(self) -> None:
        config, folder = getattr(self, "_config", None), getattr(self, "_model_folder", None)
        if config is None or folder is None:
            self.summary.set_memory("", None)
            self.memory_fits = None
            return
        memory = self.checks.device_memory(config.device)
        self.memory_fits = self.summary.show_estimate(config, Path(folder), memory)

    def set_device_memory(self, memory: DeviceMemory, device: str = "auto") -> None:
        """Accept the device's memory from elsewhere (e.g. a worker that imported torch anyway)."""
        self.checks.set_device_memory(device, memory)

    def _on_preview(self, result: PreviewResult) -> None:
        if result.data is None:
            self.summary.set_preview(f"Data: cannot build the training set: {result.error}")
            return
        self.data_preview = result.data
        self.summary.show_preview(result.data, result.tokens, result.token_error)
        self._update_memory()    # with the pairs' real lengths, now counted
        self._update_captions(self.config())
        problems = {key: message for key, message in self.problems.items() if key != DATA_KEY}
        if result.data.total == 0:
            problems[DATA_KEY] = "the workspace has no labelled pairs to train on"
        if problems != self.problems:
            self.show_problems(problems)

    # -- presets -----------------------------------------------------------------------------
    def save_preset(self, name: str) -> bool:
        """Save the current settings as ``name`` (written on the database thread)."""
        config = self.config()
        if config is None:
            QMessageBox.warning(self, "Cannot save the preset", "Fix the settings marked in red first.")
            return False
        name = name.strip()
        self._preset_values[name] = presets.preset_values(config)
        self.presets_row.set_names(sorted(self._preset_values), select=name)
        self.checks.run_db(presets.save_preset, self.workspace, name, config, on_done=lambda _r: None,
                           on_failed=lambda message: self._preset_failed("save", name, message))
        return True

    def load_preset(self, name: str) -> None:
        """Fill the form from preset ``name`` (its model and run name stay as they are)."""
        base = self.config() or TrainingConfig(base_model=str(self.values()["base_model"]))
        self.checks.run_db(presets.load_preset, self.workspace, name, base, on_done=self.set_config,
                           on_failed=lambda message: self._preset_failed("load", name, message))

    def delete_preset(self, name: str) -> None:
        self._preset_values.pop(name, None)
        self.presets_row.set_names(sorted(self._preset_values))
        self.checks.run_db(presets.delete_preset, self.workspace, name, on_done=lambda _r: None,
                           on_failed=lambda message: self._preset_failed("delete", name, message))

    def _preset_failed(self, action: str, name: str, message: str) -> None:
        self.summary.set_problem(f"Could not {action} the preset {name!r}: {message}")

    def _ask_save_preset(self) -> None:
        name, ok = QInputDialog.getText(self, "Save preset", "Name of the preset:", text=self.preset_combo.currentText())
        if ok and name.strip():
            self.save_preset(name)

    def _load_selected_preset(self) -> None:
        if self.preset_combo.currentText():
            self.load_preset(self.preset_combo.currentText())

    def _delete_selected_preset(self) -> None:
        if self.preset_combo.currentText():
            self.delete_preset(self.preset_combo.currentText())

    def stop_timers(self) -> None:
        """No more live checks (the view is closing)."""
        self._refresh_timer.stop()
        self._building.stop()
        self.checks.close()

    def set_enabled_for_run(self, running: bool) -> None:
        """While a run trains, its settings cannot change (the presets row stays usable)."""
        self._running = running
        for editor in self._fields.values():
            editor.setEnabled(not running)
