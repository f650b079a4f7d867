"""Loading the base model and tokenizer, attaching the LoRA adapter, picking device and dtype.

One copy of the base weights lives in memory: the policy is base + adapter, the reference
is the same base with the adapter disabled (``with model.disable_adapter():``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.engine.lean_mlp import use_lean_mlps
from core.engine.library_preload import library_lock
from core.engine.model_location import WEIGHT_SUFFIXES, load_location
from core.engine.packed_attention import use_split_attention
from core.engine.training_config import TrainingConfig


class ModelLoadError(RuntimeError):
    """The base model, its tokenizer or an adapter cannot be loaded; the message says which and why."""


class DeviceError(RuntimeError):
    """The requested device or dtype is not available here."""


# -- device and dtype ---------------------------------------------------------------------------
def select_device(requested: str = "auto") -> torch.device:
    """``auto``: CUDA if available, then Apple MPS, then CPU. An explicit device that is not
    available raises ``DeviceError`` rather than silently training somewhere else."""
    cuda = torch.cuda.is_available()
    mps = torch.backends.mps.is_available()
    if requested == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if requested == "cuda" and not cuda:
        raise DeviceError("device 'cuda' was asked for, but no CUDA GPU is available "
                          "(is the CUDA build of torch installed?); use device=auto or cpu")
    if requested == "mps" and not mps:
        raise DeviceError("device 'mps' was asked for, but Apple MPS is not available here; use device=auto or cpu")
    if requested.startswith("cuda:") and requested[5:].isdigit():   # one GPU of several
        if int(requested[5:]) >= (torch.cuda.device_count() if cuda else 0):
            raise DeviceError(f"device {requested!r} was asked for, but this computer has "
                              f"{torch.cuda.device_count() if cuda else 0} CUDA GPU(s); use device=auto or cpu")
        return torch.device(requested)
    if requested not in ("cuda", "mps", "cpu"):
        raise DeviceError(f"unknown device {requested!r}")
    return torch.device(requested)


def _mps_supports_bf16() -> bool:
    try:
        torch.ones(1, dtype=torch.bfloat16, device="mps")
        return True
    except (RuntimeError, TypeError):
        return False


def select_dtype(device: torch.device, requested: str = "auto") -> torch.dtype:
    """``auto``: bfloat16 on a CUDA GPU that supports it (Ampere and newer) and on MPS that
    supports it; float32 otherwise (CPU training in bf16 is slow and less precise, and fp16
    training of the base would need loss scaling). An explicit choice is honoured but
    checked: bfloat16 on a CUDA GPU without it raises ``DeviceError``."""
    if requested == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        if device.type == "mps" and _mps_supports_bf16():
            return torch.bfloat16
        return torch.float32
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}.get(requested)
    if dtype is None:
        raise DeviceError(f"unknown dtype {requested!r}")
    if dtype == torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise DeviceError("dtype 'bfloat16' was asked for, but this GPU does not support it; use dtype=float32")
    return dtype


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def memory_report(device: torch.device) -> dict[str, float]:
    """Peak memory in MiB: GPU allocator peak (and reserved) on CUDA/MPS, process peak RSS always."""
    report: dict[str, float] = {}
    if device.type == "cuda":
        report["gpu_peak_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        report["gpu_peak_reserved_mib"] = torch.cuda.max_memory_reserved(device) / 2**20
        report["gpu_total_mib"] = torch.cuda.get_device_properties(device).total_memory / 2**20
    elif device.type == "mps":
        report["gpu_allocated_mib"] = torch.mps.driver_allocated_memory() / 2**20
    rss_mib = _peak_rss_mib()
    if rss_mib is not None:
        report["process_peak_rss_mib"] = rss_mib
    return report


def _peak_rss_mib() -> float | None:
    """The process's peak resident memory; None where the OS does not say (``resource`` is
    Unix-only, so it is imported here rather than at import time: Windows has none)."""
    try:
        import resource
    except ImportError:
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def out_of_memory_advice(config: TrainingConfig) -> str:
    """What to lower after a GPU out-of-memory error, most effective first."""
    tips = []
    if config.batch_size > 1:
        tips.append(f"batch_size (now {config.batch_size}; halve it and double "
                    f"gradient_accumulation_steps to keep the effective batch)")
    tips.append(f"max_length (now {config.max_length})")
    if not config.gradient_checkpointing:
        tips.append("turn on gradient_checkpointing")
    tips.append(f"reference_batch_size (now {config.reference_batch_size}) if it failed while computing references")
    if config.lora_r > 8:
        tips.append(f"lora_r (now {config.lora_r})")
    return "Out of GPU memory. Lower " + "; ".join(tips) + "."


# -- loading -----------------------------------------------------------------------------------
def resolve_model_path(name_or_path: str) -> tuple[str, bool]:
    """(what to pass to from_pretrained, is it a local folder). A hub id must already be cached.
    ``bundled:NAME`` is a model shipped in ``resources/`` (the demo model), wherever that is now."""
    try:
        return load_location(name_or_path)
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from exc


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False):
    location, _ = resolve_model_path(name_or_path)
    try:
        with library_lock():
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=trust_remote_code,
                                                      local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the tokenizer of {name_or_path!r}: {exc}") from exc
    if tokenizer.eos_token is None:
        raise ModelLoadError(f"the tokenizer of {name_or_path!r} has no EOS token; DPO needs one to end completions")
    if tokenizer.pad_token is None:
        # As TRL: padding positions are masked out, so reusing EOS is harmless.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base_model(name_or_path: str, device: torch.device, dtype: torch.dtype,
                    trust_remote_code: bool = False, load_in_4bit: bool = False):
    """The base model on ``device``; with ``load_in_4bit`` its linear weights in NF4 (CUDA only,
    ``core.engine.quantization``: refused with one line elsewhere or without bitsandbytes)."""
    location, _ = resolve_model_path(name_or_path)
    quantized: dict[str, Any] = {}
    if load_in_4bit:
        from core.engine.quantization import four_bit_config, four_bit_problem

        problem = four_bit_problem(device.type)
        if problem:
            raise DeviceError(problem)
        # Quantised while loading, straight onto the GPU (a 4-bit model cannot be moved by .to()).
        quantized = {"quantization_config": four_bit_config(dtype), "device_map": {"": device.index or 0}}
    try:
        with library_lock():
            from transformers import AutoModelForCausalLM

            # from_pretrained prefers model.safetensors when both formats are present.
            model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype, trust_remote_code=trust_remote_code,
                                                         local_files_only=True, **quantized)
    except (OSError, ValueError) as exc:
        hint = "" if Path(name_or_path).exists() else (
            " (not a local folder, and not in the local Hugging Face cache; nothing is downloaded)")
        raise ModelLoadError(f"cannot load the model {name_or_path!r}{hint}: {exc}") from exc
    except Exception as exc:  # safetensors' own error type: a damaged or truncated weights file
        if "safetensor" not in type(exc).__module__.lower() + type(exc).__name__.lower():
            raise
        raise ModelLoadError(f"a weights file of {name_or_path!r} is damaged or truncated "
                             f"({damaged_weight_files(location) or 'its safetensors files'}): {exc}") from exc
    if device.type == "cpu" and not torch.cuda.is_available():
        # Grouped-query attention without copying keys and values to every query head: torch's CPU
        # flash kernel takes them as they are, with the padding or pair mask (transformers does so on
        # its own only without a mask). Same values; at Qwen2.5-0.5B's 14/2 heads, 2 × 768 fewer
        # values a position and layer kept for the backward, and the attention ran 1.2× faster.
        # transformers reads the switch per process: not where a CUDA model could be loaded next,
        # whose kernels with a mask would fall back to the slow path.
        os.environ.setdefault("TRANSFORMERS_SDPA_FORCE_GQA", "1")
        use_split_attention(model)   # packed pairs: no padding, no scores the mask throws away
    return model if quantized else model.to(device)


def damaged_weight_files(folder: str) -> str:
    """The ``.safetensors`` files of ``folder`` whose header cannot be read, by path."""
    from safetensors import safe_open

    bad = []
    for path in sorted(Path(folder).glob("*.safetensors")) if Path(folder).is_dir() else []:
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except Exception:  # noqa: BLE001 - any failure to read the header is damage
            bad.append(str(path))
    return ", ".join(bad)


def disable_dropout(model: torch.nn.Module) -> None:
    """Zero every dropout of the base model (LoRA's own dropout modules are left alone)."""
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Dropout) and "lora_dropout" not in name:
            module.p = 0.0


@contextmanager
def quiet_peft_wrap():
    """Around peft's ``get_peft_model`` / ``PeftModel.from_pretrained``: peft (0.21) reads the
    ``is_gradient_checkpointing`` property, which transformers 5 deprecated, inside its own
    ``PeftModel.__init__``, so a FutureWarning came with every model load although no project
    code reads it. That one warning, there only, is silenced; every other warning still shows."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated",
                                category=FutureWarning)
        yield


def attach_lora(model, config: TrainingConfig):
    """Wrap ``model`` in a peft LoRA adapter named "default". The adapter's B matrices start at
    zero, so at step 0 the policy equals the reference exactly."""
    with library_lock():
        from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=config.target_modules(), bias="none", task_type="CAUSAL_LM")
    torch.manual_seed(config.seed)  # the A matrices' init is part of the run's reproducibility
    try:
        with quiet_peft_wrap():
            peft_model = get_peft_model(model, lora)
    except ValueError as exc:
        raise ModelLoadError(f"setting 'lora_target_modules' ({config.lora_target_modules!r}): {exc}") from exc
    return _prepared_for_training(peft_model, config)


def attach_saved_lora(model, adapter_dir: str | Path, config: TrainingConfig):
    """Wrap ``model`` in a saved adapter (an earlier round's) that training continues: its
    weights, not zeros, are step 0's policy."""
    with library_lock():
        from peft import PeftModel

    try:
        with quiet_peft_wrap():
            peft_model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the adapter in {adapter_dir}: {exc}") from exc
    return _prepared_for_training(peft_model, config)


def _prepared_for_training(peft_model, config: TrainingConfig):
    use_lean_mlps(peft_model)   # gated MLPs keep half their values for the backward (core.engine.lean_mlp)
    if config.gradient_checkpointing:
        kwargs = {"use_reentrant": False}
        if hasattr(peft_model, "activation_checkpointing_enable"):    # transformers 5.2x; the old name warns
            peft_model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            peft_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        peft_model.enable_input_require_grads()
    return peft_model


@dataclass
class LoadedModel:
    model: Any            # peft.PeftModel (policy; reference with the adapter disabled)
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype
    quantization: str = ""    # core.engine.quantization.QUANTIZATION_TAG for a 4-bit base, else empty

    def parameter_counts(self) -> tuple[int, int]:
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in self.model.parameters())
        return trainable, total


def load_for_training(config: TrainingConfig, adapter_dir: str | Path | None = None) -> LoadedModel:
    """The base model with a fresh LoRA, or with the saved adapter in ``adapter_dir`` made trainable."""
    device = select_device(config.device)
    dtype = select_dtype(device, config.dtype)
    tokenizer = load_tokenizer(config.base_model, config.trust_remote_code)
    model = load_base_model(config.base_model, device, dtype, config.trust_remote_code, config.load_in_4bit)
    model.config.pad_token_id = tokenizer.pad_token_id
    if config.disable_dropout:
        disable_dropout(model)
    peft_model = attach_lora(model, config) if adapter_dir is None else attach_saved_lora(model, adapter_dir, config)
    if config.load_in_4bit:
        from core.engine.quantization import QUANTIZATION_TAG

        return LoadedModel(peft_model, tokenizer, device, dtype, QUANTIZATION_TAG)
    return LoadedModel(peft_model, tokenizer, device, dtype)


def load_with_adapter(base_model: str, adapter_dir: str | Path, device: str = "auto", dtype: str = "auto",
                      trust_remote_code: bool = False) -> LoadedModel:
    """Base + a saved adapter (for evaluation, generation, export)."""
    with library_lock():
        from peft import PeftModel

    torch_device = select_device(device)
    torch_dtype = select_dtype(torch_device, dtype)
    tokenizer = load_tokenizer(base_model, trust_remote_code)
    model = load_base_model(base_model, torch_device, torch_dtype, trust_remote_code)
    model.config.pad_token_id = tokenizer.pad_token_id
    try:
        with quiet_peft_wrap():
            peft_model = PeftModel.from_pretrained(model, str(adapter_dir))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the adapter in {adapter_dir}: {exc}") from exc
    peft_model.eval()
    return LoadedModel(peft_model, tokenizer, torch_device, torch_dtype)


def export_merged_model(base_model: str, adapter_dir: str | Path, out_dir: str | Path,
                        trust_remote_code: bool = False) -> Path:
    """Write base + adapter merged into one plain model folder (safetensors + tokenizer)."""
    loaded = load_with_adapter(base_model, adapter_dir, device="cpu", dtype="float32",
                               trust_remote_code=trust_remote_code)
    merged = loaded.model.merge_and_unload()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out, safe_serialization=True)
    loaded.tokenizer.save_pretrained(out)
    return out


# -- fingerprints for the reference cache -----------------------------------------------------
def model_fingerprint(name_or_path: str, dtype: torch.dtype | None = None, quantization: str = "") -> str:
    """Changes when the base weights or config change: config.json's content plus each weight
    file's name, size and mtime, and the resolved path (hashing gigabytes of weights on every
    run would cost more than the cache saves); and with the dtype the weights run in, so
    bf16 reference values are never reused by a float32 run; and with the quantisation of a 4-bit
    base (``LoadedModel.quantization``), so its values never mix with full-precision ones."""
    location, local = resolve_model_path(name_or_path)
    digest = hashlib.sha256()
    if local:
        folder = Path(location)
    else:
        from huggingface_hub import snapshot_download

        try:
            folder = Path(snapshot_download(name_or_path, local_files_only=True))
        except Exception as exc:  # the hub client raises several unrelated types
            raise ModelLoadError(f"{name_or_path!r} is neither a local folder nor in the local "
                                 f"Hugging Face cache: {exc}") from exc
    digest.update(str(folder.resolve()).encode())
    if dtype is not None:
        digest.update(dtype_name(dtype).encode())
    if quantization:   # absent for full precision, so the keys of existing caches stay as they were
        digest.update(f"quantization={quantization}".encode())
    digest.update((folder / "config.json").read_bytes())
    for weight in sorted(folder.iterdir()):
        if weight.name.endswith(WEIGHT_SUFFIXES):
            stat = weight.stat()
            digest.update(f"{weight.name}\x00{stat.st_size}\x00{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:32]


def tokenization_fingerprint(tokenizer, max_length: int, truncation_mode: str) -> str:
    """Changes when the tokens of any example could change: vocabulary, merges, normaliser and
    post-processor (the fast tokenizer's full JSON), special tokens, chat template, truncation."""
    digest = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        digest.update(backend.to_str().encode())
    else:
        digest.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    digest.update(json.dumps({
        "class": type(tokenizer).__name__,
        "special": {k: str(v) for k, v in sorted(tokenizer.special_tokens_map.items())},
        "chat_template": tokenizer.chat_template if isinstance(tokenizer.chat_template, str)
        else json.dumps(tokenizer.chat_template, sort_keys=True),
        "max_length": max_length,
        "truncation_mode": truncation_mode,
    }, sort_keys=True).encode())
    return digest.hexdigest()[:32]
