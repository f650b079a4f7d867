"""A labelling sitting's reservations: what it holds (on screen and ahead) is leased to its
annotator and served to nobody else; dropped pairs are handed back with the next fetch, on
close, or when their lease lapses; a resent verdict is stored once. Both backends."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from core.operations.labelling import PREFETCH, LabellingSession
from storage.models import Choice, Verdict
from storage.reservations import live_leases
from tests.annotate_samples import add_sample_pairs
from tests.test_labelling import FakeClock, opened

pytestmark = pytest.mark.both_backends


def held(session: LabellingSession) -> set[int]:
    return {v.pair_id for v in session.ahead} | {session.current.pair_id}


def leased_to(ws, name: str) -> set[int]:
    return {lease.pair_id for lease in live_leases(ws) if lease.annotator_name == name}


@pytest.fixture
def ws30(workspace):
    add_sample_pairs(workspace, 30)
    return workspace


def test_two_sittings_hold_disjoint_pairs_and_each_holds_what_it_shows(ws30):
    ada, bob = opened(ws30, "ada"), opened(ws30, "bob")
    assert len(held(ada)) == len(held(bob)) == PREFETCH + 1
    assert not held(ada) & held(bob)
    assert leased_to(ws30, "ada") == held(ada) and leased_to(ws30, "bob") == held(bob)
    ada.record(Choice.A)   # the verdict ends that lease; the refill claims one more
    assert leased_to(ws30, "ada") == held(ada) and not held(ada) & held(bob)


def test_dropped_pairs_are_handed_back_with_the_next_fetch_and_on_close(ws30):
    ada = opened(ws30, "ada")
    first, dropped = ada.current.pair_id, {v.pair_id for v in ada.ahead}
    ada.forget_ahead()          # e.g. the Pairs tab changed a verdict
    ada.fill()                  # releases, then claims again (the same pairs: still first in line)
    assert leased_to(ws30, "ada") == held(ada) and {v.pair_id for v in ada.ahead} == dropped
    ada.release_pairs(ada.close())
    assert ada.current is None and leased_to(ws30, "ada") == set()
    assert held(opened(ws30, "bob")) == dropped | {first}


def test_a_stale_fetch_answer_is_handed_back(ws30):
    ada = LabellingSession.open(ws30, "ada")
    stale = ada.take_fetch()
    pairs = ada.fetch_pairs(stale)
    ada.forget_ahead()
    assert ada.receive_pairs(stale, pairs) is False
    ada.fill()
    assert leased_to(ws30, "ada") == held(ada)


def test_an_undone_verdict_keeps_its_pair_reserved_while_back_on_screen(workspace):
    add_sample_pairs(workspace, 1)
    ada = opened(workspace, "ada")
    (pair_id,) = held(ada)
    ada.record(Choice.B)
    assert leased_to(workspace, "ada") == set()
    ada.undo_now()
    assert ada.current.pair_id == pair_id and leased_to(workspace, "ada") == {pair_id}
    bob = opened(workspace, "bob")
    assert bob.current is None


def test_renewal_keeps_the_leases_and_reports_the_pairs_lost_meanwhile(ws30):
    clock = FakeClock()
    ada = opened(ws30, "ada", clock=clock)
    assert ada.take_renewal() is None                  # not due yet
    lapsed = tuple(v.pair_id for v in list(ada.ahead)[:3])
    ada.release_pairs(lapsed)                          # stand-in for three leases that lapsed...
    bob = opened(ws30, "bob")                          # ...and bob was served them meanwhile
    assert set(lapsed) <= held(bob)
    ada.lease_s = 1.0
    clock.now += 1.0                                   # a third of the lease time later
    renewal = ada.take_renewal()
    assert set(renewal) == held(ada)
    assert ada.renewed(renewal, ada.renew_leases(renewal)) == set(lapsed)
    assert not {v.pair_id for v in ada.ahead} & held(bob)
    assert leased_to(ws30, "ada") == held(ada) and ada.take_renewal() is None
    time.sleep(1.2)                                    # renewed for 1 s only, and not again: lapsed
    assert leased_to(ws30, "ada") == set()


def test_a_verdict_sent_again_after_a_lost_answer_is_stored_once(ws30):
    ada = opened(ws30, "ada")
    write = ada.judge(Choice.TIE)
    ada.store(write)
    write.verdict_id = None      # the answer never came back: the outbox sends it again
    ada.store(write)
    ada.stored(write)
    with ws30.session() as s:
        assert s.scalar(select(func.count()).select_from(Verdict)) == 1
        assert s.scalar(select(Verdict.client_id)) == write.client_id
