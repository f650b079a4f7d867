"""storage.annotator_session: session pace arithmetic and the annotator list."""

import pytest

from core.operations.wording import format_duration
from storage.annotator_session import MAX_GAP_S, SessionPace, annotator_names, validate_annotator_name
from storage.models import Annotator

# Every test here runs on SQLite and on PostgreSQL (tests/backends.py).
pytestmark = pytest.mark.both_backends


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_pace_and_time_left_follow_the_verdicts():
    clock = FakeClock()
    pace = SessionPace(target=10, clock=clock)
    assert pace.pairs_per_hour() is None and pace.seconds_left() is None
    for _ in range(4):
        clock.now += 9.0  # one verdict every 9 s -> 400 pairs/hour
        pace.record()
    assert pace.done == 4
    assert pace.pairs_per_hour() == pytest.approx(400.0)
    assert pace.seconds_left() == pytest.approx(6 * 9.0)
    assert pace.fraction == pytest.approx(0.4)


def test_a_long_break_counts_as_the_cap():
    clock = FakeClock()
    pace = SessionPace(target=100, clock=clock)
    clock.now += 10.0
    pace.record()
    clock.now += 3600.0  # an hour away from the desk
    pace.record()
    assert pace.worked_seconds() == pytest.approx(10.0 + MAX_GAP_S)
    assert pace.pairs_per_hour() == pytest.approx(2 * 3600.0 / (10.0 + MAX_GAP_S))


def test_undo_takes_back_one_and_target_reached_means_zero_left():
    clock = FakeClock()
    pace = SessionPace(target=2, clock=clock)
    for _ in range(3):
        clock.now += 5.0
        pace.record()
    assert pace.seconds_left() == 0.0 and pace.fraction == 1.0
    pace.undo()
    pace.undo()
    assert pace.done == 1
    # 1 verdict in 15 s of work: one more takes 15 s at that pace.
    assert pace.seconds_left() == pytest.approx(15.0)
    with pytest.raises(ValueError, match="at least 1"):
        SessionPace(target=0)


def test_format_duration():
    assert format_duration(None) == "—"
    assert format_duration(42) == "42 s"
    assert format_duration(12 * 60 + 5) == "12 min"
    assert format_duration(3600 + 5 * 60) == "1 h 05 min"


def test_annotator_names_lists_people_not_pseudo_annotators(workspace):
    with workspace.session() as s:
        s.add_all([Annotator(name="ada"), Annotator(name="hh-rlhf.jsonl", is_pseudo=True),
                   Annotator(name="grace")])
    assert annotator_names(workspace) == ["ada", "grace"]


def test_validate_annotator_name():
    assert validate_annotator_name("  Ada   Lovelace ") == "Ada Lovelace"
    with pytest.raises(ValueError, match="empty"):
        validate_annotator_name("   ")
