"""The outbox file: writes of a labelling sitting kept on this computer while the team server
cannot be reached, so that neither a dropped connection nor closing the app loses them.

One JSON object per line (JSONL), appended and fsync'd one line per write:

    {"format": "dpo-studio-outbox", "version": 1, "workspace": "postgresql://ada@host/team"}
    {"op": "keep", "key": "9f…", "kind": "verdict", "annotator": "ada", "pair_id": 12, "choice": "a", …}
    {"op": "done", "key": "9f…"}

``keep`` records a write not yet stored (a verdict: its key is the verdict's client id, so a
resend is stored once; a retraction: the key is its own and ``target`` names the verdict it
takes back); ``done`` says it was stored (or dropped). What is kept and not done is pending.
When nothing is pending the file is deleted. A crash mid-write leaves at most a torn last
line, which is ignored; any other unreadable line is reported in ``problems`` and the file
is then set aside (renamed ``*.damaged``) instead of deleted, for a person to read.

One process holds a file at a time (an OS lock on ``<file>.lock``): a second window or process
on the same server and database takes ``outbox-2.jsonl`` and so on, and ``adopt`` takes over
the pending writes of files nobody holds (a window that was closed, a process that died).
Plain Python; thread-safe (a lock around every change), as the GUI's UI thread keeps and its
database thread may drain.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import IO

from storage.models import Choice

FORMAT = "dpo-studio-outbox"
VERSION = 1
FILE_STEM = "outbox"


class WriteKind(Enum):
    VERDICT = "verdict"
    RETRACT = "retract"


class OutboxFileError(OSError):
    """The outbox folder or file cannot be used (read-only, full disk)."""


@dataclass(frozen=True)
class OutboxEntry:
    """One write kept in the file, as plain values (enough to store it after a restart)."""

    key: str                        # VERDICT: the verdict's client id; RETRACT: its own id
    kind: WriteKind
    annotator: str
    pair_id: int
    choice: Choice | None = None    # VERDICT: the choice; RETRACT: the taken-back verdict's
    note: str = ""
    seconds_spent: float = 0.0
    target: str | None = None       # RETRACT: the client id of the verdict it takes back
    verdict_id: int | None = None   # RETRACT: that verdict's stored row, when known
    written_at: str = ""

    def to_json(self) -> dict:
        data = asdict(self)
        data.update(kind=self.kind.value, choice=self.choice.value if self.choice else None)
        return data

    @classmethod
    def from_json(cls, data: dict) -> "OutboxEntry":
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["kind"] = WriteKind(fields["kind"])
        fields["choice"] = Choice(fields["choice"]) if fields.get("choice") else None
        return cls(**fields)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _lock(handle: IO) -> bool:
    """Take an exclusive, non-blocking OS lock on ``handle``; False when another holds it."""
    try:
        import fcntl
    except ImportError:  # Windows
        try:
            import msvcrt
        except ImportError:
            return True
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _fsync_folder(folder: Path) -> None:
    """Make a file's creation, rename or removal durable (POSIX; a no-op where not possible)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_entries(path: Path) -> tuple[dict[str, OutboxEntry], list[str]]:
    """The pending entries of an outbox file (in the order kept) and the problems found."""
    pending: dict[str, OutboxEntry] = {}
    problems: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return pending, problems
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if "format" in data:
                continue
            if data["op"] == "keep":
                entry = OutboxEntry.from_json(data)
                pending[entry.key] = entry
            elif data["op"] == "done":
                pending.pop(data["key"], None)
            else:
                raise ValueError(f"unknown op {data['op']!r}")
        except (ValueError, KeyError, TypeError) as exc:
            if number == len(lines):   # no newline after it: a write cut short by a crash
                continue
            problems.append(f"{path.name} line {number}: {exc.__class__.__name__}: {exc}")
    return pending, problems


class OutboxFile:
    """This process's outbox file in ``folder``. Open with ``OutboxFile.open(folder, shown)``."""

    def __init__(self, path: Path, lock_handle: IO, shown: str):
        self.path = path
        self.shown = shown
        self._lock_handle = lock_handle
        self._mutex = threading.Lock()
        self._pending, self.problems = read_entries(path)
        self._handle: IO | None = None
        self._rewrite()

    @classmethod
    def open(cls, folder: Path, shown: str) -> "OutboxFile":
        """Take the first outbox file in ``folder`` no other process holds (``shown``: the
        workspace as it may be shown, written in the file's first line). Its pending writes
        from an earlier sitting are ``pending()`` at once; ``adopt`` takes the others'."""
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for number in range(1, 1000):
                path = folder / (f"{FILE_STEM}.jsonl" if number == 1 else f"{FILE_STEM}-{number}.jsonl")
                handle = open(path.with_name(path.name + ".lock"), "a+b")
                if _lock(handle):
                    return cls(path, handle, shown)
                handle.close()
        except OSError as exc:
            raise OutboxFileError(f"cannot keep verdicts in {folder}: {exc.strerror or exc}") from exc
        raise OutboxFileError(f"cannot keep verdicts in {folder}: every outbox file there is in use")

    # -- reading -------------------------------------------------------------------------
    def pending(self) -> list[OutboxEntry]:
        with self._mutex:
            return list(self._pending.values())

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, key: str) -> bool:
        return key in self._pending

    # -- writing -------------------------------------------------------------------------
    def keep(self, entry: OutboxEntry) -> None:
        """Add ``entry`` as pending; on disk (fsync'd) when this returns."""
        if not entry.written_at:
            entry = OutboxEntry(**{**entry.__dict__, "written_at": _now()})
        with self._mutex:
            if entry.key in self._pending:
                return
            self._append({"op": "keep", **entry.to_json()})
            self._pending[entry.key] = entry

    def done(self, key: str) -> None:
        """The write ``key`` was stored (or dropped): no longer pending. The file goes when empty."""
        with self._mutex:
            if self._pending.pop(key, None) is None:
                return
            if self._pending:
                self._append({"op": "done", "key": key})
            else:
                self._remove()

    def adopt(self) -> int:
        """Take over the pending writes of the folder's outbox files no process holds; returns
        how many were added (their files are deleted once their writes are in this one)."""
        added = 0
        for other in sorted(self.path.parent.glob(f"{FILE_STEM}*.jsonl")):
            if other == self.path:
                continue
            try:
                handle = open(other.with_name(other.name + ".lock"), "a+b")
            except OSError:
                continue
            try:
                if not _lock(handle):
                    continue
                entries, problems = read_entries(other)
                for entry in entries.values():
                    if entry.key not in self._pending:
                        self.keep(entry)
                        added += 1
                if problems:
                    self.problems.extend(problems)
                    other.replace(other.with_name(other.name + ".damaged"))
                else:
                    other.unlink(missing_ok=True)
                _fsync_folder(self.path.parent)
            finally:
                handle.close()
                other.with_name(other.name + ".lock").unlink(missing_ok=True)
        return added

    def close(self) -> None:
        """Release the file (its pending writes stay on disk for the next sitting)."""
        with self._mutex:
            if self._handle is not None:
                self._handle.close()
                self._handle = None
            if not self._pending:
                self._remove()
            self._lock_handle.close()

    # -- the file ------------------------------------------------------------------------
    def _header(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "workspace": self.shown}

    def _append(self, record: dict) -> None:
        new = False
        try:
            if self._handle is None:
                new = not self.path.exists()
                self._handle = open(self.path, "a", encoding="utf-8")
                if new:
                    self._handle.write(json.dumps(self._header()) + "\n")
            self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._handle.flush()
            os.fsync(self._handle.fileno())
            if new:
                _fsync_folder(self.path.parent)
        except OSError as exc:
            raise OutboxFileError(f"cannot keep verdicts in {self.path}: {exc.strerror or exc}") from exc

    def _rewrite(self) -> None:
        """Start from the pending writes only (what an earlier sitting left, compacted)."""
        if not self.path.exists():
            return
        if self.problems:   # keep the damaged file for a person to read; go on in a fresh one
            self.path.replace(self.path.with_name(self.path.name + ".damaged"))
        if not self._pending:
            self._remove()
            return
        temporary = self.path.with_name(self.path.name + ".tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(self._header()) + "\n")
            for entry in self._pending.values():
                handle.write(json.dumps({"op": "keep", **entry.to_json()}, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(self.path)
        _fsync_folder(self.path.parent)

    def _remove(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self.path.exists():
            self.path.unlink()
            _fsync_folder(self.path.parent)
