"""Writing preference examples as JSONL that TRL's DPOTrainer loads as it is.

- ``trl`` (TRL standard): ``{"prompt": str, "chosen": str, "rejected": str}``; a chat prompt
  is flattened to its readable text rendering (use ``conversational`` to keep the turns).
- ``conversational``: ``prompt`` a list of ``{"role", "content"}`` messages, ``chosen`` and
  ``rejected`` lists of assistant messages; a text prompt becomes one user turn.

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

EXPORT_FORMATS = ("trl", "conversational")


def _as_text(value: str | list[dict], is_prompt: bool) -> str:
    if isinstance(value, str):
        return value
    return render_messages(value) if is_prompt else completion_text(value)


def _as_messages(value: str | list[dict], role: str) -> list[dict]:
    return [{"role": role, "content": value}] if isinstance(value, str) else value


def example_row(example: PreferenceExample, format: str, include_split: bool = True) -> dict:
    if format in ("trl", "standard"):
        row = {"prompt": _as_text(example.prompt, True), "chosen": _as_text(example.chosen, False),
               "rejected": _as_text(example.rejected, False)}
    elif format == "conversational":
        row = {"prompt": _as_messages(example.prompt, "user"), "chosen": _as_messages(example.chosen, "assistant"),
               "rejected": _as_messages(example.rejected, "assistant")}
    else:
        raise ValueError(f"unknown export format {format!r}; expected one of {', '.join(EXPORT_FORMATS)}")
    if include_split:
        row["split"] = example.split
    return row


def write_preference_file(path: str | os.PathLike, examples: Iterable[PreferenceExample], format: str = "trl",
                          include_split: bool = True) -> int:
    """Write ``examples`` as JSONL in ``format``; returns the number of rows written."""
    path = Path(path)
    if format not in EXPORT_FORMATS and format != "standard":
        raise ValueError(f"unknown export format {format!r}; expected one of {', '.join(EXPORT_FORMATS)}")
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
