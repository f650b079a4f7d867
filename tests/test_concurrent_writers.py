"""Several OS processes labelling one workspace at once lose nothing and never see
"database is locked" (each verdict is its own BEGIN IMMEDIATE transaction; WAL readers
never block)."""

from __future__ import annotations

import multiprocessing
import traceback
from pathlib import Path

from sqlalchemy import func, select

from storage.annotation_queue import AnnotationQueue
from storage.ingest import ImportRecord, import_records
from storage.models import Choice, Pair, Verdict
from storage.verdicts import current_verdicts
from storage.workspace import Workspace

PROCESSES = 4
VERDICTS_EACH = 120
CHOICES = [Choice.A, Choice.B, Choice.TIE, Choice.BOTH_BAD, Choice.SKIP]


def label_many(root: str, name: str, overlap: int, results) -> None:
    """One annotator in its own process: take pairs from the queue and judge them, undoing now and then."""
    try:
        with Workspace.open(root) as ws:
            queue = AnnotationQueue(ws, name, overlap=overlap)
            recorded, undone = [], 0
            while len(recorded) - undone < VERDICTS_EACH:
                view = queue.next_pair()
                if view is None:
                    break
                recorded.append(queue.record(view.pair_id, CHOICES[len(recorded) % len(CHOICES)], seconds_spent=0.1))
                if len(recorded) % 25 == 0:
                    assert queue.undo_last() == view.pair_id
                    undone += 1
            results.put((name, recorded, undone, None))
    except Exception:  # report every failure to the parent, which asserts there were none
        results.put((name, [], 0, traceback.format_exc()))


def _run_annotators(root: Path, overlap: int) -> list[tuple]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=label_many, args=(str(root), f"annotator-{i}", overlap, results))
               for i in range(PROCESSES)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=180) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    return outcomes


def test_processes_labelling_at_once_lose_nothing(tmp_path: Path) -> None:
    root = tmp_path / "ws"
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


def test_with_overlap_1_racing_annotators_share_out_the_pairs(tmp_path: Path) -> None:
    root = tmp_path / "ws"
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
