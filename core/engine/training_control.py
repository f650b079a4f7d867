"""How a training run talks to whoever started it: an observer it reports to and a control
object it obeys. Plain Python (no Qt): the GUI adapts the observer to Qt signals in its
worker; the command line prints a progress bar from it.

Threading: the run calls the observer on its own (worker) thread; ``TrainingControl`` is
safe to call from any thread (the loop checks it between optimizer steps).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RunInfo:
    """What ``TrainingObserver.on_start`` receives once the data and model are ready."""

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


class TrainingObserver:
    """Callbacks of a training run; override the ones you need. All run on the training thread,
    so they must be quick and must not touch widgets directly."""

    def on_start(self, run_info: RunInfo) -> None:
        pass

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        """After every optimizer step with the train metrics (names as in ``core.engine.trainer.METRIC_NAMES``)."""

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        """After every evaluation on the held-out pairs."""

    def on_message(self, text: str) -> None:
        """Human-readable progress or warnings ("computing reference log-probs: 40/120")."""

    def on_checkpoint(self, step: int, path: str) -> None:
        pass

    def on_finish(self, status: str, error: str | None) -> None:
        """Last call: status is "completed", "stopped" or "failed" (then ``error`` says why)."""


class TrainingControl:
    """Stop / pause / resume requests for a running loop, safe from any thread."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def request_stop(self) -> None:
        """Finish the current step, save a checkpoint, mark the run stopped."""
        self._stop.set()
        self._running.set()  # a paused loop must wake up to stop

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self, timeout: float | None = None) -> bool:
        """Block while paused; True once running (or stopping), False on timeout."""
        return self._running.wait(timeout)
