"""The Train tab's one line under the run's header: what a training event means, in words.

Only for showing: the view decides what to do from the events' types and fields, never from
this text (STYLE.md rule 12).
"""

from __future__ import annotations

from core.engine.training_control import (CheckpointSaved, Phase, PhaseChanged, ReferencePassDone, Resumed,
                                          RunFinished, RunInfo, RunStarted)
from storage.models import RunStatus

PHASE_TEXT = {
    Phase.LOADING_DATA: "Reading the labelled pairs…",
    Phase.LOADING_MODEL: "Loading the model and tokenising the pairs…",
    Phase.EVALUATING: "Evaluating on the held-out pairs…",
    Phase.SAVING: "Saving…",
}


def describe_run(info: RunInfo) -> str:
    """"24 training pairs, 4 held out · cpu float32 · 8,192 of 60,000 parameters trained"."""
    return (f"{info.train_pairs} training pairs, {info.eval_pairs} held out · {info.device} {info.dtype} · "
            f"{info.trainable_parameters:,} of {info.total_parameters:,} parameters trained")


def event_text(event: object, info: RunInfo | None) -> str | None:
    """The line for ``event`` (None: the event changes nothing the line says)."""
    if isinstance(event, PhaseChanged):
        if event.phase == Phase.REFERENCE_PASS:
            return f"Reference model: batch {event.done} of {event.total} (kept for later runs)"
        if event.phase == Phase.PAUSED:
            return f"Paused after step {event.step}; the model stays loaded."
        if event.phase == Phase.TRAINING:
            return describe_run(info) if info is not None else None
        return PHASE_TEXT.get(event.phase)
    if isinstance(event, RunStarted):
        return describe_run(event.info)
    if isinstance(event, ReferencePassDone):
        return f"Reference log-probs: {event.cached} cached, {event.computed} computed in {event.seconds:.1f} s"
    if isinstance(event, Resumed):
        return (f"Resumed from {event.checkpoint}" if event.checkpoint
                else "No checkpoint yet: starting the run again from step 0")
    if isinstance(event, CheckpointSaved):
        return f"Checkpoint saved at step {event.step}"
    if isinstance(event, RunFinished):
        if event.status == RunStatus.FAILED:
            return None     # the error banner says why
        if event.run_id is None:
            return "Stopped before the run began; nothing was saved."
        return f"Run {event.status.value}: adapter saved."
    return None
