"""The worker pattern: work runs on another thread, results and failures arrive as signals."""

from __future__ import annotations

import threading

from gui.common.workers import Worker, running_workers, start_worker, wait_for_all_workers


def _count_to(n: int, report) -> dict:
    for i in range(1, n + 1):
        report({"done": i, "total": n})
    return {"thread": threading.get_ident()}


def _explode(report) -> None:
    raise ValueError("pairs.jsonl:3: field 'chosen': must not be empty")


def test_worker_reports_progress_and_result_off_the_ui_thread(qtbot):
    worker = Worker(_count_to, 5)
    seen = []
    worker.progress.connect(seen.append)
    with qtbot.waitSignal(worker.finished, timeout=5000) as blocker:
        start_worker(worker)
    assert blocker.args[0]["thread"] != threading.get_ident()
    qtbot.waitUntil(lambda: len(seen) == 5, timeout=2000)
    assert seen[-1] == {"done": 5, "total": 5}
    assert wait_for_all_workers()
    assert running_workers() == []


def test_worker_failure_arrives_as_a_readable_message(qtbot):
    worker = Worker(_explode)
    with qtbot.waitSignal(worker.failed, timeout=5000) as blocker:
        start_worker(worker)
    assert blocker.args[0] == "pairs.jsonl:3: field 'chosen': must not be empty"
    assert wait_for_all_workers()
