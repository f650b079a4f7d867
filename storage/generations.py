"""Generated candidates: a ``generations`` row, its responses (origin GENERATED, tagged with the
generation and the model) and the pairs they form, all in one transaction.

The prompts, responses and pairs go through ``storage.ingest.import_records`` (inside the same
write transaction), so they obey the same rules as an import: prompts and responses deduplicated
by content hash, each pair stored once as (lower response id, higher response id) with its split
and display sides drawn from the content hashes. A generated reply identical to a response the
prompt already has is that response (it keeps its own origin); the new ones get the generation's
id. Read helpers: the generations with their counts, and the prompts awaiting a verdict.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import aliased

from storage.content_keys import Text
from storage.ingest import ImportRecord, import_records
from storage.models import Generation, Pair, Prompt, Response, ResponseOrigin, Verdict, utcnow
from storage.workspace import Workspace


@dataclass(frozen=True)
class GeneratedPrompt:
    """One prompt and the pairs of its replies to store (each pair two different texts)."""

    prompt: Text
    pairs: Sequence[tuple[str, str]]


@dataclass(frozen=True)
class GenerationWrite:
    generation_id: int
    prompts_added: int
    responses_added: int
    pairs_added: int
    pair_ids: tuple[int, ...]     # every pair the generation names, new or already stored


@dataclass(frozen=True)
class GenerationRecord:
    id: int
    base_model: str
    run_id: str | None            # None: the base model
    label: str
    settings: dict
    created_at: dt.datetime
    responses: int                # responses this generation wrote
    pairs: int                    # pairs with at least one of them
    judged: int                   # of those, pairs with a verdict


def generation_source(generation_id: int, label: str) -> str:
    """The ``pairs.source`` of a generation's pairs (shown in the pair browser)."""
    return f"generated #{generation_id} ({label})"


def record_generation(ws: Workspace, *, base_model: str, run_id: str | None, label: str, settings: dict,
                      items: Sequence[GeneratedPrompt], model_name: str | None = None) -> GenerationWrite:
    """Store one generation: its row, its new responses and pairs; all or nothing."""
    with ws.writing() as session:
        row = Generation(base_model=base_model, run_id=run_id, label=label,
                         settings_json=json.dumps(settings, sort_keys=True), created_at=utcnow())
        session.add(row)
        session.flush()
        records = [ImportRecord(item.prompt, [a, b], line=i + 1)
                   for i, item in enumerate(items) for a, b in item.pairs]
        summary = import_records(ws, records, generation_source(row.id, label), origin=ResponseOrigin.GENERATED,
                                 model_name=model_name or label, session=session)
        pair_ids = tuple(dict.fromkeys(summary.pair_ids))
        named = select(Pair.response_a_id).where(Pair.id.in_(pair_ids)).union(
            select(Pair.response_b_id).where(Pair.id.in_(pair_ids)))
        if pair_ids:
            session.execute(update(Response).where(Response.id.in_(named), Response.generation_id.is_(None),
                                                   Response.origin == ResponseOrigin.GENERATED)
                            .values(generation_id=row.id))
        return GenerationWrite(row.id, summary.prompts_added, summary.responses_added, summary.pairs_added, pair_ids)


def _pairs_of(generation_id):
    a, b = aliased(Response), aliased(Response)
    return (select(Pair.id, Pair.judged_count).join(a, a.id == Pair.response_a_id).join(b, b.id == Pair.response_b_id)
            .where(or_(a.generation_id == generation_id, b.generation_id == generation_id)))


def generation_pair_counts(ws: Workspace, generation_id: int) -> tuple[int, int]:
    """(pairs with a response of this generation, how many of them have a verdict)."""
    with ws.session() as session:
        rows = session.execute(_pairs_of(generation_id)).all()
    return len(rows), sum(1 for _, judged in rows if judged > 0)


def list_generations(ws: Workspace, run_id: str | None = None, base_only: bool = False) -> list[GenerationRecord]:
    """Every generation, oldest first, with its counts; ``run_id`` / ``base_only`` narrow it."""
    with ws.session() as session:
        query = select(Generation).order_by(Generation.id)
        if run_id is not None:
            query = query.where(Generation.run_id == run_id)
        elif base_only:
            query = query.where(Generation.run_id.is_(None))
        generations = session.scalars(query).all()
        written = dict(session.execute(select(Response.generation_id, func.count())
                                       .where(Response.generation_id.is_not(None))
                                       .group_by(Response.generation_id)).all())
        records = []
        for g in generations:
            rows = session.execute(_pairs_of(g.id)).all()
            records.append(GenerationRecord(g.id, g.base_model, g.run_id, g.label, json.loads(g.settings_json or "{}"),
                                            g.created_at, written.get(g.id, 0), len(rows),
                                            sum(1 for _, judged in rows if judged > 0)))
    return records


def _prompt_value(prompt: Prompt) -> Text:
    return prompt.messages if prompt.messages_json else prompt.text


def workspace_prompts(ws: Workspace, unlabelled: bool = False, limit: int | None = None) -> list[Text]:
    """The workspace's prompts (text, or chat messages), oldest first. ``unlabelled``: only those
    none of whose pairs has a standing verdict (blind A/B pairs aside)."""
    with ws.session() as session:
        query = select(Prompt).order_by(Prompt.id)
        if unlabelled:
            judged = (select(Verdict.id).join(Pair, Pair.id == Verdict.pair_id)
                      .where(Pair.prompt_id == Prompt.id, Pair.comparison_id.is_(None), Verdict.retracted_at.is_(None)))
            query = query.where(~exists(judged))
        if limit is not None:
            query = query.limit(limit)
        return [_prompt_value(p) for p in session.scalars(query).all()]


__all__ = ["GeneratedPrompt", "GenerationWrite", "GenerationRecord", "generation_source", "record_generation",
           "generation_pair_counts", "list_generations", "workspace_prompts"]
