"""Storing imported (or generated) prompts, responses, pairs and labels in one transaction.

``import_records`` is all-or-nothing and idempotent: a prompt, a response (per prompt) and
a pair are identified by content hashes, so the same prompt and responses are never stored
twice. A labelled row adds a verdict (of its pseudo-annotator, named after the source file)
only if that pseudo-annotator has none on the pair yet and no current verdict on the pair
already makes the same choice — a label the workspace holds is not new, whoever gave it, so
our own export re-imported (under any file name) adds nothing. With ``match_forms`` a prompt
or response is also found when it arrives in its other form, text or chat
(``storage.content_keys``). It is built for 100,000-row files: the hashes already in the
workspace are looked up in memory and new rows go in as bulk inserts, not as one ORM round
trip per row.

Chat prompts are stored as ``messages_json`` plus a readable ``text`` rendering
(``render_messages``); conversational completions keep their assistant messages likewise.
Numbers the source gives about a labelled pair (``ImportRecord.metadata``: scores, ratings)
are kept with its label, as the JSON text of the pseudo-annotator's verdict note.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, Iterable

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from storage.content_keys import (Text, canonical_json, completion_text, find_response, match_prompts,
                                  prompt_alternatives, prompt_hash, render_messages, response_alternatives,
                                  response_hash, stored_responses)
from storage.models import Annotator, Choice, Pair, Prompt, Response, ResponseOrigin, Verdict, utcnow
from storage.settings import settings_in
from storage.splits import display_swapped_for, split_for
from storage.verdicts import get_or_create_annotator, refresh_judged_counts
from storage.workspace import Workspace


@dataclass
class ImportRecord:
    """One source row. Labelled rows: ``responses == [chosen, rejected]`` and ``chosen == 0``;
    unlabelled rows: two or more candidate responses and ``chosen is None``."""

    prompt: Text                 # plain text, or chat messages [{"role", "content"}, ...]
    responses: list[Text]        # >= 2; text, or assistant message lists (conversational)
    chosen: int | None = None    # index into responses of the preferred one, for labelled rows
    line: int = 0                # source line/row, for messages
    split: str | None = None     # "train" / "eval" given by the file; None: drawn from content hashes
    metadata: dict | None = None  # labelled rows: what the source says about the pair (scores, ratings)


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


def _stored_json(messages: list[dict]) -> str:
    # Stored as given (role before content reads naturally); hashes use canonical_json.
    return json.dumps(messages, ensure_ascii=False)


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
                   labelled_by: str | None = None, session: Session | None = None,
                   match_forms: bool = False) -> ImportSummary:
    """Store ``records`` in one transaction (all or nothing) and say what was new.

    ``source`` names the pairs' origin (normally the file name) and, for labelled rows, the
    pseudo-annotator whose verdicts they become (``labelled_by`` overrides that name).
    ``progress(done, total)`` is called now and then while rows are processed.
    ``session``: store inside the caller's open write transaction (``ws.writing()``) instead of
    one of its own, so the rows commit or roll back with the caller's other writes.
    ``match_forms``: find a stored prompt or response also in its other form, text or chat
    (what a file import wants; ``storage.content_keys``).
    Raises ``IngestError`` naming the row and field for a record that cannot be stored.
    """
    records = list(records)
    total = len(records)
    summary = ImportSummary(rows=total)
    hashed = _checked(records, source)

    with _transaction(ws, session) as session:
        eval_fraction = settings_in(session).eval_fraction
        now = utcnow()
        # The pseudo-annotator is looked up now, created only if a label of the file is new.
        pseudo_name = (labelled_by or source).strip()
        labelled = any(r.chosen is not None for r in records)
        pseudo_id = session.scalar(select(Annotator.id).where(Annotator.name == pseudo_name)) if labelled else None

        # -- prompts: incoming key -> the key of the prompt it is (stored, or new here) ------
        incoming: dict[str, Text] = {}
        for record, key, _ in hashed:
            incoming.setdefault(key, record.prompt)
        prompt_key, prompt_ids = match_prompts(session, incoming, match_forms)
        new_prompts: dict[str, dict] = {}
        aliases: dict[str, str] = {}   # another form's key -> a new prompt's key
        for key, prompt in incoming.items():
            if key in prompt_key:
                continue
            same = aliases.get(key) if match_forms else None
            if same is not None:
                prompt_key[key] = same
                continue
            prompt_key[key] = key
            new_prompts[key] = _prompt_row(prompt, key, now)
            if match_forms:
                for alt in prompt_alternatives(prompt):
                    aliases.setdefault(alt, key)
        prompt_ids.update(zip(new_prompts, _bulk_insert_ids(session, Prompt, list(new_prompts.values()))))
        summary.prompts_added = len(new_prompts)
        _report(progress, total // 4, total)

        # -- responses: (prompt id, incoming key) -> the key of the response it is -------------
        known_prompts = {prompt_ids[k] for k in set(prompt_key.values()) if k not in new_prompts}
        stored = stored_responses(session, known_prompts, match_forms)
        response_ids: dict[tuple[int, str], int] = {}
        response_key: dict[tuple[int, str], str] = {}
        new_responses: dict[tuple[int, str], dict] = {}
        response_aliases: dict[tuple[int, str], str] = {}
        for record, key, rkeys in hashed:
            pid = prompt_ids[prompt_key[key]]
            for response, rkey in zip(record.responses, rkeys):
                if (pid, rkey) in response_key:
                    continue
                hit = find_response(stored, pid, rkey, response, match_forms)
                if hit is not None:
                    response_ids[(pid, hit[1])] = hit[0]
                    response_key[(pid, rkey)] = hit[1]
                    continue
                same = response_aliases.get((pid, rkey))
                if same is not None:
                    response_key[(pid, rkey)] = same
                    continue
                response_key[(pid, rkey)] = rkey
                new_responses[(pid, rkey)] = _response_row(pid, response, rkey, origin, model_name, now)
                if match_forms:
                    for alt in response_alternatives(response):
                        response_aliases.setdefault((pid, alt), rkey)
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
            pkey = prompt_key[key]
            pid = prompt_ids[pkey]
            keys = [response_key[(pid, rk)] for rk in rkeys]
            rids = [response_ids[(pid, k)] for k in keys]
            if len(set(rids)) != len(rids):
                repeat = next(i for i, r in enumerate(rids) if rids.index(r) != i)
                raise IngestError(source, record.line, f"responses[{repeat}]",
                                  f"same as responses[{rids.index(rids[repeat])}] (as text and as chat)")
            named = []
            for i in range(len(rids)):
                for j in range(i + 1, len(rids)):
                    low, high = sorted((rids[i], rids[j]))
                    choice = None
                    if record.chosen is not None:
                        choice = Choice.A if rids[record.chosen] == low else Choice.B
                    named.append((low, high, choice))
                    pair_hashes[(low, high)] = (pkey, keys[i], keys[j])
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
        standing: set[tuple[int, Choice]] = set()
        if labelled:
            old_pair_ids = [pair_ids[pk] for pk in candidate_keys if pk not in new_pairs]
            already_judged, standing = _held_labels(session, pseudo_id, old_pair_ids)
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
                if choice is not None and pair_id not in already_judged and (pair_id, choice) not in standing:
                    already_judged.add(pair_id)
                    note = json.dumps(record.metadata, ensure_ascii=False) if record.metadata else ""
                    new_verdicts.append({"pair_id": pair_id, "annotator_id": pseudo_id, "choice": choice,
                                         "seconds_spent": 0.0, "note": note, "is_resolution": False,
                                         "retracted_at": None, "created_at": now})
                    if (low, high) not in new_pairs:
                        relabelled_old.append(pair_id)
                    added_something = True
            if not added_something:
                summary.duplicates += 1
        if new_verdicts:
            if pseudo_id is None:
                pseudo_id = get_or_create_annotator(session, pseudo_name, is_pseudo=True)
            session.execute(Verdict.__table__.insert(), [dict(v, annotator_id=pseudo_id) for v in new_verdicts])
        summary.verdicts_added = len(new_verdicts)
        refresh_judged_counts(session, relabelled_old)
        _report(progress, total, total)
    return summary


def _checked(records: list[ImportRecord], source: str) -> list[tuple[ImportRecord, str, list[str]]]:
    """Each record with its prompt and response keys, validated first so a bad row fails before any write."""
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
    return hashed


def _held_labels(session: Session, pseudo_id: int | None, pair_ids: list[int]) -> tuple[set[int], set[tuple[int, Choice]]]:
    """(pairs the pseudo-annotator already judged, (pair, choice) of every current verdict) among ``pair_ids``."""
    judged: set[int] = set()
    newest: dict[tuple[int, int], tuple[int, Choice]] = {}
    for chunk in _in_chunks(pair_ids):
        for verdict_id, pair_id, annotator_id, choice in session.execute(
                select(Verdict.id, Verdict.pair_id, Verdict.annotator_id, Verdict.choice)
                .where(Verdict.retracted_at.is_(None), Verdict.pair_id.in_(chunk))):
            if annotator_id == pseudo_id:
                judged.add(pair_id)
            held = newest.get((pair_id, annotator_id))
            if held is None or verdict_id > held[0]:
                newest[(pair_id, annotator_id)] = (verdict_id, choice)
    return judged, {(pair_id, choice) for (pair_id, _), (_, choice) in newest.items()}


def _transaction(ws: Workspace, session: Session | None):
    return nullcontext(session) if session is not None else ws.writing()


def source_metadata(note: str) -> dict | None:
    """The scores/ratings an import kept in its verdict's note, or None for a person's note."""
    if not note.startswith("{"):
        return None
    try:
        value = json.loads(note)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _report(progress: Callable[[int, int], None] | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


__all__ = ["ImportRecord", "ImportSummary", "IngestError", "import_records", "render_messages",
           "completion_text", "prompt_hash", "response_hash", "canonical_json", "source_metadata"]
