"""storage.runs: a run records the process that owns it, and a run whose process is gone is
listed as interrupted (and can be resumed like a stopped one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage.models import RunStatus, TrainingRun
from storage.process_owner import ProcessOwner, is_gone, this_host, this_process
from storage.runs import (INTERRUPTED_MESSAGE, create_run, get_run, is_resumable, list_runs, update_run)
from storage.workspace import Workspace

# Every test here runs on SQLite and on PostgreSQL (tests/backends.py).
pytestmark = pytest.mark.both_backends

ROOT = Path(__file__).resolve().parents[1]


def _create(ws: Workspace, run_id: str) -> None:
    create_run(ws, run_id, name="", config_json='{"beta": 0.1}', base_model="bundled:demo_model",
               run_dir=str(ws.runs_dir / run_id), total_steps=10)


def _set_owner(ws: Workspace, run_id: str, owner: ProcessOwner) -> None:
    with ws.writing() as s:
        row = s.get(TrainingRun, run_id)
        row.owner_host, row.owner_pid, row.owner_started = owner.host, owner.pid, owner.started


def test_a_new_run_is_running_and_owned_by_this_process(workspace: Workspace) -> None:
    _create(workspace, "r1")
    run = get_run(workspace, "r1")
    assert run.status == RunStatus.RUNNING and run.name == "r1" and run.config == {"beta": 0.1}
    assert run.owner == this_process() and run.owner.host == this_host() and run.owner.pid == os.getpid()
    assert not run.resumable
    assert [r.id for r in list_runs(workspace)] == ["r1"]
    assert get_run(workspace, "nope") is None


def test_a_run_whose_process_was_killed_is_listed_as_interrupted(workspace: Workspace) -> None:
    # A real second process sets a run running and is killed mid-run (no chance to say so).
    script = ("import sys, time\nfrom storage.workspace import Workspace\nfrom storage.runs import create_run\n"
              "ws = Workspace.open(sys.argv[1])\n"
              "create_run(ws, 'killed', name='k', config_json='{}', base_model='m', run_dir='d', total_steps=5)\n"
              "print('ready', flush=True)\ntime.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", script, workspace.location], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        running = get_run(workspace, "killed")
        assert running.status == RunStatus.RUNNING and running.owner.pid == child.pid  # alive: left alone
        child.kill()
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()
    [run] = list_runs(workspace)
    assert run.status == RunStatus.INTERRUPTED and run.error == INTERRUPTED_MESSAGE and run.resumable
    with workspace.session() as s:
        assert s.get(TrainingRun, "killed").status == RunStatus.INTERRUPTED   # stored, so every reader agrees


def test_paused_run_of_a_gone_process_is_interrupted_too(workspace: Workspace) -> None:
    _create(workspace, "p")
    update_run(workspace, "p", status=RunStatus.PAUSED)
    _set_owner(workspace, "p", ProcessOwner(this_host(), _gone_pid(), None))
    assert get_run(workspace, "p").status == RunStatus.INTERRUPTED


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process start times are read from /proc")
def test_a_reused_pid_is_told_apart_by_its_start_time(workspace: Workspace) -> None:
    # The parent process is alive, but started at another time than the recorded owner.
    assert not is_gone(ProcessOwner(this_host(), os.getppid(), None))
    _create(workspace, "r")
    _set_owner(workspace, "r", ProcessOwner(this_host(), os.getppid(), 12345.0))
    assert get_run(workspace, "r").status == RunStatus.INTERRUPTED


def test_runs_owned_elsewhere_or_finished_are_left_alone(workspace: Workspace) -> None:
    for run_id in ("other-host", "done"):
        _create(workspace, run_id)
    _set_owner(workspace, "other-host", ProcessOwner(this_host() + "-elsewhere", _gone_pid(), None))
    update_run(workspace, "done", status=RunStatus.COMPLETED)
    _set_owner(workspace, "done", ProcessOwner(this_host(), _gone_pid(), None))
    assert {r.id: r.status for r in list_runs(workspace)} == {"other-host": RunStatus.RUNNING,
                                                             "done": RunStatus.COMPLETED}


def test_resuming_makes_this_process_the_owner(workspace: Workspace) -> None:
    _create(workspace, "r")
    _set_owner(workspace, "r", ProcessOwner(this_host(), _gone_pid(), None))
    assert get_run(workspace, "r").status == RunStatus.INTERRUPTED
    update_run(workspace, "r", status=RunStatus.RUNNING, error=None)
    run = get_run(workspace, "r")
    assert run.status == RunStatus.RUNNING and run.error is None and run.owner == this_process()
    with pytest.raises(LookupError, match="no run 'missing'"):
        update_run(workspace, "missing", step=3)


def test_which_statuses_are_resumable() -> None:
    assert {s for s in RunStatus if is_resumable(s)} == {RunStatus.STOPPED, RunStatus.FAILED,
                                                        RunStatus.INTERRUPTED}
    assert is_resumable("interrupted") and not is_resumable("completed") and not is_resumable("running")


def _gone_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid
