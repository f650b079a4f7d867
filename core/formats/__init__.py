"""Reading and writing preference files: JSONL, JSON and CSV in the shapes people already have.

``read_preference_file(path, format="auto")`` returns every row as a
``storage.ingest.ImportRecord`` or raises ``FormatError`` ("FILE:LINE: field 'x': message")
at the first bad row, so a file is imported whole or not at all. The shapes are described
in ``core.formats.shapes`` (standard, conversational, implicit prompt incl. Anthropic-HH
transcripts, candidates); the containers in ``core.formats.containers``. With
``format="auto"`` the shape is picked from the first row's fields and every later row
must have the same shape.

Chat data: a conversational prompt is stored as its messages (``Prompt.messages_json``)
plus a readable text rendering ("User: ...\n\nAssistant: ..."); Anthropic-HH transcripts
are always turned into such chat messages (never kept as one text), so an HH file and its
TRL-conversational equivalent are the same data. ``write_preference_file`` writes TRL
standard JSONL (chat prompts flattened to their text rendering) or TRL conversational JSONL
(text prompts become one user turn), both loadable by TRL's DPOTrainer as they are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from core.formats.containers import READERS, container_for, read_file_bytes
from core.formats.errors import FormatError
from core.formats.shapes import FORMATS, RowReader, canonical_format, detect_format
from core.formats.writer import EXPORT_FORMATS, write_preference_file
from storage.ingest import ImportRecord

__all__ = ["FormatError", "ParsedFile", "read_preference_file", "write_preference_file", "FORMATS",
           "EXPORT_FORMATS"]


@dataclass
class ParsedFile:
    format: str                    # "standard" | "conversational" | "implicit" | "candidates"
    records: list[ImportRecord]
    container: str = "jsonl"       # "jsonl" | "json" | "csv"
    detected: bool = False         # True when the format was picked automatically

    def describe(self) -> str:
        how = "detected" if self.detected else "given"
        return f"{self.format} rows in {self.container.upper()} ({how})"


def read_preference_file(path: str | os.PathLike, format: str = "auto",
                         progress: Callable[[int, int], None] | None = None) -> ParsedFile:
    """Read every row of a preference file; raises ``FormatError`` naming file, line and field."""
    path = Path(path)
    shape = None if format == "auto" else canonical_format(format, path)
    container = container_for(path)
    data = read_file_bytes(path)
    reader: RowReader | None = None
    records: list[ImportRecord] = []
    for line, row in READERS[container](path, data, progress):
        if reader is None:
            reader = RowReader(path, shape or detect_format(row, path, line), from_csv=container == "csv")
        records.append(reader.record(line, row))
    if reader is None:
        raise FormatError(path, 0, None, "the file is empty (no rows)")
    return ParsedFile(reader.shape, records, container, detected=shape is None)
