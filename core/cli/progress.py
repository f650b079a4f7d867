"""The command line's one progress printer: a bar redrawn in place (carriage return) on a
terminal, a plain line every 10% when the output is piped or logged, nothing with ``--quiet``.
Every command's long work (the reference pass, training, evaluation, demo-eval, big imports and
exports) draws through ``ProgressBar``.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from core.operations.wording import format_duration


def quiet_libraries() -> None:
    """Silence transformers' own loading bars (for ``--quiet``)."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["TRANSFORMERS_NO_ADVISORY_WARNINGS"] = "1"
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    else:
        os.environ["TRANSFORMERS_VERBOSITY"] = "error"
        os.environ["DISABLE_TQDM"] = "1"


class ProgressBar:
    """``bar(done, total, extra="")``: a one-line bar on a terminal (redrawn at most 10 times a
    second), a line at each 10% otherwise; the last call (done == total) ends the line."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30, quiet: bool = False,
                 tty: bool | None = None):
        self.label, self.width, self.quiet = label, width, quiet
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self._last = 0.0
        self._decile = -1
        self._ended = False

    def __call__(self, done: int, total: int, extra: str = "") -> None:
        if self.quiet or self._ended:
            return
        fraction = min(done / total, 1.0) if total else 1.0
        finished = done >= total
        filled = int(self.width * fraction)
        text = f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {fraction:6.1%}" + (
            f"  {extra}" if extra else "")
        if self.tty:
            now = time.monotonic()
            if not finished and now - self._last < 0.1:
                return
            self._last = now
            self.stream.write(f"\r\033[K{text}" + ("\n" if finished else ""))
        else:
            decile = int(fraction * 10)
            if decile == self._decile and not finished:
                return
            self._decile = decile
            self.stream.write(text + "\n")
        self._ended = finished
        self.stream.flush()

    def end(self) -> None:
        """End a bar that stopped short (a stop, a failure): the next line starts clean."""
        if not self.quiet and self.tty and not self._ended and self._last:
            self.stream.write("\n")
            self.stream.flush()
        self._ended = True


class StageProgress:
    """``progress(stage, done, total)``: one ``ProgressBar`` per stage, in order.

    ``min_total``/``min_seconds`` keep quick work quiet: a stage draws once it reports a point
    short of its end with ``total >= min_total`` (the readers report every 2,000 rows, the
    storing and writing stages count rows, so this means a few thousand rows, however many files
    they sit in), or once ``min_seconds`` passed since the progress began. From then on every
    stage draws. The defaults (0, 0) draw everything."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False, min_total: int = 0,
                 min_seconds: float = 0.0):
        self.stream, self.quiet = stream or sys.stderr, quiet
        self.min_total, self.min_seconds = min_total, min_seconds
        self.started = time.monotonic()
        self.showing = not (min_total or min_seconds)
        self.bars: dict[str, ProgressBar] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.quiet:
            return
        if not self.showing:
            long_work = (self.min_total and total >= self.min_total and done < total) or (
                self.min_seconds and time.monotonic() - self.started >= self.min_seconds)
            if not long_work:
                return
            self.showing = True
        if stage not in self.bars:
            self.bars[stage] = ProgressBar(stage, self.stream, quiet=self.quiet)
        self.bars[stage](done, total)

    def end(self) -> None:
        """End any bar left open (a refusal mid-stage), so that the message starts on a clean line."""
        for bar in self.bars.values():
            bar.end()


class ProgressPrinter:
    """A one-line progress bar with ETA on a terminal; plain lines every 10% otherwise. Its
    ``on_event`` takes a training session's events (``core.engine.training_control``)."""

    WIDTH = 28

    def __init__(self, stream=None, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self.total = 0
        self.start_step = 0
        self.started = time.monotonic()
        self.last_line = -1
        self.reference_bar: ProgressBar | None = None

    def on_event(self, event) -> None:
        from core.engine.training_control import (MetricSplit, Phase, PhaseChanged, ReferencePassDone, Resumed,
                                                  RunFinished, RunStarted, StepMetrics)

        if isinstance(event, StepMetrics) and event.split == MetricSplit.TRAIN:
            self.step(event.step, event.metrics)
        elif isinstance(event, StepMetrics):
            metrics = event.metrics
            self.line(f"eval @ step {event.step}: loss {metrics['loss']:.4f}  accuracy "
                      f"{metrics['rewards/accuracies']:.3f}  margin {metrics['rewards/margins']:.4f}"
                      + ("  [likelihood displacement: chosen log-prob below reference]"
                         if metrics.get("likelihood_displacement") else ""))
        elif isinstance(event, PhaseChanged) and event.phase == Phase.REFERENCE_PASS and event.total:
            if self.reference_bar is None:
                self.reference_bar = ProgressBar("reference log-probs", self.stream, quiet=self.quiet, tty=self.tty)
            self.reference_bar(event.done, event.total, f"batch {event.done}/{event.total}")
        elif isinstance(event, PhaseChanged) and event.phase == Phase.LOADING_MODEL:
            self.line("loading the model…")
        elif isinstance(event, ReferencePassDone):
            if self.reference_bar is not None:
                self.reference_bar.end()
            self.line(f"reference log-probs: {event.cached} cached, {event.computed} computed "
                      f"in {event.seconds:.1f}s")
        elif isinstance(event, Resumed):
            self.line(f"resumed run {event.run_id} from {event.checkpoint}" if event.checkpoint else
                      f"run {event.run_id} had no checkpoint yet; starting it again from step 0")
        elif isinstance(event, RunStarted):
            info = event.info
            self.total, self.start_step = info.total_steps, info.start_step
            self.started = time.monotonic()
            dropped = ", ".join(f"{n} {reason}" for reason, n in info.dropped.items() if n) or "none"
            length = f"{info.total_steps} steps = {info.epochs:.1f} epochs" + (
                " (set by max_steps)" if info.length_from_max_steps else "")
            self.line(f"run {info.run_id}: {info.train_pairs} train / {info.eval_pairs} eval pairs "
                      f"(left out: {dropped}); {length}; {info.trainable_parameters:,} trainable parameters; "
                      f"{info.device} {info.dtype}")
        elif isinstance(event, RunFinished) and self.tty and not self.quiet:
            self.stream.write("\n")

    def end(self) -> None:
        """A bar left open (a failure mid-line): end it, so that the next message starts clean."""
        if self.reference_bar is not None:
            self.reference_bar.end()
        if self.tty and not self.quiet and self.last_line != -2:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def line(self, text: str) -> None:
        if self.quiet:
            return
        prefix = "\r\033[K" if self.tty else ""
        self.stream.write(f"{prefix}{text}\n")
        self.stream.flush()

    def step(self, step: int, metrics) -> None:
        if self.quiet or not self.total:
            return
        done = step - self.start_step
        elapsed = time.monotonic() - self.started
        eta = elapsed / max(done, 1) * (self.total - step)
        fraction = step / self.total
        bar = "#" * int(fraction * self.WIDTH)
        text = (f"[{bar:<{self.WIDTH}}] {step}/{self.total}  loss {metrics['loss']:.4f}  "
                f"acc {metrics['rewards/accuracies']:.2f}  margin {metrics['rewards/margins']:.3f}  "
                f"{metrics['tokens_per_second']:.0f} tok/s  ETA {format_duration(eta, with_seconds=True)}")
        if self.tty:
            self.stream.write("\r\033[K" + text)
            self.stream.flush()
        elif int(fraction * 10) != self.last_line or step == self.total:
            self.last_line = int(fraction * 10)
            self.stream.write(text + "\n")
            self.stream.flush()
