"""Regenerate ``device_picker.png``: the Train tab's device list on a computer with two GPUs.

    QT_QPA_PLATFORM=offscreen python docs/screenshots/make_device_picker_screenshot.py

The list the form asks torch for (``core.engine.devices.available_devices``) is replaced by the
one a computer with two RTX 4090 cards gives (``device_options``), "All 2 GPUs" is picked (it sets
the Processes setting to 2) and the list is shown open over the form.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
OUT = Path(__file__).resolve().parent


def main() -> int:
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QPainter

    from core.engine.devices import GpuInfo, device_options
    from tests.tiny_models import make_tiny_model_dir

    folder = Path(tempfile.mkdtemp(prefix="device-shot-"))
    model = make_tiny_model_dir(folder / "tiny-model")
    from train_view_window import train_view_window   # this folder's helper (the script's folder is on sys.path)

    app, ws, db, view, wait, close = train_view_window(folder)

    form = view.form
    picker = form.fields["device"]
    wait(lambda: picker.options)                          # this computer's list, from the worker
    form.set_value("base_model", str(model))
    picker.set_options(device_options([GpuInfo(0, "NVIDIA GeForce RTX 4090", 24 * 2**30),
                                       GpuInfo(1, "NVIDIA GeForce RTX 4090", 24 * 2**30)]))
    combo = picker.widget
    everything = combo.findData("cuda")
    combo.setCurrentIndex(everything)
    combo.activated.emit(everything)
    form.refresh()
    wait(lambda: "fit in max length" in form.preview_label.text())
    for _ in range(30):
        app.processEvents()
        time.sleep(0.02)
    print("device:", combo.currentText(), "| processes:", form.values()["processes"])
    shot = view.grab()
    combo.showPopup()
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    popup = combo.view().window()
    painter = QPainter(shot)
    painter.drawPixmap(popup.geometry().topLeft() - view.mapToGlobal(QPoint(0, 0)), popup.grab())
    painter.end()
    combo.hidePopup()
    shot.save(str(OUT / "device_picker.png"))
    close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
