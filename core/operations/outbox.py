"""The writes of a labelling sitting that are not stored yet, and what happens to them when the
team server cannot be reached.

A ``Write`` (a verdict, or the retraction of one) waits in the sitting's outbox
(``LabellingSession.outbox``) from its key press until the database has it. When a store fails
because the server cannot be reached (``storage.reachability.is_unreachable``: refused, reset,
timed out — not a refusal by the database), the write is also *kept* on this computer in the
outbox file (``core.operations.outbox_file``), so that closing the app or a crash loses
nothing; labelling goes on over the pairs already reserved. When the server answers again the
writes are sent in the order made; a verdict carries its client id, so sending it twice stores
it once. On the next start the file's leftovers are stored first (``drain``).

    outbox = open_outbox(ws)                          # this computer's file for the workspace
    outbox.keep(entry_for(write, "ada"))              # when the store failed as unreachable
    report = drain(ws, outbox, outbox.pending())      # database work: leftovers of an earlier sitting
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.operations.changes import Changes
from core.operations.outbox_file import FILE_STEM, OutboxEntry, OutboxFile, OutboxFileError, WriteKind
from storage.annotation_queue import AnnotationQueue, PairView, new_client_id
from storage.locations import scrub, server_folder
from storage.models import Choice
from storage.reachability import is_unreachable
from storage.workspace import PermissionDeniedError, Workspace

__all__ = ["Write", "WriteKind", "PermanentWriteError", "CHOICE_WORDS", "OutboxEntry", "OutboxFile",
           "OutboxFileError", "DrainReport", "entry_for", "store_entry", "drain", "outbox_folder",
           "has_kept_writes", "open_outbox", "is_unreachable", "describe_error"]

CHOICE_WORDS = {Choice.A: "response A", Choice.B: "response B", Choice.TIE: "tie",
                Choice.BOTH_BAD: "both bad", Choice.SKIP: "skipped"}


class PermanentWriteError(Exception):
    """A write that can never succeed (its pair was deleted): dropped, not retried."""


@dataclass(eq=False)
class Write:
    """One write of the sitting waiting to be stored: a verdict, or the retraction of one."""

    kind: WriteKind
    pair: PairView
    choice: Choice | None = None
    note: str = ""
    seconds_spent: float = 0.0
    retracts: "Write | None" = None     # RETRACT: the verdict write it takes back
    verdict_id: int | None = None       # VERDICT: the stored row, once committed (set by ``store``)
    retracted_pair: int | None = None   # RETRACT: the pair whose verdict was taken back (None: nothing was)
    in_flight: bool = False
    cancelled: bool = False             # VERDICT undone before it was stored: never store it
    attempts: int = 0
    last_error: str = ""
    # The last store failed as unreachable: the server may have committed it before the line
    # dropped (only a resend, by client id, can tell).
    maybe_stored: bool = False
    kept: bool = False                  # also in the outbox file (``entry_for``)
    client_id: str = field(default_factory=new_client_id)   # a resend is recognised by it

    @property
    def pair_id(self) -> int:
        return self.pair.pair_id

    def describe(self) -> str:
        if self.kind is WriteKind.RETRACT:
            return f"undo on pair #{self.pair_id}"
        return f"{CHOICE_WORDS[self.choice]} on pair #{self.pair_id}"


def describe_error(error: BaseException) -> str:
    """``Class: first line`` of the driver's own error inside SQLAlchemy's (for a banner)."""
    cause = getattr(error, "orig", None) or error
    text = str(cause).splitlines()[0] if str(cause) else ""
    return f"{cause.__class__.__name__}: {text}" if text else cause.__class__.__name__


def entry_for(write: Write, annotator: str) -> OutboxEntry:
    """The write as the outbox file keeps it."""
    if write.kind is WriteKind.VERDICT:
        return OutboxEntry(write.client_id, WriteKind.VERDICT, annotator, write.pair_id, write.choice,
                           write.note, write.seconds_spent)
    target = write.retracts
    return OutboxEntry(write.client_id, WriteKind.RETRACT, annotator, write.pair_id, target.choice, target.note,
                       target.seconds_spent, target=target.client_id, verdict_id=target.verdict_id)


def resend_for_row(queue: AnnotationQueue, pair_id: int, choice: Choice, seconds_spent: float, note: str,
                   client_id: str) -> int:
    """The row of a verdict whose store may or may not have reached the database: resending it
    by its client id returns the stored row, or stores it now (to be taken back at once)."""
    return queue.record(pair_id, choice, seconds_spent, note, client_id=client_id)


def store_entry(ws: Workspace, entry: OutboxEntry) -> Changes:
    """Store one kept write in its own committed transaction(s). Database work.

    ``PermanentWriteError`` when it can never be stored (its pair is gone, its client id
    names another verdict, the member's role no longer allows it); an unreachable server
    raises the driver's error as it is."""
    try:
        queue = AnnotationQueue(ws, entry.annotator)
        if entry.kind is WriteKind.VERDICT:
            queue.record(entry.pair_id, entry.choice, entry.seconds_spent, entry.note, client_id=entry.key)
        else:
            verdict_id = entry.verdict_id
            if verdict_id is None:
                verdict_id = resend_for_row(queue, entry.pair_id, entry.choice, entry.seconds_spent, entry.note,
                                            entry.target)
            queue.undo_last(verdict_id)
    except (LookupError, ValueError, PermissionDeniedError) as exc:   # gone, not a resend, or not allowed
        raise PermanentWriteError(str(exc)) from exc
    return Changes(verdicts=True, pair_ids=frozenset({entry.pair_id}))


@dataclass
class DrainReport:
    stored: int = 0
    changes: Changes = field(default_factory=Changes)
    dropped: list[str] = field(default_factory=list)   # writes that can never be stored, said why
    unreachable: str = ""                               # the server's silence that stopped the drain

    @property
    def complete(self) -> bool:
        return not self.unreachable


def drain(ws: Workspace, outbox: OutboxFile, entries: list[OutboxEntry]) -> DrainReport:
    """Store ``entries`` (kept in ``outbox``) oldest first, marking each done as it is stored or
    dropped; stops at the first sign that the server cannot be reached (the rest stay kept).
    Database work. Any other error is raised: the entry stays kept."""
    report = DrainReport()
    for entry in entries:
        if entry.key not in outbox:
            continue
        try:
            report.changes |= store_entry(ws, entry)
        except PermanentWriteError as exc:
            report.dropped.append(f"{entry.annotator}'s {entry.kind.value} on pair #{entry.pair_id}: {exc}")
        except Exception as exc:
            if not is_unreachable(exc):
                raise
            report.unreachable = scrub(describe_error(exc), ws.location)
            break
        else:
            report.stored += 1
        outbox.done(entry.key)
    return report


def outbox_folder(ws: Workspace) -> Path:
    """This computer's folder for the workspace's outbox: the workspace folder, or for a team
    store the folder kept per server and database (``storage.locations.server_folder``)."""
    return ws.root if ws.root is not None else server_folder(ws.location)


def has_kept_writes(ws: Workspace) -> bool:
    """Whether an earlier sitting left outbox files for ``ws`` on this computer."""
    folder = outbox_folder(ws)
    return folder.is_dir() and any(folder.glob(f"{FILE_STEM}*.jsonl"))


def open_outbox(ws: Workspace) -> OutboxFile:
    """This process's outbox file for ``ws`` (``OutboxFileError`` when it cannot be made)."""
    return OutboxFile.open(outbox_folder(ws), ws.display_location)
