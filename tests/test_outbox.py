"""The offline outbox without Qt: the file (one fsync'd JSONL line per write, compacted on
opening, deleted when drained, a torn last line ignored, one process per file), the drain
(stored once by client id, a retraction whose verdict may or may not have been stored, a write
that can never be stored dropped), telling an unreachable server from the database's own
refusals, and the session's undo of a verdict cut off by a lost connection."""

from __future__ import annotations

import json
import socket
import sqlite3

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.exc import IntegrityError, OperationalError

from core.operations.connection import ConnectionState, ServerDetails, ServerDetailsError
from core.operations.labelling import LabellingSession
from core.operations.outbox import (OutboxEntry, OutboxFile, PermanentWriteError, WriteKind, drain, entry_for,
                                    is_unreachable, open_outbox, outbox_folder, store_entry)
from storage.annotation_queue import AnnotationQueue, new_client_id
from storage.models import Choice, Verdict
from storage.workspace import Workspace
from tests.annotate_samples import add_sample_pairs


def verdict(pair_id: int, annotator: str = "ada", choice: Choice = Choice.A, key: str | None = None) -> OutboxEntry:
    return OutboxEntry(key or new_client_id(), WriteKind.VERDICT, annotator, pair_id, choice, "kept", 2.5)


def rows(ws) -> list[tuple[int, str, bool]]:
    with ws.session() as s:
        return [(r.pair_id, r.client_id, r.retracted_at is not None)
                for r in s.scalars(select(Verdict).order_by(Verdict.id))]


@pytest.fixture
def ws(tmp_path):
    workspace = Workspace.open(tmp_path / "ws")
    add_sample_pairs(workspace, 10)
    yield workspace
    workspace.close()


# -- the file ------------------------------------------------------------------------------
def test_kept_writes_survive_reopening_and_the_file_goes_when_all_are_done(tmp_path):
    first, second, third = verdict(1), verdict(2), verdict(3)
    outbox = OutboxFile.open(tmp_path, "ws shown")
    for entry in (first, second, third):
        outbox.keep(entry)
    outbox.done(second.key)
    lines = outbox.path.read_text().splitlines()
    assert json.loads(lines[0]) == {"format": "dpo-studio-outbox", "version": 1, "workspace": "ws shown"}
    assert [json.loads(line)["op"] for line in lines[1:]] == ["keep", "keep", "keep", "done"]
    outbox.close()   # e.g. the app closed offline

    again = OutboxFile.open(tmp_path, "ws shown")
    assert [e.key for e in again.pending()] == [first.key, third.key]
    assert again.pending()[0] == OutboxEntry(**{**first.__dict__, "written_at": again.pending()[0].written_at})
    assert len(again.path.read_text().splitlines()) == 3      # compacted: the header and the two pending
    again.done(first.key)
    again.done(third.key)
    assert not again.path.exists()
    again.close()


def test_a_torn_last_line_is_ignored_and_a_damaged_one_is_set_aside(tmp_path):
    outbox = OutboxFile.open(tmp_path, "ws")
    kept = verdict(4)
    outbox.keep(kept)
    outbox.close()
    with open(outbox.path, "a") as handle:
        handle.write('{"op": "keep", "key": "cut sho')   # a crash in the middle of a write
    torn = OutboxFile.open(tmp_path, "ws")
    assert [e.key for e in torn.pending()] == [kept.key] and torn.problems == []
    torn.close()
    with open(torn.path, "a") as handle:
        handle.write("not json at all\n")
        handle.write(json.dumps({"op": "done", "key": "nothing"}) + "\n")
    damaged = OutboxFile.open(tmp_path, "ws")
    assert [e.key for e in damaged.pending()] == [kept.key]
    assert len(damaged.problems) == 1 and "line 3" in damaged.problems[0]
    assert (tmp_path / "outbox.jsonl.damaged").exists()   # kept for a person to read
    damaged.close()


def test_one_process_per_file_and_a_closed_windows_writes_are_adopted(tmp_path):
    first = OutboxFile.open(tmp_path, "ws")
    second = OutboxFile.open(tmp_path, "ws")            # another window on the same server
    assert first.path.name == "outbox.jsonl" and second.path.name == "outbox-2.jsonl"
    left = verdict(5)
    first.keep(left)
    assert second.adopt() == 0                           # held: not taken
    first.close()
    assert second.adopt() == 1 and [e.key for e in second.pending()] == [left.key]
    assert not first.path.exists()
    second.close()


def test_an_unusable_folder_is_said_in_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError, match="cannot keep verdicts in"):
        OutboxFile.open(tmp_path / "file" / "below", "ws")


# -- draining --------------------------------------------------------------------------------
def test_drain_stores_each_kept_verdict_once_even_when_sent_twice(ws):
    outbox = open_outbox(ws)
    assert outbox.path.parent == outbox_folder(ws) == ws.root
    entries = [verdict(1), verdict(2, "bob"), verdict(3)]
    for entry in entries:
        outbox.keep(entry)
    store_entry(ws, entries[0])         # the first one reached the database before the line dropped
    report = drain(ws, outbox, outbox.pending())
    assert report.complete and report.stored == 3 and report.changes.verdicts
    assert [(p, k) for p, k, _ in rows(ws)] == [(1, entries[0].key), (2, entries[1].key), (3, entries[2].key)]
    assert not outbox.path.exists() and len(outbox) == 0
    outbox.close()


def test_a_kept_undo_takes_back_its_verdict_whether_or_not_that_was_stored(ws):
    stored = verdict(1)
    store_entry(ws, stored)
    assert AnnotationQueue(ws, "ada").current_choice(1) is Choice.A
    maybe = verdict(2)   # its store was cut off: the server may or may not have it
    undo_stored = OutboxEntry(new_client_id(), WriteKind.RETRACT, "ada", 1, Choice.A, target=stored.key)
    undo_maybe = OutboxEntry(new_client_id(), WriteKind.RETRACT, "ada", 2, Choice.A, target=maybe.key)
    outbox = open_outbox(ws)
    outbox.keep(undo_stored)
    outbox.keep(undo_maybe)
    assert drain(ws, outbox, outbox.pending()).stored == 2
    assert [(p, retracted) for p, _, retracted in rows(ws)] == [(1, True), (2, True)]
    queue = AnnotationQueue(ws, "ada")
    assert queue.current_choice(1) is None and queue.current_choice(2) is None
    outbox.close()


def test_a_write_that_can_never_be_stored_is_dropped_and_said(ws):
    outbox = open_outbox(ws)
    gone, fine = verdict(999), verdict(3)
    outbox.keep(gone)
    outbox.keep(fine)
    with pytest.raises(PermanentWriteError):
        store_entry(ws, gone)
    report = drain(ws, outbox, outbox.pending())
    assert report.stored == 1 and len(report.dropped) == 1 and "#999" in report.dropped[0]
    assert len(outbox) == 0
    outbox.close()


# -- what "unreachable" means ---------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_connection_is_unreachable_and_the_databases_own_answers_are_not():
    pytest.importorskip("psycopg")
    engine = create_engine(f"postgresql+psycopg://nobody@127.0.0.1:{_free_port()}/none",
                           connect_args={"connect_timeout": 2})
    with pytest.raises(OperationalError) as refused:
        engine.connect()
    engine.dispose()
    assert is_unreachable(refused.value)
    locked = OperationalError("INSERT …", {}, sqlite3.OperationalError("database is locked"))
    duplicate = IntegrityError("INSERT …", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert not is_unreachable(locked) and not is_unreachable(duplicate)
    assert not is_unreachable(ValueError("bad")) and not is_unreachable(PermanentWriteError("gone"))


def test_undoing_a_verdict_cut_off_by_a_lost_connection_takes_it_back_by_its_client_id(ws):
    psycopg = pytest.importorskip("psycopg")
    session = LabellingSession.open(ws, "ada")
    session.fill()
    write = session.judge(Choice.B)
    session.store(write)                  # it reached the database …
    write.in_flight = True
    lost = OperationalError("COMMIT", {}, psycopg.OperationalError("server closed the connection unexpectedly"))
    assert session.store_failed(write, lost) is True and write.maybe_stored   # … but the answer was lost
    outcome = session.undo()
    assert outcome.write is not None and write not in session.outbox   # never sent again; a retraction instead
    session.store(outcome.write)
    assert [(p, retracted) for p, _, retracted in rows(ws)] == [(write.pair_id, True)]
    entry = entry_for(outcome.write, "ada")
    assert entry.kind is WriteKind.RETRACT and entry.target == write.client_id


# -- the connect form and the words ----------------------------------------------------------
def test_server_details_make_a_url_and_remember_no_password():
    details = ServerDetails("db.example.org", "team labels", "ada lovelace", 6543, "p@ss:w/rd")
    assert details.url() == "postgresql://ada%20lovelace:p%40ss%3Aw%2Frd@db.example.org:6543/team%20labels"
    assert "p@ss" not in details.shown() and "***" in details.shown()
    assert details.remembered() == {"host": "db.example.org", "port": 6543, "database": "team labels",
                                    "user": "ada lovelace"}
    assert ServerDetails("::1", "d", "u").url() == "postgresql://u@[::1]:5432/d"
    with pytest.raises(ServerDetailsError, match="Host"):
        ServerDetails(" ", "d", "u").url()


def test_the_connection_state_in_words():
    assert ConnectionState().describe() == "connected"
    assert ConnectionState(online=False, waiting=1).describe() == "offline — 1 verdict waiting"
    assert ConnectionState(online=False, waiting=30).describe() == "offline — 30 verdicts waiting"
    assert ConnectionState(online=True, waiting=2).describe() == "connected — sending 2 verdicts"
