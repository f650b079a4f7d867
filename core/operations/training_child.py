"""The parent's end of a training process (``core.operations.training_process``), and a training
process started ahead of Start.

``TrainingChild`` is one process: its stdin for the request and the commands, its stdout read
on a thread of its own (one event per line, ``core.engine.event_wire``), the tail of its stderr
kept for the message of a child that dies. ``run_in_child`` drives a run through one.

Before its first step, a fresh process spends seconds importing torch, transformers and peft and,
on 100,000 pairs, seconds more building the training set and reading its cached tokens and
reference values (12 s in all, BENCHMARKS.md). A window takes that out of Start with a process
started when the Train tab opens:

    warm = prepare_training_process(ws)                  # returns at once; no SQL on this thread
    ...
    session = TrainingSession(ws, in_child=True, prepared=warm)
    session.start(values=form_values)                    # the run trains in the warm process
    ...
    warm.close()                                         # tab or window closed, workspace changed

The process imports the training libraries and prepares the likely run for the workspace's
settings at low priority (``core.operations.run_preparation``: the training set, the cached
tokens, the cached reference values), then waits. At Start the request goes to it, and it keeps
only what still holds: a verdict added, retracted or a pair imported since makes it build the
training set again; other settings (a new max length, another model) make it read those caches
again. It serves one run: the session takes it (``take``), and a later run needs a new one. A
prepared process that died, was closed, or was made for another workspace is not used: the run
starts a fresh process, as without one. ``values``, when given, are the form's settings to
prepare for (else the workspace's saved ones). The process ends when closed, when its parent
ends (the end of its stdin), or after its run; it holds no database connection while it waits,
but it does hold the run's data in memory (0.8 GB at 100,000 pairs). Preparing takes about as
long as a cold start (7-11 s at 100,000 pairs on two busy cores); a Start before it is done
waits for the step under way, at low priority, so the earlier it starts the better.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

_PROJECT_ROOT = Path(__file__).resolve().parents[2]
_STDERR_TAIL = 30
PREPARED = "Prepared"


def child_command() -> list[str]:
    return [sys.executable, "-u", "-m", "core.operations.training_process"]


@dataclass(frozen=True)
class PreparedSummary:
    """What a prepared process read before Start."""

    pairs: int               # examples of the training set
    tokens: int              # of them, cached tokens read
    reference: int           # of them, cached reference values read
    seconds: float           # preparing took
    problem: str | None      # why it stopped short (the run does the rest), or None


def _prepared_line(line: str) -> PreparedSummary | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("event") != PREPARED:
        return None
    return PreparedSummary(int(data.get("pairs", 0)), int(data.get("tokens", 0)), int(data.get("reference", 0)),
                           float(data.get("seconds", 0.0)), data.get("problem"))


class TrainingChild:
    """One training process, started at once (see the module's docstring)."""

    def __init__(self, location: str, runs_dir: str | None):
        self.location, self.runs_dir = location, runs_dir
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(_PROJECT_ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
        self.process = subprocess.Popen(child_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, encoding="utf-8", bufsize=1, env=env,
                                        cwd=str(_PROJECT_ROOT))
        self.tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL)
        self.prepared: PreparedSummary | None = None
        self.ready = threading.Event()           # its Prepared line came
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._send_lock = threading.Lock()
        self._stderr = threading.Thread(target=lambda: self.tail.extend(self.process.stderr),
                                        name="training-stderr", daemon=True)
        self._stderr.start()
        threading.Thread(target=self._read_events, name="training-events", daemon=True).start()

    def _read_events(self) -> None:
        try:
            for line in self.process.stdout:
                summary = _prepared_line(line)
                if summary is None:
                    self._lines.put(line)
                else:
                    self.prepared = summary
                    self.ready.set()
        except (OSError, ValueError):
            pass
        finally:
            self._lines.put(None)

    def lines(self) -> Iterator[str]:
        """Its stdout lines (Prepared lines left out) until it closes them."""
        while (line := self._lines.get()) is not None:
            yield line

    def send(self, line: str) -> None:
        with self._send_lock:
            try:
                self.process.stdin.write(line + "\n")
                self.process.stdin.flush()
            except (OSError, ValueError):   # the child has ended; nothing left to tell it
                pass

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def close_input(self) -> None:
        """The end of its stdin: a waiting process exits, a running one stops its run resumable."""
        with self._send_lock:
            try:
                self.process.stdin.close()
            except OSError:
                pass

    def wait(self) -> int:
        code = self.process.wait()
        self._stderr.join(timeout=5)
        return code

    def end(self, wait: float = 0.0) -> None:
        """Close its stdin: it exits (at once when it waits for a request). With ``wait``, wait that
        long for it; else it is reaped on a thread. Killed if it has not ended within 5 s (or ``wait``)."""
        self.close_input()
        if wait > 0:
            self._reap(wait)
        else:
            threading.Thread(target=self._reap, args=(5.0,), name="training-reaper", daemon=True).start()

    def _reap(self, timeout: float) -> None:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class PreparedTrainingProcess:
    """A training process started before Start (see the module's docstring). Any thread."""

    def __init__(self, ws, values: dict[str, Any] | None = None):
        self.location, self.runs_dir = ws.location, ws.runs_dir_choice
        self._lock = threading.Lock()
        self._child: TrainingChild | None = TrainingChild(self.location, self.runs_dir)
        self._child.send(json.dumps({"prepare": {"values": values}, "location": self.location,
                                     "runs_dir": self.runs_dir}))
        self._seen: TrainingChild | None = self._child

    @property
    def ready(self) -> bool:
        """Prepared and waiting for Start."""
        return self._seen is not None and self._seen.ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._seen is not None and self._seen.ready.wait(timeout)

    @property
    def summary(self) -> PreparedSummary | None:
        """What it prepared (None until it has)."""
        return None if self._seen is None else self._seen.prepared

    @property
    def pid(self) -> int | None:
        return None if self._seen is None else self._seen.process.pid

    @property
    def available(self) -> bool:
        """Neither taken by a run nor closed, and still running."""
        with self._lock:
            return self._child is not None and self._child.alive

    def take(self, ws) -> TrainingChild | None:
        """The process for a run on ``ws``, once: None when it was taken or closed already, has
        died, or was started for another workspace (it is then ended)."""
        with self._lock:
            child, self._child = self._child, None
        if child is None:
            return None
        if not child.alive or (ws.location, ws.runs_dir_choice) != (self.location, self.runs_dir):
            child.end()
            return None
        return child

    def close(self, wait: float = 0.0) -> None:
        """End the process unless a run took it (the run's end ends it then); returns at once
        unless ``wait`` (seconds to wait for its exit). Idempotent."""
        with self._lock:
            child, self._child = self._child, None
        if child is not None:
            child.end(wait)

    def __enter__(self) -> "PreparedTrainingProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def prepare_training_process(ws, values: dict[str, Any] | None = None) -> PreparedTrainingProcess:
    """Start a training process that prepares the likely run on ``ws`` (``values``: the settings
    to prepare for, else the workspace's saved ones) and waits for Start. Returns at once and runs
    no SQL here: safe on the UI thread. ``OSError`` if the process cannot start."""
    return PreparedTrainingProcess(ws, values)
