"""Prompts-only files (what to generate candidates for): JSONL or a JSON array of rows with a
``prompt`` field (text, or chat messages ``[{"role", "content"}, ...]``), CSV with a ``prompt``
column, or plain text with one prompt per line (blank lines skipped). Rows are read by
``core.formats.containers``; every problem is a ``FormatError`` naming file, line and field.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.formats.containers import READERS, _decode, read_file_bytes
from core.formats.errors import FormatError

PROMPT_FIELD = "prompt"
PROMPT_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".txt")
ROLES = ("system", "user", "assistant", "tool")


def _messages(path: Path, line: int, value: list) -> list[dict]:
    if not value:
        raise FormatError(path, line, PROMPT_FIELD, "an empty list of messages")
    for i, message in enumerate(value):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str) \
                or message.get("role") not in ROLES:
            raise FormatError(path, line, f"{PROMPT_FIELD}[{i}]",
                              'expected a message {"role": "user", "content": "..."} '
                              f"with role one of {', '.join(ROLES)}")
    return [{"role": m["role"], "content": m["content"]} for m in value]


def _prompt_of(path: Path, line: int, row: object) -> str | list[dict]:
    if not isinstance(row, dict):
        raise FormatError(path, line, None, f'expected an object with a "{PROMPT_FIELD}" field, '
                          f"got {type(row).__name__}")
    if PROMPT_FIELD not in row:
        raise FormatError(path, line, PROMPT_FIELD, f"missing (the row has {', '.join(map(str, row)) or 'no fields'})")
    value = row[PROMPT_FIELD]
    if isinstance(value, list):
        return _messages(path, line, value)
    if not isinstance(value, str):
        raise FormatError(path, line, PROMPT_FIELD, f"expected text or a list of messages, got {type(value).__name__}")
    if not value.strip():
        raise FormatError(path, line, PROMPT_FIELD, "empty")
    return value


def read_prompts_file(path: str | os.PathLike) -> list[str | list[dict]]:
    """The prompts of ``path`` in file order (text, or chat messages); ``FormatError`` otherwise."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in PROMPT_SUFFIXES:
        if not path.exists():
            raise FormatError(path, 0, None, "no such file")
        raise FormatError(path, 0, None, f"unknown prompts file type {suffix or '(no suffix)'!r}; "
                          f"expected {', '.join(PROMPT_SUFFIXES)}")
    data = read_file_bytes(path)
    if suffix == ".txt":
        prompts = [line.strip() for line in _decode(path, data).splitlines() if line.strip()]
    else:
        reader = READERS["jsonl" if suffix in (".jsonl", ".ndjson") else suffix[1:]]
        prompts = [_prompt_of(path, place.line or place.item, row) for place, row in reader(path, data)]
    if not prompts:
        raise FormatError(path, 0, None, "holds no prompts")
    return prompts
