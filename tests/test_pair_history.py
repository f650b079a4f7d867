"""storage.pair_history: a pair's full verdict history, with each annotator's current one."""

import pytest

from storage.annotation_queue import AnnotationQueue
from storage.ingest import ImportRecord, import_records
from storage.models import Choice
from storage.pair_history import owners, pair_history
from storage.settings import update_settings
from storage.team import resolve
from tests.annotate_samples import add_sample_pairs

# Every test here runs on SQLite and on PostgreSQL (tests/backends.py).
pytestmark = pytest.mark.both_backends


def test_history_keeps_changed_and_undone_verdicts(workspace):
    pair_id = add_sample_pairs(workspace, 1)[0]
    ada, bob = AnnotationQueue(workspace, "ada"), AnnotationQueue(workspace, "bob")
    ada.record(pair_id, Choice.A, note="first look")
    ada.record(pair_id, Choice.B, note="changed my mind")
    bob.record(pair_id, Choice.TIE)
    bob.undo_last()
    resolve(workspace, pair_id, "owner", Choice.B, note="final")
    history = pair_history(workspace, pair_id)
    assert [(e.annotator, e.choice, e.retracted, e.current, e.is_resolution) for e in history] == [
        ("ada", Choice.A, False, False, False),
        ("ada", Choice.B, False, True, False),
        ("bob", Choice.TIE, True, False, False),
        ("owner", Choice.B, False, True, True)]
    assert history[1].note == "changed my mind"


def test_owners_setting(workspace):
    assert owners(workspace) is None
    update_settings(workspace, owners=["ada"])
    assert owners(workspace) == ["ada"]


def _blind_pair(workspace) -> int:
    """One blind A/B pair (base against itself at two seeds) on a held-out prompt: (comparison, pair)."""
    from storage.comparisons import ComparedAnswers, ModelSide, store_comparison

    import_records(workspace, [ImportRecord("Held out?", ["yes", "no"], split="eval")], "seed.jsonl")
    base = ModelSide("bundled:demo_model", None, "base")
    stored = store_comparison(workspace, "seed 1 vs seed 2", base, base, {"seed": 1}, {"seed": 2},
                              [ComparedAnswers("Held out?", "answer one", "answer two")])
    return stored.comparison_id, stored.pair_ids[0]


def test_a_blind_pair_is_read_only_outside_its_comparison(workspace):
    from core.operations.pairs import BlindPairError, PairFilters, browse_pairs, change_verdict, pair_details
    from core.operations.team import resolve_dispute

    preference = add_sample_pairs(workspace, 1)[0]
    comparison_id, blind = _blind_pair(workspace)
    with pytest.raises(BlindPairError, match=rf"pair #{blind} belongs to the blind A/B comparison "
                                             r"'seed 1 vs seed 2' \(#\d+\).*Blind A/B tab"):
        change_verdict(workspace, blind, "ada", Choice.A)
    with pytest.raises(BlindPairError, match=rf"pair #{blind}"):
        resolve_dispute(workspace, blind, "owner", Choice.B)
    assert pair_history(workspace, blind) == []
    assert pair_details(workspace, blind).read_only and not pair_details(workspace, preference).read_only
    rows = {row.pair_id: row.blind for row in browse_pairs(workspace, PairFilters()).rows}
    assert rows[blind] and not rows[preference]
    change_verdict(workspace, preference, "ada", Choice.A)      # a preference pair stays editable
    AnnotationQueue(workspace, "bob", comparison_id=comparison_id).record(blind, Choice.B)  # the Blind A/B tab's way
    assert [e.annotator for e in pair_history(workspace, preference)] == ["ada"]
    assert [e.annotator for e in pair_history(workspace, blind)] == ["bob"]
