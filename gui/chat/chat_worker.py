"""Answering one chat message on a worker thread (``gui.common.workers.Worker``).

``answer_turn`` runs ``core.operations.chat.ChatRunner.answer`` and passes its typed events on
through the worker's ``progress`` signal, in batches: deltas gathered for ``COALESCE_S`` go out
as one list, so a fast model sends the UI thread a few signals a second, not one per token.
Loading-model and answer-done events go out at once. Torch is imported here, on the worker thread.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from core.operations.chat import ChatDelta, ChatRunner, Exchange, TurnRequest

COALESCE_S = 0.05


def answer_turn(runner: ChatRunner, request: TurnRequest, values: dict, stop: threading.Event,
                report: Callable[[list], None]) -> Exchange:
    from core.engine.generation import SamplingSettings
    from gui.train.training_worker import cpu_threads_leaving_one_for_the_ui

    settings = SamplingSettings(**values)
    problems = settings.problems()
    if problems:
        raise ValueError("; ".join(problems))
    pending: list = []
    last_sent = time.monotonic()

    def on_event(event) -> None:
        nonlocal last_sent
        pending.append(event)
        now = time.monotonic()
        if not isinstance(event, ChatDelta) or now - last_sent >= COALESCE_S:
            report(list(pending))
            pending.clear()
            last_sent = now

    with cpu_threads_leaving_one_for_the_ui():
        exchange = runner.answer(request, settings, on_event=on_event, should_stop=stop.is_set)
    if pending:
        report(list(pending))
    return exchange
