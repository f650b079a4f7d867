"""core.operations.training without Qt: the one default-config rule, and TrainingSession's state
machine driven from another thread the way the GUI drives it (real tiny model, real workspace)."""

from __future__ import annotations

import threading
import time

import pytest

from core.engine.bundled_models import DEMO_MODEL
from core.engine.training_config import TrainingConfig
from core.engine.training_control import (MetricSplit, Phase, PhaseChanged, RunFinished, RunStarted, StepMetrics)
from core.operations.launch_checks import DATA_KEY, default_config
from core.operations.training import (LaunchRefused, SessionError, SessionState, TrainingSession,
                                      default_training_config)
from storage.models import RunStatus
from storage.runs import get_run
from storage.settings import WorkspaceSettings, update_settings
from tests.tiny_models import fill_workspace, make_tiny_model_dir


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model")


def small(model_dir, **values) -> dict:
    return {"base_model": str(model_dir), "batch_size": 4, "learning_rate": 2e-3, "eval_interval": 0,
            "checkpoint_interval": 0, "max_length": 128, **values}


# -- the default-config rule -------------------------------------------------------------------------
def test_saved_settings_are_the_defaults_and_the_base_model_setting_wins() -> None:
    saved = {"base_model": "/models/old", "beta": 0.3, "max_steps": 7}
    assert default_config(WorkspaceSettings()).base_model == DEMO_MODEL
    assert default_config(WorkspaceSettings(), demo_model_available=False).base_model == ""
    config = default_config(WorkspaceSettings(training_config=saved))
    assert (config.base_model, config.beta, config.max_steps) == ("/models/old", 0.3, 7)
    config = default_config(WorkspaceSettings(training_config=saved, base_model="/models/new"))
    assert (config.base_model, config.beta) == ("/models/new", 0.3)
    without_model = {k: v for k, v in saved.items() if k != "base_model"}
    assert default_config(WorkspaceSettings(training_config=without_model, base_model="/m")).base_model == "/m"
    # a saved config this version cannot read is ignored, not half-applied
    broken = default_config(WorkspaceSettings(training_config={"beta": 0.3, "no_such_setting": 1}))
    assert broken.beta == TrainingConfig().beta


def test_default_training_config_reads_the_workspace(workspace) -> None:
    update_settings(workspace, training_config={"beta": 0.25, "base_model": "/a"}, base_model="/b")
    config = default_training_config(workspace)
    assert (config.beta, config.base_model) == (0.25, "/b")


# -- the state machine ---------------------------------------------------------------------------------
class Driver:
    """Listens on the training thread; pauses at step 2, lets the main thread resume, stops at step 5."""

    def __init__(self, session: TrainingSession):
        self.session = session
        self.events = []
        self.states = []
        self.paused = threading.Event()
        session.subscribe(self.on_event)

    def on_event(self, event) -> None:
        self.events.append(event)
        self.states.append(self.session.state)
        if isinstance(event, StepMetrics) and event.split == MetricSplit.TRAIN:
            if event.step == 2:
                assert self.session.pause()
            if event.step == 5:
                assert self.session.stop()
        if isinstance(event, PhaseChanged) and event.phase == Phase.PAUSED:
            self.paused.set()


@pytest.mark.slow   # trains or spawns a process: over 5 s on a busy machine
def test_start_pause_resume_stop_from_another_thread(workspace, model_dir) -> None:
    fill_workspace(workspace, 16)
    session = TrainingSession(workspace)
    assert session.state == SessionState.IDLE and not session.pause() and not session.stop()
    with pytest.raises(SessionError):
        session.run()
    session.start(values=small(model_dir, max_steps=40))
    assert session.state == SessionState.STARTING and session.active
    with pytest.raises(SessionError):
        session.start(values=small(model_dir))
    assert not session.pause()        # nothing to pause before training begins
    assert session.check() == {}
    driver = Driver(session)
    worker = threading.Thread(target=session.run)
    worker.start()
    assert driver.paused.wait(60)
    assert session.state == SessionState.PAUSED and session.phase == Phase.PAUSED
    assert get_run(workspace, session.run_id).status == RunStatus.PAUSED
    steps = sum(isinstance(e, StepMetrics) for e in driver.events)
    time.sleep(0.3)
    assert sum(isinstance(e, StepMetrics) for e in driver.events) == steps    # nothing trains while paused
    assert session.progress().seconds_left is None                               # no time left while paused
    assert session.resume() and session.state == SessionState.RUNNING
    worker.join(120)
    assert not worker.is_alive()

    outcome = session.outcome
    assert session.state == SessionState.FINISHED and not session.active
    assert (outcome.status, outcome.error, outcome.run_id) == (RunStatus.STOPPED, None, session.run_id)
    assert isinstance(driver.events[-1], RunFinished) and driver.events[-1].status == RunStatus.STOPPED
    started = next(i for i, e in enumerate(driver.events) if isinstance(e, RunStarted))
    assert driver.states[started] == SessionState.RUNNING and SessionState.STOPPING in driver.states
    run = get_run(workspace, session.run_id)
    assert run.status == RunStatus.STOPPED and run.step == 5 and run.resumable
    progress = session.progress()
    assert (progress.step, progress.total_steps, progress.seconds_left) == (5, 40, None)
    assert progress.length_from_max_steps and "(from max steps)" in progress.describe()
    assert "left" not in progress.describe()

    # The same session resumes it to the end (its own settings).
    session.start(resume_run_id=run.id)
    assert session.run().status == RunStatus.COMPLETED
    assert get_run(workspace, run.id).step == 40


def test_a_refused_launch_names_every_problem_and_leaves_the_session_idle(workspace, model_dir) -> None:
    seen = []
    session = TrainingSession(workspace, on_event=seen.append)
    session.start(values=small(model_dir, beta="-1", max_steps=2))
    problems = session.check()
    assert "beta" in problems and DATA_KEY in problems          # bad setting and no pairs, at once
    assert session.state == SessionState.IDLE and seen == [LaunchRefused(problems)]
    session.start(values=small(model_dir, max_steps=2))   # run() checks by itself when check() was not called
    outcome = session.run()
    assert outcome.status is None and "no labelled pairs" in outcome.problems[DATA_KEY]


def test_a_stop_before_the_run_began_creates_nothing(workspace, model_dir) -> None:
    fill_workspace(workspace, 8)
    session = TrainingSession(workspace)
    session.start(values=small(model_dir, max_steps=2))
    assert session.stop() and session.state == SessionState.STOPPING
    assert session.check() == {}
    assert session.run().status == RunStatus.STOPPED and session.run_id is None
    from storage.runs import list_runs
    assert list_runs(workspace) == []


def test_a_run_that_cannot_be_resumed_finishes_as_failed_with_the_reason(workspace, model_dir) -> None:
    fill_workspace(workspace, 8)
    session = TrainingSession(workspace)
    session.start(TrainingConfig(**small(model_dir, max_steps=1)))
    run_id = session.run().run_id
    session.start(resume_run_id=run_id)
    outcome = session.run()
    assert outcome.status == RunStatus.FAILED and "already completed" in outcome.error
    assert outcome.run_id == run_id
