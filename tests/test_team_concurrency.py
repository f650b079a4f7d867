"""Eight people labelling one workspace at once, each in their own process: they claim a pair
and a couple ahead (leases), read for 0.05–0.3 s, answer, now and then resend a verdict (same
client id), skip, or undo and answer again. With overlap 1 no pair is judged twice; with
overlap 2 none by more than two; the stored counts equal a recount. On SQLite, and on the
test PostgreSQL server when there is one (tests/backends.py)."""

from __future__ import annotations

import multiprocessing
import random
import time
import traceback
from collections import deque

import pytest
from sqlalchemy import func, select

from storage.annotation_queue import AnnotationQueue, new_client_id
from storage.ingest import ImportRecord, import_records
from storage.models import Choice, Pair, Reservation, Verdict
from storage.verdicts import current_verdicts
from storage.workspace import Workspace

pytestmark = [pytest.mark.both_backends, pytest.mark.slow]   # eight processes each

PEOPLE = 8
AHEAD = 2                     # pairs claimed behind the one being read, as a labelling screen prefetches
THINK_S = (0.05, 0.3)
JUDGEMENTS = [Choice.A, Choice.B, Choice.TIE, Choice.BOTH_BAD]


def label_until_done(location: str, name: str, overlap: int, seed: int, results) -> None:
    """One person: hold a pair (and AHEAD more) under lease, think, answer; until the queue is dry."""
    try:
        rng = random.Random(seed)
        with Workspace.open(location) as ws:
            queue = AnnotationQueue(ws, name, overlap=overlap)
            held: deque = deque()
            sent: dict[str, int] = {}      # client id -> verdict id
            resends = undos = 0
            while True:
                if len(held) <= AHEAD:
                    held.extend(queue.claim(AHEAD + 1 - len(held), exclude=[v.pair_id for v in held]))
                if not held:
                    break
                view = held.popleft()
                time.sleep(rng.uniform(*THINK_S))
                choice = Choice.SKIP if rng.random() < 0.1 else rng.choice(JUDGEMENTS)
                client_id = new_client_id()
                verdict_id = queue.record(view.pair_id, choice, seconds_spent=0.1, client_id=client_id)
                sent[client_id] = verdict_id
                if rng.random() < 0.15:     # the answer did not seem to arrive: sent again
                    assert queue.record(view.pair_id, choice, seconds_spent=0.1, client_id=client_id) == verdict_id
                    resends += 1
                if rng.random() < 0.08:     # undo: the pair is back on screen, still theirs
                    assert queue.undo_last(verdict_id, reserve_again=True) == view.pair_id
                    del sent[client_id]
                    held.appendleft(view)
                    undos += 1
            results.put((name, sent, resends, undos, None))
    except Exception:  # every failure goes to the parent, which asserts there were none
        results.put((name, {}, 0, 0, traceback.format_exc()))


def _process_context():
    """Fresh processes that start fast: forked from a server that imported this module once
    (a spawned one spends seconds importing on a busy machine, and the people would not
    overlap); spawned where there is no fork server (Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _label_together(location: str, overlap: int) -> list[tuple]:
    context = _process_context()
    results = context.Queue()
    people = [context.Process(target=label_until_done, args=(location, f"person-{i}", overlap, i, results))
              for i in range(PEOPLE)]
    for person in people:
        person.start()
    outcomes = [results.get(timeout=120) for _ in people]
    for person in people:
        person.join(timeout=30)
        assert person.exitcode == 0
    errors = [error for *_, error in outcomes if error]
    assert not errors, "\n".join(errors)
    return outcomes


@pytest.mark.parametrize("overlap, pairs", [(1, 64), (2, 40)])
def test_people_labelling_at_once_never_exceed_the_overlap(workspace_location: str, overlap: int,
                                                           pairs: int, report_figures) -> None:
    with Workspace.open(workspace_location) as ws:
        import_records(ws, [ImportRecord(f"prompt {i}", [f"a {i}", f"b {i}"]) for i in range(pairs)], "c")
    started = time.perf_counter()
    outcomes = _label_together(workspace_location, overlap)
    elapsed = time.perf_counter() - started
    with Workspace.open(workspace_location) as ws, ws.session() as s:
        current = current_verdicts(s)
        judges: dict[int, set[int]] = {}
        for verdict in current:
            if verdict.choice != Choice.SKIP:
                judges.setdefault(verdict.pair_id, set()).add(verdict.annotator_id)
        judgements = sum(v.choice != Choice.SKIP for v in current)
        skipped = {v.pair_id for v in current if v.choice == Choice.SKIP}
        counts = dict(s.execute(select(Pair.id, Pair.judged_count)).all())
        rows = s.scalar(select(func.count()).select_from(Verdict))
        client_ids = s.scalar(select(func.count(func.distinct(Verdict.client_id))))
        leases_left = s.scalar(select(func.count()).select_from(Reservation))
    sent = {cid: vid for _, by_person, *_ in outcomes for cid, vid in by_person.items()}
    resends = sum(o[2] for o in outcomes)
    undos = sum(o[3] for o in outcomes)
    report_figures(f"overlap {overlap}: {PEOPLE} people, {pairs} pairs, {judgements} judgements, "
                   f"{resends} resends, {undos} undos, {elapsed:.1f} s")

    assert max(len(j) for j in judges.values()) <= overlap
    if overlap == 1:
        assert len(judges) == judgements        # every judged pair judged exactly once
    # Nothing doubled by the resends: one row per client id; the undone rows are retracted, not gone.
    assert rows == client_ids == len(sent) + undos
    assert {v.verdict_id for v in current} == set(sent.values())
    # The stored counts equal a recount from the verdicts.
    assert counts == {pair_id: len(judges.get(pair_id, ())) for pair_id in counts}
    # Everyone stopped on a dry queue; a pair still short of its overlap was skipped by someone
    # (the skip handed it back after the others had left), and every lease ended with its verdict.
    assert all(pair_id in skipped for pair_id, n in counts.items() if n < overlap)
    assert leases_left == 0
