"""The devices a run can train on, as the Train tab's device picker lists them.

``available_devices()`` asks torch (call it off the UI thread: it imports torch and wakes the
CUDA driver); ``device_options(gpus, mps)`` turns what it found into the picker's entries:
automatic, each CUDA GPU by index and name (``cuda:0``, ``cuda:1``…), "all GPUs" when there are
two or more (device ``cuda`` trained in one process per GPU: ``core.engine.distributed``), Apple's
GPU when there is one, and the CPU. On a computer without a GPU that is automatic and the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    total_bytes: int


@dataclass(frozen=True)
class DeviceOption:
    """One entry of the picker: the ``device`` setting it stands for and the ``processes`` it
    trains in (more than one only for "all GPUs")."""

    value: str
    label: str
    processes: int = 1


def device_options(gpus: Sequence[GpuInfo], mps: bool = False) -> list[DeviceOption]:
    options = [DeviceOption("auto", "Automatic" + (" (GPU 0)" if gpus else " (Apple GPU)" if mps else " (CPU)"))]
    for gpu in gpus:
        options.append(DeviceOption(f"cuda:{gpu.index}",
                                    f"GPU {gpu.index} · {gpu.name} · {gpu.total_bytes / 2**30:.0f} GiB"))
    if len(gpus) >= 2:
        options.append(DeviceOption("cuda", f"All {len(gpus)} GPUs · one process each", len(gpus)))
    elif gpus:
        options.append(DeviceOption("cuda", "CUDA GPU (the default one)"))
    if mps:
        options.append(DeviceOption("mps", "Apple GPU (MPS)"))
    options.append(DeviceOption("cpu", "CPU"))
    return options


def available_devices() -> list[DeviceOption]:
    """The picker's entries for this computer (imports torch)."""
    import torch

    gpus = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            properties = torch.cuda.get_device_properties(index)
            gpus.append(GpuInfo(index, properties.name, int(properties.total_memory)))
    return device_options(gpus, torch.backends.mps.is_available())
