"""A training run in its own process, and the parent's end of it.

The app trains in a child process (``python -m core.operations.training_process``) rather than
on a thread of its own, so the window never shares Python's GIL with the run: the launch
check over 100,000 pairs, loading the model, tokenising and the garbage the loop makes held
the UI thread for 100-400 ms at a time when they ran in the window's process. A run's memory
(GPU memory included) goes back to the system when it ends, and a crash of the run leaves the
window standing. ``TrainingSession(ws, in_child=True)`` uses it; its events and states are the
same as in-process.

Protocol:

- the child's stdin, first line: the request, JSON ``{"location", "runs_dir", "values" | "config",
  "resume_run_id", "resume_changes", "leave_a_core"}`` — the location may hold a password, so it
  is never on the command line; then one command per line: ``pause``, ``resume``, ``stop``. The
  end of stdin (the parent is gone, even after a kill -9) asks the run to stop: it finishes the
  step, saves a checkpoint and the adapter, and ends resumable.
- a process started ahead (``core.operations.training_child.prepare_training_process``) gets
  ``{"prepare": {"values"}, "location", "runs_dir"}`` first: it prepares the likely run on a
  thread of low priority (``core.operations.run_preparation``), writes ``{"event": "Prepared",
  "pairs", "tokens", "reference", "seconds", "problem"}`` when done, and waits for the request
  line, which then goes on as above with what still holds of the preparation. The end of stdin
  before a request ends the process at once (it wrote nothing).
- the child's stdout: one event per line (``core.engine.event_wire``), flushed as it happens,
  plus ``{"event": "LaunchRefused", "problems": {...}}`` when the launch checks of ``values``
  refuse; ``RunFinished`` (or the refusal) is the last line. Anything a library prints goes to stderr.
- the child's stderr: warnings and logs; the parent keeps the tail for the message of a child
  that ends without a ``RunFinished`` (killed, out of memory).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
from typing import Any, Callable, TextIO

from core.engine.event_wire import WireError, from_line, to_line
from core.engine.training_config import TrainingConfig
from core.engine.training_control import (Phase, PhaseChanged, RunFinished, RunStarted, TrainingControl, TrainingEvent,
                                          TrainingObserver)
from core.operations.error_log import scrubbed
from core.operations.training_child import PREPARED, TrainingChild, child_command  # noqa: F401 - the parent's end
from storage.models import RunStatus

REFUSED = "LaunchRefused"
#: ``child_main``'s answer when its parent closed stdin before the request (nothing to finish).
ABANDONED = -1


# -- the child -------------------------------------------------------------------------------------
class _LineObserver(TrainingObserver):
    def __init__(self, out: TextIO):
        self._out = out
        self._lock = threading.Lock()
        self.finished = False

    def write(self, line: str) -> None:
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()

    def on_event(self, event: TrainingEvent) -> None:
        if not gc.isenabled() and (isinstance(event, (RunStarted, RunFinished)) or (
                isinstance(event, PhaseChanged) and event.phase == Phase.LOADING_MODEL)):
            gc.freeze()   # the pairs read so far: out of every later collection's way
            gc.enable()   # before the model: nothing of it may be frozen with its garbage
        self.write(to_line(event))
        self.finished = self.finished or isinstance(event, RunFinished)


def _follow_commands(stream: TextIO, control: TrainingControl) -> None:
    """Obey ``pause`` / ``resume`` / ``stop`` lines until stdin ends (then: stop)."""
    for line in stream:
        command = line.strip()
        if command == "pause":
            control.pause()
        elif command == "resume":
            control.resume()
        elif command == "stop":
            control.request_stop()
    control.request_stop()


def _leave_a_core_for_the_window() -> None:
    """CPU training on all cores but one: the window (another process now) still needs one."""
    import torch

    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        torch.set_num_threads(max(1, min(torch.get_num_threads(), (os.cpu_count() or 2) - 1)))


def _preload_while_checking(request: dict) -> None:
    """Import peft and the model's code (seconds) on a thread while the launch checks read the
    pairs: the model load waits for it under ``library_lock``, and the database reads let it run."""
    from core.engine.library_preload import preload_training_libraries

    settings = request.get("values") or request.get("config") or {}
    threading.Thread(target=preload_training_libraries, args=(str(settings.get("base_model", "")),),
                     name="preload", daemon=True).start()


def _request(line: str) -> dict | None:
    try:
        request = json.loads(line)
    except ValueError:
        return None
    return request if isinstance(request, dict) else None


def child_main(stdin: TextIO, events: TextIO) -> int:
    """The child's work: read the request (after preparing, when asked to), check it, train,
    report every event on ``events``."""
    observer = _LineObserver(events)
    request, prepared = _request(stdin.readline()), None
    if request is not None and "prepare" in request:
        from core.operations.run_preparation import Preparation

        preparation = Preparation(request.get("location"), request.get("runs_dir"),
                                  (request.get("prepare") or {}).get("values"),
                                  on_done=lambda done: observer.write(json.dumps(
                                      {"event": PREPARED, **done.summary()}, separators=(",", ":"))))
        line = stdin.readline()
        if not line:
            return ABANDONED
        request = _request(line)
        if request is not None:
            prepared = preparation.finish(request.get("location"), request.get("runs_dir"))
    if request is None:
        observer.on_event(RunFinished(None, RunStatus.FAILED, "the training process got no valid request"))
        return 2
    control = TrainingControl()
    threading.Thread(target=_follow_commands, args=(stdin, control), name="commands", daemon=True).start()
    if prepared is None:
        _preload_while_checking(request)
    # Python's collector rests while the launch checks read the pairs: 100,000 of them are millions
    # of objects, all kept, and collection after collection over them (a second here) frees nothing.
    gc.disable()
    run_id = request.get("resume_run_id")
    try:
        from storage.workspace import Workspace

        ws = Workspace.open(request["location"], create=False, runs_dir=request.get("runs_dir"))
        try:
            config = TrainingConfig.from_dict(request["config"]) if request.get("config") is not None else None
            # The prepared set while it is that of the current verdicts (one query), else None.
            training_set = prepared.current_set(ws) if prepared is not None else None
            if request.get("values") is not None:
                from core.operations.launch_checks import launch_check

                config, problems, training_set = launch_check(ws, request["values"], training_set)
                if config is None:
                    observer.write(json.dumps({"event": REFUSED, "problems": problems}, separators=(",", ":")))
                    return 0
            if control.stop_requested:   # stopped during the checks: nothing was made
                observer.on_event(RunFinished(run_id, RunStatus.STOPPED))
                return 0
            if request.get("leave_a_core"):
                _leave_a_core_for_the_window()
            from core.engine.trainer import train

            train(ws, config, observer, control, resume_run_id=run_id, resume_changes=request.get("resume_changes"),
                  training_set=training_set,   # read once: the checks' set
                  prepared=prepared.inputs if prepared is not None else None)
        finally:
            ws.close()
    except Exception as exc:  # noqa: BLE001 - the parent shows the reason; the trace goes to stderr
        from core.operations.error_log import failure_text

        reason = failure_text(exc, str(request.get("location", "")))   # a database error's trace goes to the error log
        if not observer.finished:
            import traceback

            traceback.print_exc(file=sys.stderr)
            run_id = getattr(exc, "run_id", None) or run_id   # a TrainingFailed knows its run
            observer.on_event(RunFinished(run_id, RunStatus.FAILED, reason))
    return 0


def _main() -> int:
    # Events get their own copy of stdout; fd 1 itself goes to stderr, so that whatever a
    # library prints can never be taken for an event.
    events = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    code = child_main(sys.stdin, events)
    if code == ABANDONED:   # closed while preparing: no write of ours is under way, the imports may be
        os._exit(0)
    return code


# -- the parent --------------------------------------------------------------------------------------
def _refusal(line: str) -> dict[str, str] | None:
    """The problems of a ``LaunchRefused`` line, else None."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("event") == REFUSED and isinstance(data.get("problems"), dict):
        return {str(key): str(value) for key, value in data["problems"].items()}
    return None


def run_in_child(ws, request: dict[str, Any], on_event: Callable[[TrainingEvent], None],
                 on_refused: Callable[[dict[str, str]], None], control: TrainingControl,
                 child: TrainingChild | None = None) -> None:
    """Train ``request`` (see the module's protocol; the workspace's location is added) in a child
    process on this thread, to its end: each event to ``on_event``, a refusal of the launch checks
    to ``on_refused``; pause / resume / stop requests of ``control`` are forwarded to the child.
    ``child``: a process started ahead (``PreparedTrainingProcess.take``), else a fresh one; one
    started ahead that ends before a word of the run (nothing was made) gives way to a fresh one.
    A child that ends without its ``RunFinished`` is reported as a failed run, with the last lines
    it wrote to stderr. Never raises for a failed run (``OSError`` if the child cannot start)."""
    started_ahead = child is not None
    child = child or TrainingChild(ws.location, ws.runs_dir_choice)
    heard, finished, run_id, code = _follow(child, ws, request, on_event, on_refused, control)
    if not heard and started_ahead and not control.stop_requested:
        child = TrainingChild(ws.location, ws.runs_dir_choice)
        heard, finished, run_id, code = _follow(child, ws, request, on_event, on_refused, control)
    if not finished:
        # The child's last words, with the workspace's password masked should a URL be among them.
        last = scrubbed(" ".join(line.strip() for line in list(child.tail)[-3:] if line.strip()), ws.location)
        on_event(RunFinished(run_id, RunStatus.FAILED,
                             f"the training process ended unexpectedly (exit code {code})" + (f": {last}" if last else "")))


def _follow(child: TrainingChild, ws, request: dict[str, Any], on_event, on_refused,
            control: TrainingControl) -> tuple[bool, bool, str | None, int]:
    """Send the request and pass on what the child says until it ends: (heard a line of the run,
    finished or refused, the run's id, the exit code)."""
    child.send(json.dumps({**request, "location": ws.location, "runs_dir": ws.runs_dir_choice}))
    if control.stop_requested:
        child.send("stop")
    elif control.paused:
        child.send("pause")
    control.listen(child.send)
    run_id, finished, heard = request.get("resume_run_id"), False, False
    try:
        for line in child.lines():
            line = line.strip()
            if not line:
                continue
            try:
                event = from_line(line)
            except WireError:
                refused = _refusal(line)
                if refused is None:
                    child.tail.append(line)
                else:
                    heard = finished = True
                    on_refused(refused)
                continue
            heard = True
            if isinstance(event, RunStarted):
                run_id = event.info.run_id
            finished = finished or isinstance(event, RunFinished)
            on_event(event)
    finally:
        child.close_input()
        code = child.wait()
    return heard, finished, run_id, code


if __name__ == "__main__":
    sys.exit(_main())
