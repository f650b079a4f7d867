"""A training run's typed events as one line of JSON each, and back.

A run trained in a child process (``core.engine.train_child``) writes its events to its
standard output with ``to_line``; the parent (``core.operations.training_child``) reads them
with ``from_line`` and hands the same frozen dataclasses to its observer, so nothing above the
engine knows in which process the run trained.

    {"event": "StepMetrics", "step": 3, "split": "train", "metrics": {"loss": 0.69, ...}}
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from core.engine.training_control import (CheckpointSaved, MetricSplit, Phase, PhaseChanged, ReferencePassDone,
                                          Resumed, RunFinished, RunInfo, RunStarted, StepMetrics, TrainingEvent)
from storage.models import RunStatus

_EVENTS = {cls.__name__: cls for cls in (PhaseChanged, ReferencePassDone, Resumed, RunStarted, StepMetrics,
                                          CheckpointSaved, RunFinished)}
# The enum-typed fields, turned back into their enums on reading.
_ENUMS = {("PhaseChanged", "phase"): Phase, ("StepMetrics", "split"): MetricSplit,
          ("RunFinished", "status"): RunStatus}


class WireError(ValueError):
    """A line that is not a training event (the child printed something else)."""


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)            # "nan", "inf": JSON has no literal for them
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if hasattr(value, "value") and not isinstance(value, (int, float, str)):
        return value.value            # an enum
    return value


def to_line(event: TrainingEvent) -> str:
    """One line of JSON (no newline inside) for ``event``."""
    name = type(event).__name__
    if name not in _EVENTS:
        raise WireError(f"not a training event: {event!r}")
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    if isinstance(event, RunStarted):
        fields = {"info": dataclasses.asdict(event.info)}
    elif isinstance(event, StepMetrics):
        fields["metrics"] = dict(event.metrics)
    return json.dumps({"event": name, **{key: _plain(value) for key, value in fields.items()}},
                      separators=(",", ":"), allow_nan=False)


def _number(value: Any) -> Any:
    return float(value) if value in ("nan", "inf", "-inf") else value


def from_line(line: str) -> TrainingEvent:
    """The event ``to_line`` wrote; ``WireError`` for anything else."""
    try:
        data = json.loads(line)
        name = data.pop("event")
        cls = _EVENTS[name]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise WireError(f"not a training event line: {line[:200]!r}") from None
    for (event_name, field_name), enum_type in _ENUMS.items():
        if event_name == name and field_name in data:
            data[field_name] = enum_type(data[field_name])
    if cls is RunStarted:
        return RunStarted(RunInfo(**data["info"]))
    if cls is StepMetrics:
        data["metrics"] = {key: _number(value) for key, value in data["metrics"].items()}
    return cls(**data)
