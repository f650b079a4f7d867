"""Writing preference examples in the files trainers load as they are.

Formats (the row shape):

- ``trl`` (TRL standard): ``{"prompt": str, "chosen": str, "rejected": str}``; a chat prompt
  is flattened to its readable text rendering (use ``conversational`` to keep the turns).
- ``conversational``: ``prompt`` a list of ``{"role", "content"}`` messages, ``chosen`` and
  ``rejected`` lists of assistant messages; a text prompt becomes one user turn.
- ``openai`` (OpenAI preference fine-tuning): ``{"input": {"messages": [...]},
  "preferred_output": [...], "non_preferred_output": [...]}``; never with a ``split`` field
  (OpenAI takes the training and validation files apart).

Containers, by the file's suffix: ``.parquet`` writes Parquet (``trl`` and ``conversational``;
``datasets.load_dataset("parquet", ...)`` reads it), anything else JSONL.

With ``include_split`` every row also has ``split`` ("train" / "eval"); TRL ignores the
extra column. The file is written to a temporary name and moved into place, so a failed
export never leaves half a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from storage.ingest import completion_text, render_messages
from storage.training_set import PreferenceExample

EXPORT_FORMATS = ("trl", "conversational", "openai")
#: Formats a Parquet file can hold.
PARQUET_FORMATS = ("trl", "conversational")


def _as_text(value: str | list[dict], is_prompt: bool) -> str:
    if isinstance(value, str):
        return value
    return render_messages(value) if is_prompt else completion_text(value)


def _as_messages(value: str | list[dict], role: str) -> list[dict]:
    return [{"role": role, "content": value}] if isinstance(value, str) else value


def container_of(path: Path) -> str:
    return "parquet" if path.suffix.lower() == ".parquet" else "jsonl"


def check_export(path: Path, format: str) -> None:
    """Raises ``ValueError`` for a format this app does not write, or one a Parquet file cannot hold."""
    if format not in EXPORT_FORMATS and format != "standard":
        raise ValueError(f"unknown export format {format!r}; expected one of {', '.join(EXPORT_FORMATS)}")
    if container_of(path) == "parquet":
        if format == "openai":
            raise ValueError("OpenAI preference files are JSONL: name the file .jsonl, or choose trl or "
                             "conversational for Parquet")
        from core.formats.tables import require_pyarrow

        require_pyarrow(path)


def example_row(example: PreferenceExample, format: str, include_split: bool = True) -> dict:
    if format in ("trl", "standard"):
        row = {"prompt": _as_text(example.prompt, True), "chosen": _as_text(example.chosen, False),
               "rejected": _as_text(example.rejected, False)}
    elif format == "conversational":
        row = {"prompt": _as_messages(example.prompt, "user"), "chosen": _as_messages(example.chosen, "assistant"),
               "rejected": _as_messages(example.rejected, "assistant")}
    elif format == "openai":
        return {"input": {"messages": _as_messages(example.prompt, "user")},
                "preferred_output": _as_messages(example.chosen, "assistant"),
                "non_preferred_output": _as_messages(example.rejected, "assistant")}
    else:
        raise ValueError(f"unknown export format {format!r}; expected one of {', '.join(EXPORT_FORMATS)}")
    if include_split:
        row["split"] = example.split
    return row


def write_preference_file(path: str | os.PathLike, examples: Iterable[PreferenceExample], format: str = "trl",
                          include_split: bool = True) -> int:
    """Write ``examples`` in ``format`` (JSONL, or Parquet for a .parquet path); returns the rows written."""
    path = Path(path)
    check_export(path, format)
    if container_of(path) == "parquet":
        from core.formats.tables import write_parquet

        rows = [example_row(example, format, include_split) for example in examples]
        kind = "string" if format in ("trl", "standard") else "messages"
        columns = {"prompt": kind, "chosen": kind, "rejected": kind}
        if include_split:
            columns["split"] = "string"
        write_parquet(path, rows, columns)
        return len(rows)
    temporary = path.with_name(f".{path.name}.partial")
    count = 0
    try:
        with open(temporary, "w", encoding="utf-8", newline="\n") as out:
            for example in examples:
                out.write(json.dumps(example_row(example, format, include_split), ensure_ascii=False) + "\n")
                count += 1
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return count
