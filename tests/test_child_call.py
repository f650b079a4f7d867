"""core.operations.child_call: a function run in the helper process answers with its value or its
error's one line; the form's data preview (core.operations.data_preview) runs that way and sends
back the counts and an even sample (real workspace, real processes)."""

from __future__ import annotations

import os

import pytest

from core.engine.training_config import TrainingConfig
from core.operations.child_call import ChildCallError, HelperProcess
from tests.tiny_models import fill_workspace


@pytest.fixture
def helper():
    process = HelperProcess()
    yield process
    process.close()


def test_a_function_runs_in_another_process_and_its_value_comes_back(helper) -> None:
    assert helper.call("os", "getpid") != os.getpid()
    assert helper.call("math", "fsum", [0.1] * 10) == 1.0


def test_an_error_in_the_child_is_one_line(helper) -> None:
    with pytest.raises(ChildCallError) as raised:
        helper.call("json", "loads", "{not json")
    assert "\n" not in str(raised.value) and "Expecting property name" in str(raised.value)


def test_the_data_preview_counts_in_a_child_and_sends_an_even_sample(workspace, helper) -> None:
    fill_workspace(workspace, 24)
    part = helper.call("core.operations.data_preview", "preview", workspace.location, None,
                       TrainingConfig(base_model="m"), 5)
    assert part.result.error is None and part.result.data.total == 24 == part.total
    assert len(part.sample) == 5 and len({e.pair_id for e in part.sample}) == 5
    missing = helper.call("core.operations.data_preview", "preview", str(workspace.root / "nowhere"), None,
                          TrainingConfig(base_model="m"))
    assert missing.result.data is None and missing.result.error


def test_a_helper_process_answers_many_calls_in_one_child_and_ends_when_closed() -> None:
    from core.operations.child_call import HelperProcess

    helper = HelperProcess()
    try:
        first = helper.call("os", "getpid")
        assert first != os.getpid() and helper.call("os", "getpid") == first == helper.pid
        assert helper.call("math", "fsum", [0.1] * 10) == 1.0
        with pytest.raises(ChildCallError) as raised:
            helper.call("json", "loads", "{not json")
        assert "\n" not in str(raised.value) and "Expecting property name" in str(raised.value)
        assert helper.call("os", "getpid") == first          # an error leaves the child serving
        assert os.getpriority(os.PRIO_PROCESS, first) > os.getpriority(os.PRIO_PROCESS, 0)   # runs behind the window
    finally:
        helper.close()
    assert helper.pid is None
    with pytest.raises(OSError):
        os.kill(first, 0)                                     # gone, and waited for
    with pytest.raises(ChildCallError):
        helper.call("os", "getpid")


def test_a_helper_that_ended_is_started_again_and_one_that_dies_answering_says_so() -> None:
    import signal
    import threading
    import time

    from core.operations.child_call import HelperProcess

    helper = HelperProcess(idle_exit_s=0.3)
    try:
        first = helper.call("os", "getpid")
        time.sleep(1.5)                                       # the child ends by itself, idle
        second = helper.call("os", "getpid")
        assert second != first
        os.kill(second, signal.SIGKILL)                       # killed between calls: the next call never ran
        time.sleep(0.2)
        third = helper.call("os", "getpid")
        assert third not in (first, second)
        threading.Timer(0.5, os.kill, (third, signal.SIGKILL)).start()
        with pytest.raises(ChildCallError) as died:           # killed while answering: it says how
            helper.call("time", "sleep", 30)
        assert "exit code -9" in str(died.value)
        assert helper.call("os", "getpid") not in (first, second, third)
    finally:
        helper.close()
