"""How much memory a LoRA DPO run will need, estimated before anything is loaded.

Everything comes from the model's ``config.json`` (no weights are read) and the training
settings, so the set-up form can show the figure while the user types. The estimate is
deliberately rough (within a factor of ~1.5 for decoder-only transformers) and errs high:

- frozen base weights: parameters × bytes of the training dtype;
- LoRA adapter: trainable parameters × 16 bytes (fp32 weight, gradient, two Adam moments);
- activations kept for the backward pass: ``batch × 2 (chosen + rejected) × max_length ×
  hidden × layers × k`` values, ``k ≈ 17`` without gradient checkpointing (attention and MLP
  inputs/outputs of each layer, after Korthikanti et al. 2022) and ``k ≈ 2`` with it;
- logits: ``batch × 2 × max_length × vocab`` in float32, three copies (logits, log-softmax,
  their gradient) — often the largest term for small models with big vocabularies;
- a fixed overhead (CUDA context / Python and torch runtime).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIB = 2**20
GIB = 2**30
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
# Activation values kept per token per layer, in units of hidden size.
ACTIVATION_FACTOR = 17.0
ACTIVATION_FACTOR_CHECKPOINTED = 2.0
# Gated MLPs (three matrices: gate, up, down) are used by these families; others have two.
GATED_MLP_ACTIVATIONS = ("silu", "swiglu", "gelu_pytorch_tanh_gated")
GATED_MODEL_TYPES = ("llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3",
                     "olmo", "olmo2", "smollm3", "granite", "cohere")
OVERHEAD_BYTES = {"cuda": 600 * MIB, "mps": 400 * MIB, "cpu": 500 * MIB}
# Share of the free memory we are willing to plan for (allocator fragmentation, other tensors).
USABLE_SHARE = 0.9


@dataclass(frozen=True)
class ModelShape:
    """The few numbers of a ``config.json`` the estimate needs."""

    hidden: int
    layers: int
    intermediate: int
    vocab: int
    heads: int
    kv_heads: int
    tied_embeddings: bool
    gated_mlp: bool

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "ModelShape":
        """Read Llama/Mistral/Qwen-style and GPT-2-style names; raises ``ValueError`` naming the
        missing key when the config does not describe a transformer we can size."""
        def first(*keys: str, default: Any = None) -> Any:
            for key in keys:
                if config.get(key) is not None:
                    return config[key]
            if default is None:
                raise ValueError(f"config.json has none of {', '.join(keys)}")
            return default

        text_config = config.get("text_config")
        if isinstance(text_config, dict) and "hidden_size" not in config:
            config = {**text_config, "model_type": config.get("model_type", "")}
        hidden = int(first("hidden_size", "n_embd", "d_model"))
        heads = int(first("num_attention_heads", "n_head", default=max(1, hidden // 64)))
        model_type = str(config.get("model_type", "")).lower()
        activation = str(config.get("hidden_act", config.get("activation_function", ""))).lower()
        return cls(
            hidden=hidden,
            layers=int(first("num_hidden_layers", "n_layer", "num_layers")),
            intermediate=int(first("intermediate_size", "n_inner", "ffn_dim", default=4 * hidden)),
            vocab=int(first("vocab_size")),
            heads=heads,
            kv_heads=int(first("num_key_value_heads", default=heads)),
            tied_embeddings=bool(config.get("tie_word_embeddings", True)),
            gated_mlp=model_type in GATED_MODEL_TYPES or activation in GATED_MLP_ACTIVATIONS,
        )

    def linear_layers(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of the linear modules of one decoder layer, by their usual name."""
        head_dim = self.hidden // max(1, self.heads)
        kv = head_dim * self.kv_heads
        shapes = {"q_proj": (self.hidden, self.hidden), "k_proj": (self.hidden, kv), "v_proj": (self.hidden, kv),
                  "o_proj": (self.hidden, self.hidden), "up_proj": (self.hidden, self.intermediate),
                  "down_proj": (self.intermediate, self.hidden)}
        if self.gated_mlp:
            shapes["gate_proj"] = (self.hidden, self.intermediate)
        return shapes

    def parameters(self) -> int:
        per_layer = sum(i * o for i, o in self.linear_layers().values()) + 2 * self.hidden  # + two norms
        embeddings = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        return self.layers * per_layer + embeddings + self.hidden

    def lora_parameters(self, rank: int, target_modules: str | list[str]) -> int:
        """LoRA adds ``rank × (in + out)`` per targeted linear module. "all-linear" targets every
        linear layer of the decoder (not the output head, as peft does)."""
        shapes = self.linear_layers()
        if target_modules == "all-linear":
            chosen = list(shapes.values())
        else:
            chosen = [shapes[name] for name in target_modules if name in shapes]
            unknown = [name for name in target_modules if name not in shapes]
            # A module name we cannot size (c_attn, query_key_value...): count it as a square layer.
            chosen += [(self.hidden, self.hidden)] * len(unknown)
        return self.layers * sum(rank * (i + o) for i, o in chosen)


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int             # bytes of frozen base weights
    adapter: int             # bytes of LoRA weights, gradients and optimizer state
    activations: int         # bytes of activations kept for backward
    logits: int              # bytes of logits, log-softmax and their gradient
    overhead: int
    parameters: int          # base parameters
    trainable_parameters: int

    @property
    def total(self) -> int:
        return self.weights + self.adapter + self.activations + self.logits + self.overhead


@dataclass(frozen=True)
class DeviceMemory:
    device: str              # "cuda", "mps" or "cpu"
    name: str                # what to call it in a message ("NVIDIA RTX 4090", "system RAM")
    total: int               # bytes
    available: int           # bytes free now


@dataclass(frozen=True)
class FitVerdict:
    fits: bool
    message: str             # one line for the form


def read_model_config(folder: str | Path) -> dict[str, Any]:
    """The model's ``config.json`` as a dict (no weights touched)."""
    path = Path(folder) / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc


def resolved_dtype(dtype: str, device: str) -> str:
    """What ``dtype=auto`` means on ``device`` (as ``core.engine.modeling.select_dtype``: bfloat16 on
    GPUs, float32 on CPU)."""
    if dtype != "auto":
        return dtype
    return "bfloat16" if device in ("cuda", "mps") else "float32"


def estimate_training_memory(shape: ModelShape, *, batch_size: int, max_length: int, lora_r: int,
                             target_modules: str | list[str], dtype: str, device: str,
                             gradient_checkpointing: bool) -> MemoryEstimate:
    """Peak memory of one training step (see the module docstring for each term)."""
    value_bytes = DTYPE_BYTES[resolved_dtype(dtype, device)]
    parameters = shape.parameters()
    trainable = shape.lora_parameters(lora_r, target_modules)
    tokens = batch_size * 2 * max_length   # chosen and rejected go through the model together
    factor = ACTIVATION_FACTOR_CHECKPOINTED if gradient_checkpointing else ACTIVATION_FACTOR
    activations = int(tokens * shape.hidden * shape.layers * factor * value_bytes)
    if gradient_checkpointing:
        # One layer is recomputed in full during backward.
        activations += int(tokens * shape.hidden * ACTIVATION_FACTOR * value_bytes)
    return MemoryEstimate(
        weights=parameters * value_bytes,
        adapter=trainable * 16,
        activations=activations,
        logits=tokens * shape.vocab * 4 * 3,
        overhead=OVERHEAD_BYTES.get(device, OVERHEAD_BYTES["cpu"]),
        parameters=parameters,
        trainable_parameters=trainable,
    )


def estimate_for_config(config, model_config: dict[str, Any], device: str) -> MemoryEstimate:
    """``estimate_training_memory`` with the settings of a ``TrainingConfig``."""
    return estimate_training_memory(
        ModelShape.from_config(model_config), batch_size=config.batch_size, max_length=config.max_length,
        lora_r=config.lora_r, target_modules=config.target_modules(), dtype=config.dtype, device=device,
        gradient_checkpointing=config.gradient_checkpointing)


def system_memory() -> DeviceMemory:
    """Physical RAM from ``sysconf`` (no psutil); available = free pages where the OS reports them."""
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        total = os.sysconf("SC_PHYS_PAGES") * page
    except (ValueError, OSError, AttributeError):
        total = 0
    available = total
    try:
        available = _meminfo_available() or os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        pass
    return DeviceMemory("cpu", "system RAM", total, available)


def _meminfo_available() -> int | None:
    """Linux's MemAvailable (counts reclaimable cache, unlike SC_AVPHYS_PAGES)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def device_memory(requested: str = "auto") -> DeviceMemory:
    """Memory of the device a run with ``device=requested`` would use (torch imported lazily:
    the GUI calls this while the form is edited)."""
    import torch

    if requested in ("auto", "cuda") and torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        return DeviceMemory("cuda", torch.cuda.get_device_name(), int(total), int(free))
    if requested in ("auto", "mps") and torch.backends.mps.is_available():
        ram = system_memory()
        limit = int(torch.mps.recommended_max_memory()) or ram.total
        return DeviceMemory("mps", "Apple GPU (shared memory)", limit, min(limit, ram.available))
    return system_memory()


def judge_fit(estimate: MemoryEstimate, memory: DeviceMemory) -> FitVerdict:
    """Does the estimate fit in the device's free memory (with a margin)?"""
    need = estimate.total
    if memory.available <= 0:
        return FitVerdict(True, f"needs about {format_bytes(need)} (free memory of {memory.name} unknown)")
    usable = memory.available * USABLE_SHARE
    if need <= usable:
        return FitVerdict(True, f"needs about {format_bytes(need)} of {format_bytes(memory.available)} "
                                f"free on {memory.name}")
    return FitVerdict(False, f"needs about {format_bytes(need)}, but {memory.name} has only "
                             f"{format_bytes(memory.available)} free: lower batch size or max length, "
                             "or turn on gradient checkpointing")


def format_bytes(value: float) -> str:
    if value >= GIB:
        return f"{value / GIB:.1f} GiB"
    if value >= MIB:
        return f"{value / MIB:.0f} MiB"
    return f"{value / 1024:.0f} KiB"
