"""Training in a child process (core.operations.training_process), as the app does: the same
typed events and states as in-process, the launch checks in the child, pause / resume / stop
forwarded, a child that dies reported as a failed run with its reason, and a child whose parent
is gone stopping resumable (real tiny model, real workspace, real processes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest

from core.engine.event_wire import from_line, to_line
from core.engine.training_control import (CheckpointSaved, MetricSplit, Phase, PhaseChanged, ReferencePassDone,
                                          Resumed, RunFinished, RunInfo, RunStarted, StepMetrics)
from core.operations.launch_checks import DATA_KEY
from core.operations.training import LaunchRefused, SessionState, TrainingSession
from core.operations.training_process import child_command
from storage.models import RunStatus
from storage.runs import get_run, list_runs
from tests.test_training_session import Driver, small
from tests.tiny_models import fill_workspace, make_tiny_model_dir


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model")


def test_every_event_crosses_the_wire_unchanged() -> None:
    events = [PhaseChanged(Phase.REFERENCE_PASS, 1, 4), PhaseChanged(Phase.SAVING, step=3),
              StepMetrics(3, MetricSplit.EVAL, {"loss": 0.5, "grad_norm": float("inf")}),
              RunStarted(RunInfo("r1", "/runs/r1", 10, 2, 5, 1, {"tie": 2}, device="cuda", run_name="β")),
              RunFinished(None, RunStatus.FAILED, "out of memory"), Resumed("r1", 2, "step-2"),
              CheckpointSaved(3, "/runs/r1/checkpoints/step-3"), ReferencePassDone(1, 2, 0.5)]
    for event in events:
        line = to_line(event)
        assert "\n" not in line
        assert repr(from_line(line)) == repr(event)
    nan = from_line(to_line(StepMetrics(1, MetricSplit.TRAIN, {"loss": float("nan")})))
    assert nan.metrics["loss"] != nan.metrics["loss"]


@pytest.mark.slow
def test_a_run_in_a_child_pauses_resumes_stops_and_resumes_like_one_in_process(workspace, model_dir) -> None:
    fill_workspace(workspace, 16)
    session = TrainingSession(workspace, in_child=True)
    session.start(values=small(model_dir, max_steps=40))
    driver = Driver(session)
    worker = threading.Thread(target=session.run)
    worker.start()
    assert driver.paused.wait(120)
    assert session.state == SessionState.PAUSED and get_run(workspace, session.run_id).status == RunStatus.PAUSED
    owner = get_run(workspace, session.run_id).owner
    assert owner is not None and owner.pid != os.getpid()            # the child owns the run
    steps = sum(isinstance(e, StepMetrics) for e in driver.events)
    time.sleep(0.5)
    assert sum(isinstance(e, StepMetrics) for e in driver.events) == steps   # nothing trains while paused
    assert session.resume()
    worker.join(180)
    assert not worker.is_alive()
    assert (session.outcome.status, session.outcome.error) == (RunStatus.STOPPED, None)
    run = get_run(workspace, session.run_id)
    # The request crosses a pipe while the child trains on: it stops after the step it is in.
    assert run.status == RunStatus.STOPPED and 5 <= run.step <= 8 and run.resumable
    session.start(resume_run_id=run.id)
    assert session.run().status == RunStatus.COMPLETED
    assert get_run(workspace, run.id).step == 40


def test_the_child_runs_the_launch_checks_and_a_refusal_names_every_problem(workspace, model_dir) -> None:
    seen = []
    session = TrainingSession(workspace, on_event=seen.append, in_child=True)
    session.start(values=small(model_dir, beta="-1", max_steps=2))
    outcome = session.run()
    assert outcome.status is None and "beta" in outcome.problems and DATA_KEY in outcome.problems
    assert session.state == SessionState.IDLE and seen == [LaunchRefused(outcome.problems)]
    assert list_runs(workspace) == []


@pytest.mark.slow
def test_a_killed_child_is_a_failed_run_with_its_exit_code(workspace, model_dir) -> None:
    fill_workspace(workspace, 16)
    session = TrainingSession(workspace, in_child=True)
    killed = threading.Event()

    def kill_at_step_two(event) -> None:
        if isinstance(event, StepMetrics) and event.step == 2 and not killed.is_set():
            killed.set()
            os.kill(get_run(workspace, event_run[0]).owner.pid, signal.SIGKILL)

    event_run = []
    session.subscribe(lambda e: event_run.append(e.info.run_id) if isinstance(e, RunStarted) else None)
    session.subscribe(kill_at_step_two)
    session.start(values=small(model_dir, max_steps=400))
    outcome = session.run()
    assert killed.is_set()
    assert outcome.status == RunStatus.FAILED and outcome.run_id == event_run[0]
    assert "ended unexpectedly" in outcome.error and "-9" in outcome.error
    assert get_run(workspace, outcome.run_id).status == RunStatus.INTERRUPTED   # its process is gone
    assert get_run(workspace, outcome.run_id).resumable


@pytest.mark.slow
def test_a_child_whose_parent_is_gone_stops_and_stays_resumable(workspace, model_dir) -> None:
    fill_workspace(workspace, 16)
    child = subprocess.Popen(child_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, bufsize=1)
    request = {"location": workspace.location, "values": small(model_dir, max_steps=400, checkpoint_interval=0)}
    child.stdin.write(json.dumps(request) + "\n")
    child.stdin.flush()
    events = []
    for line in child.stdout:
        events.append(from_line(line))
        if isinstance(events[-1], StepMetrics) and events[-1].step == 3:
            child.stdin.close()          # what the end of a killed window looks like to the child
            break
    events.extend(from_line(line) for line in child.stdout)
    assert child.wait(120) == 0
    assert isinstance(events[-1], RunFinished) and events[-1].status == RunStatus.STOPPED
    run_id = next(e.info.run_id for e in events if isinstance(e, RunStarted))
    run = get_run(workspace, run_id)
    assert run.status == RunStatus.STOPPED and run.resumable and 3 <= run.step < 400
