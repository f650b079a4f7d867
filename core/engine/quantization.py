"""4-bit bases (QLoRA): bitsandbytes NF4 loading on a CUDA GPU, and why it is refused elsewhere.

The frozen base is held in 4 bits (NF4, double quantisation: the per-block scales quantised
again), the LoRA adapter trains in float32 over it and every matrix multiply runs in the compute
dtype (bfloat16 where the GPU has it, else float16). The reference log-probs come from the same
quantised base with the adapter disabled, so the cache key names the quantisation
(``QUANTIZATION_TAG``, in ``core.engine.modeling.model_fingerprint``) and 4-bit values never mix
with full-precision ones.

peft's ``prepare_model_for_kbit_training`` is not called: it casts every weight that is not 4-bit
(embeddings, the LM head, the norms) to float32 for trainers that run under autocast. The engine
runs without autocast, so those float32 weights would turn every activation after a norm into
float32 (twice the activation memory) and cost 2 bytes more per embedding weight — gigabytes at a
128k vocabulary. What else it does is done anyway: the base is frozen by peft, and gradient
checkpointing with input gradients is ``modeling._checkpointing``'s.

Nothing here imports torch or bitsandbytes at import time (the form's checks use it).
"""

from __future__ import annotations

import importlib.util

QUANTIZATION_TAG = "bnb-nf4-double-quant"
EXTRA_MISSING = '4-bit loading needs the "gpu" extra: pip install -e ".[gpu]"'
DEVICE_WORDS = {"cpu": "the CPU", "mps": "the Apple GPU (MPS)"}


def device_refusal(device_type: str) -> str | None:
    """The one line that refuses 4-bit loading on ``device_type`` ("cpu", "mps"); None on CUDA."""
    if device_type == "cuda":
        return None
    return f"4-bit base models need a CUDA GPU; this run would use {DEVICE_WORDS.get(device_type, device_type)}"


def bitsandbytes_installed() -> bool:
    return importlib.util.find_spec("bitsandbytes") is not None


def four_bit_problem(device_type: str) -> str | None:
    """Why a 4-bit base cannot load on ``device_type`` (the device a run would use), or None."""
    return device_refusal(device_type) or (None if bitsandbytes_installed() else EXTRA_MISSING)


def resolved_device_type(requested: str) -> str:
    """The device type ``requested`` ("auto", "cuda", "cuda:1", "mps", "cpu") would give (imports torch)."""
    import torch

    if requested in ("mps", "cpu") or requested.startswith("cuda"):
        return requested.split(":")[0]
    if torch.cuda.is_available():
        return "cuda"
    return "mps" if torch.backends.mps.is_available() else "cpu"


def four_bit_config(dtype):
    """transformers' ``BitsAndBytesConfig`` for an NF4 base computing in ``dtype`` (a float32
    request computes in bfloat16 where the GPU has it: 4-bit kernels take half precision)."""
    import torch
    from transformers import BitsAndBytesConfig

    if dtype not in (torch.bfloat16, torch.float16):
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype,
                              bnb_4bit_use_double_quant=True)
