"""The pieces of the set-up form around its fields: a card of settings, the base-model picker, the
presets row and the summary card (what data the run gets, whether it fits in memory)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from PySide6.QtWidgets import (QComboBox, QFileDialog, QFrame, QGridLayout, QHBoxLayout, QLabel, QMenu,
                               QToolButton, QVBoxLayout)

from core.engine.batch_tokens import tokens_key
from core.engine.bundled_models import DEMO_MODEL
from core.engine.memory_advice import assess_fit
from core.engine.memory_estimate import DeviceMemory, format_bytes, read_model_config
from core.engine.training_config import TrainingConfig
from core.operations.launch_checks import DataPreview, TokenPreview
from core.operations.wording import plural
from gui.train.form_fields import FieldEditor


class SettingsCard(QFrame):
    """A group's card: its title, then each setting's label, value and notes on rows of their own
    (``add_fields`` builds the common or the less common ones; the rows of the others stay free,
    so the two halves can be built in different turns and still keep the form's order)."""

    def __init__(self, group: str, settings: Sequence[tuple[str, Any, bool]]):   # (key, spec, wide)
        super().__init__()
        self.setObjectName("card")
        self.settings = list(settings)
        self.more_button: QToolButton | None = None
        self.grid = grid = QGridLayout(self)
        grid.setContentsMargins(14, 12, 14, 12)
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(8)
        grid.setColumnStretch(1, 1)
        title = QLabel(group.upper())
        title.setObjectName("cardTitle")
        grid.addWidget(title, 0, 0, 1, 2)

    def add_fields(self, build_field: Callable[[str], FieldEditor], advanced: bool) -> list[FieldEditor]:
        row, added = 1, []
        for key, spec, wide in self.settings:
            if spec.advanced == advanced:
                editor = build_field(key)
                label, _, notes = editor.parts()
                if wide:      # label above, the whole width for the value
                    self.grid.addWidget(label, row, 0, 1, 2)
                    self.grid.addWidget(editor, row + 1, 0, 1, 2)
                    self.grid.addWidget(notes, row + 2, 0, 1, 2)
                else:
                    self.grid.addWidget(label, row, 0)
                    self.grid.addWidget(editor, row, 1)
                    self.grid.addWidget(notes, row + 1, 1)
                added.append(editor)
            row += 3 if wide else 2
        return added

    def add_more_button(self, count: int) -> QToolButton:
        """The toggle under every setting that shows the ``count`` less common ones."""
        self.more_button = more = QToolButton()
        more.setObjectName("moreSettings")
        more.setCheckable(True)
        more.setToolTip(f"Show the {plural(count, 'less common setting')} of this group.")
        rows = sum(3 if wide else 2 for _, _, wide in self.settings)
        self.grid.addWidget(more, rows + 1, 0, 1, 2)
        return more


class ModelPicker(FieldEditor):
    """The base-model field: the name or folder, a Browse menu, and a caption that says in
    words which model that is ("Demo model (bundled with the app)")."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.widget.setMinimumWidth(160)
        self.widget.setPlaceholderText("a model folder, or a hub id in the local cache")
        browse = QToolButton()
        browse.setObjectName("browseModel")
        browse.setText("Browse…")
        browse.setToolTip("Pick a folder that holds a Hugging Face model and its tokenizer, or the demo model.")
        menu = QMenu(browse)
        menu.addAction("Choose a model folder…", self._pick_folder)
        menu.addAction("Use the demo model", lambda: self.set_value(DEMO_MODEL))
        browse.setMenu(menu)
        browse.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.browse = browse
        self.row.addWidget(browse)

    def _pick_folder(self) -> None:
        current = str(self.value())
        start = current if current and Path(current).expanduser().is_dir() else str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Choose a model folder", start)
        if folder:
            self.set_value(folder)


class PresetsRow(QHBoxLayout):
    def __init__(self, on_load: Callable[[], None], on_save: Callable[[], None], on_delete: Callable[[], None]):
        super().__init__()
        self.setSpacing(6)
        self.combo = QComboBox()
        self.combo.setToolTip("Presets: saved sets of settings, kept in this workspace.")
        self.combo.setPlaceholderText("No presets yet")
        self.combo.setMinimumWidth(80)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(6)
        self.addWidget(self.combo, 1)
        self.buttons: dict[str, QToolButton] = {}
        for text, slot, tip in (("Load", on_load, "Fill the form from the selected preset."),
                                ("Save…", on_save, "Save the current settings as a named preset."),
                                ("Delete", on_delete, "Forget the selected preset.")):
            button = QToolButton()     # as narrow as its text (a push button insists on ~80 px)
            button.setText(text)
            button.setObjectName("presetButton")
            button.setToolTip(tip)
            button.clicked.connect(slot)
            self.addWidget(button)
            self.buttons[text] = button
        self.set_names([])

    def set_names(self, names: list[str], select: str | None = None) -> None:
        current = select or self.combo.currentText()
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItems(names)
        if current in names:
            self.combo.setCurrentText(current)
        self.combo.blockSignals(False)
        for text in ("Load", "Delete"):
            self.buttons[text].setEnabled(bool(names))


class SummaryCard(QFrame):
    """What the run will train on and whether it fits in memory, above the settings."""

    def __init__(self):
        super().__init__()
        self.setObjectName("card")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.setSpacing(6)
        title = QLabel("THIS RUN")
        title.setObjectName("cardTitle")
        self.preview = self._line("trainPreview", "Counting pairs…")
        self.memory = self._line("trainMemory", "")
        self.problem = self._line("trainProblem", "")
        self.problem.setVisible(False)
        for widget in (title, self.preview, self.memory, self.problem):
            layout.addWidget(widget)
        self._model_configs: dict[str, tuple[float, dict]] = {}
        self._tokens: TokenPreview | None = None

    @staticmethod
    def _line(name: str, text: str) -> QLabel:
        label = QLabel(text)
        label.setObjectName(name)
        label.setWordWrap(True)
        return label

    def set_problem(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.setVisible(bool(text))

    def set_preview(self, text: str) -> None:
        self.preview.setText(text)

    def show_preview(self, data: DataPreview, tokens: TokenPreview | None, token_error: str | None) -> None:
        self._tokens = tokens       # their real lengths size the memory estimate (show_estimate)
        text = f"Data: {data.describe()}."
        if tokens is not None:
            dropped = sum(tokens.dropped.values())
            about = "about " if tokens.sample else ""
            if tokens.truncated or dropped:
                text += (f" {about}{tokens.truncated} longer than max length will be cut"
                         + (f", {about}{dropped} dropped (nothing of the answer left)" if dropped else "") + ".")
            else:
                text += f" All fit in max length (longest {plural(tokens.longest, 'token')})."
            if tokens.sample:
                text += f" (Counted on {tokens.sample:,} of the {tokens.of:,} pairs.)"
        elif token_error:
            text += f" (Could not count too-long pairs: {token_error})"
        self.preview.setText(text)

    def set_memory(self, text: str, fits: bool | None, tooltip: str = "") -> None:
        self.memory.setText(text)
        self.memory.setVisible(bool(text))
        self.memory.setProperty("verdict", "" if fits is None else "fits" if fits else "too_big")
        self.memory.style().unpolish(self.memory)
        self.memory.style().polish(self.memory)
        self.memory.setToolTip(tooltip)

    def show_estimate(self, config: TrainingConfig, folder: Path, memory: DeviceMemory | None) -> bool | None:
        """The memory line for ``config``; returns whether it fits (None: not known yet)."""
        if memory is None:
            self.set_memory("Memory: checking the device…", None)
            return None
        try:
            tokens = self._tokens
            real = tokens.step_tokens if tokens is not None and tokens.tokens_key == tokens_key(config) else None
            estimate, verdict = assess_fit(config, self._model_config(folder), memory, real)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.set_memory(f"Memory: cannot estimate ({exc})", None)
            return None
        trainable = f"{estimate.trainable_parameters:,} of {estimate.parameters:,} parameters trained"
        tooltip = (f"weights {format_bytes(estimate.weights)}, adapter + optimizer {format_bytes(estimate.adapter)}, "
                   f"activations {format_bytes(estimate.activations)}, LM head {format_bytes(estimate.logits)}, "
                   f"in flight {format_bytes(estimate.workspace)}, reference pass {format_bytes(estimate.reference)}, "
                   f"runtime {format_bytes(estimate.overhead)}")
        if verdict.fits:
            self.set_memory(f"Memory: {verdict.message} ({trainable}).", True, tooltip)
        else:
            # Each change alone makes it fit (core.engine.memory_advice re-ran the estimate with it).
            changes = "".join(f"\n  • {change}" for change in verdict.advice)
            header = "To fit, change one:" if len(verdict.advice) > 1 else "To fit:"
            self.set_memory(f"⚠ Will not fit: {verdict.shortfall}. {header}{changes}"
                            if changes else f"⚠ Will not fit: {verdict.message}.", False, tooltip)
        return verdict.fits

    def _model_config(self, folder: Path) -> dict:
        key = str(folder)
        stamp = (folder / "config.json").stat().st_mtime
        cached = self._model_configs.get(key)
        if cached is None or cached[0] != stamp:
            self._model_configs[key] = (stamp, read_model_config(folder))
        return self._model_configs[key][1]
