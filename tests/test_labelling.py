"""core.operations.labelling: the annotator session without Qt, over real SQLite files."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from core.operations.changes import Changes
from core.operations.labelling import PREFETCH, LabellingSession, PermanentWriteError, WriteKind
from storage.annotation_queue import AnnotationQueue
from storage.models import Annotator, Choice, Pair, Verdict
from storage.settings import update_settings
from tests.annotate_samples import add_sample_pairs

# Every test here runs on SQLite and on PostgreSQL (tests/backends.py).
pytestmark = pytest.mark.both_backends


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def rows(ws, name="ada"):
    """(pair id, choice, note, retracted) of the annotator's verdict rows, oldest first."""
    with ws.session() as s:
        return [tuple(r) for r in s.execute(
            select(Verdict.pair_id, Verdict.choice, Verdict.note, Verdict.retracted_at.is_not(None))
            .join(Annotator, Annotator.id == Verdict.annotator_id).where(Annotator.name == name)
            .order_by(Verdict.id)).all()]


def opened(ws, name="ada", **kw) -> LabellingSession:
    session = LabellingSession.open(ws, name, **kw)
    session.fill()
    return session


@pytest.fixture
def ws10(workspace):
    add_sample_pairs(workspace, 10)
    return workspace


def test_open_shows_the_first_pair_and_prefetches(ws10):
    session = opened(ws10)
    assert session.current.pair_id == 1
    assert [v.pair_id for v in session.ahead] == list(range(2, 2 + PREFETCH))
    assert session.take_fetch() is None  # full: nothing to fetch


def test_judge_shows_the_next_pair_before_anything_is_stored(ws10):
    clock = FakeClock()
    session = opened(ws10, clock=clock)
    clock.now += 7.5
    write = session.judge(Choice.TIE, note=" too long ")
    assert session.current.pair_id == 2          # at once, from the prefetched pairs
    assert rows(ws10) == []                       # nothing stored yet: the write waits in the outbox
    assert session.outbox == [write] and session.writes_to_send() == [write]
    assert session.pace.done == 1
    write.in_flight = True
    changes = session.store(write)                # the database half
    session.stored(write)
    assert changes == Changes(verdicts=True, pair_ids=frozenset({1}))
    assert rows(ws10) == [(1, Choice.TIE, "too long", False)]
    with ws10.session() as s:
        assert s.scalar(select(Verdict.seconds_spent)) == pytest.approx(7.5)
    assert session.outbox == []


def test_a_pair_with_an_unstored_verdict_is_never_served_again(ws10):
    session = opened(ws10)
    pending = [session.judge(Choice.A) for _ in range(3)]
    session.forget_ahead()
    request = session.take_fetch()
    assert {w.pair_id for w in pending} <= set(request.exclude) and session.current.pair_id in request.exclude
    # Even a fetch that raced the verdicts (answered with them) does not serve them again.
    raced = replace(request, exclude=())
    session.receive_pairs(request, session.fetch_pairs(raced))
    assert not {w.pair_id for w in pending} & {v.pair_id for v in session.ahead}
    assert session.current.pair_id not in {v.pair_id for v in session.ahead}


def test_an_answer_to_a_fetch_made_before_the_queue_changed_is_dropped(ws10):
    session = LabellingSession.open(ws10, "ada")
    stale = session.take_fetch()
    session.forget_ahead()                        # e.g. the overlap changed meanwhile
    assert session.receive_pairs(stale, session.fetch_pairs(stale)) is False
    assert session.current is None and not session.ahead
    session.fill()
    assert session.current.pair_id == 1


def test_undo_of_an_unstored_verdict_stores_nothing(ws10):
    session = opened(ws10)
    session.judge(Choice.A)
    outcome = session.undo()
    assert outcome.write is None and outcome.pair.pair_id == 1 and session.current.pair_id == 1
    assert session.outbox == [] and session.pace.done == 0
    assert session.ahead[0].pair_id == 2  # the pair that was on screen comes next again
    assert rows(ws10) == []


def test_undo_of_an_in_flight_verdict_retracts_it_after_it_lands(ws10):
    session = opened(ws10)
    verdict = session.judge(Choice.B)
    verdict.in_flight = True                 # sent to the database thread, not back yet
    outcome = session.undo()
    assert outcome.write.kind is WriteKind.RETRACT and outcome.write.retracts is verdict
    # The database thread runs them in order: the verdict, then its retraction.
    session.store(verdict)
    session.stored(verdict)
    session.store(outcome.write)
    assert session.stored(outcome.write) is None
    assert rows(ws10) == [(1, Choice.B, "", True)]
    assert session.outbox == []


def test_undo_of_an_in_flight_verdict_whose_store_fails_is_dropped(ws10):
    session = opened(ws10)
    verdict = session.judge(Choice.B)
    verdict.in_flight = True
    retract = session.undo().write
    assert session.store_failed(verdict, RuntimeError("database is locked")) is False  # undone: no retry
    session.store(retract)                    # nothing reached the database: nothing to take back
    assert session.stored(retract) is None
    assert rows(ws10) == [] and session.outbox == []


def test_undo_retracts_only_what_this_session_recorded(ws10):
    session = opened(ws10)
    session.record(Choice.A)
    first = session.undo_stack[-1].pair_id
    # The same annotator changes that verdict in the Pairs tab meanwhile.
    AnnotationQueue(ws10, "ada").record(first, Choice.TIE)
    outcome = session.undo()
    session.store(outcome.write)
    message = session.stored(outcome.write)
    assert message and "already changed elsewhere" in message
    assert [r[1:] for r in rows(ws10)] == [(Choice.A, "", False), (Choice.TIE, "", False)]
    assert session.undo().write is None and session.undo().message == "Nothing to undo in this session"


def test_a_failed_store_is_kept_for_a_retry_and_a_deleted_pair_is_dropped(ws10):
    session = opened(ws10)
    kept = session.judge(Choice.A)
    assert session.store_failed(kept, RuntimeError("database is locked")) is True
    assert session.outbox == [kept] and kept.attempts == 1 and "locked" in kept.last_error
    gone = session.judge(Choice.A)
    with ws10.writing() as s:
        s.delete(s.get(Pair, gone.pair_id))
    with pytest.raises(PermanentWriteError):
        session.store(gone)
    assert session.store_failed(gone, PermanentWriteError("no pair")) is False
    assert session.outbox == [kept] and gone not in session.undo_stack and session.pace.done == 1
    session.store(kept)
    session.stored(kept)
    assert rows(ws10) == [(kept.pair_id, Choice.A, "", False)]


def test_a_note_belongs_to_the_pair_it_was_typed_for(ws10):
    session = opened(ws10)
    session.record(Choice.A, note="first thoughts")
    second = session.current.pair_id
    session.set_draft(second, "typed, not yet judged")
    session.undo_now()                        # back to pair 1: its note is the draft again
    assert session.current.pair_id == 1 and session.draft(1) == "first thoughts"
    session.record(Choice.B)                  # the draft goes with the verdict
    assert session.current.pair_id == second and session.draft(second) == "typed, not yet judged"
    session.record(Choice.TIE)
    assert [(p, c, n) for p, c, n, retracted in rows(ws10) if not retracted] == [
        (1, Choice.B, "first thoughts"), (second, Choice.TIE, "typed, not yet judged")]


def test_overlap_change_and_exhaustion(workspace):
    add_sample_pairs(workspace, 2)
    session = opened(workspace)
    session.record(Choice.A)
    session.record(Choice.A)
    assert session.current is None and session.exhausted
    assert session.counts().remaining == 0 and session.counts().total_pairs == 2
    bob = opened(workspace, "bob")
    assert bob.current is None
    update_settings(workspace, overlap=2)
    bob.set_overlap(2)
    bob.fill()
    assert bob.current.pair_id == 1 and bob.counts().remaining == 2
