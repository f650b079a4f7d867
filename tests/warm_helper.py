"""The forms' helper process kept warm for the whole test session (tests/conftest.py).

The Train form asks ``core.operations.child_call.shared_helper()`` — one child process per
test process, shared by every form and window, as in the app — for the device's memory and the
data preview. Its first call imports torch and transformers at ``nice`` 5; beside busy programs
that took over 30 s, inside whichever test happened to build the first form (and again after
each ``idle_exit_s`` without a call). Here it is started as soon as the tests are collected
(only in a session that builds a form) and called every ``PING_S`` seconds, so no test waits
for that import. The cold start itself stays tested: tests/test_child_call.py starts helpers
of its own, tests/test_training_form_generated.py builds a form in a fresh process.
"""

from __future__ import annotations

import sys
import threading

import pytest

PING_S = 60.0
FORM_MODULES = ("gui.train.training_form", "gui.main_window")


@pytest.fixture(scope="session", autouse=True)
def _form_helper_kept_warm():
    if not any(name in sys.modules for name in FORM_MODULES):   # no test of this session builds a form
        yield
        return
    from core.operations.child_call import ChildCallError, shared_helper

    helper, stop = shared_helper(), threading.Event()

    def keep_warm() -> None:
        while True:
            try:   # what the form's first calls import: torch, transformers' auto classes, peft
                helper.call("core.engine.memory_estimate", "device_memory", "cpu")
                helper.call("core.engine.library_preload", "preload_training_libraries")
            except ChildCallError:
                pass    # a closed or broken helper: the next form's call starts it again and says why
            if stop.wait(PING_S):
                return

    thread = threading.Thread(target=keep_warm, name="tests:form-helper-warm", daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=30)
