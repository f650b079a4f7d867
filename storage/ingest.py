"""Storing imported (or generated) prompts, responses, pairs and labels in one transaction.

``import_records`` is all-or-nothing and idempotent: a prompt, a response (per prompt) and
a pair are identified by content hashes, so the same prompt and responses are never stored
twice, and a labelled row adds a verdict only if its pseudo-annotator (named after the
source file) has none on that pair yet. It is built for 100,000-row files: the hashes
already in the workspace are looked up in memory and new rows go in as bulk inserts, not
as one ORM round trip per row.

Chat prompts are stored as ``messages_json`` plus a readable ``text`` rendering
(``render_messages``); conversational completions keep their assistant messages likewise.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, Iterable

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from storage.models import (Choice, Pair, Prompt, Response, ResponseOrigin, Verdict,
                            content_hash, utcnow)
from storage.settings import settings_in
from storage.splits import display_swapped_for, split_for
from storage.verdicts import get_or_create_annotator, refresh_judged_counts
from storage.workspace import Workspace

Text = str | list[dict]

ROLE_LABELS = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}


@dataclass
class ImportRecord:
    """One source row. Labelled rows: ``responses == [chosen, rejected]`` and ``chosen == 0``;
    unlabelled rows: two or more candidate responses and ``chosen is None``."""

    prompt: Text                 # plain text, or chat messages [{"role", "content"}, ...]
    responses: list[Text]        # >= 2; text, or assistant message lists (conversational)
    chosen: int | None = None    # index into responses of the preferred one, for labelled rows
    line: int = 0                # source line/row, for messages
    split: str | None = None     # "train" / "eval" given by the file; None: drawn from content hashes


@dataclass
class ImportSummary:
    rows: int = 0
    prompts_added: int = 0
    responses_added: int = 0
    pairs_added: int = 0
    verdicts_added: int = 0
    duplicates: int = 0          # rows that added nothing (already stored)
    pair_ids: list[int] = field(default_factory=list)  # every pair the rows name, new or old, in row order
    new_pairs_by_split: dict[str, int] = field(default_factory=dict)  # "train"/"eval" -> pairs added


class IngestError(ValueError):
    """A record that cannot be stored; ``str()`` names the source line and the field."""

    def __init__(self, source: str, line: int, field_name: str, message: str):
        self.source, self.line, self.field, self.message = source, line, field_name, message
        super().__init__(f"{source}:{line}: field '{field_name}': {message}")


def canonical_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _stored_json(messages: list[dict]) -> str:
    # Stored as given (role before content reads naturally); hashes use canonical_json.
    return json.dumps(messages, ensure_ascii=False)


def render_messages(messages: list[dict]) -> str:
    """A readable plain-text rendering of chat turns ("User: ...", blank line between turns)."""
    return "\n\n".join(f"{ROLE_LABELS.get(m['role'], str(m['role']).title())}: {m['content']}"
                       for m in messages)


def completion_text(messages: list[dict]) -> str:
    """The text of a conversational completion (normally one assistant turn)."""
    if len(messages) == 1:
        return messages[0]["content"]
    return render_messages(messages)


def prompt_hash(prompt: Text) -> str:
    """Content key of a prompt; a text prompt and a chat prompt never share one."""
    return content_hash("text", prompt) if isinstance(prompt, str) else content_hash("chat", canonical_json(prompt))


def response_hash(response: Text) -> str:
    return content_hash("text", response) if isinstance(response, str) else content_hash(
        "chat", canonical_json(response))


def pair_draws(prompt_key: str, hash_1: str, hash_2: str, eval_fraction: float) -> tuple[str, bool]:
    """(split, display_swapped) of a pair, from hashes in sorted order (independent of ids)."""
    low, high = sorted((hash_1, hash_2))
    return split_for(prompt_key, low, high, eval_fraction), display_swapped_for(prompt_key, low, high)


def _prompt_row(prompt: Text, key: str, now) -> dict:
    if isinstance(prompt, str):
        return {"text": prompt, "messages_json": None, "hash": key, "created_at": now}
    return {"text": render_messages(prompt), "messages_json": _stored_json(prompt), "hash": key, "created_at": now}


def _response_row(prompt_id: int, response: Text, key: str, origin: ResponseOrigin, model_name: str | None,
                  now) -> dict:
    if isinstance(response, str):
        text_value, messages = response, None
    else:
        text_value, messages = completion_text(response), _stored_json(response)
    return {"prompt_id": prompt_id, "text": text_value, "messages_json": messages, "origin": origin,
            "model_name": model_name, "parent_id": None, "hash": key, "created_at": now}


def _bulk_insert_ids(session: Session, model, rows: list[dict]) -> list[int]:
    """Insert rows in one executemany and return their new ids, in row order."""
    if not rows:
        return []
    table = model.__table__
    if session.get_bind().dialect.name == "sqlite":
        # The transaction holds SQLite's write lock (BEGIN IMMEDIATE), so nobody else can take
        # ids meanwhile: number the rows ourselves and use a plain executemany, many times
        # faster than RETURNING, which SQLite can only do one row per statement in order.
        first = (session.scalar(select(func.max(table.c.id))) or 0) + 1
        ids = list(range(first, first + len(rows)))
        session.execute(table.insert(), [dict(row, id=new_id) for row, new_id in zip(rows, ids)])
        return ids
    ids = []
    for start in range(0, len(rows), 20_000):
        result = session.execute(table.insert().returning(table.c.id, sort_by_parameter_order=True),
                                 rows[start:start + 20_000])
        ids.extend(result.scalars().all())
    return ids


def _in_chunks(values: list, size: int = 500):
    for start in range(0, len(values), size):
        yield values[start:start + size]


def import_records(ws: Workspace, records: Iterable[ImportRecord], source: str,
                   progress: Callable[[int, int], None] | None = None, *,
                   origin: ResponseOrigin = ResponseOrigin.IMPORTED, model_name: str | None = None,
                   labelled_by: str | None = None, session: Session | None = None) -> ImportSummary:
    """Store ``records`` in one transaction (all or nothing) and say what was new.

    ``source`` names the pairs' origin (normally the file name) and, for labelled rows, the
    pseudo-annotator whose verdicts they become (``labelled_by`` overrides that name).
    ``progress(done, total)`` is called now and then while rows are processed.
    ``session``: store inside the caller's open write transaction (``ws.writing()``) instead of
    one of its own, so the rows commit or roll back with the caller's other writes.
    Raises ``IngestError`` naming the row and field for a record that cannot be stored.
    """
    records = list(records)
    total = len(records)
    summary = ImportSummary(rows=total)
    # Hash everything first, validating as we go, so a bad row fails before any write.
    hashed: list[tuple[ImportRecord, str, list[str]]] = []
    for record in records:
        if not isinstance(record.prompt, (str, list)):
            raise IngestError(source, record.line, "prompt", f"expected text or messages, got {type(record.prompt).__name__}")
        if len(record.responses) < 2:
            raise IngestError(source, record.line, "responses", f"needs at least 2 responses, got {len(record.responses)}")
        keys = [response_hash(r) for r in record.responses]
        if len(set(keys)) != len(keys):
            first = keys.index(next(k for k in keys if keys.count(k) > 1))
            repeat = keys.index(keys[first], first + 1)
            raise IngestError(source, record.line, f"responses[{repeat}]", f"same as responses[{first}]")
        if record.split not in (None, "train", "eval"):
            raise IngestError(source, record.line, "split", f"expected 'train' or 'eval', got {record.split!r}")
        if record.chosen is not None and (len(record.responses) != 2 or record.chosen not in (0, 1)):
            raise IngestError(source, record.line, "chosen",
                              "a labelled row needs exactly 2 responses and chosen 0 or 1")
        hashed.append((record, prompt_hash(record.prompt), keys))

    with _transaction(ws, session) as session:
        eval_fraction = settings_in(session).eval_fraction
        now = utcnow()
        pseudo_id = None
        if any(r.chosen is not None for r in records):
            pseudo_id = get_or_create_annotator(session, labelled_by or source, is_pseudo=True)

        # -- prompts ------------------------------------------------------------------
        prompt_ids: dict[str, int] = {}
        wanted = list({key for _, key, _ in hashed})
        for chunk in _in_chunks(wanted):
            prompt_ids.update(session.execute(select(Prompt.hash, Prompt.id).where(Prompt.hash.in_(chunk))).all())
        new_prompts: dict[str, dict] = {}
        for record, key, _ in hashed:
            if key not in prompt_ids and key not in new_prompts:
                new_prompts[key] = _prompt_row(record.prompt, key, now)
        for key, new_id in zip(new_prompts, _bulk_insert_ids(session, Prompt, list(new_prompts.values()))):
            prompt_ids[key] = new_id
        summary.prompts_added = len(new_prompts)
        _report(progress, total // 4, total)

        # -- responses ----------------------------------------------------------------
        response_ids: dict[tuple[int, str], int] = {}
        known_prompt_ids = [prompt_ids[k] for k in wanted if k not in new_prompts]
        for chunk in _in_chunks(known_prompt_ids):
            for pid, rkey, rid in session.execute(
                    select(Response.prompt_id, Response.hash, Response.id).where(Response.prompt_id.in_(chunk))):
                response_ids[(pid, rkey)] = rid
        new_responses: dict[tuple[int, str], dict] = {}
        for record, key, rkeys in hashed:
            pid = prompt_ids[key]
            for response, rkey in zip(record.responses, rkeys):
                if (pid, rkey) not in response_ids and (pid, rkey) not in new_responses:
                    new_responses[(pid, rkey)] = _response_row(pid, response, rkey, origin, model_name, now)
        inserted = _bulk_insert_ids(session, Response, list(new_responses.values()))
        response_ids.update(zip(new_responses, inserted))
        new_response_ids = set(inserted)
        summary.responses_added = len(new_responses)
        _report(progress, total // 2, total)

        # -- pairs --------------------------------------------------------------------
        # Each row names its pairs as (low response id, high response id) plus the row's
        # label on them; pairs are looked up by response ids, created if new.
        row_pairs: list[tuple[ImportRecord, list[tuple[int, int, Choice | None]]]] = []
        pair_hashes: dict[tuple[int, int], tuple[str, str, str]] = {}
        for record, key, rkeys in hashed:
            pid = prompt_ids[key]
            rids = [response_ids[(pid, rk)] for rk in rkeys]
            named = []
            for i in range(len(rids)):
                for j in range(i + 1, len(rids)):
                    low, high = sorted((rids[i], rids[j]))
                    choice = None
                    if record.chosen is not None:
                        chosen_id = rids[record.chosen]
                        choice = Choice.A if chosen_id == low else Choice.B
                    named.append((low, high, choice))
                    pair_hashes[(low, high)] = (key, rkeys[i], rkeys[j])
            row_pairs.append((record, named))
        pair_ids: dict[tuple[int, int], int] = {}
        candidate_keys = list(pair_hashes)
        # Only pairs of two already-stored responses can already exist.
        old_keys = [pk for pk in candidate_keys if pk[0] not in new_response_ids and pk[1] not in new_response_ids]
        for chunk in _in_chunks(old_keys, 400):
            for a_id, b_id, pair_id in session.execute(
                    select(Pair.response_a_id, Pair.response_b_id, Pair.id)
                    .where(tuple_(Pair.response_a_id, Pair.response_b_id).in_(chunk))):
                pair_ids[(a_id, b_id)] = pair_id
        new_pairs: dict[tuple[int, int], dict] = {}
        labelled_new: set[tuple[int, int]] = set()
        for record, named in row_pairs:
            for low, high, choice in named:
                if (low, high) in pair_ids:
                    continue
                if choice is not None:
                    labelled_new.add((low, high))
                if (low, high) in new_pairs:
                    continue
                pkey, h1, h2 = pair_hashes[(low, high)]
                split, swapped = pair_draws(pkey, h1, h2, eval_fraction)
                split = record.split or split
                new_pairs[(low, high)] = {
                    "prompt_id": prompt_ids[pkey], "response_a_id": low, "response_b_id": high,
                    "source": source, "display_swapped": swapped, "split": split,
                    "judged_count": 0, "created_at": now}
        for pk in labelled_new:
            new_pairs[pk]["judged_count"] = 1
        for pk, new_id in zip(new_pairs, _bulk_insert_ids(session, Pair, list(new_pairs.values()))):
            pair_ids[pk] = new_id
        summary.pairs_added = len(new_pairs)
        for row in new_pairs.values():
            summary.new_pairs_by_split[row["split"]] = summary.new_pairs_by_split.get(row["split"], 0) + 1
        _report(progress, (3 * total) // 4, total)

        # -- verdicts of the pseudo-annotator -------------------------------------------
        already_judged: set[int] = set()
        if pseudo_id is not None:
            old_pair_ids = [pair_ids[pk] for pk in candidate_keys if pk not in new_pairs]
            for chunk in _in_chunks(old_pair_ids):
                already_judged.update(session.scalars(
                    select(Verdict.pair_id).where(Verdict.annotator_id == pseudo_id,
                                                  Verdict.retracted_at.is_(None), Verdict.pair_id.in_(chunk))))
        new_verdicts: list[dict] = []
        relabelled_old: list[int] = []
        claimed: set[tuple[int, int]] = set()  # new pairs already credited to an earlier row
        for record, named in row_pairs:
            added_something = False
            for low, high, choice in named:
                pair_id = pair_ids[(low, high)]
                summary.pair_ids.append(pair_id)
                if (low, high) in new_pairs and (low, high) not in claimed:
                    claimed.add((low, high))
                    added_something = True
                if choice is not None and pair_id not in already_judged:
                    already_judged.add(pair_id)
                    new_verdicts.append({"pair_id": pair_id, "annotator_id": pseudo_id, "choice": choice,
                                         "seconds_spent": 0.0, "note": "", "is_resolution": False,
                                         "retracted_at": None, "created_at": now})
                    if (low, high) not in new_pairs:
                        relabelled_old.append(pair_id)
                    added_something = True
            if not added_something:
                summary.duplicates += 1
        if new_verdicts:
            session.execute(Verdict.__table__.insert(), new_verdicts)
        summary.verdicts_added = len(new_verdicts)
        refresh_judged_counts(session, relabelled_old)
        _report(progress, total, total)
    return summary


def _transaction(ws: Workspace, session: Session | None):
    return nullcontext(session) if session is not None else ws.writing()


def _report(progress: Callable[[int, int], None] | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


__all__ = ["ImportRecord", "ImportSummary", "IngestError", "import_records", "render_messages",
           "completion_text", "prompt_hash", "response_hash", "canonical_json"]
