"""Shared fixtures. GUI tests run offscreen; every test gets real SQLite files in tmp_path."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One intra-op thread for torch, here and in the processes the tests start (set before torch is
# imported): the tests' models are tiny, so a second thread saves nothing, and on a busy machine it
# spins at each barrier waiting for the first (the engine tests took 51 s beside two CPU burners
# with two threads, 35 s with one).
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Before any module imports QTimer: every timer and single shot is tracked from its creation,
# so that the test which leaves one running fails itself (see tests/qt_leaks.py).
from tests import qt_leaks  # noqa: E402

qt_leaks.install()
qt_leaks.track_worker_threads()

import pytest  # noqa: E402

# The workspace fixtures, on SQLite and (in modules marked both_backends) on PostgreSQL too:
# backend, workspace_location, workspace, postgres_databases, fresh_postgres_url (tests/backends.py).
from tests.backends import (_template_workspace, backend, fresh_postgres_url, postgres_databases,  # noqa: E402,F401
                            pytest_generate_tests, workspace, workspace_location)
# The forms' helper process, started once the tests are collected and kept warm (tests/warm_helper.py).
from tests.warm_helper import _form_helper_kept_warm  # noqa: E402,F401


@pytest.fixture
def report_figures(request):
    """``report_figures(text)``: figures a test measured. Shown by ``-rA``/``-rP`` (as the section
    "Captured figures call") and with a failure, printed as well under ``-s``; never in plain ``-q``."""
    def report(text: str) -> None:
        request.node.add_report_section("call", "figures", text)
        if request.config.getoption("capture") == "no":
            print(text)
    return report


@pytest.fixture(autouse=True)
def _no_timer_or_thread_left_running():
    """Every test must leave no QTimer and no worker QThread running (STYLE.md rule 3): a leak
    fails the test that made it, naming the object and where it was created, never a later test.
    Its teardown runs after pytest-qt has closed the test's widgets and after the test's other
    fixtures have ended (it is set up first, so it is torn down last)."""
    since = qt_leaks.current_sequence()
    yield
    problems = qt_leaks.leaks_at_teardown(since)
    if problems:
        pytest.fail("left running by this test:\n  " + "\n  ".join(problems), pytrace=False)
