"""The prepared GPU script's CPU side: its arguments, the card table, and the refusal without CUDA."""

from __future__ import annotations

import pytest
import torch

from benchmarks import gpu_check


def test_arguments_and_the_known_peaks() -> None:
    args = gpu_check.parse_args(["--shapes", "toy, 32k", "--steps", "5", "--skip-trl"])
    assert args.shape_names == ["toy", "32k"] and args.steps == 5 and args.skip_trl
    assert gpu_check.parse_args([]).shape_names == ["toy", "32k", "qwen0.5b"]
    for bad in (["--shapes", "huge"], ["--steps", "0"], ["--shapes", ","]):
        with pytest.raises(SystemExit) as caught:
            gpu_check.parse_args(bad)
        assert caught.value.code == 2
    assert gpu_check.card_peak("NVIDIA H100 80GB HBM3") == (989e12, "H100 80GB HBM3")
    assert gpu_check.card_peak("NVIDIA H100 PCIe") == (756e12, "H100 PCIe")
    assert gpu_check.card_peak("NVIDIA H200")[0] == 989e12
    assert gpu_check.card_peak("NVIDIA L40S")[1] == "L40S" and gpu_check.card_peak("NVIDIA L4")[1] == "L4"
    assert gpu_check.card_peak("Some Future GPU") == (None, "")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_without_cuda_it_says_so_and_exits_2(capsys) -> None:
    assert gpu_check.main(["--shapes", "toy"]) == 2
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == "no CUDA device: this script measures a GPU; nothing was run"
    assert '"cuda": false' in out
    missing = gpu_check.missing_packages()
    assert ("bitsandbytes" in missing) == (__import__("importlib").util.find_spec("bitsandbytes") is None)
    if missing:
        assert "missing: " + ", ".join(missing) in out
