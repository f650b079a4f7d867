"""storage.pair_history: a pair's full verdict history, with each annotator's current one."""

import pytest

from storage.annotation_queue import AnnotationQueue
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
