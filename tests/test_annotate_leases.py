"""The labelling screen keeps its pairs reserved: leases renewed on a timer (and the annotator
told when the pair on screen went to someone else), handed back when the annotator changes and
when the screen closes, the queue asked again while it says "nothing left"; and what an
earlier sitting kept in the outbox file is stored before anything else."""

from __future__ import annotations

import time

import pytest

from core.operations.outbox import OutboxEntry, OutboxFile, WriteKind
from gui.annotate.pair_feed import RENEW_EVERY_MS
from storage.annotation_queue import claim_pairs, new_client_id
from storage.models import Choice
from storage.reservations import live_leases, release
from storage.settings import update_settings
from tests.annotate_samples import add_sample_pairs
from tests.gui_db import db, settle  # noqa: F401  (fixture)
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)
from tests.test_annotate_view import active_verdicts, make_view

pytestmark = pytest.mark.usefixtures("isolated_settings")


def leased(ws, name: str) -> dict[int, float]:
    return {lease.pair_id: lease.seconds_left for lease in live_leases(ws) if lease.annotator_name == name}


def test_the_screen_renews_its_leases_on_a_timer(qtbot, db, workspace):
    add_sample_pairs(workspace, 20)
    # 12 s leases, a renewal due after 4 s. The session's clock is moved on rather than slept
    # through: on a loaded machine a 1.2 s lease could lapse before it was even read back.
    update_settings(workspace, lease_minutes=0.2)
    view = make_view(qtbot, db, workspace)
    assert view.feed._renew.isActive() and view.feed._renew.interval() == RENEW_EVERY_MS
    held = {view.current.pair_id} | {p.pair_id for p in view.session.ahead}
    assert set(leased(workspace, "ada")) == held
    before = leased(workspace, "ada")
    view.feed.renew()          # not due yet: nothing is renewed
    settle(db)
    unrenewed = leased(workspace, "ada")             # seconds left: only less of them
    assert set(unrenewed) == held and all(unrenewed[p] <= before[p] for p in held)
    before = unrenewed
    time.sleep(0.01)
    clock = view.session.clock
    view.session.clock = lambda: clock() + 5.0      # 5 s later, as far as the session can tell
    view.feed.renew()          # what the timer calls
    settle(db)
    after = leased(workspace, "ada")
    assert set(after) == held and all(after[p] > before[p] for p in held)
    assert view.sender.outbox is None and not list(workspace.root.glob("outbox*"))   # never needed: no file


def test_the_annotator_is_told_when_the_pair_on_screen_went_to_someone_else(qtbot, db, workspace):
    add_sample_pairs(workspace, 12)
    update_settings(workspace, lease_minutes=0.01)     # 0.6 s
    view = make_view(qtbot, db, workspace)
    on_screen = view.current.pair_id
    messages = []
    view.status_message.connect(messages.append)
    time.sleep(0.8)                                     # every lease of ada's lapsed …
    taken = {p.pair_id for p in claim_pairs(workspace, "bob", 30, lease_s=600)}   # … and bob took them
    assert on_screen in taken
    view.feed.renew()
    settle(db)
    assert any(f"Pair #{on_screen} is no longer reserved for you" in m for m in messages)
    assert not {p.pair_id for p in view.session.ahead} & taken   # the prefetched ones were dropped
    view.judge(Choice.A)                                # the verdict on screen is still stored
    settle(db)
    assert active_verdicts(workspace, "ada")[0][0] == on_screen


def test_pairs_are_handed_back_on_switching_annotator_and_on_closing(qtbot, db, workspace):
    add_sample_pairs(workspace, 30)
    view = make_view(qtbot, db, workspace)
    assert leased(workspace, "ada")
    view.set_annotator("bob")
    settle(db)
    assert leased(workspace, "ada") == {} and leased(workspace, "bob")
    view.stop_timers()          # the screen closes (before the database thread ends)
    settle(db)
    assert live_leases(workspace) == []


def test_nothing_left_asks_the_queue_again_now_and_then(qtbot, db, workspace):
    add_sample_pairs(workspace, 3)
    claim_pairs(workspace, "bob", 3, lease_s=600)       # bob holds every pair
    view = make_view(qtbot, db, workspace)
    settle(db)
    assert view.current is None and view.content.currentWidget() is view.empty
    assert view.feed._look_again.isActive()
    release(workspace, "bob")                            # bob closed his window
    view.feed._look_again.setInterval(50)
    view.feed._look_again.start()
    qtbot.waitUntil(lambda: view.current is not None, timeout=5000)
    assert view.content.currentWidget() is view.display


def test_an_earlier_sittings_kept_verdicts_are_stored_first(qtbot, db, workspace):
    add_sample_pairs(workspace, 10)
    earlier = OutboxFile.open(workspace.root, workspace.display_location)   # what a crash left
    kept = [OutboxEntry(new_client_id(), WriteKind.VERDICT, "ada", pair_id, Choice.TIE, "offline", 3.0)
            for pair_id in (1, 2)]
    for entry in kept:
        earlier.keep(entry)
    earlier.close()
    view = make_view(qtbot, db, workspace)
    assert [(p, c) for p, c, _ in active_verdicts(workspace, "ada")] == [(1, Choice.TIE), (2, Choice.TIE)]
    assert view.current.pair_id == 3                     # stored before the first pairs were claimed
    assert not earlier.path.exists() and view.connection.waiting == 0
