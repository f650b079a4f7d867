"""Blind A/B: judge two models' answers to held-out prompts without knowing which wrote which.

``create_comparison`` samples one answer per model per prompt (the eval split's prompts by
default) and stores them as a comparison (``storage.comparisons``): one pair per prompt, the
model behind each response recorded by its generation, the side shown left drawn and stored.
The annotator judges with the ordinary labelling machinery — ``open_judging`` is a
``LabellingSession`` over the comparison's queue, so verdicts take the Annotate tab's
outbox, undo and lease path and are never lost. ``comparison_result`` maps the verdicts back
to the models and gives model B's win rate with its Wilson interval (``core.operations.win_rate``).

By convention A is the reference (the base, or the earlier round) and B the model under test
(the tuned one), so the rate reported is "how often the tuned model wins". Generation runs
torch: call ``create_comparison`` from a worker thread, never the UI thread.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

from core.operations.changes import Changes
from core.operations.chat import ModelChoice
from core.operations.generate import model_choices, resolve_model
from core.operations.labelling import LabellingSession
from core.operations.win_rate import WinRate, win_rate
from storage import comparisons as store
from storage.comparisons import ComparedAnswers, ComparisonRecord, ModelSide, Outcomes, RevealedPair
from storage.content_keys import Text
from storage.workspace import Workspace

BASE = "base"
DEFAULT_PROMPTS = 20
SEED_STRIDE_B = 7919   # model B samples with seed + this (its own noise, still reproducible)

__all__ = ["BASE", "ComparisonProgress", "ComparisonOutcome", "ComparisonResult", "ComparisonRecord",
           "comparable_models", "create_comparison", "list_comparisons", "comparison_result", "open_judging",
           "comparisons_between", "round_win_rate", "held_out_prompts"]


@dataclass(frozen=True)
class ComparisonProgress:
    model_label: str     # the model answering now (progress is shown only while creating, not judging)
    done: int            # answers written so far, both models together
    total: int


@dataclass(frozen=True)
class ComparisonOutcome:
    comparison_id: int | None     # None: cancelled before anything was stored
    pairs: int
    skipped_identical: int = 0
    skipped_stored: int = 0
    changes: Changes = field(default_factory=Changes)

    @property
    def cancelled(self) -> bool:
        return self.comparison_id is None


@dataclass(frozen=True)
class ComparisonResult:
    record: ComparisonRecord
    outcomes: Outcomes                 # every annotator's current verdict, mapped to the models
    win_rate: WinRate                  # B (the tuned model) against A; ties half, both-bad apart
    by_annotator: dict[str, Outcomes]
    pairs: list[RevealedPair] = field(default_factory=list)   # the sides revealed, pair by pair

    @property
    def annotator_rates(self) -> dict[str, WinRate]:
        """Each annotator's own win rate of B (their verdicts only), by name."""
        return {name: rate_of(outcomes) for name, outcomes in sorted(self.by_annotator.items())}

    @property
    def label_a(self) -> str:
        return self.record.label_a

    @property
    def label_b(self) -> str:
        return self.record.label_b


def comparable_models(ws: Workspace) -> list[ModelChoice]:
    """The base model, then every run with a saved adapter on it (newest first): Generate's and
    the Chat tab's choices (``core.operations.generate.model_choices``); a choice's ``key`` names it."""
    return model_choices(ws)


def _side(ws: Workspace, key: str) -> tuple[ModelSide, str | None]:
    """The side a key names ("base" or a run id) and the adapter folder to load (None: base);
    ``core.operations.generate.resolve_model`` says what is wrong with a bad key."""
    base_model, choice = resolve_model(ws, key)
    return ModelSide(base_model, choice.run_id, BASE if key == BASE else choice.label), choice.adapter_dir


def held_out_prompts(ws: Workspace, limit: int | None = DEFAULT_PROMPTS) -> list[Text]:
    return store.held_out_prompts(ws, limit)


def _answers(side: ModelSide, adapter_dir: str | None, prompts: Sequence[Text], settings, offset: int,
             total: int, progress, should_stop) -> list[str] | None:
    """One answer per prompt from one model; None when stopped. Loads the model and frees it."""
    from core.engine.generation import generate_replies, load_generator

    model, tokenizer = load_generator(side.base_model, adapter_dir)

    def report(p) -> None:
        if progress is not None:
            progress(ComparisonProgress(side.label, offset + p.done, total))

    try:
        replies = generate_replies(model, tokenizer, list(prompts), settings, progress=report,
                                   should_stop=should_stop)
    finally:
        del model
        gc.collect()
    if len(replies) < len(prompts):
        return None
    return [reply.text for reply in replies]


def create_comparison(ws: Workspace, model_a_key: str, model_b_key: str, prompts: Sequence[Text] | None = None,
                      settings=None, progress: Callable[[ComparisonProgress], None] | None = None,
                      should_stop: Callable[[], bool] | None = None, name: str = "",
                      limit: int = DEFAULT_PROMPTS) -> ComparisonOutcome:
    """Sample one answer per prompt from model A and from model B ("base" or a run id) and
    store them as a blind comparison. ``prompts`` None: the first ``limit`` held-out prompts.
    ``settings``: a ``SamplingSettings``, or a dict of some of its fields; what is not given is
    the default, and the seed this comparison's number, so a second comparison of the same
    models draws new answers. Worker thread only."""
    ws.require_writable()
    if model_a_key == model_b_key:
        raise ValueError("choose two different models to compare")
    side_a, adapter_a = _side(ws, model_a_key)
    side_b, adapter_b = _side(ws, model_b_key)
    if side_a.base_model != side_b.base_model:
        raise ValueError(f"the two models have different base models ({side_a.base_model} and "
                         f"{side_b.base_model}); compare adapters of one base")
    prompts = list(held_out_prompts(ws, limit) if prompts is None else prompts)
    if not prompts:
        raise ValueError("no prompts to compare on: the workspace has no held-out (eval split) prompts; "
                         "give prompts, or import pairs first")
    from core.engine.generation import SamplingSettings   # torch: only once the request is sound

    if settings is None or isinstance(settings, dict):
        settings = SamplingSettings(**{"seed": len(store.list_comparisons(ws)) + 1, **(settings or {})})
    if settings.n != 1:
        raise ValueError("a blind comparison takes one answer per model per prompt (n = 1)")
    # Each model draws its own noise (as in the paper's samples): with one seed for both, two
    # close models would often write the very same answer, which leaves nothing to judge.
    settings_b = replace(settings, seed=settings.seed + SEED_STRIDE_B)
    total = 2 * len(prompts)
    answers_a = _answers(side_a, adapter_a, prompts, settings, 0, total, progress, should_stop)
    answers_b = None if answers_a is None else _answers(side_b, adapter_b, prompts, settings_b, len(prompts),
                                                        total, progress, should_stop)
    if answers_b is None:
        return ComparisonOutcome(None, 0)
    stored = store.store_comparison(
        ws, name or f"{side_b.label} vs {side_a.label}", side_a, side_b, settings.as_dict(), settings_b.as_dict(),
        [ComparedAnswers(p, a, b) for p, a, b in zip(prompts, answers_a, answers_b)])
    return ComparisonOutcome(stored.comparison_id, len(stored.pair_ids), stored.skipped_identical,
                             stored.skipped_stored, Changes(pairs=True, pair_ids=frozenset(stored.pair_ids)))


def list_comparisons(ws: Workspace) -> list[ComparisonRecord]:
    """Every comparison, newest first."""
    return list(reversed(store.list_comparisons(ws)))


def rate_of(outcomes: Outcomes) -> WinRate:
    """B's win rate in these outcomes (B won = wins, A won = losses)."""
    return win_rate(outcomes.b_won, outcomes.a_won, outcomes.ties, outcomes.both_bad)


def comparison_result(ws: Workspace, comparison_id: int) -> ComparisonResult:
    """The verdicts on one comparison mapped to its models, and B's win rate against A."""
    tally = store.tally(ws, comparison_id)
    return ComparisonResult(tally.record, tally.total, rate_of(tally.total), tally.by_annotator, tally.pairs)


def open_judging(ws: Workspace, annotator_name: str, comparison_id: int) -> LabellingSession:
    """A labelling sitting over one comparison's pairs (database work)."""
    if store.get_comparison(ws, comparison_id) is None:
        raise LookupError(f"no comparison #{comparison_id} in this workspace")
    return LabellingSession.open(ws, annotator_name, comparison_id=comparison_id)


def comparisons_between(ws: Workspace, run_a: str | None, run_b: str | None) -> list[ComparisonRecord]:
    """The comparisons of two models, either way round (None = the base model)."""
    return store.comparisons_between(ws, run_a, run_b)


def round_win_rate(ws: Workspace, run_id: str, parent_id: str | None) -> WinRate | None:
    """``run_id``'s win rate against ``parent_id`` (None: the base), pooled over every blind
    comparison of the two (oriented so ``run_id`` is B); None when they were never compared."""
    found = comparisons_between(ws, parent_id, run_id)
    if not found:
        return None
    wins = losses = ties = both_bad = 0
    for record in found:
        outcomes = store.tally(ws, record.id).total
        run_is_b = record.run_b == run_id
        wins += outcomes.b_won if run_is_b else outcomes.a_won
        losses += outcomes.a_won if run_is_b else outcomes.b_won
        ties += outcomes.ties
        both_bad += outcomes.both_bad
    return win_rate(wins, losses, ties, both_bad)
