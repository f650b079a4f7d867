"""The SQL of bundles: one annotator's verdicts carried to another workspace by content.

A pair is known across workspaces by its content, never by its id: ``pair_key`` hashes the
prompt's and the two responses' content hashes (the ``Prompt.hash`` / ``Response.hash`` of
``storage.ingest``), so workspaces made from the same import file agree on every key even
when their ids differ. In a bundle a pair's two responses are listed in the order of their
hashes, and a verdict's "a"/"b" refer to that order (not to the workspace's id order).

A verdict is known by (annotator, pair key, created time, choice): the created time travels
with it, so a verdict merged once is found again and merging the same bundle twice changes
nothing. Its client id (``Verdict.client_id``, made where it was given) travels too; a merged
row keeps it, or gets ``verdict_key`` when it had none, and a client id already stored here
also marks the verdict as present. ``read_annotator_bundle`` reads what an export writes; ``merge_annotator_bundle``
stores a bundle in one transaction:

- pairs the workspace lacks are added (prompt, responses, source, split, as an import would);
- a retraction in the bundle retracts the same verdict where the workspace still holds it;
- a verdict already present (same identity, current or not) adds nothing;
- otherwise it is added if it is newer than the annotator's current verdict on that pair in
  the workspace (or they have none); an older one leaves the workspace's newer one current.

Verdicts of different annotators never conflict: they are just verdicts, so their
disagreements show up wherever disagreements are counted (storage.team).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, aliased

from storage.annotator_session import validate_annotator_name
from storage.ingest import ImportRecord, import_records, prompt_hash, response_hash
from storage.models import Annotator, Choice, Pair, Prompt, Response, ResponseOrigin, Verdict, content_hash
from storage.verdicts import get_or_create_annotator, refresh_judged_counts
from storage.workspace import Workspace

Text = str | list[dict]
CLIENT_ID_MAX = Verdict.__table__.c.client_id.type.length   # the longest client id a verdict can keep
Progress = Callable[[int, int], None]


class BundleRefused(ValueError):
    """The bundle cannot be exported or merged as asked; nothing was written."""


@dataclass(frozen=True)
class BundlePair:
    key: str                                  # pair_key of the content below
    prompt: Text                              # text, or chat messages
    responses: tuple[Text, Text]              # in the order of their content hashes
    source: str = ""
    split: str = "train"
    origins: tuple[str, str] = ("imported", "imported")       # ResponseOrigin values
    models: tuple[str | None, str | None] = (None, None)      # which model wrote a generated response


@dataclass(frozen=True)
class BundleVerdict:
    pair_key: str
    choice: Choice                            # A / B: responses[0] / responses[1] of the pair
    created_at: dt.datetime                   # UTC, naive (as stored)
    note: str = ""
    seconds_spent: float = 0.0
    retracted_at: dt.datetime | None = None   # a retraction: take this verdict back where it is held
    client_id: str | None = None              # as stored where it was given (None: it has none)


@dataclass
class AnnotatorBundle:
    annotator: str
    pairs: list[BundlePair] = field(default_factory=list)
    verdicts: list[BundleVerdict] = field(default_factory=list)  # current ones and retractions


@dataclass
class MergeSummary:
    annotator_created: bool = False
    pairs_added: int = 0
    verdicts_added: int = 0
    already_present: int = 0       # the same verdict was in the workspace already
    kept_newer: int = 0            # the workspace holds a newer verdict of the annotator on the pair
    retracted: int = 0             # retractions applied to verdicts the workspace still held
    pair_ids: set[int] = field(default_factory=set)   # the pairs whose verdicts changed


def pair_key(prompt_key: str, hash_1: str, hash_2: str) -> str:
    """A pair's identity across workspaces, from content hashes (independent of their order)."""
    low, high = sorted((hash_1, hash_2))
    return content_hash("pair", prompt_key, low, high)


def verdict_key(annotator: str, verdict: BundleVerdict) -> str:
    """A verdict's identity across workspaces, as written in a bundle (``id``)."""
    return content_hash("verdict", annotator, verdict.pair_key, verdict.created_at.isoformat(),
                        verdict.choice.value)


def content_of(text: str, messages_json: str | None) -> Text:
    """A stored prompt or response as it was imported: its messages, or its text."""
    return json.loads(messages_json) if messages_json else text


def _flip(choice: Choice, swapped: bool) -> Choice:
    if swapped and choice in (Choice.A, Choice.B):
        return Choice.B if choice is Choice.A else Choice.A
    return choice


def _chunks(values: list, size: int = 500):
    for start in range(0, len(values), size):
        yield values[start:start + size]


# -- export ----------------------------------------------------------------------------
def read_annotator_bundle(ws: Workspace, annotator: str, progress: Progress | None = None) -> AnnotatorBundle:
    """The annotator's current labels and retracted ones, with every pair they refer to.

    Resolutions are left out (settling a dispute is the owner's, in the owner's workspace).
    Raises ``BundleRefused`` for an unknown annotator or an imported file's pseudo-annotator.
    """
    with ws.session() as session:
        found = session.execute(select(Annotator.id, Annotator.is_pseudo)
                                .where(Annotator.name == annotator.strip())).first()
        if found is None:
            names = session.scalars(select(Annotator.name).where(Annotator.is_pseudo.is_(False))
                                    .order_by(Annotator.name)).all()
            known = f"annotators here: {', '.join(names)}" if names else "it has no annotators yet"
            raise BundleRefused(f"no annotator named {annotator.strip()!r} in this workspace ({known})")
        annotator_id, is_pseudo = found
        if is_pseudo:
            raise BundleRefused(f"{annotator.strip()!r} holds an imported file's labels, not a person's; "
                                "import that file in the other workspace instead")
        rows = session.execute(
            select(Verdict.pair_id, Verdict.choice, Verdict.note, Verdict.seconds_spent, Verdict.created_at,
                   Verdict.retracted_at, Verdict.client_id)
            .where(Verdict.annotator_id == annotator_id, Verdict.is_resolution.is_(False))
            .order_by(Verdict.id)).all()
        current: dict[int, tuple] = {}
        retracted: list[tuple] = []
        for row in rows:
            if row.retracted_at is None:
                current[row.pair_id] = row   # ordered by id: the newest wins
            else:
                retracted.append(row)
        pair_ids = sorted({row.pair_id for row in rows if row.retracted_at is not None} | set(current))
        pairs: dict[int, tuple[BundlePair, bool]] = {}
        for done, chunk in enumerate(_chunks(pair_ids)):
            pairs.update(_load_pairs(session, chunk))
            if progress is not None:
                progress(min((done + 1) * 500, len(pair_ids)), len(pair_ids))
    bundle = AnnotatorBundle(annotator.strip(), [pairs[pid][0] for pid in pair_ids])
    for row in sorted(list(current.values()) + retracted, key=lambda r: (r.created_at, r.pair_id)):
        pair, swapped = pairs[row.pair_id]
        bundle.verdicts.append(BundleVerdict(pair.key, _flip(Choice(row.choice), swapped), row.created_at,
                                             row.note, float(row.seconds_spent), row.retracted_at, row.client_id))
    return bundle


def _load_pairs(session: Session, pair_ids: list[int]) -> dict[int, tuple[BundlePair, bool]]:
    """pair id -> (the pair by content, whether its response a comes second in hash order)."""
    a, b = aliased(Response), aliased(Response)
    rows = session.execute(
        select(Pair.id, Pair.source, Pair.split, Prompt.text, Prompt.messages_json,
               a.text, a.messages_json, a.origin, a.model_name, b.text, b.messages_json, b.origin, b.model_name)
        .join(Prompt, Prompt.id == Pair.prompt_id).join(a, a.id == Pair.response_a_id)
        .join(b, b.id == Pair.response_b_id).where(Pair.id.in_(pair_ids))).all()
    result = {}
    for (pid, source, split, p_text, p_json, a_text, a_json, a_origin, a_model,
         b_text, b_json, b_origin, b_model) in rows:
        prompt = content_of(p_text, p_json)
        first, second = content_of(a_text, a_json), content_of(b_text, b_json)
        first_key, second_key = response_hash(first), response_hash(second)
        swapped = first_key > second_key
        origins = (ResponseOrigin(a_origin).value, ResponseOrigin(b_origin).value)
        models = (a_model, b_model)
        if swapped:
            first, second, origins, models = second, first, origins[::-1], models[::-1]
        key = pair_key(prompt_hash(prompt), first_key, second_key)
        result[pid] = (BundlePair(key, prompt, (first, second), source, split, origins, models), swapped)
    return result


# -- merge -----------------------------------------------------------------------------
def merge_annotator_bundle(ws: Workspace, bundle: AnnotatorBundle, progress: Progress | None = None) -> MergeSummary:
    """Store ``bundle`` in ``ws`` in one transaction (see the module's rules); idempotent.

    Raises ``BundleRefused`` when the annotator's name is an imported file's here.
    """
    name = validate_annotator_name(bundle.annotator)
    summary = MergeSummary()
    total = len(bundle.pairs) + len(bundle.verdicts)
    with ws.writing() as session:
        found = session.execute(select(Annotator.id, Annotator.is_pseudo).where(Annotator.name == name)).first()
        if found is not None and found.is_pseudo:
            raise BundleRefused(f"{name!r} names an imported file's labels in this workspace, not a person; "
                                "nothing was merged")
        summary.annotator_created = found is None
        annotator_id = found.id if found is not None else get_or_create_annotator(session, name)
        pair_ids, swapped = _store_pairs(session, ws, bundle.pairs, summary)
        _report(progress, len(bundle.pairs), total)

        held = _held_verdicts(session, annotator_id, sorted(set(pair_ids.values())))
        known_ids = _stored_client_ids(session, [v.client_id for v in bundle.verdicts if v.client_id])
        retractions = [v for v in bundle.verdicts if v.retracted_at is not None]
        retracted: list[dict] = []
        for verdict in retractions:  # first, so a verdict they uncover counts as current below
            pid = pair_ids[verdict.pair_key]
            choice = _flip(verdict.choice, swapped[pid])
            for row in held[pid]:
                same = (row.client_id is not None and row.client_id == verdict.client_id) or (
                    row.created_at == verdict.created_at and row.choice == choice)
                if same and row.retracted_at is None:
                    row.retracted_at = verdict.retracted_at
                    retracted.append({"verdict_id": row.id, "at": verdict.retracted_at})
                    summary.pair_ids.add(pid)
                    break
        summary.retracted = len(retracted)
        if retracted:
            table = Verdict.__table__
            session.execute(update(table).where(table.c.id == bindparam("verdict_id"))
                            .values(retracted_at=bindparam("at")), retracted)
        added: list[dict] = []
        for done, verdict in enumerate(v for v in bundle.verdicts if v.retracted_at is None):
            pid = pair_ids[verdict.pair_key]
            choice = _flip(verdict.choice, swapped[pid])
            rows = held[pid]
            if verdict.client_id in known_ids or any(r.created_at == verdict.created_at and r.choice == choice
                                                     for r in rows):
                summary.already_present += 1
                continue
            standing = [r for r in rows if r.retracted_at is None]
            if standing and standing[-1].created_at >= verdict.created_at:
                summary.kept_newer += 1
                continue
            client_id = verdict.client_id or verdict_key(name, verdict)
            added.append({"pair_id": pid, "annotator_id": annotator_id, "choice": choice, "note": verdict.note,
                          "seconds_spent": max(0.0, float(verdict.seconds_spent)), "is_resolution": False,
                          "retracted_at": None, "created_at": verdict.created_at, "client_id": client_id})
            rows.append(_Held(0, verdict.created_at, choice, None, client_id))
            summary.pair_ids.add(pid)
            if done % 500 == 0:
                _report(progress, len(bundle.pairs) + len(retractions) + done, total)
        summary.verdicts_added = len(added)
        if added:
            # Inserted in the bundle's order (by time), so ids follow the times they were given.
            session.execute(Verdict.__table__.insert(), added)
        refresh_judged_counts(session, summary.pair_ids)
        _report(progress, total, total)
    return summary


def _store_pairs(session: Session, ws: Workspace, pairs: list[BundlePair],
                 summary: MergeSummary) -> tuple[dict[str, int], dict[int, bool]]:
    """Add the pairs the workspace lacks; returns pair key -> pair id and pair id -> whether
    the workspace's response a is the bundle's second response."""
    groups: dict[tuple[str, str, str | None], list[BundlePair]] = defaultdict(list)
    for pair in pairs:
        # Responses added here take the pair's non-imported origin, if it has one.
        origin, model = next(((o, m) for o, m in zip(pair.origins, pair.models) if o != "imported"),
                             ("imported", None))
        groups[(pair.source or "bundle", origin, model)].append(pair)
    pair_ids: dict[str, int] = {}
    for (source, origin, model), members in groups.items():
        records = [ImportRecord(p.prompt, list(p.responses), None, line, p.split) for line, p in enumerate(members)]
        stored = import_records(ws, records, source, origin=ResponseOrigin(origin), model_name=model,
                                session=session)
        summary.pairs_added += stored.pairs_added
        pair_ids.update(zip((p.key for p in members), stored.pair_ids))
    first_hash = {pair_ids[p.key]: response_hash(p.responses[0]) for p in pairs}
    swapped: dict[int, bool] = {}
    for chunk in _chunks(sorted(first_hash)):
        for pid, a_hash in session.execute(select(Pair.id, Response.hash).join(Response, Response.id == Pair.response_a_id)
                                           .where(Pair.id.in_(chunk))):
            swapped[pid] = a_hash != first_hash[pid]
    return pair_ids, swapped


@dataclass
class _Held:
    """One of the annotator's label rows in the workspace, as the merge sees it (plain data:
    no ORM objects, so a merge of thousands of verdicts keeps the session's identity map empty)."""

    id: int
    created_at: dt.datetime
    choice: Choice
    retracted_at: dt.datetime | None
    client_id: str | None


def _held_verdicts(session: Session, annotator_id: int, pair_ids: list[int]) -> dict[int, list[_Held]]:
    """The annotator's label rows on those pairs, oldest (lowest id) first."""
    held: dict[int, list[_Held]] = defaultdict(list)
    for chunk in _chunks(pair_ids):
        for row in session.execute(
                select(Verdict.pair_id, Verdict.id, Verdict.created_at, Verdict.choice, Verdict.retracted_at,
                       Verdict.client_id)
                .where(Verdict.annotator_id == annotator_id, Verdict.is_resolution.is_(False),
                       Verdict.pair_id.in_(chunk)).order_by(Verdict.id)):
            held[row.pair_id].append(_Held(row.id, row.created_at, Choice(row.choice), row.retracted_at, row.client_id))
    return held


def _stored_client_ids(session: Session, client_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(client_ids):
        found.update(session.scalars(select(Verdict.client_id).where(Verdict.client_id.in_(chunk))))
    return found


def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


__all__ = ["CLIENT_ID_MAX", "AnnotatorBundle", "BundlePair", "BundleRefused", "BundleVerdict", "MergeSummary", "content_of",
           "merge_annotator_bundle", "pair_key", "read_annotator_bundle", "verdict_key"]
