"""How much memory a LoRA DPO run will need, estimated before anything is loaded.

Everything comes from the model's ``config.json`` (no weights are read), the training settings and,
when known, the real token counts of the largest batch (``StepTokens``), so the set-up form can show
the figure while the user types. Each term is what the engine keeps alive at the peak of a step
(``benchmarks/bench_memory.py`` checks the total against measured peaks; a test holds it to ±20%):

- frozen base weights: parameters × bytes of the dtype; a 4-bit base (QLoRA, NF4 with double
  quantisation) holds its decoder's linear weights in half a byte plus one 8-bit scale per block of
  64 and one float32 per 256 scales, its embeddings, head and norms in the compute dtype;
- LoRA adapter: trainable parameters × 16 bytes (float32 weight, gradient, two Adam moments);
- activations kept for the backward pass, per position of the batch (rows × padded width; packed
  pairs are one row each with the shared prompt once, unpacked pairs two rows) and per decoder layer:
  the residual input and the two normed inputs, query (after RoPE), keys and values (repeated to the
  query heads on a GPU; on the CPU as they are, ``core.engine.modeling.load_base_model``), the
  attention output and its contiguous copy (the output projection's input), the
  second residual: ``8 × hidden``; the MLP's ``4 × intermediate`` when gated (gate, SiLU(gate), up, their
  product) or ``2 ×`` when not, and ``2 ×`` for a gated SiLU MLP that ``core.engine.lean_mlp`` runs
  (gate and up; its backward runs in row chunks); LoRA's rank-sized inner values. With gradient checkpointing only each
  layer's input is kept, and one layer is recomputed whole during the backward. Attention masks: one
  boolean and one additive copy of ``rows × width²``;
- the LM head runs only on completion positions (``head_positions``), in chunks of
  ``core.engine.head_chunks.head_chunk_rows`` rows (the engine's own rule): it keeps one hidden-sized
  vector per position for the backward (``logits``), and while a chunk runs holds its float32 logits,
  which become the softmax in place (``workspace``; in a 16-bit dtype also the chunk's 16-bit logits);
- ``workspace``, what is in flight on top: the forward ends with a head chunk, the backward starts
  with one layer's gradients (``3 × intermediate + 4 × hidden`` per position); never both at once,
  so the larger counts; plus a 4-bit layer's dequantised weight;
- the reference pass (log-probs computed once before training, no gradient, the same base) peaks at
  one layer's values for ``reference_batch_size`` pairs: the step's peak and its own, the larger counts;
- the runtime (torch, transformers, peft resident; a CUDA context on a GPU).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

# The engine's own chunk rule for the LM head (torch-free like this module); the bound re-exported.
from core.engine.head_chunks import LOGITS_CHUNK_ELEMENTS, head_chunk_rows, mlp_chunk_rows  # noqa: F401

MIB = 2**20
GIB = 2**30
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
# Values kept for the backward per position and decoder layer (see the module docstring), in units
# of hidden size and of intermediate size.
SAVED_PER_LAYER_HIDDEN = 8
SAVED_PER_LAYER_INTERMEDIATE = {True: 4, False: 2}          # gated MLP or not
GRADIENT_PER_LAYER_INTERMEDIATE, GRADIENT_PER_LAYER_HIDDEN = 3, 4
# A gated SiLU MLP run by core.engine.lean_mlp keeps 2 (gate and up); its backward holds 4 a row of a chunk.
LEAN_SAVED_INTERMEDIATE, LEAN_CHUNK_INTERMEDIATE = 2, 4
# The families whose MLP is ``down(act(gate(x)) * up(x))`` (tests/test_lean_mlp.py reads their source):
# with SiLU, lean_mlp takes them over.
LEAN_MLP_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3", "olmo", "olmo2", "smollm3", "granite", "cohere")
# NF4 with double quantisation: 4 bits a weight, an 8-bit scale per 64 weights and a float32
# per 256 scales (bitsandbytes' blocksize 64, second-level blocks of 256).
NF4_BYTES_PER_WEIGHT = 0.5 + (1 + 4 / 256) / 64
# Gated MLPs (three matrices: gate, up, down) are used by these families; others have two.
GATED_MLP_ACTIVATIONS = ("silu", "swiglu", "gelu_pytorch_tanh_gated")
GATED_MODEL_TYPES = ("llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3",
                     "olmo", "olmo2", "smollm3", "granite", "cohere")
# The runtime: the resident libraries (torch, transformers, peft; 415 MiB measured with torch 2.13 and
# transformers 5 by benchmarks/bench_memory.py before any model is loaded), on a GPU its context too.
OVERHEAD_BYTES = {"cuda": 600 * MIB, "mps": 400 * MIB, "cpu": 420 * MIB}
# Share of the free memory we are willing to plan for (allocator fragmentation, other tensors).
USABLE_SHARE = 0.9


@dataclass(frozen=True)
class StepTokens:
    """The token counts that size one forward: ``rows`` sequences of ``width`` positions (padding
    included), ``head_positions`` of them reaching the LM head (the completion tokens)."""

    rows: int
    width: int
    head_positions: int
    packed: bool

    @property
    def positions(self) -> int:
        return self.rows * self.width

    @classmethod
    def worst_case(cls, pairs: int, max_length: int, packed: bool) -> "StepTokens":
        """Without the data: every sequence ``max_length`` long and all of it answer (a packed row
        then holds two whole sequences: no shared prompt to save)."""
        if packed:
            return cls(pairs, 2 * max_length, 2 * pairs * max_length, True)
        return cls(2 * pairs, max_length, 2 * pairs * max_length, False)


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
    lean_mlp: bool = False   # a gated SiLU MLP that core.engine.lean_mlp runs

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
            lean_mlp=model_type in LEAN_MLP_MODEL_TYPES and activation == "silu",
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
        return self.linear_parameters() + self.other_parameters()

    def linear_parameters(self) -> int:
        """Weights of the decoder's linear layers (what a 4-bit base quantises)."""
        return self.layers * sum(i * o for i, o in self.linear_layers().values())

    def other_parameters(self) -> int:
        """Embeddings, the LM head when untied, and the norms (kept in the compute dtype when 4-bit)."""
        embeddings = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        return embeddings + self.layers * 2 * self.hidden + self.hidden

    def largest_linear(self) -> int:
        return max(i * o for i, o in self.linear_layers().values())

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
    activations: int         # bytes of activations kept for backward (masks included)
    logits: int              # bytes the LM head keeps for backward (one hidden-sized vector per completion position)
    overhead: int            # the runtime
    parameters: int          # base parameters
    trainable_parameters: int
    workspace: int = 0       # transient peak on top: a logits chunk, one layer's gradients, a dequantised weight
    reference: int = 0       # the reference pass's peak beyond the weights (counted when above the step's)

    @property
    def step(self) -> int:
        return self.adapter + self.activations + self.logits + self.workspace

    @property
    def total(self) -> int:
        return self.weights + self.overhead + max(self.step, self.adapter + self.reference)


@dataclass(frozen=True)
class DeviceMemory:
    device: str              # "cuda", "mps" or "cpu"
    name: str                # what to call it in a message ("NVIDIA RTX 4090", "system RAM")
    total: int               # bytes
    available: int           # bytes free now


@dataclass(frozen=True)
class FitVerdict:
    fits: bool
    message: str             # one line for the form (with the advice when it does not fit)
    advice: tuple[str, ...] = ()   # each a change that alone makes the run fit (core.engine.memory_advice)
    shortfall: str = ""      # "needs about …, but … has only … free" when it does not fit


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
                             gradient_checkpointing: bool, packed: bool = False, load_in_4bit: bool = False,
                             tokens: StepTokens | None = None, reference_tokens: StepTokens | None = None,
                             reference_batch_size: int = 16) -> MemoryEstimate:
    """Peak memory of one training step (see the module docstring for each term). ``tokens``: the
    largest batch's real counts; without them every sequence is taken ``max_length`` long."""
    value_bytes = DTYPE_BYTES[resolved_dtype(dtype, device)]
    tokens = tokens or StepTokens.worst_case(batch_size, max_length, packed)
    reference_tokens = reference_tokens or StepTokens.worst_case(reference_batch_size, max_length, packed)
    parameters = shape.parameters()
    trainable = shape.lora_parameters(lora_r, target_modules)
    if load_in_4bit:
        weights = int(shape.linear_parameters() * NF4_BYTES_PER_WEIGHT) + shape.other_parameters() * value_bytes
    else:
        weights = parameters * value_bytes
    lora_modules = len(shape.linear_layers()) if target_modules == "all-linear" else len(target_modules)
    lean = shape.lean_mlp and not load_in_4bit                               # a 4-bit down: the stock MLP
    saved_intermediate = LEAN_SAVED_INTERMEDIATE if lean else SAVED_PER_LAYER_INTERMEDIATE[shape.gated_mlp]
    keys_values = 2 * shape.hidden if device != "cpu" else 2 * shape.hidden // max(1, shape.heads) * shape.kv_heads
    layer = ((SAVED_PER_LAYER_HIDDEN - 2) * shape.hidden + keys_values + saved_intermediate * shape.intermediate
             + lora_modules * lora_r)                                         # values per position
    kept_layers = shape.hidden * shape.layers + layer if gradient_checkpointing else layer * shape.layers
    # + the embeddings' output and the final norm's; the masks: one boolean and one additive copy.
    activations = tokens.positions * (kept_layers + 2 * shape.hidden) * value_bytes \
        + tokens.rows * tokens.width ** 2 * (1 + value_bytes)
    gradients = ((0 if lean else GRADIENT_PER_LAYER_INTERMEDIATE * shape.intermediate)
                 + GRADIENT_PER_LAYER_HIDDEN * shape.hidden)
    # The lean MLP's backward runs in row chunks: its intermediate-sized values are a chunk's worth.
    lean_chunk = (LEAN_CHUNK_INTERMEDIATE * shape.intermediate * value_bytes
                  * min(tokens.positions, mlp_chunk_rows(shape.intermediate)) if lean else 0)
    # The forward ends with a head chunk in flight, the backward starts with one layer's gradients:
    # not at the same time.
    workspace = (max(tokens.positions * gradients * value_bytes + lean_chunk,
                     _head_chunk(shape, tokens.head_positions, value_bytes))
                 + (shape.largest_linear() * value_bytes if load_in_4bit else 0))
    reference = (reference_tokens.positions * (layer + 2 * shape.hidden) * value_bytes
                 + reference_tokens.rows * reference_tokens.width ** 2 * (1 + value_bytes)
                 + _head_chunk(shape, reference_tokens.head_positions, value_bytes))
    return MemoryEstimate(
        weights=weights,
        adapter=trainable * 16,
        activations=activations,
        logits=tokens.head_positions * shape.hidden * value_bytes,
        overhead=OVERHEAD_BYTES.get(device, OVERHEAD_BYTES["cpu"]),
        parameters=parameters,
        trainable_parameters=trainable,
        workspace=workspace,
        reference=reference,
    )


def _head_chunk(shape: ModelShape, head_positions: int, value_bytes: int) -> int:
    """A chunk of the LM head: its float32 logits (the softmax is made in place in them), and in a
    16-bit dtype the head's own 16-bit output beside them."""
    rows = min(head_positions, head_chunk_rows(shape.vocab))
    return rows * shape.vocab * (4 + (value_bytes if value_bytes < 4 else 0))


def estimate_for_config(config, model_config: dict[str, Any], device: str,
                        tokens: tuple[StepTokens, StepTokens | None] | None = None) -> MemoryEstimate:
    """``estimate_training_memory`` with the settings of a ``TrainingConfig``; ``tokens`` as
    ``core.engine.batch_tokens.step_tokens_of`` gives them (the real lengths), else the worst case of ``max_length``."""
    step, reference = tokens or (None, None)
    return estimate_training_memory(
        ModelShape.from_config(model_config), batch_size=config.batch_size, max_length=config.max_length,
        lora_r=config.lora_r, target_modules=config.target_modules(), dtype=config.dtype, device=device,
        gradient_checkpointing=config.gradient_checkpointing, packed=config.packed_pairs,
        load_in_4bit=getattr(config, "load_in_4bit", False), tokens=step, reference_tokens=reference,
        reference_batch_size=config.reference_batch_size)


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


def judge_fit(estimate: MemoryEstimate, memory: DeviceMemory, advice: Sequence[str] = ()) -> FitVerdict:
    """Does the estimate fit in the device's free memory (with a margin)? ``advice``: the changes
    that would make it fit (``core.engine.memory_advice.fit_advice`` computes them)."""
    need = estimate.total
    if memory.available <= 0:
        return FitVerdict(True, f"needs about {format_bytes(need)} (free memory of {memory.name} unknown)")
    if need <= usable_bytes(memory):
        return FitVerdict(True, f"needs about {format_bytes(need)} of {format_bytes(memory.available)} "
                                f"free on {memory.name}")
    shortfall = f"needs about {format_bytes(need)}, but {memory.name} has only {format_bytes(memory.available)} free"
    change = "; or ".join(advice) if advice else "lower batch size or max length, or turn on gradient checkpointing"
    return FitVerdict(False, f"{shortfall}: {change}", tuple(advice), shortfall)


def usable_bytes(memory: DeviceMemory) -> float:
    """What a run may plan to use of the device's free memory."""
    return memory.available * USABLE_SHARE


def format_bytes(value: float) -> str:
    if value >= GIB:
        return f"{value / GIB:.1f} GiB"
    if value >= MIB:
        return f"{value / MIB:.0f} MiB"
    return f"{value / 1024:.0f} KiB"
