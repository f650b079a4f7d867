"""4-bit bases (QLoRA): refused on the CPU with one line (settings check, loader, ``main.py train``),
the "gpu" extra named when bitsandbytes is missing, a cache key of its own, an estimate that knows it.

The 4-bit path itself needs a CUDA GPU and bitsandbytes (``benchmarks/gpu_check.py`` runs it there).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io

import pytest
import torch

import main
from core.engine.memory_estimate import ModelShape, estimate_training_memory
from core.engine.modeling import DeviceError, load_base_model, load_for_training, model_fingerprint
from core.engine.quantization import EXTRA_MISSING, QUANTIZATION_TAG, four_bit_problem, resolved_device_type
from core.engine.training_config import TrainingConfig
from core.operations.launch_checks import launch_problems
from storage.workspace import Workspace
from tests.tiny_models import fill_workspace, make_tiny_model_dir

CPU_LINE = "4-bit base models need a CUDA GPU; this run would use the CPU"


@pytest.fixture()
def no_bitsandbytes(monkeypatch):
    """bitsandbytes not installed (whether or not this machine has it)."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "bitsandbytes" else real(name, *args))


@pytest.fixture()
def workspace(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    fill_workspace(ws, 8)
    yield ws
    ws.close()


def test_the_launch_check_refuses_4_bit_on_the_cpu_in_one_line(workspace, tmp_path) -> None:
    model_dir = make_tiny_model_dir(tmp_path / "model")
    for device in ("cpu",) + (("auto",) if not torch.cuda.is_available() else ()):
        config, problems = launch_problems(workspace, {"base_model": str(model_dir), "device": device,
                                                       "load_in_4bit": True})
        assert config is None and problems == {"load_in_4bit": CPU_LINE}
    assert four_bit_problem("mps") == "4-bit base models need a CUDA GPU; this run would use the Apple GPU (MPS)"
    _, problems = launch_problems(workspace, {"base_model": str(model_dir), "device": "cpu"})
    assert "load_in_4bit" not in problems                      # off by default: nothing said
    assert resolved_device_type("cuda:1") == "cuda" and resolved_device_type("cpu") == "cpu"


def test_main_train_exits_2_with_the_line(workspace, tmp_path) -> None:
    model_dir = make_tiny_model_dir(tmp_path / "model")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main.main(["train", str(workspace.root), "--set", f"base_model={model_dir}", "--set", "device=cpu",
                          "--set", "load_in_4bit=true", "--set", "max_steps=1"])
    assert code == 2
    assert err.getvalue().strip() == f"error: setting 'load_in_4bit': {CPU_LINE}"
    assert not (workspace.root / "runs").exists() or not any((workspace.root / "runs").iterdir())


def test_the_loader_refuses_too(tmp_path) -> None:
    model_dir = make_tiny_model_dir(tmp_path / "model")
    config = TrainingConfig(base_model=str(model_dir), device="cpu", load_in_4bit=True)
    with pytest.raises(DeviceError, match="^4-bit base models need a CUDA GPU; this run would use the CPU$"):
        load_for_training(config)


def test_a_missing_bitsandbytes_names_the_gpu_extra(tmp_path, no_bitsandbytes) -> None:
    assert four_bit_problem("cuda") == EXTRA_MISSING == '4-bit loading needs the "gpu" extra: pip install -e ".[gpu]"'
    assert four_bit_problem("cpu") == CPU_LINE                # the device is the first thing to change
    model_dir = make_tiny_model_dir(tmp_path / "model")
    with pytest.raises(DeviceError) as caught:                # checked before anything touches a GPU
        load_base_model(str(model_dir), torch.device("cuda"), torch.bfloat16, load_in_4bit=True)
    assert str(caught.value) == EXTRA_MISSING


def test_the_reference_cache_key_names_the_quantisation(tmp_path) -> None:
    model_dir = str(make_tiny_model_dir(tmp_path / "model"))
    full = model_fingerprint(model_dir, torch.bfloat16)
    assert model_fingerprint(model_dir, torch.bfloat16, "") == full          # existing caches keep their key
    four_bit = model_fingerprint(model_dir, torch.bfloat16, QUANTIZATION_TAG)
    assert four_bit != full and four_bit == model_fingerprint(model_dir, torch.bfloat16, QUANTIZATION_TAG)


def test_the_estimate_knows_4_bit() -> None:
    # Llama-3-8B's shape: 6.98B linear weights in the decoder, 1.05B in embeddings and head.
    shape = ModelShape(hidden=4096, layers=32, intermediate=14336, vocab=128256, heads=32, kv_heads=8,
                       tied_embeddings=False, gated_mlp=True)
    common = dict(batch_size=2, max_length=1024, lora_r=16, target_modules="all-linear", dtype="auto",
                  device="cuda", gradient_checkpointing=True)
    full = estimate_training_memory(shape, **common)
    quantized = estimate_training_memory(shape, load_in_4bit=True, **common)
    assert full.weights == shape.parameters() * 2
    expected = shape.linear_parameters() * (0.5 + (1 + 4 / 256) / 64) + shape.other_parameters() * 2
    assert quantized.weights == pytest.approx(expected, rel=1e-6)
    assert 5 * 2**30 < quantized.weights < 6 * 2**30 < 14 * 2**30 < full.weights
    assert quantized.workspace > full.workspace                # a dequantised weight in flight
