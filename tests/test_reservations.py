"""Pair reservations (leases): a claimed pair is nobody else's while its lease lives; a verdict,
a skip or a release ends it; an expired one returns the pair to the queue; a resent verdict
(same client id) is stored once. Each test runs on SQLite and, when DPO_TEST_POSTGRES_URL
names a server, on a fresh PostgreSQL database (tests/backends.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, inspect, select, text

from storage.annotation_queue import AnnotationQueue, claim_pairs, new_client_id
from storage.ingest import ImportRecord, import_records
from storage.migrations import MIGRATIONS, SCHEMA_VERSION
from storage.models import Choice, Pair, Reservation, Verdict
from storage.reservations import live_leases, release, renew
from storage.settings import update_settings
from storage.workspace import Workspace
from tests.test_migrations import _schema, make_v2_workspace

pytestmark = pytest.mark.both_backends

SHORT = 1.0   # seconds: a lease that runs out within a test


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    return workspace


def _add_pairs(ws: Workspace, n: int) -> list[int]:
    return import_records(ws, [ImportRecord(f"prompt {i}", [f"one {i}", f"two {i}"]) for i in range(n)],
                          "c").pair_ids


def _ids(views) -> list[int]:
    return [v.pair_id for v in views]


def test_a_claimed_pair_is_served_to_nobody_else_under_overlap_1(ws: Workspace) -> None:
    pair_ids = _add_pairs(ws, 6)
    ann, ben = AnnotationQueue(ws, "ann"), AnnotationQueue(ws, "ben")
    assert _ids(ann.claim(2)) == pair_ids[:2]
    assert _ids(ben.claim(3)) == pair_ids[2:5]
    # Reading the queue without claiming passes over the others' leases too.
    assert AnnotationQueue(ws, "cat").next_pair().pair_id == pair_ids[5]
    assert _ids(claim_pairs(ws, "cat", 5)) == pair_ids[5:]
    assert claim_pairs(ws, "dan", 5) == []
    # Their own leases do not hide pairs from the holder (a sitting that restarts gets them back).
    assert ann.next_pair().pair_id == pair_ids[0]
    held = {(lease.annotator_name, lease.pair_id) for lease in live_leases(ws)}
    assert held == {("ann", p) for p in pair_ids[:2]} | {("ben", p) for p in pair_ids[2:5]} | {("cat", pair_ids[5])}


def test_under_overlap_2_a_pair_is_held_or_judged_by_at_most_two(ws: Workspace) -> None:
    (pair_id,) = _add_pairs(ws, 1)
    update_settings(ws, overlap=2)
    ann, ben, cat = (AnnotationQueue(ws, name) for name in ("ann", "ben", "cat"))
    assert _ids(ann.claim(1)) == [pair_id] and _ids(ben.claim(1)) == [pair_id]
    assert cat.claim(1) == [] and cat.next_pair() is None
    ann.record(pair_id, Choice.A)            # one judged, one held: still two
    assert cat.claim(1) == []
    ben.release([pair_id])                   # ben leaves it: room for one more
    assert _ids(cat.claim(1)) == [pair_id]


def test_a_verdict_or_a_skip_ends_the_lease_in_the_same_transaction(ws: Workspace) -> None:
    first, second = _add_pairs(ws, 2)
    ann, ben = AnnotationQueue(ws, "ann"), AnnotationQueue(ws, "ben")
    ann.claim(2)
    ann.record(first, Choice.B)
    ann.record(second, Choice.SKIP)
    assert live_leases(ws) == []
    # The judged pair is done; the skipped one is open to others (never served back to ann).
    assert _ids(ben.claim(5)) == [second] and ann.claim(5) == []


def test_release_returns_the_pairs_to_the_queue(ws: Workspace) -> None:
    pair_ids = _add_pairs(ws, 3)
    ann = AnnotationQueue(ws, "ann")
    ann.claim(3)
    release(ws, "ann", pair_ids[1:])
    assert _ids(claim_pairs(ws, "ben", 5)) == pair_ids[1:]
    ann.release()                            # every lease of ann's
    assert _ids(claim_pairs(ws, "cat", 5)) == pair_ids[:1]


def test_a_vanished_annotators_lease_expires_and_the_pair_returns_to_the_queue(ws: Workspace) -> None:
    pair_ids = _add_pairs(ws, 2)
    ann, ben = AnnotationQueue(ws, "ann"), AnnotationQueue(ws, "ben")
    assert _ids(ann.claim(1, lease_s=SHORT)) == pair_ids[:1]
    assert _ids(ben.claim(5)) == pair_ids[1:]
    time.sleep(SHORT + 0.2)                  # ann closed the laptop; nobody renews
    assert {lease.annotator_name for lease in live_leases(ws)} == {"ben"}
    assert _ids(ben.claim(5, exclude=pair_ids[1:])) == pair_ids[:1]
    # Ann comes back: her renewal says the pair is no longer hers.
    assert ann.renew(pair_ids[:1]) == frozenset()


def test_renewing_keeps_the_pair_and_a_lapsed_lease_is_taken_again_while_still_open(ws: Workspace) -> None:
    pair_ids = _add_pairs(ws, 3)
    ann, ben = AnnotationQueue(ws, "ann"), AnnotationQueue(ws, "ben")
    ann.claim(3, lease_s=SHORT)
    assert renew(ws, "ann", pair_ids[:1], lease_s=60) == frozenset(pair_ids[:1])
    time.sleep(SHORT + 0.2)
    # The renewed lease lives; the two others lapsed and ben takes one of them.
    assert _ids(ben.claim(1)) == pair_ids[1:2]
    # Renewing takes the lapsed one nobody took again, and says the other is gone.
    assert ann.renew(pair_ids, lease_s=60) == frozenset({pair_ids[0], pair_ids[2]})
    assert _ids(ben.claim(5)) == pair_ids[1:2]   # only the one he holds himself
    assert renew(ws, "nobody", pair_ids) == frozenset()


def test_undo_can_keep_the_pair_reserved_for_the_one_who_undid(ws: Workspace) -> None:
    (pair_id,) = _add_pairs(ws, 1)
    ann, ben = AnnotationQueue(ws, "ann"), AnnotationQueue(ws, "ben")
    verdict_id = ann.record(ann.claim(1)[0].pair_id, Choice.A)
    assert ann.undo_last(verdict_id, reserve_again=True) == pair_id
    assert ben.claim(1) == [] and [(l.annotator_name, l.pair_id) for l in live_leases(ws)] == [("ann", pair_id)]
    # A plain undo (no screen to put it back on) leaves the pair free.
    ann.record(pair_id, Choice.B)
    assert ann.undo_last() == pair_id and _ids(ben.claim(1)) == [pair_id]


def test_a_resent_verdict_with_the_same_client_id_is_stored_once(ws: Workspace) -> None:
    first, second = _add_pairs(ws, 2)
    ann = AnnotationQueue(ws, "ann")
    client_id = new_client_id()
    assert len(client_id) == 32 and client_id != new_client_id()
    verdict_id = ann.record(first, Choice.A, seconds_spent=2.0, client_id=client_id)
    assert ann.record(first, Choice.A, seconds_spent=2.0, client_id=client_id) == verdict_id
    with ws.session() as s:
        assert s.scalar(select(func.count()).select_from(Verdict)) == 1
        assert s.get(Pair, first).judged_count == 1
        assert s.get(Verdict, verdict_id).client_id == client_id
    # The same id for another pair, or in another annotator's name, is not a resend: refused.
    with pytest.raises(ValueError, match="already names verdict"):
        ann.record(second, Choice.A, client_id=client_id)
    with pytest.raises(ValueError, match="already names verdict"):
        AnnotationQueue(ws, "ben").record(first, Choice.A, client_id=client_id)
    # Verdicts without a client id (imports, older clients) stay allowed side by side.
    ann.record(second, Choice.B)
    ann.record(second, Choice.TIE)


def test_the_lease_time_comes_from_the_workspace_settings(ws: Workspace) -> None:
    _add_pairs(ws, 2)
    update_settings(ws, lease_minutes=0.5)
    claim_pairs(ws, "ann", 1)
    (lease,) = live_leases(ws)
    assert 25 < lease.seconds_left <= 30
    with pytest.raises(ValueError, match="more than 0 seconds"):
        claim_pairs(ws, "ann", 1, lease_s=0)


def test_a_v3_workspace_gains_the_reservations_and_client_ids(tmp_path: Path) -> None:
    root = make_v2_workspace(tmp_path / "old")
    with Workspace.open(root) as ws:   # v2 -> v4 by way of v3
        assert ws.upgraded_from == 2
    # A genuine v3 file: a v2 one taken one step up by hand.
    v3 = make_v2_workspace(tmp_path / "v3")
    engine = create_engine(f"sqlite:///{v3 / 'studio.db'}")
    with engine.begin() as conn:
        MIGRATIONS[2](conn)
        conn.execute(text("UPDATE schema_version SET version = 3"))
        assert "reservations" not in inspect(conn).get_table_names()
    engine.dispose()
    with Workspace.open(v3) as old, Workspace.open(tmp_path / "new") as new:
        assert old.upgraded_from == 3 and SCHEMA_VERSION >= 4   # v3 -> the newest, through v4
        assert _schema(old) == _schema(new)
        ann = AnnotationQueue(old, "ann")
        (view,) = ann.claim(1)
        pair_id = view.pair_id
        assert ann.record(pair_id, Choice.A, client_id="c" * 32) == ann.record(pair_id, Choice.A, client_id="c" * 32)
        with old.session() as s:
            assert s.scalar(select(func.count()).select_from(Reservation)) == 0
