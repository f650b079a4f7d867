"""The annotation queue: serving pairs with overlap 1 and 3, recording, undo, counts."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from storage.annotation_queue import AnnotationQueue, choice_for_side
from storage.ingest import ImportRecord, import_records
from storage.models import Choice, Pair, Verdict
from storage.settings import update_settings
from storage.workspace import Workspace

# Every test here runs on SQLite and on PostgreSQL (tests/backends.py).
pytestmark = pytest.mark.both_backends


def _add_unlabelled(ws: Workspace, n: int) -> list[int]:
    summary = import_records(ws, [ImportRecord(f"prompt {i}", [f"one {i}", f"two {i}"]) for i in range(n)], "c")
    return summary.pair_ids


def _drain(queue: AnnotationQueue, choice: Choice = Choice.A) -> list[int]:
    served = []
    while (view := queue.next_pair()) is not None:
        served.append(view.pair_id)
        queue.record(view.pair_id, choice)
        assert len(served) < 1000, "queue never ran dry"
    return served


def test_overlap_1_serves_each_pair_to_exactly_one_annotator(workspace: Workspace) -> None:
    pair_ids = _add_unlabelled(workspace, 6)
    alice, bob = AnnotationQueue(workspace, "alice"), AnnotationQueue(workspace, "bob")
    assert alice.overlap == 1
    first = [alice.next_pair().pair_id for _ in range(2)]
    assert first[0] == first[1]  # asking again without recording serves the same pair
    alice.record(first[0], Choice.A)
    served_bob = _drain(bob)
    assert first[0] not in served_bob and sorted(served_bob + first[:1]) == pair_ids
    assert alice.next_pair() is None and alice.remaining_count() == 0
    assert (alice.done_count(), bob.done_count()) == (1, 5)


def test_overlap_3_serves_each_pair_until_three_annotators_judged_it(workspace: Workspace) -> None:
    pair_ids = _add_unlabelled(workspace, 5)
    update_settings(workspace, overlap=3)
    queues = [AnnotationQueue(workspace, name) for name in ("ann", "ben", "cat", "dan")]
    assert all(q.overlap == 3 for q in queues)
    # ann judges everything; ben then gets every pair too, in order.
    assert _drain(queues[0]) == pair_ids
    assert queues[1].remaining_count() == 5
    assert _drain(queues[1], Choice.B) == pair_ids
    # cat judges two pairs; then dan can only get the three that still lack a third judge.
    for _ in range(2):
        queues[2].record(queues[2].next_pair().pair_id, Choice.TIE)
    assert _drain(queues[3]) == pair_ids[2:]
    assert _drain(queues[2]) == []
    with workspace.session() as s:
        assert [p.judged_count for p in s.scalars(select(Pair).order_by(Pair.id))] == [3] * 5


def test_partly_judged_pairs_come_first_under_overlap(workspace: Workspace) -> None:
    pair_ids = _add_unlabelled(workspace, 4)
    ann, ben = AnnotationQueue(workspace, "ann", overlap=2), AnnotationQueue(workspace, "ben", overlap=2)
    ann.record(pair_ids[2], Choice.A)
    assert ben.next_pair().pair_id == pair_ids[2]
    assert ben.next_pair(exclude=[pair_ids[2]]).pair_id == pair_ids[0]


def test_labelled_imports_count_towards_overlap(workspace: Workspace) -> None:
    import_records(workspace, [ImportRecord("q", ["x", "y"], chosen=0)], "labelled.jsonl")
    assert AnnotationQueue(workspace, "ann", overlap=1).next_pair() is None
    assert AnnotationQueue(workspace, "ben", overlap=2).next_pair() is not None


def test_a_skip_is_never_served_back_to_its_annotator_but_stays_open_for_others(workspace: Workspace) -> None:
    (pair_id,) = _add_unlabelled(workspace, 1)
    ann, ben = AnnotationQueue(workspace, "ann"), AnnotationQueue(workspace, "ben")
    ann.record(pair_id, Choice.SKIP)
    assert ann.next_pair() is None and ann.remaining_count() == 0
    assert ben.next_pair().pair_id == pair_id and ben.remaining_count() == 1


def test_undo_retracts_the_newest_verdict_and_reopens_its_pair(workspace: Workspace) -> None:
    pair_ids = _add_unlabelled(workspace, 3)
    ann = AnnotationQueue(workspace, "ann")
    ben = AnnotationQueue(workspace, "ben")
    assert ann.undo_last() is None
    ann.record(pair_ids[0], Choice.A, seconds_spent=2.0)
    ann.record(pair_ids[1], Choice.B, note="close call")
    ben.record(pair_ids[2], Choice.TIE)  # someone else's newer verdict is not ann's to undo
    assert ann.undo_last() == pair_ids[1]
    assert ann.current_choice(pair_ids[1]) is None and ann.done_count() == 1
    assert ann.next_pair().pair_id == pair_ids[1]
    assert ann.undo_last() == pair_ids[0] and ann.undo_last() is None
    with workspace.session() as s:
        rows = s.scalars(select(Verdict).order_by(Verdict.id)).all()
        # History is kept: undo marks rows retracted, it does not delete them.
        assert [(v.choice.value, v.retracted_at is not None) for v in rows] == [("a", True), ("b", True), ("tie", False)]
        assert rows[1].note == "close call" and rows[0].seconds_spent == 2.0


def test_a_changed_mind_is_a_new_row_and_undo_brings_the_old_one_back(workspace: Workspace) -> None:
    (pair_id,) = _add_unlabelled(workspace, 1)
    ann = AnnotationQueue(workspace, "ann", overlap=2)
    ann.record(pair_id, Choice.A)
    ann.record(pair_id, Choice.SKIP)
    assert ann.current_choice(pair_id) == Choice.SKIP
    with workspace.session() as s:
        assert s.get(Pair, pair_id).judged_count == 0  # her current verdict is a skip
    ann.undo_last()
    assert ann.current_choice(pair_id) == Choice.A and ann.done_count() == 1
    with workspace.session() as s:
        assert s.get(Pair, pair_id).judged_count == 1


def test_undo_of_a_given_verdict_leaves_a_later_change_of_mind_alone(workspace: Workspace) -> None:
    pair_id = _add_unlabelled(workspace, 3)[0]
    queue = AnnotationQueue(workspace, "ada")
    first = queue.record(pair_id, Choice.A)
    other = queue.record(_add_unlabelled(workspace, 3)[1], Choice.B)
    queue.record(pair_id, Choice.B)               # changed elsewhere (e.g. the pairs browser)
    assert queue.undo_last(first) is None         # no longer current: nothing retracted
    assert queue.current_choice(pair_id) == Choice.B
    assert queue.undo_last(other) is not None     # a current verdict is retracted by id
    with workspace.session() as s:
        retracted = s.scalars(select(Verdict.id).where(Verdict.retracted_at.is_not(None))).all()
    assert retracted == [other]


def test_pair_view_lays_out_sides_and_choice_for_side_maps_back(workspace: Workspace) -> None:
    import_records(workspace, [ImportRecord(f"p{i}", [f"first {i}", f"second {i}"]) for i in range(20)], "c")
    queue = AnnotationQueue(workspace, "ann")
    seen_swapped = set()
    with workspace.session() as s:
        for pair in s.scalars(select(Pair)):
            view = queue.pair_view(pair.id)
            assert view.swapped == pair.display_swapped
            assert view.left_text == (pair.response_b if view.swapped else pair.response_a).text
            assert view.right_text == (pair.response_a if view.swapped else pair.response_b).text
            assert view.prompt_text == pair.prompt.text and view.prompt_messages is None
            assert view.source == "c" and view.split in ("train", "eval")
            seen_swapped.add(view.swapped)
    assert seen_swapped == {True, False}  # both layouts occur in 20 pairs
    assert choice_for_side("left", False) == Choice.A and choice_for_side("right", False) == Choice.B
    assert choice_for_side("left", True) == Choice.B and choice_for_side("right", True) == Choice.A
    with pytest.raises(ValueError, match="side"):
        choice_for_side("middle", False)


def test_recording_on_a_missing_pair_or_with_a_bad_choice_is_refused(workspace: Workspace) -> None:
    (pair_id,) = _add_unlabelled(workspace, 1)
    queue = AnnotationQueue(workspace, "ann")
    with pytest.raises(LookupError, match="no pair with id 999"):
        queue.record(999, Choice.A)
    with pytest.raises(ValueError):
        queue.record(pair_id, "maybe")
    with pytest.raises(ValueError, match="overlap"):
        AnnotationQueue(workspace, "ben", overlap=0)
    assert queue.done_count() == 0
