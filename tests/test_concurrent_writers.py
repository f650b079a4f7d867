"""Several OS processes labelling one workspace at once lose nothing, never see "database is
locked" (SQLite: each verdict is its own BEGIN IMMEDIATE transaction; WAL readers never
block) and leave every pair's judged_count equal to a recount (PostgreSQL: each recount runs
under the pair's row lock). Every test runs on SQLite and on PostgreSQL (tests/backends.py)."""

from __future__ import annotations

import multiprocessing
import random
import time
import traceback

import pytest
from sqlalchemy import func, select

from storage.annotation_queue import AnnotationQueue
from storage.ingest import ImportRecord, import_records
from storage.integrity import check_workspace
from storage.models import Choice, Pair, Verdict
from storage.verdicts import current_verdicts
from storage.workspace import Workspace

PROCESSES = 4
VERDICTS_EACH = 120
CHOICES = [Choice.A, Choice.B, Choice.TIE, Choice.BOTH_BAD, Choice.SKIP]

pytestmark = [pytest.mark.both_backends, pytest.mark.slow]   # several processes each


def label_many(root: str, name: str, overlap: int, results) -> None:
    """One annotator in its own process: take pairs from the queue and judge them, undoing now and then."""
    try:
        with Workspace.open(root) as ws:
            queue = AnnotationQueue(ws, name, overlap=overlap)
            recorded, undone = [], 0
            while len(recorded) - undone < VERDICTS_EACH:
                claimed = queue.claim(1)   # served and reserved in one step, as the labelling session does
                if not claimed:
                    break
                view = claimed[0]
                recorded.append(queue.record(view.pair_id, CHOICES[len(recorded) % len(CHOICES)], seconds_spent=0.1))
                if len(recorded) % 25 == 0:
                    assert queue.undo_last() == view.pair_id
                    undone += 1
            results.put((name, recorded, undone, None))
    except Exception:  # report every failure to the parent, which asserts there were none
        results.put((name, [], 0, traceback.format_exc()))


def _run_annotators(root: str, overlap: int, target=label_many, processes: int = PROCESSES) -> list[tuple]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=target, args=(root, f"annotator-{i}", overlap, results))
               for i in range(processes)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=180) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    return outcomes


def test_processes_labelling_at_once_lose_nothing(workspace_location: str) -> None:
    root = workspace_location
    with Workspace.open(root) as ws:
        import_records(ws, [ImportRecord(f"prompt {i}", [f"a {i}", f"b {i}"]) for i in range(300)], "c")
    outcomes = _run_annotators(root, overlap=PROCESSES)
    errors = [error for *_, error in outcomes if error]
    assert not errors, "\n".join(errors)
    with Workspace.open(root) as ws:
        with ws.session() as s:
            stored = {v.id: v for v in s.scalars(select(Verdict))}
            for name, recorded, undone, _ in outcomes:
                assert len(recorded) - undone == VERDICTS_EACH
                assert all(stored[vid].annotator.name == name for vid in recorded)
                assert sum(stored[vid].retracted_at is not None for vid in recorded) == undone
            assert len(stored) == sum(len(recorded) for _, recorded, _, _ in outcomes)
            # The denormalised counts match a recount from the verdicts themselves.
            recount: dict[int, set] = {}
            for verdict in current_verdicts(s):
                if verdict.choice != Choice.SKIP:
                    recount.setdefault(verdict.pair_id, set()).add(verdict.annotator_id)
            for pair in s.scalars(select(Pair)):
                assert pair.judged_count == len(recount.get(pair.id, ()))


def test_with_overlap_1_racing_annotators_share_out_the_pairs(workspace_location: str, backend: str,
                                                              request: pytest.FixtureRequest) -> None:
    root = workspace_location
    with Workspace.open(root) as ws:
        import_records(ws, [ImportRecord(f"prompt {i}", [f"a {i}", f"b {i}"]) for i in range(200)], "c")
    outcomes = _run_annotators(root, overlap=1)
    assert not [error for *_, error in outcomes if error]
    with Workspace.open(root) as ws:
        with ws.session() as s:
            active = s.scalar(select(func.count()).select_from(Verdict).where(Verdict.retracted_at.is_(None)))
            judged = s.scalar(select(func.count(func.distinct(Verdict.pair_id))).where(Verdict.retracted_at.is_(None)))
            unjudged = set(s.scalars(select(Pair.id).where(Pair.judged_count == 0)).all())
            skipped = set(s.scalars(select(Verdict.pair_id).where(
                Verdict.retracted_at.is_(None), Verdict.choice == Choice.SKIP)).all())
        # Still open: a newcomer's queue serves exactly the pairs nobody has judged yet.
        newcomer = AnnotationQueue(ws, "newcomer", overlap=1)
        served = set()
        while (view := newcomer.next_pair(exclude=served)) is not None:
            served.add(view.pair_id)
    assert active == sum(len(r) - u for _, r, u, _ in outcomes)
    # The queue ran dry: every pair was judged (a few perhaps by two people who were shown it
    # at the same moment; a verdict is never thrown away to prevent that), except pairs whose
    # only current verdicts are skips. (Which ones depends on timing: an annotator may undo,
    # be served the pair again and skip it after the others found the queue empty.)
    assert judged == 200 and unjudged <= skipped
    assert served == unjudged
    assert sum(len(r) - u for _, r, u, _ in outcomes) < PROCESSES * VERDICTS_EACH


CONTENDED_PAIRS = 30
CONTENDED_PROCESSES = 8


def label_with_think_time(root: str, name: str, overlap: int, results) -> None:
    """One annotator of a team walking through the same pairs as everyone else: read a pair,
    think 0.05–0.3 s, answer (now and then changing their mind or undoing)."""
    try:
        draw = random.Random(name)
        with Workspace.open(root) as ws:
            queue = AnnotationQueue(ws, name, overlap=overlap)
            recorded, undone = [], 0
            for pair_id in range(1, CONTENDED_PAIRS + 1):
                queue.pair_view(pair_id)                      # read it …
                time.sleep(draw.uniform(0.05, 0.3))           # … think …
                recorded.append(queue.record(pair_id, draw.choice(CHOICES)))   # … and answer
                if draw.random() < 0.2:
                    recorded.append(queue.record(pair_id, draw.choice(CHOICES)))   # a changed mind
                if draw.random() < 0.15:
                    assert queue.undo_last() == pair_id
                    undone += 1
            results.put((name, recorded, undone, None))
    except Exception:  # report every failure to the parent, which asserts there were none
        results.put((name, [], 0, traceback.format_exc()))


def test_judged_counts_equal_a_recount_after_a_team_labels_with_think_time(workspace_location: str) -> None:
    with Workspace.open(workspace_location) as ws:
        import_records(ws, [ImportRecord(f"prompt {i}", [f"a {i}", f"b {i}"]) for i in range(CONTENDED_PAIRS)], "c")
    outcomes = _run_annotators(workspace_location, overlap=CONTENDED_PROCESSES, target=label_with_think_time,
                               processes=CONTENDED_PROCESSES)
    assert not [error for *_, error in outcomes if error]
    with Workspace.open(workspace_location) as ws:
        report = check_workspace(ws)
        with ws.session() as s:
            stored = s.scalar(select(func.count()).select_from(Verdict))
            retracted = s.scalar(select(func.count()).select_from(Verdict).where(Verdict.retracted_at.is_not(None)))
    assert stored == sum(len(recorded) for _, recorded, _, _ in outcomes)
    assert retracted == sum(undone for *_, undone, _ in outcomes)
    assert report.clean, report.problems
