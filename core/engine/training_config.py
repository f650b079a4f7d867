"""Every setting of a DPO training run, in one dataclass, validated before any work starts.

A run folder's ``config.json`` is ``TrainingConfig.to_dict()`` plus library versions, so a
run can be reproduced from its folder alone. Settings come from the defaults below, an
optional TOML file (flat keys, or grouped in tables whose names are ignored) and
``key=value`` overrides (``--set lr=1e-4`` on the command line). Each field carries its
``FieldSpec`` (label, help, choices, group, range: ``core.engine.config_fields``), from which
the GUI's form is generated; ``problems()`` lists every bad setting at once.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:   # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

from core.engine.config_fields import (DATA, DEVICE_CHOICES, DTYPE_CHOICES, LORA, LOSS, LOSS_CHOICES, MODEL,
                                       OPTIMISATION, RUN, SCHEDULE_CHOICES, SELECTION_POLICY_CHOICES, START_CHOICES,
                                       TRUNCATION_CHOICES, Choice, ConfigError, FieldSpec, Problem, coerce,
                                       is_gpu_index, setting, spec_of, values_of)

__all__ = ["Choice", "ConfigError", "Problem", "TrainingConfig", "load_config"]

LOSS_TYPES = values_of(LOSS_CHOICES)
SCHEDULES = values_of(SCHEDULE_CHOICES)
TRUNCATION_MODES = values_of(TRUNCATION_CHOICES)
DEVICES = values_of(DEVICE_CHOICES)
DTYPES = values_of(DTYPE_CHOICES)
SELECTION_POLICIES = values_of(SELECTION_POLICY_CHOICES)

# Short names accepted in TOML files and --set (the long name is what config.json holds).
ALIASES = {
    "lr": "learning_rate",
    "model": "base_model",
    "epochs": "num_epochs",
    "steps": "max_steps",
    "r": "lora_r",
    "rank": "lora_r",
    "grad_accum": "gradient_accumulation_steps",
    "sft": "sft_weight",
}
Spec = FieldSpec
TYPE_WORDS = {"bool": "true or false", "int": "a whole number", "float": "a number", "str": "text"}


@dataclass
class TrainingConfig:
    # -- model and adapter -------------------------------------------------------------------
    base_model: str = setting("", Spec(
        "Base model", "The model to fine-tune: a local Hugging Face folder or a hub id already in the local cache.",
        MODEL))
    device: str = setting("auto", Spec(
        "Device", "Where to train: automatic picks a CUDA GPU, then Apple MPS, then the CPU.", MODEL,
        DEVICE_CHOICES))
    dtype: str = setting("auto", Spec(
        "Precision", "Number format of the frozen weights: automatic is bfloat16 on a GPU that has it, else float32.",
        MODEL, DTYPE_CHOICES))
    processes: int = setting(1, Spec(
        "Processes", "Data-parallel training processes, one per GPU: each takes a batch, and the step averages them.",
        MODEL, minimum=1, maximum=64, advanced=True))
    gradient_checkpointing: bool = setting(False, Spec(
        "Gradient checkpointing", "Recompute activations in the backward pass: much less memory, a third more time.",
        MODEL))
    load_in_4bit: bool = setting(False, Spec(
        "4-bit base (QLoRA)", "Hold the frozen base in 4 bits (NF4) on a CUDA GPU: about a quarter of the memory.",
        MODEL, advanced=True))
    trust_remote_code: bool = setting(False, Spec(
        "Trust remote code", "Let a model folder run its own Python code (only for models you trust).", MODEL,
        advanced=True))
    # Like TRL (disable_dropout=True): dropout in the base model is switched off so that the
    # policy and the reference see the same deterministic network at step 0.
    disable_dropout: bool = setting(True, Spec(
        "Disable base dropout", "Switch off the base model's dropout so policy and reference agree at step 0.",
        MODEL, advanced=True))
    # Rounds (core.engine.run_start): a run may continue from an earlier run. From its adapter,
    # the parent's model is also the reference (the model the new pairs were sampled from, as in
    # the DPO paper) and the run trains on the pairs that model generated; from the base, a fresh
    # LoRA trains on every verdict against the base, and the parent only names the round.
    start_from_run: str = setting("", Spec(
        "Previous round", "The run this one continues from (its id; empty = a first round on the base model).",
        MODEL))
    start_from: str = setting("adapter", Spec(
        "Start from", "Continue the previous round's adapter on its model's new pairs, or start over on all verdicts.",
        MODEL, START_CHOICES))
    lora_r: int = setting(8, Spec(
        "Rank r", "Size of the low-rank update: higher learns more but trains more weights.", LORA,
        minimum=1, maximum=4096))
    lora_alpha: float = setting(16.0, Spec(
        "Alpha", "Scale of the LoRA update (the update is multiplied by alpha / r).", LORA,
        minimum=0, exclusive_min=True, maximum=100_000, decimals=2))
    lora_dropout: float = setting(0.0, Spec(
        "Dropout", "Dropout on the adapter's input during training (0 = none).", LORA,
        minimum=0, maximum=1, exclusive_max=True, step=0.05))
    lora_target_modules: str = setting("all-linear", Spec(
        "Target modules", "Which linear layers get an adapter: all-linear, or names like q_proj,v_proj.", LORA))

    # -- objective ---------------------------------------------------------------------------
    loss_type: str = setting("sigmoid", Spec(
        "Loss", "Sigmoid is the DPO paper's loss; IPO, hinge and robust behave better on noisy or saturated pairs.",
        LOSS, LOSS_CHOICES))
    beta: float = setting(0.1, Spec(
        "β (beta)", "How far the tuned model may drift: higher keeps it closer, lower lets the preference win more.",
        LOSS, minimum=0, exclusive_min=True, maximum=1000, decimals=4, step=0.05))
    sft_weight: float = setting(0.0, Spec(
        "SFT weight", "Also train on the chosen answers as plain examples (0 = off): keeps them likely.", LOSS,
        minimum=0, maximum=1000, step=0.5, zero_means="off"))
    label_smoothing: float = setting(0.0, Spec(
        "Label smoothing", "Assume this share of labels is wrong (cDPO; sigmoid and robust losses only).", LOSS,
        minimum=0, maximum=0.5, exclusive_max=True, step=0.05))

    # -- optimisation ------------------------------------------------------------------------
    learning_rate: float = setting(5e-5, Spec(
        "Learning rate", "Step size of the optimizer: LoRA usually wants 1e-5 to 5e-4.", OPTIMISATION,
        minimum=0, exclusive_min=True, maximum=1, decimals=10, log_scale=True))
    num_epochs: float = setting(1.0, Spec(
        "Epochs", "How many passes over the training pairs (ignored when max steps is set).", OPTIMISATION,
        minimum=0, maximum=100_000, decimals=2, step=0.5))
    max_steps: int = setting(0, Spec(
        "Max steps", "Stop after this many optimizer steps (0 = use epochs).", OPTIMISATION, unit="steps",
        minimum=0, maximum=100_000_000, step=50, zero_means="use epochs"))
    batch_size: int = setting(8, Spec(
        "Batch size", "Pairs per forward pass: higher is faster per pair and needs more memory.", OPTIMISATION,
        unit="pairs", minimum=1, maximum=65_536))
    gradient_accumulation_steps: int = setting(1, Spec(
        "Accumulation", "Batches added up before each optimizer step (effective batch = batch size × this).",
        OPTIMISATION, minimum=1, maximum=65_536))
    lr_schedule: str = setting("linear", Spec(
        "LR schedule", "How the learning rate changes over the run, after the warm-up.", OPTIMISATION,
        SCHEDULE_CHOICES))
    warmup_ratio: float = setting(0.0, Spec(
        "Warm-up", "Share of the steps over which the learning rate ramps up from 0.", OPTIMISATION,
        minimum=0, maximum=1, exclusive_max=True, step=0.05))
    warmup_steps: int = setting(0, Spec(
        "Warm-up steps", "Warm-up length in optimizer steps; when above 0 it replaces the warm-up share.",
        OPTIMISATION, unit="steps", minimum=0, maximum=10_000_000, zero_means="use the share", advanced=True))
    weight_decay: float = setting(0.0, Spec(
        "Weight decay", "AdamW's pull of the adapter weights towards zero (0 = none).", OPTIMISATION,
        minimum=0, maximum=10, step=0.01, advanced=True))
    max_grad_norm: float = setting(1.0, Spec(
        "Gradient clipping", "Largest gradient norm before a step is scaled down (0 = no clipping).", OPTIMISATION,
        minimum=0, maximum=1e6, step=0.1, zero_means="no clipping", advanced=True))

    # -- data --------------------------------------------------------------------------------
    selection_policy: str = setting("majority", Spec(
        "Verdict merge", "How several annotators' verdicts on a pair become one training example.", DATA,
        SELECTION_POLICY_CHOICES))
    eval_split: str = setting("workspace", Spec(
        "Eval split", "Held-out pairs: 'workspace' (each pair's stored split), 'none', or a fraction like 0.1.",
        DATA))
    max_length: int = setting(512, Spec(
        "Max length", "Tokens per prompt + answer; longer pairs are cut, and dropped if no answer token is left.",
        DATA, unit="tokens", minimum=2, maximum=1_048_576, step=64))
    truncation_mode: str = setting("keep_start", Spec(
        "Truncation", "What a too-long pair loses: its end, or the start of its prompt.", DATA,
        TRUNCATION_CHOICES, advanced=True))
    length_grouping: bool = setting(True, Spec(
        "Group by length", "Batch pairs of similar length together to cut padding.", DATA, advanced=True))
    # Chosen and rejected of a pair in one sequence, their shared prompt computed once (a 4D
    # attention mask keeps them apart; same log-probs to float rounding). Models whose attention
    # cannot take the mask (flash attention, sliding windows) use two rows per pair whatever this says.
    packed_pairs: bool = setting(True, Spec(
        "Pack pairs", "Put chosen and rejected in one sequence so their shared prompt is computed once.", DATA,
        advanced=True))

    # -- run bookkeeping ---------------------------------------------------------------------
    run_name: str = setting("", Spec("Run name", "A name for the runs list (the run id when empty).", RUN))
    eval_interval: int = setting(50, Spec(
        "Eval every", "Optimizer steps between evaluations on the held-out pairs (0 = only at the end).", RUN,
        unit="steps", minimum=0, maximum=10_000_000, step=10, zero_means="only at the end"))
    checkpoint_interval: int = setting(100, Spec(
        "Checkpoint every", "Optimizer steps between saved checkpoints (a stopped run resumes from the newest).",
        RUN, unit="steps", minimum=0, maximum=10_000_000, step=10, zero_means="final adapter only"))
    seed: int = setting(42, Spec(
        "Seed", "Random seed: the same seed and data give the same run.", RUN, minimum=0, maximum=2**31 - 1))
    keep_checkpoints: int = setting(2, Spec(
        "Keep checkpoints", "How many of the newest checkpoints stay on disk (0 = keep all).", RUN,
        minimum=0, maximum=10_000, zero_means="keep all", advanced=True))
    reference_batch_size: int = setting(16, Spec(
        "Reference batch", "Pairs per forward pass when the reference log-probs are computed up front.", RUN,
        unit="pairs", minimum=1, maximum=65_536, advanced=True))

    # -- the fields and their specs --------------------------------------------------------
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def specs(cls) -> dict[str, FieldSpec]:
        """Every setting's ``FieldSpec``, in declaration order."""
        return {f.name: spec_of(f) for f in dataclasses.fields(cls)}

    @classmethod
    def field_types(cls) -> dict[str, str]:
        """Setting name -> "bool", "int", "float" or "str"."""
        return {f.name: f.type if isinstance(f.type, str) else f.type.__name__ for f in dataclasses.fields(cls)}

    # -- checks ----------------------------------------------------------------------------
    def problems(self) -> list[Problem]:
        """Every bad setting at once, each naming its field (empty when all are good)."""
        found: list[Problem] = []
        types = self.field_types()
        for key, spec in self.specs().items():
            value = getattr(self, key)
            try:
                typed = coerce(key, types[key], value)
            except ValueError as exc:
                found.append(Problem(key, str(exc)))
                continue
            if type(typed) is not type(value) and types[key] != "float":
                found.append(Problem(key, f"expected {TYPE_WORDS[types[key]]}, not {value!r}"))
                continue
            if spec.choices and value not in values_of(spec.choices) and not (key == "device" and is_gpu_index(value)):
                found.append(Problem(key, f"must be one of {', '.join(values_of(spec.choices))}, not {value!r}"))
            elif types[key] in ("int", "float") and (spec.minimum is not None or spec.maximum is not None):
                reason = spec.range_problem(float(value))
                if reason:
                    found.append(Problem(key, reason))
        bad = {p.key for p in found}

        def need(ok: bool, key: str, message: str) -> None:
            if not ok and key not in bad:
                found.append(Problem(key, message))
                bad.add(key)

        need(bool(str(self.base_model).strip()), "base_model",
             "no base model given (a local Hugging Face model folder or a cached hub id)")
        need(bool(str(self.lora_target_modules).strip()), "lora_target_modules",
             "empty; use 'all-linear' or a comma-separated list of module names")
        need(self.label_smoothing == 0.0 or self.loss_type in ("sigmoid", "robust") or "loss_type" in bad,
             "label_smoothing", f"only applies to the sigmoid and robust losses, not {self.loss_type!r}")
        need("max_steps" in bad or self.num_epochs > 0 or self.max_steps > 0, "num_epochs",
             "must be positive (or set max_steps)")
        need(self.processes == 1 or self.device in ("auto", "cuda", "cpu") or "device" in bad, "processes",
             f"more than one process trains on all GPUs (device cuda) or the CPU, not on {self.device!r}")
        try:
            self.eval_fraction()
        except ConfigError as exc:
            need(False, "eval_split", exc.problems[0].message)
        order = list(self.specs())
        return sorted(found, key=lambda p: order.index(p.key))

    def validate(self) -> "TrainingConfig":
        """Raise ``ConfigError`` naming every bad setting; return self when all are good."""
        problems = self.problems()
        if problems:
            raise ConfigError.of(problems)
        return self

    def eval_fraction(self) -> float | None:
        """None: use each pair's stored split; 0.0: no evaluation; else a fraction of pairs held out."""
        value = str(self.eval_split).strip().lower()
        if value == "workspace":
            return None
        if value == "none":
            return 0.0
        try:
            fraction = float(value)
        except ValueError:
            raise ConfigError("eval_split", f"must be 'workspace', 'none' or a fraction like 0.1, not {self.eval_split!r}")
        if not 0.0 <= fraction < 1.0:
            raise ConfigError("eval_split", f"a fraction must be in [0, 1), not {fraction}")
        return fraction

    def target_modules(self) -> str | list[str]:
        value = self.lora_target_modules.strip()
        return value if value == "all-linear" else [m.strip() for m in value.split(",") if m.strip()]

    # -- (de)serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def parse(cls, values: dict[str, Any], source: str | None = None,
              sources: dict[str, str | None] | None = None) -> tuple["TrainingConfig", list[Problem]]:
        """A config from ``values`` (typed or text, short names allowed) and *every* problem:
        unknown names, wrong types and bad values. A bad setting keeps its default in the
        returned config. ``sources`` names where each key's value came from."""
        config, problems = cls(), []
        sources = sources or {}
        for key, value in values.items():
            try:
                config._set(key, value, sources.get(key, source))
            except ConfigError as exc:
                problems += exc.problems
        written = {ALIASES.get(key, key): key for key in values}
        typed_bad = {ALIASES.get(p.key, p.key) for p in problems}
        for problem in config.problems():
            if problem.key in typed_bad:
                continue
            key = written.get(problem.key, problem.key)
            problems.append(Problem(key, problem.message, sources.get(key, source if key in values else None)))
        return config, problems

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str | None = None) -> "TrainingConfig":
        """Build from a dict; unknown keys and values of the wrong type raise ``ConfigError``
        (naming all of them); ranges are checked by ``validate``."""
        return cls().with_values(values, source)

    @classmethod
    def from_toml(cls, path: str | Path) -> "TrainingConfig":
        return cls.from_dict(read_toml_settings(path), source=str(path))

    def with_values(self, values: dict[str, Any], source: str | None = None) -> "TrainingConfig":
        """A copy with ``values`` applied (a preset, a saved config); every unknown name or
        wrongly typed value is reported in one ``ConfigError``."""
        config, problems = dataclasses.replace(self), []
        for key, value in values.items():
            try:
                config._set(key, value, source)
            except ConfigError as exc:
                problems += exc.problems
        if problems:
            raise ConfigError.of(problems)
        return config

    def with_overrides(self, assignments: list[str] | None) -> "TrainingConfig":
        """A copy with ``key=value`` assignments applied (values parsed by the field's type)."""
        return self.with_values(parse_assignments(assignments), source="--set")

    def _set(self, key: str, value: Any, source: str | None) -> None:
        name = ALIASES.get(key, key)
        types = self.field_types()
        if name not in types:
            raise ConfigError(key, f"unknown setting (known: {', '.join(sorted(types))})", source)
        try:
            setattr(self, name, coerce(key, types[name], value))
        except ValueError as exc:   # the message names what the user wrote
            raise ConfigError(key, str(exc), source) from None


def parse_assignments(assignments: list[str] | None) -> dict[str, str]:
    """``["lr=1e-4", "steps=20"]`` -> ``{"lr": "1e-4", "steps": "20"}``."""
    values: dict[str, str] = {}
    for assignment in assignments or []:
        if "=" not in assignment:
            raise ConfigError(assignment, "expected key=value", source="--set")
        key, raw = assignment.split("=", 1)
        values[key.strip()] = raw.strip()
    return values


def read_toml_settings(path: str | Path) -> dict[str, Any]:
    """The settings of a TOML file as a flat dict (tables such as [lora] only group keys). One
    setting in two places (``lr`` in [optim], ``learning_rate`` in [train]) is refused."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", f"{path} is not valid TOML: {exc}") from exc
    flat: dict[str, Any] = {}
    seen: dict[str, str] = {}    # long name -> where it was set ("[lora] r", "the top level")
    for table_or_key, value in data.items():
        entries = value.items() if isinstance(value, dict) else [(table_or_key, value)]
        table = f"[{table_or_key}]" if isinstance(value, dict) else "the top level"
        for key, item in entries:
            name = ALIASES.get(key, key)
            here = f"{table} {key}" if key != name else table
            if name in seen:
                raise ConfigError(key, f"set twice: in {seen[name]} and in {here}; keep one", str(path))
            seen[name] = here
            flat[key] = item
    return flat


def load_config(config_file: str | Path | None = None, overrides: list[str] | None = None,
                defaults: dict[str, Any] | None = None) -> TrainingConfig:
    """Built-in defaults, then ``defaults`` (e.g. the workspace's base model), then the TOML
    file, then ``key=value`` overrides; validated. Every problem of every source is reported
    in one ``ConfigError``, each with where its value came from."""
    layers = [(dict(defaults or {}), "workspace settings")]
    if config_file is not None:
        layers.append((read_toml_settings(config_file), str(config_file)))
    layers.append((parse_assignments(overrides), "--set"))
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for layer, source in layers:
        for key, value in layer.items():
            for earlier in [k for k in values if ALIASES.get(k, k) == ALIASES.get(key, key)]:
                del values[earlier], sources[earlier]   # a later source wins over an earlier one
            values[key], sources[key] = value, source
    config, problems = TrainingConfig.parse(values, sources=sources)
    if problems:
        raise ConfigError.of(problems)
    return config
