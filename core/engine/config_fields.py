"""What each training setting is, for whoever shows or checks it: label, one-line help,
choices with their human labels, group, unit and valid range.

``TrainingConfig`` declares every field with ``setting(default, FieldSpec(...))``; the GUI's
form is generated from these specs, the CLI's messages and ``TrainingConfig.problems()`` use
the same labels and ranges, so a setting is described in one place only.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from storage.training_set import POLICIES, POLICY_LABELS

# The groups of the form, in the order it shows them.
MODEL, LORA, LOSS, OPTIMISATION, DATA, RUN = "Model", "LoRA adapter", "Loss", "Optimisation", "Data", "Run"
GROUPS = (MODEL, LORA, LOSS, OPTIMISATION, DATA, RUN)


class Choice(NamedTuple):
    value: str        # what config.json and --set hold
    label: str        # what a person reads


LOSS_CHOICES = (Choice("sigmoid", "Sigmoid (DPO)"), Choice("ipo", "IPO"), Choice("hinge", "Hinge (SLiC)"),
                Choice("robust", "Robust DPO"))
SCHEDULE_CHOICES = (Choice("linear", "Linear decay"), Choice("cosine", "Cosine decay"),
                    Choice("constant", "Constant"))
TRUNCATION_CHOICES = (Choice("keep_start", "Cut the end"), Choice("keep_end", "Cut the prompt's start"))
DEVICE_CHOICES = (Choice("auto", "Automatic"), Choice("cuda", "CUDA GPU"),
                  Choice("mps", "Apple GPU (MPS)"), Choice("cpu", "CPU"))
DTYPE_CHOICES = (Choice("auto", "Automatic"), Choice("bfloat16", "bfloat16"), Choice("float16", "float16"),
                 Choice("float32", "float32 (full)"))
# Where a run that continues an earlier round starts (core.engine.run_start).
START_CHOICES = (Choice("adapter", "Previous round's adapter (DPO paper)"), Choice("base", "Base model, all verdicts"))
# How several annotators' verdicts on a pair merge: the policies and their labels are storage.training_set's.
SELECTION_POLICY_CHOICES = tuple(Choice(policy, POLICY_LABELS[policy]) for policy in POLICIES)


def is_gpu_index(device: Any) -> bool:
    """``cuda:0``, ``cuda:1``…: one GPU of several, as the device picker lists them (a device
    value beside ``DEVICE_CHOICES``)."""
    return isinstance(device, str) and device.startswith("cuda:") and device[5:].isdigit()


def values_of(choices: tuple[Choice, ...]) -> tuple[str, ...]:
    return tuple(choice.value for choice in choices)


@dataclass(frozen=True)
class FieldSpec:
    label: str
    help: str                                 # one sentence: the form's tooltip
    group: str
    choices: tuple[Choice, ...] = ()
    unit: str = ""                            # shown after the number ("tokens", "pairs", "steps")
    minimum: float | None = None
    maximum: float | None = None
    exclusive_min: bool = False               # value must be > minimum (not >=)
    exclusive_max: bool = False
    decimals: int = 3                         # a float field's precision in the form
    step: float = 1.0                         # a spin box's step
    log_scale: bool = False                   # spin steps multiply (learning rates)
    zero_means: str = ""                      # what 0 stands for ("use epochs", "no clipping")
    advanced: bool = False                    # folded away in the form until asked for

    def range_problem(self, value: float) -> str | None:
        """Why ``value`` is out of this field's range, or None."""
        low, high = self.minimum, self.maximum
        too_low = low is not None and (value <= low if self.exclusive_min else value < low)
        too_high = high is not None and (value >= high if self.exclusive_max else value > high)
        if not (too_low or too_high or not math.isfinite(value)):
            return None
        shown = _number(value)
        if low is not None and high is not None and self.exclusive_max:   # a true interval: [0, 1)
            left = "(" if self.exclusive_min else "["
            return f"must be in {left}{_number(low)}, {_number(high)}), not {shown}"
        if too_high:
            return f"must be {'below' if self.exclusive_max else 'at most'} {_number(high)}, not {shown}"
        if low == 0 and self.exclusive_min:
            return f"must be a positive number, not {shown}"
        if low == 0:
            return f"must be zero{f' ({self.zero_means})' if self.zero_means else ''} or positive, not {shown}"
        if low is not None:
            return f"must be {'above' if self.exclusive_min else 'at least'} {_number(low)}, not {shown}"
        return f"must be a finite number, not {shown}"


def setting(default: Any, spec: FieldSpec) -> Any:
    """A dataclass field carrying its ``FieldSpec`` (read back with ``spec_of``)."""
    return dataclasses.field(default=default, metadata={"spec": spec})


def spec_of(field: dataclasses.Field) -> FieldSpec:
    return field.metadata["spec"]


def _number(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


@dataclass(frozen=True)
class Problem:
    """One bad setting: which one, why, and where the value came from (a TOML file, --set)."""

    key: str
    message: str
    source: str | None = None

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}setting '{self.key}': {self.message}"


class ConfigError(ValueError):
    """One or more settings are missing, of the wrong type or out of range; the message names
    each (one line per problem); ``problems`` holds them all."""

    def __init__(self, key: str, message: str, source: str | None = None,
                 problems: list[Problem] | None = None):
        self.problems = list(problems) if problems else [Problem(key, message, source)]
        self.key = self.problems[0].key
        self.source = self.problems[0].source
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def of(cls, problems: list[Problem]) -> "ConfigError":
        first = problems[0]
        return cls(first.key, first.message, first.source, problems)


def coerce(name: str, type_name: Any, value: Any) -> Any:
    """Parse ``value`` (a TOML value, a --set string, a form's value) as the field's declared
    type; ``ValueError`` with the reason otherwise (the caller names the setting)."""
    type_name = type_name if isinstance(type_name, str) else getattr(type_name, "__name__", str(type_name))
    if type_name == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true or false, not {value!r}")
    if type_name == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            number = float(str(value)) if not isinstance(value, bool) else math.nan
        except ValueError:
            number = math.nan
        if not number.is_integer():
            raise ValueError(f"expected a whole number, not {value!r}")
        return int(number)
    if type_name == "float":
        if isinstance(value, bool):
            raise ValueError(f"expected a number, not {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected a number, not {value!r}") from None
    if isinstance(value, (dict, list)):
        raise ValueError(f"expected text, not {type(value).__name__}")
    return str(value)
