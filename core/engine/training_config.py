"""Every setting of a DPO training run, in one dataclass, validated before any work starts.

A run folder's ``config.json`` is ``TrainingConfig.to_dict()`` plus library versions, so a
run can be reproduced from its folder alone. Settings come from the defaults below, an
optional TOML file (flat keys, or grouped in tables whose names are ignored) and
``key=value`` overrides (``--set lr=1e-4`` on the command line).
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storage.training_set import POLICIES

LOSS_TYPES = ("sigmoid", "ipo", "hinge", "robust")
SCHEDULES = ("linear", "cosine", "constant")
TRUNCATION_MODES = ("keep_start", "keep_end")
DEVICES = ("auto", "cuda", "mps", "cpu")
DTYPES = ("auto", "bfloat16", "float16", "float32")
SELECTION_POLICIES = POLICIES  # defined once, with the merge rules, in storage.training_set

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


class ConfigError(ValueError):
    """A setting is missing, of the wrong type or out of range; the message names it."""

    def __init__(self, key: str, message: str, source: str | None = None):
        self.key = key
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}setting '{key}': {message}")


@dataclass
class TrainingConfig:
    # -- model and adapter ------------------------------------------------------------
    base_model: str = ""                 # local HF folder, or a hub id already in the local cache
    trust_remote_code: bool = False
    device: str = "auto"                 # auto = CUDA, then Apple MPS, then CPU
    dtype: str = "auto"                  # auto = bfloat16 where the device supports it, else float32
    lora_r: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    lora_target_modules: str = "all-linear"   # or a comma-separated list: "q_proj,v_proj"
    gradient_checkpointing: bool = False
    # Like TRL (disable_dropout=True): dropout in the base model is switched off so that the
    # policy and the reference see the same deterministic network at step 0.
    disable_dropout: bool = True

    # -- data ---------------------------------------------------------------------------
    selection_policy: str = "majority"   # how verdicts of several annotators merge into a pair
    max_length: int = 512                # prompt + completion tokens, per sequence
    truncation_mode: str = "keep_start"  # keep_start: cut the end; keep_end: cut the prompt's start
    eval_split: str = "workspace"        # "workspace" (each pair's stored split), "none", or a fraction "0.1"
    length_grouping: bool = True         # batch pairs of similar length to cut padding
    # Chosen and rejected of a pair in one sequence, their shared prompt computed once (a 4D
    # attention mask keeps them apart; same log-probs to float rounding). Models whose attention
    # cannot take the mask (flash attention, sliding windows) use two rows per pair whatever this says.
    packed_pairs: bool = True

    # -- objective -----------------------------------------------------------------------
    loss_type: str = "sigmoid"
    beta: float = 0.1
    label_smoothing: float = 0.0         # sigmoid: cDPO; robust: assumed label-flip rate
    sft_weight: float = 0.0              # weight of the NLL term on the chosen response (0 = off)

    # -- optimisation --------------------------------------------------------------------
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    lr_schedule: str = "linear"
    warmup_ratio: float = 0.0            # fraction of the total steps
    warmup_steps: int = 0                # overrides warmup_ratio when > 0
    num_epochs: float = 1.0
    max_steps: int = 0                   # > 0 overrides num_epochs
    batch_size: int = 8                  # pairs per micro-batch
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 1.0           # 0 = no clipping
    seed: int = 42

    # -- bookkeeping ---------------------------------------------------------------------
    eval_interval: int = 50              # optimizer steps between evaluations (0 = only at the end)
    checkpoint_interval: int = 100       # optimizer steps between checkpoints (0 = none but the final adapter)
    keep_checkpoints: int = 2            # newest N checkpoints kept (0 = keep all)
    reference_batch_size: int = 16       # pairs per no-grad forward when pre-computing reference log-probs
    run_name: str = ""

    # -------------------------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def validate(self) -> "TrainingConfig":
        """Raise ``ConfigError`` naming the first bad setting; return self when all are good."""
        def need(ok: bool, key: str, message: str) -> None:
            if not ok:
                raise ConfigError(key, message)

        need(bool(self.base_model.strip()), "base_model",
             "no base model given (a local Hugging Face model folder or a cached hub id)")
        need(self.device in DEVICES, "device", f"must be one of {', '.join(DEVICES)}, not {self.device!r}")
        need(self.dtype in DTYPES, "dtype", f"must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        need(self.lora_r >= 1, "lora_r", f"must be at least 1, not {self.lora_r}")
        need(self.lora_alpha > 0, "lora_alpha", f"must be positive, not {self.lora_alpha}")
        need(0.0 <= self.lora_dropout < 1.0, "lora_dropout", f"must be in [0, 1), not {self.lora_dropout}")
        need(bool(self.lora_target_modules.strip()), "lora_target_modules",
             "empty; use 'all-linear' or a comma-separated list of module names")
        need(self.selection_policy in SELECTION_POLICIES, "selection_policy",
             f"must be one of {', '.join(SELECTION_POLICIES)}, not {self.selection_policy!r}")
        need(self.max_length >= 2, "max_length", f"must be at least 2 tokens, not {self.max_length}")
        need(self.truncation_mode in TRUNCATION_MODES, "truncation_mode",
             f"must be one of {', '.join(TRUNCATION_MODES)}, not {self.truncation_mode!r}")
        self.eval_fraction()  # raises on a bad eval_split
        need(self.loss_type in LOSS_TYPES, "loss_type",
             f"must be one of {', '.join(LOSS_TYPES)}, not {self.loss_type!r}")
        need(self.beta > 0 and math.isfinite(self.beta), "beta", f"must be a positive number, not {self.beta}")
        need(0.0 <= self.label_smoothing < 0.5, "label_smoothing",
             f"must be in [0, 0.5), not {self.label_smoothing}")
        need(self.label_smoothing == 0.0 or self.loss_type in ("sigmoid", "robust"), "label_smoothing",
             f"only applies to the sigmoid and robust losses, not {self.loss_type!r}")
        need(self.sft_weight >= 0 and math.isfinite(self.sft_weight), "sft_weight",
             f"must be zero or positive, not {self.sft_weight}")
        need(self.learning_rate > 0 and math.isfinite(self.learning_rate), "learning_rate",
             f"must be a positive number, not {self.learning_rate}")
        need(self.weight_decay >= 0, "weight_decay", f"must be zero or positive, not {self.weight_decay}")
        need(self.lr_schedule in SCHEDULES, "lr_schedule",
             f"must be one of {', '.join(SCHEDULES)}, not {self.lr_schedule!r}")
        need(0.0 <= self.warmup_ratio < 1.0, "warmup_ratio", f"must be in [0, 1), not {self.warmup_ratio}")
        need(self.warmup_steps >= 0, "warmup_steps", f"must be zero or positive, not {self.warmup_steps}")
        need(self.num_epochs > 0 or self.max_steps > 0, "num_epochs",
             "must be positive (or set max_steps)")
        need(self.max_steps >= 0, "max_steps", f"must be zero (use num_epochs) or positive, not {self.max_steps}")
        need(self.batch_size >= 1, "batch_size", f"must be at least 1, not {self.batch_size}")
        need(self.gradient_accumulation_steps >= 1, "gradient_accumulation_steps",
             f"must be at least 1, not {self.gradient_accumulation_steps}")
        need(self.max_grad_norm >= 0, "max_grad_norm", f"must be zero (no clipping) or positive, not {self.max_grad_norm}")
        need(self.eval_interval >= 0, "eval_interval", f"must be zero or positive, not {self.eval_interval}")
        need(self.checkpoint_interval >= 0, "checkpoint_interval",
             f"must be zero or positive, not {self.checkpoint_interval}")
        need(self.keep_checkpoints >= 0, "keep_checkpoints", f"must be zero or positive, not {self.keep_checkpoints}")
        need(self.reference_batch_size >= 1, "reference_batch_size",
             f"must be at least 1, not {self.reference_batch_size}")
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
    def from_dict(cls, values: dict[str, Any], source: str | None = None) -> "TrainingConfig":
        """Build from a dict; unknown keys and values of the wrong type raise ``ConfigError``."""
        config = cls()
        for key, value in values.items():
            config._set(key, value, source)
        return config

    @classmethod
    def from_toml(cls, path: str | Path) -> "TrainingConfig":
        return cls.from_dict(read_toml_settings(path), source=str(path))

    def with_overrides(self, assignments: list[str] | None) -> "TrainingConfig":
        """A copy with ``key=value`` assignments applied (values parsed by the field's type)."""
        config = dataclasses.replace(self)
        for assignment in assignments or []:
            if "=" not in assignment:
                raise ConfigError(assignment, "expected key=value", source="--set")
            key, raw = assignment.split("=", 1)
            config._set(key.strip(), raw.strip(), source="--set")
        return config

    def _set(self, key: str, value: Any, source: str | None) -> None:
        name = ALIASES.get(key, key)
        fields = {f.name: f for f in dataclasses.fields(self)}
        if name not in fields:
            raise ConfigError(key, f"unknown setting (known: {', '.join(sorted(fields))})", source)
        setattr(self, name, _coerce(key, fields[name].type, value, source))  # errors name what the user wrote


def _coerce(name: str, type_name: Any, value: Any, source: str | None) -> Any:
    """Parse ``value`` (a TOML value or a --set string) as the field's declared type."""
    type_name = type_name if isinstance(type_name, str) else getattr(type_name, "__name__", str(type_name))
    if type_name == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(name, f"expected true or false, not {value!r}", source)
    if type_name == "int":
        if isinstance(value, bool):
            raise ConfigError(name, f"expected a whole number, not {value!r}", source)
        if isinstance(value, int):
            return value
        try:
            number = float(str(value))
        except ValueError:
            raise ConfigError(name, f"expected a whole number, not {value!r}", source) from None
        if not number.is_integer():
            raise ConfigError(name, f"expected a whole number, not {value!r}", source)
        return int(number)
    if type_name == "float":
        if isinstance(value, bool):
            raise ConfigError(name, f"expected a number, not {value!r}", source)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(name, f"expected a number, not {value!r}", source) from None
    if isinstance(value, (dict, list)):
        raise ConfigError(name, f"expected text, not {type(value).__name__}", source)
    return str(value)


def read_toml_settings(path: str | Path) -> dict[str, Any]:
    """The settings of a TOML file as a flat dict (tables such as [lora] only group keys)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", f"{path} is not valid TOML: {exc}") from exc
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def load_config(config_file: str | Path | None = None, overrides: list[str] | None = None,
                defaults: dict[str, Any] | None = None) -> TrainingConfig:
    """Built-in defaults, then ``defaults`` (e.g. the workspace's base model), then the TOML
    file, then ``key=value`` overrides; validated."""
    config = TrainingConfig.from_dict(defaults or {}, source="workspace settings")
    if config_file is not None:
        for key, value in read_toml_settings(config_file).items():
            config._set(key, value, str(config_file))
    return config.with_overrides(overrides).validate()
