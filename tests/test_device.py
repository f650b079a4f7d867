"""Device and dtype selection (the GPU that is not here is faked at torch's availability
functions, a true boundary) and out-of-memory reporting."""

from __future__ import annotations

import pytest
import torch

from core.engine.modeling import (DeviceError, is_out_of_memory, memory_report, out_of_memory_advice, select_device,
                           select_dtype)
from core.engine.training_config import TrainingConfig


@pytest.fixture
def gpu(monkeypatch):
    """Pretend a CUDA GPU is present; the test sets whether it supports bf16."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)

    def with_bf16(supported: bool) -> None:
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: supported)
    return with_bf16


def test_auto_prefers_cuda_with_bf16(gpu) -> None:
    gpu(True)
    device = select_device("auto")
    assert device == torch.device("cuda")
    assert select_dtype(device, "auto") == torch.bfloat16
    assert select_dtype(device, "float32") == torch.float32


def test_old_gpu_without_bf16_trains_in_float32(gpu) -> None:
    gpu(False)
    device = select_device("auto")
    assert select_dtype(device, "auto") == torch.float32
    with pytest.raises(DeviceError, match="does not support it"):
        select_dtype(device, "bfloat16")


def test_mps_comes_after_cuda(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert select_device("auto") == torch.device("mps")
    assert select_device("cpu") == torch.device("cpu")


def test_cpu_fallback_and_explicit_requests(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    device = select_device("auto")
    assert device == torch.device("cpu")
    assert select_dtype(device, "auto") == torch.float32
    assert select_dtype(device, "bfloat16") == torch.bfloat16
    with pytest.raises(DeviceError, match="no CUDA GPU is available"):
        select_device("cuda")
    with pytest.raises(DeviceError, match="Apple MPS is not available"):
        select_device("mps")


def test_memory_report_on_cpu() -> None:
    report = memory_report(torch.device("cpu"))
    assert report["process_peak_rss_mib"] > 10


def test_out_of_memory_is_recognised_and_explained() -> None:
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    advice = out_of_memory_advice(TrainingConfig(base_model="m", batch_size=16, max_length=1024))
    assert "batch_size (now 16" in advice and "max_length (now 1024)" in advice
    assert "gradient_checkpointing" in advice
