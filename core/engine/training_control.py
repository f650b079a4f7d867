"""How a training run talks to whoever started it: the typed events it reports to an
observer, and a control object it obeys. Plain Python (no Qt, no torch): the GUI adapts the
events to a Qt signal in its worker; the command line prints a progress bar from them.

Every event is a small frozen dataclass; nobody reads a message's wording to learn what
happened (STYLE.md rule 12). A run reports, in order:

    PhaseChanged(LOADING_DATA) → PhaseChanged(LOADING_MODEL)
    → PhaseChanged(REFERENCE_PASS, done=n, total=N)  (once per batch; none when all cached)
    → ReferencePassDone(cached, computed, seconds) → [Resumed(from_step, checkpoint)]
    → RunStarted(info) → PhaseChanged(TRAINING)
    → StepMetrics(step, TRAIN, ...) ... with PhaseChanged(EVALUATING) + StepMetrics(step, EVAL, ...),
      PhaseChanged(SAVING) + CheckpointSaved, PhaseChanged(PAUSED) ⇄ PhaseChanged(TRAINING)
    → PhaseChanged(SAVING) (the final adapter) → RunFinished(status, error)

``RunFinished`` is always the last event, also for a run that failed or was stopped early.

Threading: the run calls the observer on its own (worker) thread; ``TrainingControl`` is
safe to call from any thread (the loop checks it between optimizer steps).
"""

from __future__ import annotations

import enum
import math
import threading
from dataclasses import dataclass, field
from typing import Mapping, Union

from storage.models import RunStatus
from storage.runs import RunRecord, is_resumable


class Phase(str, enum.Enum):
    """What a run is doing now."""

    LOADING_DATA = "loading data"        # the labelled pairs from the workspace
    LOADING_MODEL = "loading model"      # base model, tokenizer and adapter; then tokenising
    REFERENCE_PASS = "reference pass"    # the reference model's log-probs (cached in the workspace)
    TRAINING = "training"
    PAUSED = "paused"                    # held after a step; the model stays loaded
    EVALUATING = "evaluating"            # the held-out pairs
    SAVING = "saving"                    # a checkpoint, or the final adapter


class MetricSplit(str, enum.Enum):
    TRAIN = "train"
    EVAL = "eval"


@dataclass(frozen=True)
class RunInfo:
    """What a run is about to train on, once the data and model are ready."""

    run_id: str
    run_dir: str
    total_steps: int
    start_step: int              # > 0 when resuming
    train_pairs: int
    eval_pairs: int
    dropped: dict[str, int] = field(default_factory=dict)   # reason -> count of pairs left out
    device: str = "cpu"
    dtype: str = "float32"
    trainable_parameters: int = 0
    total_parameters: int = 0
    run_name: str = ""
    steps_per_epoch: int = 1
    #: True when ``max_steps`` set the run's length (then the epochs setting was not used).
    length_from_max_steps: bool = False

    @property
    def epochs(self) -> float:
        """The run's effective length in passes over the training pairs."""
        return self.total_steps / max(1, self.steps_per_epoch)


@dataclass(frozen=True)
class PhaseChanged:
    """The run entered ``phase`` (or moved on within it: the reference pass reports every batch)."""

    phase: Phase
    done: int | None = None      # REFERENCE_PASS: batches done so far
    total: int | None = None     # REFERENCE_PASS: batches in all
    step: int | None = None      # EVALUATING / SAVING / PAUSED: the optimizer step it happens at


@dataclass(frozen=True)
class ReferencePassDone:
    cached: int                  # pairs whose reference log-probs were already in the workspace
    computed: int                # pairs computed now (and cached for the next run)
    seconds: float


@dataclass(frozen=True)
class Resumed:
    """A resumed run continues from ``from_step`` (0 when it had no checkpoint yet)."""

    run_id: str
    from_step: int
    checkpoint: str | None       # the checkpoint folder's name ("step-8"), None: started again


@dataclass(frozen=True)
class RunStarted:
    info: RunInfo


@dataclass(frozen=True)
class StepMetrics:
    """One optimizer step's train metrics, or one evaluation's (names as in
    ``core.engine.trainer.METRIC_NAMES``)."""

    step: int
    split: MetricSplit
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class CheckpointSaved:
    step: int
    path: str


@dataclass(frozen=True)
class RunFinished:
    """The last event of every run. ``run_id`` is None when it failed before its row was made."""

    run_id: str | None
    status: RunStatus            # COMPLETED, STOPPED or FAILED
    error: str | None = None     # why it failed


TrainingEvent = Union[PhaseChanged, ReferencePassDone, Resumed, RunStarted, StepMetrics, CheckpointSaved,
                      RunFinished]


class TrainingObserver:
    """Receives a run's events on the training thread (be quick; never touch a widget).

    Override ``on_event`` to see every event, or the typed methods it hands them to."""

    def on_event(self, event: TrainingEvent) -> None:
        if isinstance(event, StepMetrics):
            (self.on_step if event.split == MetricSplit.TRAIN else self.on_eval)(event.step, dict(event.metrics))
        elif isinstance(event, PhaseChanged):
            self.on_phase(event)
        elif isinstance(event, RunStarted):
            self.on_start(event.info)
        elif isinstance(event, CheckpointSaved):
            self.on_checkpoint(event.step, event.path)
        elif isinstance(event, RunFinished):
            self.on_finish(event.status, event.error)
        elif isinstance(event, ReferencePassDone):
            self.on_reference_done(event)
        elif isinstance(event, Resumed):
            self.on_resumed(event)

    def on_start(self, run_info: RunInfo) -> None:
        pass

    def on_phase(self, event: PhaseChanged) -> None:
        pass

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        """After every optimizer step with the train metrics."""

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        """After every evaluation on the held-out pairs."""

    def on_reference_done(self, event: ReferencePassDone) -> None:
        pass

    def on_resumed(self, event: Resumed) -> None:
        pass

    def on_checkpoint(self, step: int, path: str) -> None:
        pass

    def on_finish(self, status: RunStatus, error: str | None) -> None:
        """Last call: COMPLETED, STOPPED or FAILED (then ``error`` says why)."""


def steps_per_epoch(train_pairs: int, batch_size: int, gradient_accumulation_steps: int) -> int:
    """Optimizer steps in one pass over the training pairs (the engine counts them so)."""
    micro_batches = math.ceil(max(train_pairs, 0) / max(batch_size, 1))
    return max(1, math.ceil(micro_batches / max(gradient_accumulation_steps, 1)))


def planned_steps(max_steps: int, num_epochs: float, per_epoch: int) -> int:
    """A run's length: ``max_steps`` when set (> 0), else the epochs' worth of steps."""
    if max_steps > 0:
        return max_steps
    return max(1, math.ceil(num_epochs * per_epoch))


def resume_refusal(run_id: str, run: RunRecord | None) -> str | None:
    """Why run ``run_id`` cannot be resumed, or None when it can (``storage.runs.is_resumable``
    decides; the trainer, ``main.py runs`` and the runs panel all ask here)."""
    if run is None:
        return f"no run {run_id!r} in this workspace"
    if is_resumable(run.status):
        return None
    if run.status == RunStatus.COMPLETED:
        return f"run {run_id} is already completed"
    if run.owner is not None:
        return (f"run {run_id} is {run.status.value} in another process (pid {run.owner.pid} on {run.owner.host}); "
                "stop it there first")
    return f"run {run_id} is {run.status.value}; only a stopped, failed or interrupted run can be resumed"


class TrainingControl:
    """Stop / pause / resume requests for a running loop, safe from any thread."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._listeners: list = []

    def listen(self, listener) -> None:
        """Call ``listener("pause" | "resume" | "stop")`` on each request (a run in another
        process gets them forwarded so: ``core.operations.training_child``)."""
        self._listeners.append(listener)

    def _tell(self, command: str) -> None:
        for listener in list(self._listeners):
            listener(command)

    def request_stop(self) -> None:
        """Finish the current step, save a checkpoint, mark the run stopped."""
        self._stop.set()
        self._running.set()  # a paused loop must wake up to stop
        self._tell("stop")

    def pause(self) -> None:
        self._running.clear()
        self._tell("pause")

    def resume(self) -> None:
        self._running.set()
        self._tell("resume")

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self, timeout: float | None = None) -> bool:
        """Block while paused; True once running (or stopping), False on timeout."""
        return self._running.wait(timeout)
