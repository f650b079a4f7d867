"""The data actions — import a file, export the training set, count a workspace — used alike
by File ▸ Import / Export and by ``main.py import`` / ``export`` / ``stats``.

Each action takes plain values and returns a small report; long ones report progress through
a plain callback (``progress(DataProgress)``) and stop when ``cancelled()`` turns true. Bad
input raises ``InputRefused`` (file, line and field named), a cancel raises ``Cancelled``;
either way nothing is written: an import is one transaction, an export file is written whole
or not at all. No Qt, no torch: the GUI runs these on a worker thread, the CLI on its own.

    report = import_file(ws, "prefs.jsonl", progress=print)
    report.changes      # Changes(pairs=True, verdicts=True, ...) for the screens

With ``skip_bad_rows=True`` an import keeps the good rows of a file and writes the bad ones,
one ``FILE:LINE:FIELD: message`` line each, to a report in the workspace's exports folder
(``ImportReport.bad_rows_report``); the default stays all or nothing.
"""

from __future__ import annotations

import datetime as dt
import enum
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from core.formats import EXPORT_FORMATS, FORMATS, FormatError, read_preference_file, write_preference_file
from core.formats.writer import check_export
from core.operations.changes import NOTHING, Changes
from storage.content_counts import content_counts
from storage.ingest import IngestError, import_records
from storage.team import agreement, annotator_counts
from storage.training_set import POLICIES, build_training_set
from storage.workspace import Workspace

#: The row shapes ``import_file`` reads ("trl" is an alias of "standard").
IMPORT_FORMATS = ("auto", "trl") + FORMATS
#: Which examples an export writes: both splits (with a "split" column), or one of them.
EXPORT_SPLITS = ("all", "train", "eval")


class Stage(enum.Enum):
    READING = "reading"        # parsing and checking the file
    STORING = "storing"        # writing the rows into the workspace
    BUILDING = "building"      # merging verdicts into the training set
    WRITING = "writing"        # writing the export file


@dataclass(frozen=True)
class DataProgress:
    stage: Stage
    done: int
    total: int


Progress = Callable[[DataProgress], None]


class InputRefused(ValueError):
    """Bad input; nothing was written. ``str()`` reads "FILE:LINE: field 'x': message";
    ``where`` says the place in words ("line 4", "item 2 (line 1)", "row 7"; "" for the file)."""

    def __init__(self, text: str, path: str = "", line: int = 0, field_name: str | None = None,
                 message: str | None = None, where: str | None = None):
        super().__init__(text)
        self.path, self.line, self.field = path, line, field_name
        self.message = text if message is None else message
        self.where = where if where is not None else (f"line {line}" if line else "")


class Cancelled(Exception):
    """The caller cancelled the action before it was done; nothing was written."""


class CancelFlag:
    """A thread-safe "please stop" for ``cancelled=``: ``flag.cancel()`` on one thread,
    ``flag()`` reads it on another."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def __call__(self) -> bool:
        return self._event.is_set()


@dataclass(frozen=True)
class ImportReport:
    path: str
    description: str                 # e.g. "standard rows in JSONL (detected)"
    source: str                      # the pairs' source and the labels' pseudo-annotator
    rows: int
    prompts_added: int
    responses_added: int
    pairs_added: int
    verdicts_added: int
    duplicates: int                  # rows that added nothing (already in the workspace)
    pairs_by_split: dict[str, int]   # new pairs per split ("train", "eval")
    seconds: float
    changes: Changes
    skipped_rows: int = 0            # with skip_bad_rows: bad rows left out
    bad_rows_report: str | None = None   # ... and the file that lists them


@dataclass(frozen=True)
class ExportReport:
    path: str
    format: str
    policy: str
    split: str
    written: int                     # rows in the file
    train: int                       # examples of each split in the training set
    eval: int
    dropped: dict[str, int]          # reason -> pairs/verdicts that became no example
    changes: Changes = NOTHING       # an export writes a file, not the workspace


@dataclass(frozen=True)
class WorkspaceStats:
    workspace: str
    prompts: int
    responses: int
    pairs: int
    pairs_judged: int
    pairs_by_split: dict[str, int]
    verdicts_by_choice: dict[str, int]
    annotators: list[dict] = field(default_factory=list)      # AnnotatorCounts.to_dict() rows
    agreement: dict = field(default_factory=dict)            # AgreementReport.to_dict()

    @property
    def verdicts(self) -> int:
        return sum(self.verdicts_by_choice.values())

    def to_dict(self) -> dict:
        return {"workspace": self.workspace, "prompts": self.prompts, "responses": self.responses,
                "pairs": self.pairs, "pairs_judged": self.pairs_judged, "pairs_by_split": dict(self.pairs_by_split),
                "verdicts": self.verdicts, "verdicts_by_choice": dict(self.verdicts_by_choice),
                "annotators": list(self.annotators), "agreement": dict(self.agreement)}


def _reporter(progress: Progress | None, cancelled: Callable[[], bool] | None,
              stage: Stage) -> Callable[[int, int], None]:
    """The ``(done, total)`` callback the readers and writers take: reports, and raises
    ``Cancelled`` (which rolls the transaction back) once the caller asked to stop."""

    def report(done: int, total: int) -> None:
        if progress is not None:
            progress(DataProgress(stage, done, total))
        if cancelled is not None and cancelled():
            raise Cancelled(f"{stage.value} was cancelled")

    return report


def _open(workspace: Workspace | str | os.PathLike, create: bool) -> tuple[Workspace, bool]:
    if isinstance(workspace, Workspace):
        return workspace, False
    return Workspace.open(workspace, create=create), True


def import_file(workspace: Workspace | str | os.PathLike, path: str | os.PathLike, format: str = "auto",
                source: str | None = None, progress: Progress | None = None,
                cancelled: Callable[[], bool] | None = None, skip_bad_rows: bool = False) -> ImportReport:
    """Read ``path`` whole, then store it in one transaction (idempotent: rows already in
    the workspace add nothing; a prompt or response is found whether it arrives as text or chat).

    ``workspace``: an open workspace, or a location, opened (and created if new) only after
    the file has been read without a problem, so a bad file does not even create it.
    ``source`` names the pairs' origin and the labels' pseudo-annotator (default: the file name).
    ``skip_bad_rows``: store the good rows and list the bad ones in a report file (see the module).
    Raises ``InputRefused`` naming file, line and field, or ``Cancelled``.
    """
    started = time.perf_counter()
    path = Path(path)
    if format not in IMPORT_FORMATS:
        raise InputRefused(f"unknown format {format!r}; expected one of {', '.join(IMPORT_FORMATS)}", str(path))
    try:
        parsed = read_preference_file(path, format, progress=_reporter(progress, cancelled, Stage.READING),
                                      skip_bad_rows=skip_bad_rows)
    except FormatError as exc:
        raise InputRefused(str(exc), str(exc.path), exc.line, exc.field, exc.message, exc.place.describe()) from None
    source = (source or "").strip() or path.name
    ws, opened = _open(workspace, create=True)
    try:
        summary = import_records(ws, parsed.records, source, progress=_reporter(progress, cancelled, Stage.STORING),
                                 match_forms=True)
        report_path = _write_bad_rows(ws, path, parsed.bad_rows) if parsed.bad_rows else None
    except IngestError as exc:
        raise InputRefused(str(exc), str(path), exc.line, exc.field, exc.message) from None
    finally:
        if opened:
            ws.close()
    changes = Changes(pairs=summary.pairs_added > 0, verdicts=summary.verdicts_added > 0,
                      annotators=summary.verdicts_added > 0,
                      pair_ids=frozenset(summary.pair_ids) if summary.pairs_added or summary.verdicts_added
                      else frozenset())
    return ImportReport(str(path), parsed.describe(), source, parsed.rows, summary.prompts_added,
                        summary.responses_added, summary.pairs_added, summary.verdicts_added, summary.duplicates,
                        dict(sorted(summary.new_pairs_by_split.items())), time.perf_counter() - started, changes,
                        len(parsed.bad_rows), str(report_path) if report_path else None)


def _write_bad_rows(ws: Workspace, path: Path, bad_rows: list[FormatError]) -> Path:
    """The bad rows of an import, one ``FILE:LINE:FIELD: message`` line each, in the exports folder."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    ws.exports_dir.mkdir(parents=True, exist_ok=True)
    out = ws.exports_dir / f"{path.stem}-bad-rows-{stamp}.txt"
    counter = 1
    while out.exists():
        counter += 1
        out = ws.exports_dir / f"{path.stem}-bad-rows-{stamp}-{counter}.txt"
    lines = [f"# {len(bad_rows)} bad rows of {path} left out of the import "
             "(FILE:LINE:FIELD: message; LINE is the row number in a Parquet/Arrow table)"]
    out.write_text("\n".join(lines + [error.report_line() for error in bad_rows]) + "\n", encoding="utf-8")
    return out


def _counted(items: list, report: Callable[[int, int], None]) -> Iterator:
    total = len(items)
    for done, item in enumerate(items):
        if done % 500 == 0:
            report(done, total)
        yield item
    report(total, total)


def export_training_data(workspace: Workspace | str | os.PathLike, out: str | os.PathLike, format: str = "trl",
                         policy: str = "majority", split: str = "all", progress: Progress | None = None,
                         cancelled: Callable[[], bool] | None = None) -> ExportReport:
    """Merge the verdicts by ``policy`` and write the training set as TRL-ready JSONL, OpenAI
    preference JSONL (``format="openai"``), or Parquet for an ``out`` named .parquet.

    ``split="all"`` writes every example with a "split" column (not in the OpenAI format); "train"/"eval" only that part,
    without it. ``workspace``: an open workspace or the location of an existing one. The file
    is written whole or not at all. Raises ``InputRefused`` (bad choice, no such folder) or
    ``Cancelled``.
    """
    out = Path(out)
    for name, value, allowed in (("format", format, EXPORT_FORMATS), ("policy", policy, POLICIES),
                                 ("split", split, EXPORT_SPLITS)):
        if value not in allowed and not (name == "format" and value == "standard"):
            raise InputRefused(f"unknown {name} {value!r}; expected one of {', '.join(allowed)}", str(out))
    try:
        check_export(out, format)
    except ValueError as exc:
        raise InputRefused(str(exc) if isinstance(exc, FormatError) else f"{out}: {exc}", str(out)) from None
    if not out.parent.is_dir():
        raise InputRefused(f"{out.parent}: no such folder for the output file", str(out))
    report_building = _reporter(progress, cancelled, Stage.BUILDING)
    report_building(0, 1)
    ws, opened = _open(workspace, create=False)
    try:
        training = build_training_set(ws, policy)
    finally:
        if opened:
            ws.close()
    report_building(1, 1)
    examples: Iterable = training.examples if split == "all" else [e for e in training.examples if e.split == split]
    written = write_preference_file(out, _counted(list(examples), _reporter(progress, cancelled, Stage.WRITING)),
                                    format, include_split=split == "all")
    return ExportReport(str(out), format, policy, split, written, len(training.train), len(training.eval),
                        dict(training.dropped))


def workspace_stats(workspace: Workspace | str | os.PathLike) -> WorkspaceStats:
    """Counts of prompts, responses, pairs and verdicts (by choice and by annotator), and agreement."""
    ws, opened = _open(workspace, create=False)
    try:
        counts = content_counts(ws)
        annotators = annotator_counts(ws)
        report = agreement(ws)
    finally:
        if opened:
            ws.close()
    by_choice: dict[str, int] = {}
    for annotator in annotators:
        for choice, n in annotator.by_choice.items():
            by_choice[choice] = by_choice.get(choice, 0) + n
    return WorkspaceStats(ws.display_location, counts.prompts, counts.responses, counts.pairs, counts.pairs_judged,
                          counts.pairs_by_split, by_choice, [a.to_dict() for a in annotators], report.to_dict())
