"""Blind A/B comparisons: two models' answers to held-out prompts, stored as pairs to judge.

A comparison (table ``comparisons``) names its two models by run (``run_a`` / ``run_b``; NULL =
the base model). Each compared prompt becomes one pair with ``comparison_id`` set; its two
responses are stored as generated, each with the generation (table ``generations``) of the
model that wrote it. Which model wrote which stored response is therefore the response's
generation — the comparison's settings record the ids of generation A and generation B — and
the side shown on the left is the pair's ``display_swapped``, drawn when the comparison is
stored and never again (``side_draws``).

The annotation queue serves a comparison's pairs only to ``AnnotationQueue(ws, name,
comparison_id=K)``; the normal queue and the training set leave them out. ``tally`` reads
each annotator's current verdict on a comparison's pairs and maps it back through the stored
sides to "A won / B won / tie / both bad".
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from storage.content_keys import Text, prompt_hash, render_messages, response_hash
from storage.models import Choice, Comparison, Generation, Pair, Prompt, Response, ResponseOrigin
from storage.verdicts import current_verdicts
from storage.workspace import Workspace

SOURCE = "blind A/B"   # the pairs' source, shown as a chip: it must not name a model


@dataclass(frozen=True)
class ModelSide:
    """One side of a comparison: the base model alone (``run_id`` None) or base + a run's adapter."""

    base_model: str
    run_id: str | None
    label: str            # "base", a run's name: shown only in results, never while judging


@dataclass(frozen=True)
class ComparedAnswers:
    prompt: Text          # plain text, or chat messages (found by content if already stored)
    answer_a: str
    answer_b: str


@dataclass(frozen=True)
class StoredComparison:
    comparison_id: int
    pair_ids: tuple[int, ...]
    skipped_identical: int    # prompts whose two answers were the same text (no pair to judge)
    skipped_stored: int       # prompts where an answer was already stored for that prompt


@dataclass(frozen=True)
class ComparisonRecord:
    id: int
    name: str
    run_a: str | None
    run_b: str | None
    label_a: str
    label_b: str
    pairs: int
    judged_pairs: int         # pairs with at least one verdict that is not a skip
    settings: dict
    created_at: dt.datetime


@dataclass
class Outcomes:
    """Verdicts mapped to the models: B is the model under test (the tuned one)."""

    a_won: int = 0
    b_won: int = 0
    ties: int = 0
    both_bad: int = 0
    skipped: int = 0

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


@dataclass(frozen=True)
class RevealedPair:
    """One pair of a comparison with its sides named (for the results, never while judging)."""

    pair_id: int
    prompt_text: str
    answer_a: str
    answer_b: str
    b_shown_left: bool
    outcomes: tuple[str, ...]     # each annotator's current verdict: "a_won", "b_won", "ties", ...


@dataclass(frozen=True)
class ComparisonTally:
    record: ComparisonRecord
    total: Outcomes
    by_annotator: dict[str, Outcomes] = field(default_factory=dict)
    pairs: list[RevealedPair] = field(default_factory=list)


def held_out_prompts(ws: Workspace, limit: int | None = None) -> list[Text]:
    """The prompts of the eval split (preference pairs held out of training), oldest first:
    chat prompts as their messages, others as text. A comparison judged on training prompts
    would reward memorising them."""
    query = (select(Prompt.text, Prompt.messages_json)
             .where(Prompt.id.in_(select(Pair.prompt_id).where(Pair.split == "eval", Pair.comparison_id.is_(None))))
             .order_by(Prompt.id))
    if limit is not None:
        query = query.limit(limit)
    with ws.session() as session:
        return [json.loads(messages) if messages else text for text, messages in session.execute(query)]


def side_draws(count: int, seed: str) -> list[bool]:
    """Which pairs show model B on the left: exactly half of them (the odd one drawn), in an
    order shuffled by ``random.Random(seed)``. Balanced rather than a coin per pair, so a
    judge's liking for one side cancels out of the win rate instead of adding to it (a coin
    can put 14 of 20 of one model on the left); seeded so the same comparison draws the same."""
    rng = random.Random(seed)
    draws = [i < count // 2 for i in range(count)]
    if count % 2:
        draws[-1] = rng.random() < 0.5
    rng.shuffle(draws)
    return draws


def add_generation(session: Session, side: ModelSide, settings: dict) -> int:
    """A ``generations`` row for a batch of sampled answers; its id."""
    row = Generation(base_model=side.base_model, run_id=side.run_id, label=side.label,
                     settings_json=json.dumps(settings, sort_keys=True))
    session.add(row)
    session.flush()
    return row.id


def _prompt_id(session: Session, prompt: Text) -> int:
    key = prompt_hash(prompt)
    found = session.scalar(select(Prompt.id).where(Prompt.hash == key))
    if found is not None:
        return found
    if isinstance(prompt, str):
        row = Prompt(text=prompt, messages_json=None, hash=key)
    else:
        row = Prompt(text=render_messages(prompt), messages_json=json.dumps(prompt, ensure_ascii=False), hash=key)
    session.add(row)
    session.flush()
    return row.id


def _add_response(session: Session, prompt_id: int, text: str, generation_id: int, label: str) -> int:
    row = Response(prompt_id=prompt_id, text=text, origin=ResponseOrigin.GENERATED, model_name=label,
                   generation_id=generation_id, hash=response_hash(text))
    session.add(row)
    session.flush()
    return row.id


def store_comparison(ws: Workspace, name: str, side_a: ModelSide, side_b: ModelSide, settings_a: dict,
                     settings_b: dict, answers: list[ComparedAnswers]) -> StoredComparison:
    """Store a comparison, its two generations (each with its sampling settings) and one pair
    per prompt, in one transaction.

    A prompt is left out when its two answers are the same text (nothing to judge) or when an
    answer is already stored for that prompt (the stored row belongs to another generation, so
    the model that wrote it would be ambiguous); both counts are returned and kept in the
    comparison's settings."""
    ws.require_writable()
    with ws.writing() as session:
        comparison = Comparison(name=name, run_a=side_a.run_id, run_b=side_b.run_id, settings_json="{}")
        session.add(comparison)
        session.flush()
        generation_a = add_generation(session, side_a, settings_a)
        generation_b = add_generation(session, side_b, settings_b)
        identical = already = 0
        triples: list[tuple[int, int, int]] = []   # (prompt id, response of A, response of B)
        for item in answers:
            if item.answer_a == item.answer_b:
                identical += 1
                continue
            prompt_id = _prompt_id(session, item.prompt)
            hashes = [response_hash(item.answer_a), response_hash(item.answer_b)]
            if session.scalar(select(func.count(Response.id)).where(Response.prompt_id == prompt_id,
                                                                   Response.hash.in_(hashes))):
                already += 1
                continue
            triples.append((prompt_id, _add_response(session, prompt_id, item.answer_a, generation_a, side_a.label),
                            _add_response(session, prompt_id, item.answer_b, generation_b, side_b.label)))
        pair_ids = []
        for (prompt_id, response_of_a, response_of_b), b_on_left in zip(
                triples, side_draws(len(triples), f"comparison:{comparison.id}")):
            low, high = sorted((response_of_a, response_of_b))
            # display_swapped shows the pair's response_b (the higher id) on the left.
            b_is_high = response_of_b == high
            pair = Pair(prompt_id=prompt_id, response_a_id=low, response_b_id=high, source=SOURCE,
                        display_swapped=(b_on_left == b_is_high), split="eval", comparison_id=comparison.id)
            session.add(pair)
            session.flush()
            pair_ids.append(pair.id)
        comparison.settings_json = json.dumps(
            {"sampling_a": settings_a, "sampling_b": settings_b, "generation_a": generation_a, "generation_b": generation_b,
             "label_a": side_a.label, "label_b": side_b.label, "base_model": side_a.base_model,
             "skipped_identical": identical, "skipped_stored": already}, sort_keys=True)
        return StoredComparison(comparison.id, tuple(pair_ids), identical, already)


def _records(session: Session, where=None) -> list[ComparisonRecord]:
    query = select(Comparison).order_by(Comparison.id)
    if where is not None:
        query = query.where(where)
    comparisons = list(session.scalars(query))
    ids = [c.id for c in comparisons]
    pairs = dict(session.execute(select(Pair.comparison_id, func.count(Pair.id))
                                 .where(Pair.comparison_id.in_(ids)).group_by(Pair.comparison_id)).all())
    judged = dict(session.execute(select(Pair.comparison_id, func.count(Pair.id))
                                  .where(Pair.comparison_id.in_(ids), Pair.judged_count > 0)
                                  .group_by(Pair.comparison_id)).all())
    records = []
    for c in comparisons:
        settings = json.loads(c.settings_json or "{}")
        records.append(ComparisonRecord(c.id, c.name, c.run_a, c.run_b, settings.get("label_a", c.run_a or "base"),
                                        settings.get("label_b", c.run_b or "base"), pairs.get(c.id, 0),
                                        judged.get(c.id, 0), settings, c.created_at))
    return records


def list_comparisons(ws: Workspace) -> list[ComparisonRecord]:
    """Every comparison, oldest first, with its pair counts."""
    with ws.session() as session:
        return _records(session)


def get_comparison(ws: Workspace, comparison_id: int) -> ComparisonRecord | None:
    with ws.session() as session:
        found = _records(session, Comparison.id == comparison_id)
        return found[0] if found else None


def comparisons_between(ws: Workspace, run_a: str | None, run_b: str | None) -> list[ComparisonRecord]:
    """The comparisons of these two models, either way round (None = the base), oldest first."""
    def same(column, run):
        return column.is_(None) if run is None else column == run

    with ws.session() as session:
        return _records(session, or_(same(Comparison.run_a, run_a) & same(Comparison.run_b, run_b),
                                     same(Comparison.run_a, run_b) & same(Comparison.run_b, run_a)))


_OUTCOME = {Choice.TIE: "ties", Choice.BOTH_BAD: "both_bad", Choice.SKIP: "skipped"}


def tally(ws: Workspace, comparison_id: int) -> ComparisonTally:
    """Each annotator's current verdict on the comparison's pairs, as A won / B won / tie /
    both bad (a stored choice names a response; the response's generation names the model),
    and every pair with its sides revealed."""
    with ws.session() as session:
        found = _records(session, Comparison.id == comparison_id)
        if not found:
            raise LookupError(f"no comparison #{comparison_id} in this workspace")
        record = found[0]
        generation_a = record.settings.get("generation_a")
        response_a, response_b = aliased(Response), aliased(Response)
        rows = session.execute(
            select(Pair.id, Pair.display_swapped, Prompt.text, response_a.id, response_a.text,
                   response_a.generation_id, response_b.id, response_b.text)
            .join(Prompt, Prompt.id == Pair.prompt_id)
            .join(response_a, response_a.id == Pair.response_a_id)
            .join(response_b, response_b.id == Pair.response_b_id)
            .where(Pair.comparison_id == comparison_id).order_by(Pair.id)).all()
        # stored response a is model A's when its generation is A's (the rows were written A first,
        # but the generation, not the order, is the record)
        a_first = {pid: gen_a == generation_a for pid, _swap, _p, _ida, _ta, gen_a, _idb, _tb in rows}
        verdicts: dict[int, list[tuple[str, str]]] = {}
        for verdict in current_verdicts(session, [row[0] for row in rows]):
            if verdict.is_resolution:
                continue     # an owner's settlement is not a judge's opinion of the models
            outcome = _OUTCOME.get(verdict.choice)
            if outcome is None:
                outcome = "a_won" if (verdict.choice is Choice.A) == a_first[verdict.pair_id] else "b_won"
            verdicts.setdefault(verdict.pair_id, []).append((verdict.annotator_name, outcome))
    total, by_annotator, pairs = Outcomes(), {}, []
    for pid, swapped, prompt, _ida, text_a, _gen_a, _idb, text_b in rows:
        first = a_first[pid]
        said = verdicts.get(pid, [])
        for name, outcome in said:
            total.add(outcome)
            by_annotator.setdefault(name, Outcomes()).add(outcome)
        # display_swapped: the stored response b is on the left
        pairs.append(RevealedPair(pid, prompt, text_a if first else text_b, text_b if first else text_a,
                                  b_shown_left=(bool(swapped) == first), outcomes=tuple(o for _n, o in said)))
    return ComparisonTally(record, total, by_annotator, pairs)
