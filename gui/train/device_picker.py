"""The Train form's device setting: the devices this computer has, each GPU by name.

The static choices of the ``device`` field are shown at once; the form's helper process asks torch
for the real ones (``core.engine.devices.available_devices``: never in the window's process) and the list is
replaced when they arrive — automatic, ``cuda:0``, ``cuda:1``… with their names and memory,
"all GPUs" when there are two or more, and the CPU. Picking "all GPUs" sets ``processes`` to
the number of GPUs (``processes_chosen``); picking any other entry after it sets it back to 1.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from PySide6.QtCore import Qt, Signal

from core.engine.config_fields import FieldSpec
from core.engine.devices import DeviceOption
from gui.train.form_fields import FieldEditor

_PROCESSES_ROLE = Qt.ItemDataRole.UserRole + 1


class DevicePicker(FieldEditor):
    """``FieldEditor`` of ``device`` whose entries come from ``available_devices`` (in a helper
    process, through ``ask(module, function, on_done=, on_failed=)``)."""

    processes_chosen = Signal(int)

    def __init__(self, key: str, spec: FieldSpec, type_name: str, ask: Callable[..., Any] | None = None,
                 parent=None):
        super().__init__(key, spec, type_name, parent)
        self.options: list[DeviceOption] = []
        self._all_picked = False
        self.widget.activated.connect(self._picked)     # the user's pick only, not set_value's
        if ask is not None:
            # Without the list (torch failed to answer) the static choices stay: nothing to say.
            ask("core.engine.devices", "available_devices", on_done=self.set_options, on_failed=lambda _message: None)

    def set_options(self, options: Sequence[DeviceOption]) -> None:
        """Replace the entries, keeping the value shown."""
        combo = self.widget
        current = self.value()
        self.options = list(options)
        combo.blockSignals(True)
        try:
            combo.clear()
            for option in self.options:
                combo.addItem(option.label, option.value)
                combo.setItemData(combo.count() - 1, option.processes, _PROCESSES_ROLE)
                combo.setItemData(combo.count() - 1, option.label, Qt.ItemDataRole.ToolTipRole)
            self.blockSignals(True)       # the same value: no edit (a late settings read still applies)
            self.set_value(current)
        finally:
            self.blockSignals(False)
            combo.blockSignals(False)

    def _picked(self, index: int) -> None:
        processes = int(self.widget.itemData(index, _PROCESSES_ROLE) or 1)
        if processes > 1 or self._all_picked:   # onto "all GPUs", or away from it
            self.processes_chosen.emit(processes)
        self._all_picked = processes > 1
