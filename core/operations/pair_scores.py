"""Scoring the workspace's pairs with a run's adapter, and what a score says about one pair.

``score_pairs(ws, run_id)`` loads the run's adapter on its base model and stores, per pair,
the implicit-reward margin ``r(a) − r(b)`` (``core.engine.pair_scoring``; the reference is the
base with the adapter disabled, through the reference cache) in ``pair_scores``
(``storage.pair_scores``). It is long work: run it on a worker; ``progress`` gets a
``ScoringProgress`` per batch and ``should_stop`` is asked before each one (what was scored
is kept). The queue orders ``uncertain`` and ``disagree`` rank the open pairs by these
scores; a finished run is not scored by itself — the Team tab offers it, and
``python main.py score-pairs WS RUN`` does it headless.

``preference_for(ws, pair_id, swapped)`` is what the Annotate tab shows once the annotator has
judged a pair (never before): which side the current run preferred, and by how much.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Callable

from core.operations.changes import Changes
from core.operations.runs import list_runs
from core.operations.wording import plural
from storage.models import RunStatus
from storage.pair_scores import (QUEUE_ORDERS, SCORED_ORDERS, AdapterPreference, RunScores, adapter_preference,
                                 load_pair_scores, open_scored_counts, pairs_to_score, scored_runs, store_pair_scores)
from storage.settings import read_settings, update_settings
from storage.workspace import Workspace

__all__ = ["ScoringStage", "ScoringProgress", "ScoreOutcome", "PreferenceNote", "score_pairs", "preference_for",
           "set_queue_order", "scored_runs", "ScorableRun", "QueueOrderState",
           "queue_order_state", "order_fallback", "QUEUE_ORDERS", "SCORED_ORDERS", "RunScores"]


class ScoringStage(enum.Enum):
    LOADING = "loading the model"
    REFERENCE = "reference log-probs"
    SCORING = "scoring pairs"


@dataclass(frozen=True)
class ScoringProgress:
    stage: ScoringStage
    done: int
    total: int


@dataclass(frozen=True)
class ScoreOutcome:
    run_id: str
    scored: int            # pairs given a score now
    already: int           # pairs left as they were (scored before)
    dropped: int           # pairs with no completion token left at the run's max_length
    reference_computed: int
    seconds: float
    stopped: bool          # stopped before the end (what was scored is stored)

    @property
    def changes(self) -> Changes:
        return Changes(runs=True)

    def describe(self) -> str:
        text = f"scored {self.scored:,} pairs with run {self.run_id} in {self.seconds:.1f} s"
        if self.already:
            text += f" ({self.already:,} had a score already)"
        if self.dropped:
            text += f"; {self.dropped:,} too long to score at the run's max_length"
        return text + (" — stopped before the end" if self.stopped else "")


def score_pairs(ws: Workspace, run_id: str, open_only: bool = True, rescore: bool = False,
                batch_size: int | None = None, progress: Callable[[ScoringProgress], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> ScoreOutcome:
    """Score the pairs (the open ones under the workspace's overlap, or all with ``open_only``
    False) with the run's adapter; pairs the run already scored are kept unless ``rescore``.
    Raises ``core.engine.evaluation.EvaluationError`` when the run has no adapter."""
    from core.engine.batching import tokenize_examples
    from core.engine.evaluation import resolve_adapter
    from core.engine.modeling import load_with_adapter, model_fingerprint, tokenization_fingerprint
    from core.engine.pair_scoring import pair_margins
    from core.engine.reference_cache import ensure_reference_logps

    started = time.monotonic()
    report = progress or (lambda _event: None)
    adapter_dir, config = resolve_adapter(ws, run_id)
    examples = pairs_to_score(ws, read_settings(ws).overlap if open_only else None)
    known = set() if rescore else set(load_pair_scores(ws, run_id, [e.pair_id for e in examples]))
    examples = [e for e in examples if e.pair_id not in known]
    if not examples:
        return ScoreOutcome(run_id, 0, len(known), 0, 0, time.monotonic() - started, False)
    report(ScoringProgress(ScoringStage.LOADING, 0, 1))
    loaded = load_with_adapter(config.base_model, adapter_dir, config.device, config.dtype, config.trust_remote_code)
    pairs, dropped = tokenize_examples(loaded.tokenizer, examples, config.max_length, config.truncation_mode)
    model_key = model_fingerprint(config.base_model, loaded.dtype)
    token_key = tokenization_fingerprint(loaded.tokenizer, config.max_length, config.truncation_mode)
    reference, computed = ensure_reference_logps(
        ws, loaded.model, pairs, model_key, token_key, loaded.tokenizer.pad_token_id, config.reference_batch_size,
        loaded.device, lambda done, total: report(ScoringProgress(ScoringStage.REFERENCE, done, total)),
        should_stop, packed_pairs=config.packed_pairs)
    pairs = [p for p in pairs if p.example_hash in reference]   # a stop during the reference pass

    def stored(margins: dict[int, float], done: int, total: int) -> None:
        store_pair_scores(ws, run_id, margins)
        report(ScoringProgress(ScoringStage.SCORING, done, total))

    margins = pair_margins(loaded.model, pairs, reference, config, loaded.tokenizer.pad_token_id, loaded.device,
                           batch_size, on_batch=stored, should_stop=should_stop)
    stopped = len(margins) < len(examples) - sum(dropped.values())
    return ScoreOutcome(run_id, len(margins), len(known), sum(dropped.values()), computed,
                        time.monotonic() - started, stopped)


def set_queue_order(ws: Workspace, order: str, run_id: str | None = None, actor: str | None = None) -> Changes:
    """Which pairs the queue serves first (``QUEUE_ORDERS``); ``uncertain`` and ``disagree`` need
    the run whose scores rank the pairs. Only an owner may (storage.members)."""
    if order in SCORED_ORDERS and not run_id:
        raise ValueError(f"the queue order {order!r} ranks pairs by a run's scores: choose the run")
    update_settings(ws, actor=actor, queue_order=order, queue_order_run=run_id if order in SCORED_ORDERS else None)
    return Changes(settings=True)


@dataclass(frozen=True)
class ScorableRun:
    """A run whose adapter can score pairs, and how many open pairs it has scored."""

    run_id: str
    name: str
    scored_open: int


@dataclass(frozen=True)
class QueueOrderState:
    """What the Team tab shows of the queue order: the setting, the open pairs, the runs."""

    order: str
    run_id: str | None
    open_pairs: int
    runs: tuple[ScorableRun, ...]     # newest first
    overlap: int = 1

    def run(self, run_id: str | None) -> ScorableRun | None:
        return next((run for run in self.runs if run.run_id == run_id), None)

    @property
    def fallback(self) -> str | None:
        """Why the chosen order ranks nothing and the queue serves the default order (None: it ranks)."""
        return order_fallback(self.order, self.overlap)

    def unscored_newest(self) -> ScorableRun | None:
        """The newest run, when it has not scored the open pairs yet (a run just finished)."""
        newest = self.runs[0] if self.runs else None
        return newest if newest is not None and self.open_pairs and not newest.scored_open else None


def order_fallback(order: str, overlap: int) -> str | None:
    """Why ``order`` can rank no pair at ``overlap`` annotators per pair (None: it can). "disagree"
    serves second opinions: with one annotator per pair a pair with a verdict is no longer open."""
    if order == "disagree" and overlap < 2:
        return (f"Most wrong first serves second opinions, and at {plural(overlap, 'annotator')} per pair no open "
                "pair has a verdict yet: the queue serves the default order until you set 2 or more annotators "
                "per pair.")
    return None


def queue_order_state(ws: Workspace) -> QueueOrderState:
    """The queue-order setting, the open pairs and the finished runs (or runs with scores). Database work."""
    settings = read_settings(ws)
    open_pairs, scored = open_scored_counts(ws, settings.overlap)
    runs = tuple(ScorableRun(run.id, run.name or run.id, scored.get(run.id, 0))
                 for run in list_runs(ws, newest_first=True)
                 if run.status == RunStatus.COMPLETED or run.id in scored)
    return QueueOrderState(settings.queue_order, settings.queue_order_run, open_pairs, runs, settings.overlap)


@dataclass(frozen=True)
class PreferenceNote:
    """A run's preference on a pair as the annotator saw it (left/right as shown)."""

    preference: AdapterPreference
    left_margin: float     # r(left) − r(right)

    @property
    def side(self) -> str:
        return "left" if self.left_margin > 0 else "right" if self.left_margin < 0 else "neither"

    def describe(self) -> str:
        if self.side == "neither":
            return f"Run {self.preference.run_name} had no preference between the two answers (margin 0)"
        size = abs(self.left_margin)
        # Two decimals, or two significant digits for a margin that would read as +0.00.
        shown = f"{size:+.2f}" if size >= 0.005 else f"{size:+.1e}"
        return f"Run {self.preference.run_name} preferred the {self.side} answer (margin {shown})"

    def agrees_with(self, side: str) -> bool | None:
        """Whether the run's choice matches a verdict for ``side`` ("left"/"right"; None otherwise)."""
        return None if side not in ("left", "right") or self.side == "neither" else side == self.side


def preference_for(ws: Workspace, pair_id: int, swapped: bool) -> PreferenceNote | None:
    """The queue-order run's preference on the pair (that run's score; without one, the newest
    run that scored it); None when no run scored it. Database work."""
    settings = read_settings(ws)
    run_id = settings.queue_order_run if settings.queue_order in SCORED_ORDERS else None
    found = adapter_preference(ws, pair_id, run_id) if run_id is not None else None
    found = found or adapter_preference(ws, pair_id)
    return None if found is None else PreferenceNote(found, found.side_margin(swapped))
