"""Training, the user action: the settings a new run starts from, and ``TrainingSession``, one
run's start / pause / resume / stop with its state machine and typed events. Plain Python
(no Qt); the GUI's ``TrainingWorker`` adapts the events to a signal, ``main.py train`` prints
a progress bar from them.

    session = TrainingSession(ws, on_event=print)
    session.start(values=config.to_dict())   # idle -> starting (returns at once; any thread)
    problems = session.check()       # the launch checks (reads the database; {} = go on)
    outcome = session.run()          # the work, on the calling thread, to the end
    session.pause() / .resume() / .stop()   # from any thread while it runs

States (``SessionState``)::

    idle ─start─► starting ─RunStarted─► running ⇄ paused        (pause / resume)
      ▲              │                      │         │
      └─LaunchRefused┘            stop ─────┴─────────┴──► stopping
                     starting/running/paused/stopping ─RunFinished─► finished

In the app a run trains in a child process (``in_child=True``), ideally one started before
Start: ``TrainingSession(ws, in_child=True, prepared=prepare_training_process(ws))``
(``core.operations.training_child``), which has imported the libraries and read the likely run's
data by then and keeps of it only what still holds.

``start(values=...)`` takes settings as typed or as values: ``check()`` runs the launch checks
(``core.operations.launch_checks.launch_problems``: every bad setting, the model folder, the
labelled pairs — it builds the training set, so call it off the UI thread) and, on a refusal,
reports ``LaunchRefused`` and goes back to idle; ``run()`` checks first if ``check()`` was not
called. ``start(config)`` (a validated config) and ``start(resume_run_id=...)`` skip the checks.
"""

from __future__ import annotations

import dataclasses
import enum
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from core.engine.training_config import TrainingConfig
from core.engine.training_control import (Phase, PhaseChanged, RunFinished, RunInfo, RunStarted, StepMetrics,
                                          TrainingControl, TrainingEvent, TrainingObserver, MetricSplit)
from core.operations.error_log import failure_text
from core.operations.launch_checks import default_config, launch_problems
from core.operations.training_progress import ProgressClock, ProgressSnapshot
from storage.errors import is_database_error
from storage.models import RunStatus
from storage.settings import read_settings
from storage.workspace import Workspace

if TYPE_CHECKING:
    from core.operations.training_child import PreparedTrainingProcess


# -- the settings a new run starts from ---------------------------------------------------------
def default_training_config(ws: Workspace) -> TrainingConfig:
    """The settings a new run starts from, for ``main.py train`` and the Train tab alike
    (``launch_checks.default_config`` of the workspace's stored settings; reads the database):
    the saved ``training_config`` (else the built-in defaults, also when the saved one no longer
    parses), and for the base model the workspace's ``base_model`` setting when set — the setting
    whose one job is to name the model new runs start from, and the model ``demo-eval`` compares
    against, so changing it takes effect even if the saved config names another — else the saved
    config's own, else the bundled demo model when it ships."""
    return default_config(read_settings(ws))


# -- one run --------------------------------------------------------------------------------------
class SessionState(str, enum.Enum):
    IDLE = "idle"
    STARTING = "starting"       # launch checks, data, model, reference pass
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"       # finishing the step, saving a checkpoint and the adapter
    FINISHED = "finished"


@dataclass(frozen=True)
class LaunchRefused:
    """``start(values=...)`` found reasons not to train: setting name (or ``launch_checks.DATA_KEY``)
    -> message. Nothing was created; the session is idle again."""

    problems: dict[str, str]


SessionEvent = TrainingEvent | LaunchRefused


@dataclass(frozen=True)
class RunOutcome:
    """What ``run()`` returns: ``status`` None when the launch was refused."""

    run_id: str | None
    status: RunStatus | None
    error: str | None = None
    problems: dict[str, str] = dataclasses.field(default_factory=dict)


class SessionError(RuntimeError):
    """A request the session's state does not allow (start twice, run before start)."""


class TrainingSession:
    """One training run (new or resumed) and its state. ``on_event`` (and every ``subscribe``d
    callable) is called on the thread that calls ``run()``, after the session's own state has
    taken the event in, so a listener reading ``state`` sees at least that event's effect."""

    def __init__(self, ws: Workspace, on_event: Callable[[SessionEvent], None] | None = None,
                 in_child: bool = False, prepared: "PreparedTrainingProcess | None" = None):
        """``in_child``: train in a child process (``core.operations.training_process``; the app
        does, so the window never shares the GIL with a run); the launch checks of a
        ``start(values=...)`` then run there too, and a refusal arrives as ``LaunchRefused``.
        ``prepared``: a process started ahead (``training_child.prepare_training_process``) that
        the session's next run trains in when it is still usable (else a fresh one); in_child only."""
        if prepared is not None and not in_child:
            raise SessionError("a prepared training process serves only a session with in_child=True")
        self.ws = ws
        self.in_child = in_child
        self.prepared = prepared
        self._listeners: list[Callable[[SessionEvent], None]] = [on_event] if on_event else []
        self._lock = threading.RLock()
        self._state = SessionState.IDLE
        self._control = TrainingControl()
        self._request: tuple[TrainingConfig | None, dict[str, Any] | None, str | None] | None = None
        self._clock: ProgressClock | None = None
        self.phase: Phase | None = None
        self.info: RunInfo | None = None
        self.run_id: str | None = None
        self.outcome: RunOutcome | None = None

    def subscribe(self, listener: Callable[[SessionEvent], None]) -> None:
        self._listeners.append(listener)

    # -- requests (any thread) ------------------------------------------------------------------
    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def active(self) -> bool:
        """Between ``start`` and the end of the run."""
        return self._state not in (SessionState.IDLE, SessionState.FINISHED)

    def start(self, config: TrainingConfig | None = None, *, values: dict[str, Any] | None = None,
              resume_run_id: str | None = None, resume_changes: list[str] | dict | None = None) -> None:
        """Ask for a run: a validated ``config``, the form's raw ``values`` (checked in ``run()``),
        or ``resume_run_id`` (the run's own settings). The work happens in ``run()``."""
        if sum(x is not None for x in (config, values, resume_run_id)) != 1:
            raise SessionError("start needs exactly one of config, values or resume_run_id")
        with self._lock:
            if self.active:
                raise SessionError(f"the session is {self._state.value}; it can start only when idle or finished")
            self._request = (config, values, resume_run_id)
            self._resume_changes = resume_changes   # core.engine.resume_changes: what may change
            self._control = TrainingControl()
            self._clock, self.phase, self.info, self.outcome = None, None, None, None
            self.run_id = resume_run_id
            self._state = SessionState.STARTING

    def pause(self) -> bool:
        """Hold the run after the current step (running only); True when the request was taken."""
        with self._lock:
            if self._state != SessionState.RUNNING:
                return False
            self._control.pause()
            self._state = SessionState.PAUSED
            return True

    def resume(self) -> bool:
        """Continue a paused run; True when it was paused."""
        with self._lock:
            if self._state != SessionState.PAUSED:
                return False
            self._control.resume()
            self._state = SessionState.RUNNING
            if self._clock is not None:
                self._clock.restart_pace()   # time spent paused is not slowness
            return True

    def stop(self) -> bool:
        """Finish the current step, save a checkpoint and the adapter, end the run as stopped.
        (During the reference pass: end it there; it resumes from step 0.)"""
        with self._lock:
            if self._state not in (SessionState.STARTING, SessionState.RUNNING, SessionState.PAUSED):
                return False
            self._control.request_stop()
            self._state = SessionState.STOPPING
            return True

    # -- where the run stands -----------------------------------------------------------------------
    def progress(self) -> ProgressSnapshot | None:
        """Step, epoch, speed and — only while it runs — the time left."""
        with self._lock:
            if self._clock is None:
                return None
            snapshot = self._clock.snapshot()
            if self._state != SessionState.RUNNING:
                snapshot = dataclasses.replace(snapshot, seconds_left=None)
            return snapshot

    # -- the work (the calling thread) ----------------------------------------------------------------
    def check(self) -> dict[str, str]:
        """The launch checks of a ``start(values=...)`` request; {} when the run may go on (its
        config is then fixed), else the problems (the session is idle again and has reported
        ``LaunchRefused``). Reads the database: not on the UI thread."""
        with self._lock:
            if self._state not in (SessionState.STARTING, SessionState.STOPPING) or self._request is None:
                raise SessionError("check() needs start() first")
            config, values, resume_run_id = self._request
        if values is None:
            return {}
        config, problems = launch_problems(self.ws, values)
        with self._lock:
            if config is None:
                self.outcome = RunOutcome(None, None, None, problems)
                self._request = None
                self._state = SessionState.IDLE
            else:
                self._request = (config, None, None)
        if config is None:
            self._tell(LaunchRefused(problems))
        return problems

    def run(self) -> RunOutcome:
        """Train to the end on this thread; never raises for a failed run (see ``outcome``)."""
        with self._lock:
            unchecked = self._request is not None and self._request[1] is not None
        if unchecked and not self.in_child and self.check():
            return self.outcome
        with self._lock:
            if self._state not in (SessionState.STARTING, SessionState.STOPPING) or self._request is None:
                raise SessionError("run() needs start() first")
            config, values, resume_run_id = self._request
            self._request = None
            stopped_before_it_began = self._state == SessionState.STOPPING
        observer = _SessionObserver(self)
        if stopped_before_it_began:   # nothing loaded, nothing written: a new run leaves no row
            observer.on_event(RunFinished(resume_run_id, RunStatus.STOPPED))
            return self.outcome
        if self.in_child:
            return self._run_in_child(config, values, resume_run_id, observer)
        # Imported here, on the training thread: the trainer imports torch, which would freeze a
        # window for seconds if the Train tab's first opening imported it.
        from core.engine.trainer import TrainingFailed, train

        try:
            train(self.ws, config, observer, self._control, resume_run_id=resume_run_id,
                  resume_changes=getattr(self, "_resume_changes", None))
        except Exception as exc:  # noqa: BLE001 - a failed run ends the session with its reason
            # The trainer reports its own failures (RunFinished(FAILED)); a refusal before any
            # work (a bad setting, a run that cannot be resumed) or a crash still needs one.
            reason = failure_text(exc, self.ws.location)   # a database error's trace goes to the error log
            if self.outcome is None:
                run_id = exc.run_id if isinstance(exc, TrainingFailed) else None
                observer.on_event(RunFinished(run_id, RunStatus.FAILED, reason))
            elif self.outcome.status == RunStatus.FAILED and is_database_error(exc.__cause__ or exc):
                # the trainer's reason for a database error, without the SQL, the log named
                self.outcome = dataclasses.replace(self.outcome, error=reason)
        return self.outcome

    def _run_in_child(self, config: TrainingConfig | None, values: dict[str, Any] | None,
                      resume_run_id: str | None, observer: "_SessionObserver") -> RunOutcome:
        from core.operations.training_process import run_in_child

        child = self.prepared.take(self.ws) if self.prepared is not None else None
        request = {"config": config.to_dict() if config is not None else None, "values": values,
                   "resume_run_id": resume_run_id, "resume_changes": getattr(self, "_resume_changes", None),
                   "leave_a_core": True}
        try:
            run_in_child(self.ws, request, observer.on_event, self._refused, self._control, child)
        except OSError as exc:
            observer.on_event(RunFinished(resume_run_id, RunStatus.FAILED, f"could not start the training process: {exc}"))
        return self.outcome

    def _refused(self, problems: dict[str, str]) -> None:
        """The child's launch checks refused ``start(values=...)`` (as ``check()`` does in-process)."""
        with self._lock:
            self.outcome = RunOutcome(None, None, None, problems)
            self._state = SessionState.IDLE
        self._tell(LaunchRefused(problems))

    def _take(self, event: TrainingEvent) -> None:
        """The session's own bookkeeping of an engine event (training thread)."""
        with self._lock:
            if isinstance(event, PhaseChanged):
                if self.phase == Phase.PAUSED and event.phase == Phase.TRAINING and self._clock is not None:
                    self._clock.restart_pace()
                self.phase = event.phase
            elif isinstance(event, RunStarted):
                info = event.info
                self.info, self.run_id = info, info.run_id
                self._clock = ProgressClock(info.total_steps, info.start_step, info.steps_per_epoch,
                                            length_from_max_steps=info.length_from_max_steps)
                if self._state == SessionState.STARTING:
                    self._state = SessionState.RUNNING
            elif isinstance(event, StepMetrics) and event.split == MetricSplit.TRAIN and self._clock is not None:
                self._clock.step(event.step, event.metrics.get("tokens_per_second"))
            elif isinstance(event, RunFinished):
                self.run_id = event.run_id or self.run_id
                self.outcome = RunOutcome(self.run_id, event.status, event.error)
                self._state = SessionState.FINISHED

    def _tell(self, event: SessionEvent) -> None:
        for listener in list(self._listeners):
            listener(event)


class _SessionObserver(TrainingObserver):
    def __init__(self, session: TrainingSession):
        self._session = session

    def on_event(self, event: TrainingEvent) -> None:
        self._session._take(event)
        self._session._tell(event)
