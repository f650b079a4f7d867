"""The set-up form of a training run: every knob of a ``TrainingConfig`` with a one-line
tooltip, the reason next to any bad value, what data will be used and whether it fits in memory.

The form edits values only; the rules live in ``core.operations.launch_checks`` (validation),
``core.engine.memory_estimate`` and ``core.operations.presets``. The training-set preview (and the too-long count,
which needs the tokenizer) runs in a worker so typing never waits for the database.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout,
                               QInputDialog, QLabel, QLineEdit, QMessageBox, QPushButton, QVBoxLayout, QWidget)

from core.operations import presets
from core.engine.bundled_models import DEMO_MODEL
from core.operations.launch_checks import DATA_KEY, config_problems, inspect_model, preview_data, token_preview
from core.engine.memory_estimate import device_memory, estimate_for_config, format_bytes, judge_fit, read_model_config
from core.engine.training_config import (DEVICES, DTYPES, LOSS_TYPES, SCHEDULES, SELECTION_POLICIES, TrainingConfig)
from gui.common.theme import colors
from gui.common.workers import Worker, start_worker
from storage.training_set import build_training_set
from storage.workspace import Workspace

DEMO_MODEL_DIR = Path(__file__).resolve().parents[2] / "resources" / "demo_model"


@dataclass(frozen=True)
class FieldSpec:
    key: str
    label: str
    tooltip: str
    choices: tuple[str, ...] = ()    # a combo box
    is_bool: bool = False            # a check box


GROUPS: list[tuple[str, list[FieldSpec]]] = [
    ("Model", [
        FieldSpec("base_model", "Base model", "The model to fine-tune: a local Hugging Face folder or a hub id "
                  "already in the local cache (the demo model by default)."),
        FieldSpec("device", "Device", "Where to train: auto picks a CUDA GPU, then Apple MPS, then the CPU.", DEVICES),
        FieldSpec("dtype", "Precision", "Number format of the frozen weights: auto = bfloat16 on a GPU that has it, "
                  "float32 elsewhere.", DTYPES),
        FieldSpec("gradient_checkpointing", "Gradient checkpointing", "Recompute activations during the backward "
                  "pass: much less memory for about a third more time.", is_bool=True),
    ]),
    ("LoRA adapter", [
        FieldSpec("lora_r", "Rank r", "Size of the low-rank update: higher learns more but trains more weights."),
        FieldSpec("lora_alpha", "Alpha", "Scale of the LoRA update (the update is multiplied by alpha / r)."),
        FieldSpec("lora_dropout", "Dropout", "Dropout on the adapter's input during training (0 = none)."),
        FieldSpec("lora_target_modules", "Target modules", "Which linear layers get an adapter: all-linear, "
                  "or names like q_proj,v_proj."),
    ]),
    ("Objective", [
        FieldSpec("loss_type", "Loss", "sigmoid is the DPO paper's loss; ipo, hinge and robust are variants "
                  "that behave better on noisy or saturated pairs.", LOSS_TYPES),
        FieldSpec("beta", "β (beta)", "How far the tuned model may drift from the original: higher keeps it "
                  "closer, lower lets the preference win more."),
        FieldSpec("sft_weight", "SFT weight", "Also train on the chosen answers as plain examples (0 = off): "
                  "keeps their likelihood from falling."),
        FieldSpec("label_smoothing", "Label smoothing", "Assume this share of labels is wrong (cDPO; sigmoid and "
                  "robust losses only)."),
    ]),
    ("Optimisation", [
        FieldSpec("learning_rate", "Learning rate", "Step size of the optimizer: LoRA usually wants 1e-5 to 5e-4."),
        FieldSpec("num_epochs", "Epochs", "How many passes over the training pairs (ignored when max steps is set)."),
        FieldSpec("max_steps", "Max steps", "Stop after this many optimizer steps (0 = use epochs)."),
        FieldSpec("batch_size", "Batch size", "Pairs per forward pass: higher is faster per pair and needs "
                  "more memory."),
        FieldSpec("gradient_accumulation_steps", "Accumulation", "Batches added up before each optimizer step "
                  "(effective batch = batch size × this)."),
        FieldSpec("lr_schedule", "LR schedule", "How the learning rate changes over the run.", SCHEDULES),
        FieldSpec("warmup_ratio", "Warm-up", "Share of the steps over which the learning rate ramps up from 0."),
    ]),
    ("Data and run", [
        FieldSpec("selection_policy", "Verdict merge", "How several annotators' verdicts on a pair become one "
                  "training example.", SELECTION_POLICIES),
        FieldSpec("max_length", "Max length", "Tokens per prompt + answer; longer pairs are cut, and dropped "
                  "if no answer token is left."),
        FieldSpec("eval_split", "Eval split", "Held-out pairs to measure on: 'workspace' (each pair's stored "
                  "split), 'none', or a fraction like 0.1."),
        FieldSpec("eval_interval", "Eval every", "Optimizer steps between evaluations on the held-out pairs."),
        FieldSpec("checkpoint_interval", "Checkpoint every", "Optimizer steps between saved checkpoints "
                  "(a stopped run resumes from the newest)."),
        FieldSpec("seed", "Seed", "Random seed: the same seed and data give the same run."),
        FieldSpec("run_name", "Run name", "A name for the runs list (the run id when empty)."),
    ]),
]
FIELD_KEYS = [spec.key for _, specs in GROUPS for spec in specs]


def default_config(workspace: Workspace) -> TrainingConfig:
    """The workspace's saved training settings (a demo workspace has some), else the built-in
    defaults, with the workspace's base model or the bundled demo model."""
    config = TrainingConfig()
    saved = workspace.get_setting("training_config")
    if isinstance(saved, dict):
        try:
            config = TrainingConfig.from_dict(saved, source="workspace setting 'training_config'")
        except ValueError:
            config = TrainingConfig()
    if not config.base_model:
        config.base_model = str(workspace.get_setting("base_model") or "")
    if not config.base_model and (DEMO_MODEL_DIR / "config.json").is_file():
        config.base_model = DEMO_MODEL
    return config


def _preview_in_worker(workspace: Workspace, config: TrainingConfig, with_tokens: bool, report) -> dict:
    """Data preview (and, when the model is loadable, the too-long count) off the UI thread."""
    training_set = build_training_set(workspace, config.selection_policy)
    result: dict[str, Any] = {"data": preview_data(workspace, config, training_set), "tokens": None}
    if with_tokens and training_set.examples:
        try:
            result["tokens"] = token_preview(config, training_set.examples)
        except Exception as exc:  # noqa: BLE001 - the preview says why it could not count
            result["token_error"] = str(exc)
    return result


class TrainingForm(QWidget):
    """Edits one ``TrainingConfig``. ``changed`` fires on every edit."""

    changed = Signal()

    def __init__(self, workspace: Workspace, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = workspace
        self._editors: dict[str, QWidget] = {}
        self._errors: dict[str, QLabel] = {}
        self._model_config_cache: dict[str, tuple[float, dict | None, str | None]] = {}
        self._device_cache: tuple[float, str, Any] | None = None
        self._preview_worker: Worker | None = None
        self._preview_dirty = False
        self.problems: dict[str, str] = {}
        self._hidden_values: dict[str, Any] = {}
        self.data_preview = None
        self.memory_fits: bool | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._build_presets_row())
        for title, specs in GROUPS:
            box = QGroupBox(title)
            form = QFormLayout(box)
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            for spec in specs:
                label = QLabel(spec.label)
                label.setToolTip(spec.tooltip)
                form.addRow(label, self._build_editor(spec))
            layout.addWidget(box)
        self.preview_label = QLabel("Counting pairs…")
        self.preview_label.setWordWrap(True)
        self.preview_label.setObjectName("trainPreview")
        self.memory_label = QLabel("")
        self.memory_label.setWordWrap(True)
        self.data_error = QLabel("")
        self.data_error.setWordWrap(True)
        self.data_error.setVisible(False)
        self.data_error.setStyleSheet(f"color: {colors()['bad']};")
        for widget in (self.preview_label, self.memory_label, self.data_error):
            layout.addWidget(widget)
        layout.addStretch(1)

        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(250)
        self._refresh_timer.timeout.connect(self.refresh)
        self.changed.connect(self._refresh_timer.start)
        self.set_config(default_config(workspace))
        self.refresh()

    # -- building ---------------------------------------------------------------------------
    def _build_presets_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(4)
        row.addWidget(QLabel("Preset"))
        self.preset_combo = QComboBox()
        self.preset_combo.setToolTip("Saved sets of settings (kept in this workspace).")
        self.preset_combo.setMinimumWidth(80)
        row.addWidget(self.preset_combo, 1)
        for text, slot, tip in (("Load", self._load_selected_preset, "Fill the form from the selected preset."),
                                ("Save…", self._ask_save_preset, "Save the current settings as a named preset."),
                                ("Delete", self._delete_selected_preset, "Forget the selected preset.")):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            button.setStyleSheet("padding: 2px 6px;")
            row.addWidget(button)
        self._reload_presets()
        return row

    def _build_editor(self, spec: FieldSpec) -> QWidget:
        if spec.is_bool:
            editor: QWidget = QCheckBox()
            editor.toggled.connect(self.changed)
        elif spec.choices:
            editor = QComboBox()
            editor.addItems(list(spec.choices))
            editor.currentIndexChanged.connect(self.changed)
        else:
            editor = QLineEdit()
            editor.textChanged.connect(self.changed)
        editor.setToolTip(spec.tooltip)
        editor.setObjectName(f"field_{spec.key}")
        self._editors[spec.key] = editor
        error = QLabel("")
        error.setWordWrap(True)
        error.setVisible(False)
        error.setStyleSheet(f"color: {colors()['bad']}; font-size: 11px;")
        self._errors[spec.key] = error
        cell = QWidget()
        column = QVBoxLayout(cell)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(1)
        if spec.key == "base_model":
            row = QHBoxLayout()
            row.addWidget(editor, 1)
            browse = QPushButton("Folder…")
            browse.setToolTip("Pick a folder that holds a Hugging Face model and its tokenizer.")
            browse.clicked.connect(self._pick_model_folder)
            row.addWidget(browse)
            column.addLayout(row)
        else:
            column.addWidget(editor)
        column.addWidget(error)
        return cell

    # -- values -----------------------------------------------------------------------------
    def editor(self, key: str) -> QWidget:
        return self._editors[key]

    def values(self) -> dict[str, Any]:
        """Field values as typed (text for numbers: validation says what is wrong with them)."""
        out: dict[str, Any] = {}
        for key, editor in self._editors.items():
            if isinstance(editor, QCheckBox):
                out[key] = editor.isChecked()
            elif isinstance(editor, QComboBox):
                out[key] = editor.currentText()
            else:
                out[key] = editor.text().strip()
        return out

    def set_value(self, key: str, value: Any) -> None:
        editor = self._editors[key]
        if isinstance(editor, QCheckBox):
            editor.setChecked(bool(value))
        elif isinstance(editor, QComboBox):
            index = editor.findText(str(value))
            editor.setCurrentIndex(max(0, index))
        else:
            editor.setText(_format_value(value))
            editor.setCursorPosition(0)   # a long path shows its start, not its tail

    def set_config(self, config: TrainingConfig) -> None:
        values = config.to_dict()
        # Settings without a field (weight decay, truncation mode...) are kept as loaded.
        self._hidden_values = {k: v for k, v in values.items() if k not in self._editors}
        for key, value in values.items():
            if key in self._editors:
                self.set_value(key, value)

    def config(self) -> TrainingConfig | None:
        """The config the fields describe, or None when a field is bad (see ``problems``)."""
        config, _ = config_problems(self._full_values())
        return config

    def _full_values(self) -> dict[str, Any]:
        """Form values over the settings the form does not show (kept from the loaded config)."""
        hidden = dict(self._hidden_values)
        hidden.update(self.values())
        return hidden

    def show_problems(self, problems: dict[str, str]) -> None:
        """Each message next to its field; problems that are no field (no pairs) below the form."""
        self.problems = dict(problems)
        for key, label in self._errors.items():
            message = problems.get(key, "")
            label.setText(message)
            label.setVisible(bool(message))
            self._editors[key].setProperty("invalid", bool(message))
            self._editors[key].setStyleSheet(f"border: 1px solid {colors()['bad']};" if message else "")
        other = [f"{key}: {msg}" if key != DATA_KEY else msg for key, msg in problems.items()
                 if key not in self._errors]
        self.data_error.setText("\n".join(other))
        self.data_error.setVisible(bool(other))

    def error_text(self, key: str) -> str:
        if key in self._errors:
            return self._errors[key].text()
        return self.problems.get(key, "")

    # -- live checks ------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-check the fields, the model location, the memory estimate and the data preview."""
        config, problems = config_problems(self._full_values())
        model_check = inspect_model(self.values()["base_model"])
        if not model_check.ok:
            problems.setdefault("base_model", model_check.problem)
        self.show_problems(problems)
        if config is None:
            self.memory_label.setText("")
            self.memory_fits = None
            return
        self._update_memory(config, model_check.folder if model_check.ok else None)
        self._start_preview(config, with_tokens=model_check.ok)

    def _update_memory(self, config: TrainingConfig, folder: Path | None) -> None:
        if folder is None:
            self.memory_label.setText("")
            self.memory_fits = None
            return
        try:
            model_config = self._model_config(folder)
            memory = self._device_memory(config.device)
            estimate = estimate_for_config(config, model_config, memory.device)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.memory_label.setText(f"Memory: cannot estimate ({exc})")
            self.memory_fits = None
            return
        verdict = judge_fit(estimate, memory)
        self.memory_fits = verdict.fits
        trainable = f"{estimate.trainable_parameters:,} of {estimate.parameters:,} parameters trained"
        if verdict.fits:
            self.memory_label.setText(f"Memory: {verdict.message} ({trainable}).")
            self.memory_label.setStyleSheet(f"color: {colors()['muted']};")
        else:
            self.memory_label.setText(f"⚠ Will not fit: {verdict.message}.")
            self.memory_label.setStyleSheet(f"color: {colors()['bad']}; font-weight: 600;")
        self.memory_label.setToolTip(
            f"weights {format_bytes(estimate.weights)}, adapter + optimizer {format_bytes(estimate.adapter)}, "
            f"activations {format_bytes(estimate.activations)}, logits {format_bytes(estimate.logits)}, "
            f"runtime {format_bytes(estimate.overhead)}")

    def _model_config(self, folder: Path) -> dict:
        key = str(folder)
        stamp = (folder / "config.json").stat().st_mtime
        cached = self._model_config_cache.get(key)
        if cached is None or cached[0] != stamp:
            self._model_config_cache[key] = (stamp, read_model_config(folder), None)
        return self._model_config_cache[key][1]

    def _device_memory(self, device: str):
        # Free memory changes slowly; asking on every keystroke would be wasted work.
        now = time.monotonic()
        if self._device_cache is None or self._device_cache[1] != device or now - self._device_cache[0] > 5:
            self._device_cache = (now, device, device_memory(device))
        return self._device_cache[2]

    def _start_preview(self, config: TrainingConfig, with_tokens: bool) -> None:
        if self._preview_worker is not None:
            self._preview_dirty = True   # one preview at a time; redo once it is back
            return
        self._preview_dirty = False
        worker = Worker(_preview_in_worker, self.workspace, dataclasses.replace(config), with_tokens)
        worker.finished.connect(self._on_preview)
        worker.failed.connect(self._on_preview_failed)
        self._preview_worker = worker
        start_worker(worker)

    def _on_preview(self, result: dict) -> None:
        self._preview_worker = None
        if self._preview_dirty:
            self.refresh()
            return
        data = result["data"]
        self.data_preview = data
        text = f"Data: {data.describe()}."
        tokens = result.get("tokens")
        if tokens is not None:
            dropped = sum(tokens.dropped.values())
            if tokens.truncated or dropped:
                text += (f" {tokens.truncated} longer than max length will be cut"
                         + (f", {dropped} dropped (nothing of the answer left)" if dropped else "") + ".")
            else:
                text += f" All fit in max length (longest {tokens.longest} tokens)."
        elif result.get("token_error"):
            text += f" (Could not count too-long pairs: {result['token_error']})"
        self.preview_label.setText(text)
        if data.total == 0:
            self.show_problems({**self.problems, DATA_KEY: "the workspace has no labelled pairs to train on"})

    def _on_preview_failed(self, message: str) -> None:
        self._preview_worker = None
        self.preview_label.setText(f"Data: cannot build the training set: {message}")
        if self._preview_dirty:
            self.refresh()

    # -- model folder and presets ------------------------------------------------------------
    def _pick_model_folder(self) -> None:
        start = self.values()["base_model"] or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Choose a model folder", start)
        if folder:
            self.set_value("base_model", folder)

    def _reload_presets(self, select: str | None = None) -> None:
        self.preset_combo.clear()
        self.preset_combo.addItems(presets.list_presets(self.workspace))
        if select:
            self.preset_combo.setCurrentText(select)

    def save_preset(self, name: str) -> bool:
        config = self.config()
        if config is None:
            QMessageBox.warning(self, "Cannot save the preset", "Fix the settings marked in red first.")
            return False
        presets.save_preset(self.workspace, name, config)
        self._reload_presets(select=name.strip())
        return True

    def load_preset(self, name: str) -> None:
        base = self.config() or TrainingConfig(base_model=self.values()["base_model"])
        self.set_config(presets.load_preset(self.workspace, name, base))

    def _ask_save_preset(self) -> None:
        name, ok = QInputDialog.getText(self, "Save preset", "Name of the preset:",
                                        text=self.preset_combo.currentText())
        if ok and name.strip():
            self.save_preset(name)

    def _load_selected_preset(self) -> None:
        if self.preset_combo.currentText():
            self.load_preset(self.preset_combo.currentText())

    def _delete_selected_preset(self) -> None:
        name = self.preset_combo.currentText()
        if name:
            presets.delete_preset(self.workspace, name)
            self._reload_presets()

    def set_enabled_for_run(self, running: bool) -> None:
        """While a run trains, its settings cannot change (the presets row stays usable)."""
        for editor in self._editors.values():
            editor.setEnabled(not running)


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") and "e" not in text else text
    return str(value)
