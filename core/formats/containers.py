"""Reading rows out of JSONL, JSON and CSV files, each with the line it starts on.

Every reader yields ``(line, row)`` where ``row`` is whatever the file holds there (normally a
dict) and raises ``FormatError`` for bytes that are not UTF-8, malformed JSON or an empty
file, naming the line. A UTF-8 byte-order mark is accepted.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Callable, Iterator

from core.formats.errors import FormatError

CONTAINERS = ("jsonl", "json", "csv")
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv"}

Progress = Callable[[int, int], None]  # (done, total), in lines or characters


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
    try:
        return _SUFFIXES[path.suffix.lower()]
    except KeyError:
        raise FormatError(path, 0, None, f"unknown file type {path.suffix or '(no suffix)'!r}; "
                          "expected .jsonl, .ndjson, .json or .csv") from None


def _decode(path: Path, data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = 1 + data.count(b"\n", 0, exc.start)
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise FormatError(path, line, None, f"not UTF-8 text: byte 0x{data[exc.start]:02x} at column {column} "
                          "cannot be decoded (save the file as UTF-8)") from None
    return text.removeprefix("\ufeff")


def read_jsonl(path: Path, data: bytes, progress: Progress | None = None) -> Iterator[tuple[int, object]]:
    lines = _decode(path, data).split("\n")
    for number, line in enumerate(lines, start=1):
        if progress is not None and number % 2000 == 0:
            progress(number, len(lines))
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise FormatError(path, number, None, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    if progress is not None:
        progress(len(lines), len(lines))


def read_json(path: Path, data: bytes, progress: Progress | None = None) -> Iterator[tuple[int, object]]:
    """A JSON array of rows; each row's line is where its value starts."""
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
            raise FormatError(path, exc.lineno, None, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
        yield _line_at(text, position), row
        count += 1
        if progress is not None and count % 2000 == 0:
            progress(end, len(text))
        position = _skip_space(text, end)
        if position < len(text) and text[position] == ",":
            position = _skip_space(text, position + 1)
            continue
        if position < len(text) and text[position] == "]":
            _expect_end(path, text, position + 1)
            break
        raise FormatError(path, _line_at(text, position), None, "invalid JSON: expected ',' or ']' after a row")
    if progress is not None:
        progress(len(text), len(text))


def read_csv(path: Path, data: bytes, progress: Progress | None = None) -> Iterator[tuple[int, object]]:
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
            if None in row:
                raise FormatError(path, line, None, f"row has more cells than the header's {len(header)} columns")
            if any(value is None for value in row.values()):
                missing = [k for k, v in row.items() if v is None]
                raise FormatError(path, line, missing[0], "missing (row has fewer cells than the header)")
            yield line, row
            line = reader.line_num + 1
            if progress is not None and line % 2000 == 0:
                progress(min(line, total_lines), total_lines)
    except csv.Error as exc:
        raise FormatError(path, reader.line_num, None, f"malformed CSV: {exc}") from None


READERS = {"jsonl": read_jsonl, "json": read_json, "csv": read_csv}


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
