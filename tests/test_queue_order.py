"""The queue orders over a run's pair scores: "uncertain" serves |margin| ascending, "disagree"
serves the second opinions the run contradicts most, "default" is unchanged; the queue's
guarantees (never a pair one judged, leases, overlap) hold under every order."""

from __future__ import annotations

import pytest

from core.operations.labelling import LabellingSession
from core.operations.pair_scores import preference_for, set_queue_order
from storage.annotation_queue import AnnotationQueue
from storage.ingest import ImportRecord, import_records
from storage.models import Choice
from storage.pair_scores import store_pair_scores
from storage.runs import create_run
from storage.settings import SettingsError, read_settings, update_settings
from storage.workspace import Workspace
from tests.test_queue import _drain

pytestmark = pytest.mark.both_backends

MARGINS = [0.9, -0.05, 0.3, -0.6, 0.01, 2.0, -0.2, 0.5]   # pair i's margin


def _scored_workspace(ws: Workspace, margins=MARGINS, run_id: str = "run-1") -> list[int]:
    """Unlabelled pairs, each scored by one run with ``margins`` (pair order)."""
    summary = import_records(ws, [ImportRecord(f"prompt {i}", [f"one {i}", f"two {i}"]) for i in range(len(margins))],
                             "c.jsonl")
    create_run(ws, run_id, name="round 1", config_json="{}", base_model="m", run_dir="/tmp/none", total_steps=1)
    store_pair_scores(ws, run_id, dict(zip(summary.pair_ids, margins)))
    return summary.pair_ids


def test_uncertain_order_serves_the_smallest_margins_first(workspace: Workspace) -> None:
    pair_ids = _scored_workspace(workspace)
    extra = import_records(workspace, [ImportRecord("unscored", ["x", "y"])], "later.jsonl").pair_ids
    set_queue_order(workspace, "uncertain", "run-1")
    by_uncertainty = [pid for _m, pid in sorted((abs(m), pid) for m, pid in zip(MARGINS, pair_ids))]
    # Unscored pairs follow in the default order, so the queue still drains.
    assert _drain(AnnotationQueue(workspace, "ann")) == by_uncertainty + extra
    # claim serves (and reserves) in the same order.
    other = AnnotationQueue(workspace, "ben", overlap=2)
    assert [v.pair_id for v in other.claim(3)] == by_uncertainty[:3]


def test_default_order_is_unchanged_by_scores(workspace: Workspace) -> None:
    pair_ids = _scored_workspace(workspace)
    assert read_settings(workspace).queue_order == "default"
    assert _drain(AnnotationQueue(workspace, "ann")) == pair_ids
    set_queue_order(workspace, "uncertain", "run-1")
    set_queue_order(workspace, "default")
    assert read_settings(workspace).queue_order_run is None
    assert _drain(AnnotationQueue(workspace, "ben", overlap=2)) == pair_ids


def test_disagree_order_serves_the_verdicts_the_run_contradicts_most(workspace: Workspace) -> None:
    pair_ids = _scored_workspace(workspace)
    update_settings(workspace, overlap=2)
    first = AnnotationQueue(workspace, "first")
    # First opinions: a on every pair but pair 1 and 3 (b). The run (MARGINS) contradicts a on the
    # pairs with a negative margin (6: -0.2) and b on those with a positive one (none of 1, 3: both < 0).
    for index, pair_id in enumerate(pair_ids):
        first.record(pair_id, Choice.B if index in (1, 3) else Choice.A)
    first.record(pair_ids[2], Choice.B)        # a changed mind: only the newest verdict counts (b vs +0.3)
    set_queue_order(workspace, "disagree", "run-1")
    second = AnnotationQueue(workspace, "second")
    served = _drain(second)
    # contradiction = -margin x (votes a - votes b): pair 2: 0.3, pair 6: 0.2; then the rest, oldest first.
    assert served[:2] == [pair_ids[2], pair_ids[6]]
    assert sorted(served) == pair_ids and len(served) == len(set(served))
    assert AnnotationQueue(workspace, "first").next_pair() is None   # never the pairs one judged


def test_scored_orders_keep_leases_and_overlap_with_two_annotators(workspace: Workspace) -> None:
    pair_ids = _scored_workspace(workspace)
    set_queue_order(workspace, "uncertain", "run-1")
    ann, ben = AnnotationQueue(workspace, "ann"), AnnotationQueue(workspace, "ben")
    held = [v.pair_id for v in ann.claim(3)]
    assert len(held) == 3
    ben_claim = [v.pair_id for v in ben.claim(10)]
    assert not set(held) & set(ben_claim) and sorted(held + ben_claim) == pair_ids   # overlap 1: no pair twice
    for pair_id in held:
        ann.record(pair_id, Choice.A)
    assert ben.next_pair(exclude=ben_claim) is None and ann.next_pair() is None
    # A labelling session serves the order too and never serves back what it judged.
    update_settings(workspace, overlap=2)
    session = LabellingSession.open(workspace, "cat")
    assert session.queue.order == ("uncertain", "run-1")
    session.fill()
    seen = []
    while session.current is not None:
        seen.append(session.current.pair_id)
        session.record(Choice.B)
    assert sorted(seen) == pair_ids and seen[0] == pair_ids[MARGINS.index(0.01)]


def test_blind_comparison_queue_ignores_the_order(workspace: Workspace) -> None:
    _scored_workspace(workspace)
    set_queue_order(workspace, "uncertain", "run-1")
    queue = AnnotationQueue(workspace, "ann", comparison_id=12345)
    assert queue.next_pair() is None and queue.claim(4) == []


def test_queue_order_setting_is_checked(workspace: Workspace) -> None:
    with pytest.raises(SettingsError, match="queue_order"):
        update_settings(workspace, queue_order="random")
    with pytest.raises(ValueError, match="choose the run"):
        set_queue_order(workspace, "uncertain")


def test_preference_for_a_pair_follows_the_order_run_and_the_sides_shown(workspace: Workspace) -> None:
    pair_ids = _scored_workspace(workspace)
    assert preference_for(workspace, pair_ids[0], swapped=False).describe() == \
        "Run round 1 preferred the left answer (margin +0.90)"
    note = preference_for(workspace, pair_ids[0], swapped=True)
    assert note.side == "right" and note.agrees_with("right") and not note.agrees_with("left")
    create_run(workspace, "run-2", name="round 2", config_json="{}", base_model="m", run_dir="/tmp/none",
               total_steps=1)
    store_pair_scores(workspace, "run-2", {pair_ids[0]: -1.5})
    assert preference_for(workspace, pair_ids[0], False).preference.run_id == "run-2"   # the newest run
    set_queue_order(workspace, "uncertain", "run-1")
    assert preference_for(workspace, pair_ids[0], False).left_margin == pytest.approx(0.9)  # the order's run
    assert preference_for(workspace, pair_ids[3], False).describe().endswith("right answer (margin +0.60)")
    unscored = import_records(workspace, [ImportRecord("new", ["x", "y"])], "n.jsonl").pair_ids[0]
    assert preference_for(workspace, unscored, False) is None


def test_a_pair_scored_later_is_ranked_once_the_ranking_is_read_again(workspace: Workspace, monkeypatch) -> None:
    pair_ids = _scored_workspace(workspace)
    late = import_records(workspace, [ImportRecord("late", ["x", "y"])], "late.jsonl").pair_ids[0]
    set_queue_order(workspace, "uncertain", "run-1")
    queue = AnnotationQueue(workspace, "ann")
    first = queue.next_pair().pair_id
    assert first == pair_ids[MARGINS.index(0.01)]
    store_pair_scores(workspace, "run-1", {late: 0.0})
    assert queue.next_pair().pair_id == first            # the ranking is kept a while …
    monkeypatch.setattr("storage.pair_scores.RANK_TTL_S", -1.0)
    assert queue.next_pair().pair_id == late             # … and read again after it


def test_most_wrong_first_at_one_annotator_per_pair_says_it_falls_back(workspace: Workspace) -> None:
    from core.operations.pair_scores import order_fallback, queue_order_state

    pair_ids = _scored_workspace(workspace)
    set_queue_order(workspace, "disagree", "run-1")
    state = queue_order_state(workspace)
    assert state.overlap == 1 and "at 1 annotator per pair no open pair has a verdict" in state.fallback
    assert _drain(AnnotationQueue(workspace, "ann")) == pair_ids        # what it says: the default order
    update_settings(workspace, overlap=2)
    assert queue_order_state(workspace).fallback is None
    assert order_fallback("uncertain", 1) is None and order_fallback("default", 1) is None
