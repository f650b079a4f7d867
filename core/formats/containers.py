"""Reading rows out of JSONL, JSON and CSV files, each with where it starts.

Every reader yields ``(Place, row)`` where ``row`` is whatever the file holds there (normally a
dict) and raises ``FormatError`` for bytes that are not UTF-8, malformed JSON or an empty file,
naming the line (and for a JSON array the item). Given ``bad`` (a callback), a problem that
spoils only one row — a JSONL line that is not JSON or not UTF-8, a CSV row with the wrong
number of cells — goes to ``bad`` and reading goes on; a problem with the file as a whole
(a JSON array that does not parse) is still raised. A UTF-8 byte-order mark is accepted.
Parquet, Arrow and dataset folders are read in ``core.formats.tables``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Callable, Iterator

from core.formats.errors import FormatError, Place

TEXT_CONTAINERS = ("jsonl", "json", "csv")
TABLE_CONTAINERS = ("parquet", "arrow")
CONTAINERS = TEXT_CONTAINERS + TABLE_CONTAINERS
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv",
             ".parquet": "parquet", ".arrow": "arrow", ".feather": "arrow"}
#: The file types ``container_for`` knows, for messages and file dialogs.
SUFFIXES = tuple(_SUFFIXES)

Progress = Callable[[int, int], None]  # (done, total), in lines, characters or rows
BadRow = Callable[[FormatError], None]


def read_file_bytes(path: Path) -> bytes:
    """The file's bytes; a missing, folder or unreadable path is a ``FormatError`` saying which."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise FormatError(path, 0, None, "no such file") from None
    except IsADirectoryError:
        raise FormatError(path, 0, None, "is a folder, not a file") from None
    except OSError as exc:
        raise FormatError(path, 0, None, f"cannot read: {exc.strerror}") from None


def container_for(path: Path) -> str:
    """The container of a file (by its suffix) or folder ("folder": a dataset or Parquet shards)."""
    if path.is_dir():
        return "folder"
    try:
        return _SUFFIXES[path.suffix.lower()]
    except KeyError:
        if not path.exists():
            raise FormatError(path, 0, None, "no such file or folder") from None
        raise FormatError(path, 0, None, f"unknown file type {path.suffix or '(no suffix)'!r}; expected "
                          f"{', '.join(SUFFIXES)}, or a folder written by datasets' save_to_disk") from None


def _decode(path: Path, data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = 1 + data.count(b"\n", 0, exc.start)
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise FormatError(path, line, None, f"not UTF-8 text: byte 0x{data[exc.start]:02x} at column {column} "
                          "cannot be decoded (save the file as UTF-8)") from None
    return text.removeprefix("\ufeff")


def _jsonl_lines(path: Path, data: bytes, bad: BadRow | None) -> list[str | None]:
    """The file's lines as text; with ``bad``, a line that is not UTF-8 is reported and kept as None."""
    if bad is None:
        return _decode(path, data).split("\n")
    lines: list[str | None] = []
    for number, raw in enumerate(data.removeprefix(b"\xef\xbb\xbf").split(b"\n"), start=1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            column = exc.start + 1
            bad(FormatError(path, number, None, f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at column {column} "
                            "cannot be decoded (save the file as UTF-8)"))
            lines.append(None)
    return lines


def jsonl_rows(path: Path, data: bytes, progress: Progress | None = None,
               bad: BadRow | None = None) -> Iterator[tuple[Place, object]]:
    lines = _jsonl_lines(path, data, bad)
    for number, line in enumerate(lines, start=1):
        if progress is not None and number % 2000 == 0:
            progress(number, len(lines))
        if line is None or not line.strip():
            continue
        try:
            yield Place(number), json.loads(line)
        except json.JSONDecodeError as exc:
            error = FormatError(path, number, None, f"invalid JSON: {exc.msg} (column {exc.colno})")
            if bad is None:
                raise error from None
            bad(error)
    if progress is not None:
        progress(len(lines), len(lines))


def read_jsonl(path: Path, data: bytes, progress: Progress | None = None) -> Iterator[tuple[int, object]]:
    """``(line, row)`` of every line of a JSONL file (bundles read their lines with this)."""
    for place, row in jsonl_rows(path, data, progress):
        yield place.line, row


def json_rows(path: Path, data: bytes, progress: Progress | None = None,
              bad: BadRow | None = None) -> Iterator[tuple[Place, object]]:
    """A JSON array of rows; each row's place is its item number and the line where it starts."""
    text = _decode(path, data)
    decoder = json.JSONDecoder()
    position = _skip_space(text, 0)
    if position == len(text):
        return
    if text[position] != "[":
        raise FormatError(path, _line_at(text, position), None,
                          "expected a JSON array of rows ([{...}, {...}]); for one row per line use .jsonl")
    position = _skip_space(text, position + 1)
    if position < len(text) and text[position] == "]":
        _expect_end(path, text, position + 1)
        return
    count = 0
    while True:
        try:
            row, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise FormatError(path, exc.lineno, None, f"invalid JSON: {exc.msg} (column {exc.colno})",
                              item=count + 1) from None
        count += 1
        yield Place(_line_at(text, position), count), row
        if progress is not None and count % 2000 == 0:
            progress(end, len(text))
        position = _skip_space(text, end)
        if position < len(text) and text[position] == ",":
            position = _skip_space(text, position + 1)
            continue
        if position < len(text) and text[position] == "]":
            _expect_end(path, text, position + 1)
            break
        raise FormatError(path, _line_at(text, position), None, "invalid JSON: expected ',' or ']' after a row",
                          item=count)
    if progress is not None:
        progress(len(text), len(text))


def csv_rows(path: Path, data: bytes, progress: Progress | None = None,
             bad: BadRow | None = None) -> Iterator[tuple[Place, object]]:
    """Rows of a CSV file with a header line, as dicts of strings (line = the row's first line)."""
    text = _decode(path, data)
    total_lines = text.count("\n") + 1
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames
        if header is None:
            return
        if len(set(header)) != len(header):
            raise FormatError(path, 1, None, f"the CSV header repeats a column: {header}")
        line = reader.line_num + 1
        for row in reader:
            error = None
            if None in row:
                error = FormatError(path, line, None, f"row has more cells than the header's {len(header)} columns")
            elif any(value is None for value in row.values()):
                missing = [k for k, v in row.items() if v is None]
                error = FormatError(path, line, missing[0], "missing (row has fewer cells than the header)")
            if error is None:
                yield Place(line), row
            elif bad is None:
                raise error
            else:
                bad(error)
            line = reader.line_num + 1
            if progress is not None and line % 2000 == 0:
                progress(min(line, total_lines), total_lines)
    except csv.Error as exc:
        raise FormatError(path, reader.line_num, None, f"malformed CSV: {exc}") from None


READERS = {"jsonl": jsonl_rows, "json": json_rows, "csv": csv_rows}


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _line_at(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _expect_end(path: Path, text: str, position: int) -> None:
    position = _skip_space(text, position)
    if position != len(text):
        raise FormatError(path, _line_at(text, position), None, "invalid JSON: extra data after the closing ']'")
