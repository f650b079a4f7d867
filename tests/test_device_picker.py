"""The Train form's device picker: this computer's devices from a worker, each GPU by name, and
"all GPUs" (one process each) when there are two or more."""

from __future__ import annotations

import pytest

from core.engine.devices import GpuInfo, available_devices, device_options
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)
from tests.train_view_helpers import make_train_view, pairs_workspace  # noqa: F401

pytestmark = pytest.mark.usefixtures("isolated_settings")

TWO_GPUS = [GpuInfo(0, "NVIDIA RTX 4090", 24 * 2**30), GpuInfo(1, "NVIDIA RTX 4090", 24 * 2**30)]


def test_options_list_each_gpu_and_all_gpus_from_two_on() -> None:
    assert [(o.value, o.processes) for o in device_options([])] == [("auto", 1), ("cpu", 1)]
    two = device_options(TWO_GPUS)
    assert [(o.value, o.processes) for o in two] == [("auto", 1), ("cuda:0", 1), ("cuda:1", 1), ("cuda", 2),
                                                     ("cpu", 1)]
    assert two[1].label == "GPU 0 · NVIDIA RTX 4090 · 24 GiB" and two[3].label.startswith("All 2 GPUs")
    one = device_options(TWO_GPUS[:1], mps=False)
    assert [o.value for o in one] == ["auto", "cuda:0", "cuda", "cpu"]          # no "all GPUs" for one
    assert [o.value for o in device_options([], mps=True)] == ["auto", "mps", "cpu"]


def test_this_computer_lists_what_torch_sees() -> None:
    import torch

    values = [o.value for o in available_devices()]
    assert values[0] == "auto" and values[-1] == "cpu"
    assert sum(v.startswith("cuda:") for v in values) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)


def _combo_values(combo) -> list[str]:
    return [combo.itemData(i) for i in range(combo.count())]


def test_the_form_lists_the_devices_and_all_gpus_sets_processes(qtbot, make_train_view, pairs_workspace) -> None:
    import torch

    view = make_train_view(pairs_workspace)
    form = view.form
    picker = form.fields["device"]
    combo = picker.widget
    expected = [o.value for o in available_devices()]
    qtbot.waitUntil(lambda: _combo_values(combo) == expected, timeout=20_000)   # from a worker, not the UI thread
    if not torch.cuda.is_available():
        assert _combo_values(combo) == ["auto", "cpu"] and combo.currentData() == "auto"

    picker.set_options(device_options(TWO_GPUS))     # a computer with two GPUs (none here: the boundary)
    assert combo.currentData() == "auto"             # the value shown is kept
    everything = _combo_values(combo).index("cuda")
    combo.setCurrentIndex(everything)
    combo.activated.emit(everything)                 # as a click on the entry does
    assert form.values()["device"] == "cuda" and form.values()["processes"] == 2
    assert "All 2 GPUs" in combo.currentText()
    cpu = _combo_values(combo).index("cpu")
    combo.setCurrentIndex(cpu)
    combo.activated.emit(cpu)
    assert form.values()["device"] == "cpu" and form.values()["processes"] == 1

    form.set_values({"device": "cuda", "processes": 2})   # a saved two-GPU config shows as "all GPUs"
    assert "All 2 GPUs" in combo.currentText()
    form.set_values({"device": "cuda:1", "processes": 1})
    assert combo.currentText().startswith("GPU 1 · NVIDIA RTX 4090")
