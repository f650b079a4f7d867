"""Reading and writing preference files: JSONL, JSON, CSV, Parquet and Arrow in the shapes
people already have.

``read_preference_file(path, format="auto")`` returns every row as a
``storage.ingest.ImportRecord`` or raises ``FormatError`` ("FILE:LINE: field 'x': message",
"FILE: item 2 (line 1): ..." in a JSON array, "FILE: row 7: ..." in a table) at the first bad
row, so a file is imported whole or not at all — unless ``skip_bad_rows``: then the bad rows
are set aside in ``ParsedFile.bad_rows`` (one ``FormatError`` each) and the good ones kept. The
shapes are described in ``core.formats.shapes`` and ``core.formats.tool_exports``; the text
containers in ``core.formats.containers``, Parquet/Arrow files and folders (a
``datasets`` ``save_to_disk`` folder, a folder of Parquet shards) in ``core.formats.tables``.
With ``format="auto"`` the shape is picked from the first row (``core.formats.detection``)
and every later row must have the same shape.

Chat data: a conversational prompt is stored as its messages (``Prompt.messages_json``)
plus a readable text rendering ("User: ...\\n\\nAssistant: ..."); Anthropic-HH transcripts
are always turned into such chat messages (never kept as one text), so an HH file and its
TRL-conversational equivalent are the same data. ``write_preference_file`` writes TRL
standard, TRL conversational or OpenAI preference JSONL, or TRL standard/conversational
Parquet (``core.formats.writer``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from core.formats.containers import READERS, TEXT_CONTAINERS, container_for, read_file_bytes
from core.formats.detection import SHAPE_LABELS, detect_format
from core.formats.errors import FormatError, Place
from core.formats.shapes import FORMATS, RowReader, canonical_format
from core.formats.writer import EXPORT_FORMATS, write_preference_file
from storage.ingest import ImportRecord

__all__ = ["FormatError", "Place", "ParsedFile", "read_preference_file", "write_preference_file", "FORMATS",
           "EXPORT_FORMATS", "SHAPE_LABELS"]

_CONTAINER_LABELS = {"jsonl": "JSONL", "json": "JSON", "csv": "CSV"}


@dataclass
class ParsedFile:
    format: str                    # one of FORMATS: "standard", "conversational", ... "labelstudio"
    records: list[ImportRecord]
    container: str = "jsonl"       # "jsonl" | "json" | "csv" | "parquet" | "arrow" | "folder"
    detected: bool = False         # True when the format was picked automatically
    container_label: str = ""      # in words: "JSONL", "Parquet", "a folder of 3 Parquet files", ...
    rows: int = 0                  # rows read (a ranking row of several responses makes several records)
    bad_rows: list[FormatError] = field(default_factory=list)   # with skip_bad_rows: the rows set aside

    def describe(self) -> str:
        how = "detected" if self.detected else "given"
        where = self.container_label or _CONTAINER_LABELS.get(self.container, self.container.upper())
        text = f"{self.format} rows in {where} ({how})"
        if self.format not in ("standard", "conversational", "implicit", "candidates"):
            text += f" — {SHAPE_LABELS[self.format]}"
        return text


def _rows(path: Path, container: str, progress, bad) -> tuple[str, object]:
    if container in TEXT_CONTAINERS:
        return _CONTAINER_LABELS[container], READERS[container](path, read_file_bytes(path), progress, bad)
    from core.formats.tables import table_rows, table_sources

    if not path.exists():
        raise FormatError(path, 0, None, "no such file")
    label, _ = table_sources(path)
    return label, table_rows(path, progress)


def read_preference_file(path: str | os.PathLike, format: str = "auto",
                         progress: Callable[[int, int], None] | None = None,
                         skip_bad_rows: bool = False) -> ParsedFile:
    """Read every row of a preference file or dataset folder; raises ``FormatError`` naming
    file, line (or item, row) and field — for the first bad row, or with ``skip_bad_rows`` only
    when the file as a whole is unreadable or no row is good."""
    path = Path(path)
    shape = None if format == "auto" else canonical_format(format, path)
    container = container_for(path)
    bad_rows: list[FormatError] = []
    bad = bad_rows.append if skip_bad_rows else None
    label, rows = _rows(path, container, progress, bad)
    reader: RowReader | None = None
    records: list[ImportRecord] = []
    good = 0
    for place, row in rows:
        try:
            if reader is None:
                reader = RowReader(path, shape or detect_format(row, path, place), from_csv=container == "csv")
            records.extend(reader.records(place, row))
            good += 1
        except FormatError as exc:
            if bad is None:
                raise
            bad(exc)
    if not good and not bad_rows:
        raise FormatError(path, 0, None, "the file is empty (no rows)")
    if not records:
        first = bad_rows[0]
        raise FormatError(first.path, first.line, first.field, f"{first.message} — and no row of the file is good "
                          f"({len(bad_rows)} bad)", item=first.item, unit=first.place.unit)
    return ParsedFile(reader.shape, records, container, detected=shape is None, container_label=label,
                      rows=good, bad_rows=bad_rows)
