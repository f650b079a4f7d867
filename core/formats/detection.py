"""Telling a file's row shape from its first row, and saying why when nothing fits.

``detect_format`` looks at the field names (and a few types: is the prompt text or messages,
are chosen/rejected whole conversations); ``SHAPE_LABELS`` says in words what each shape is, so
the import can name what it picked. When no shape fits, the error lists the fields it saw,
the nearest shape (the one sharing most field names) and the ``--format`` to try.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.formats.errors import FormatError, Place
from core.formats.shapes import RESPONSE_COLUMN, type_name

SHAPE_LABELS = {
    "standard": "TRL standard: prompt, chosen, rejected texts",
    "conversational": "TRL conversational: prompt, chosen, rejected message lists",
    "implicit": "implicit prompt: chosen and rejected only, e.g. Anthropic HH",
    "ultrafeedback": "HuggingFaceH4 UltraFeedback: prompt text, chosen/rejected whole conversations",
    "openai": "OpenAI preference fine-tuning: input.messages, preferred_output, non_preferred_output",
    "candidates": "candidates to label: prompt and responses, or response_1, response_2, ...",
    "argilla": "Argilla export: fields with the responses, and the annotators' ranking, label or ratings",
    "labelstudio": "Label Studio export: data with two responses, annotations with a pairwise choice",
}
# What each shape needs, and other fields it is known by (to find the nearest shape).
REQUIRED = {
    "standard": ("prompt", "chosen", "rejected"),
    "conversational": ("prompt", "chosen", "rejected"),
    "implicit": ("chosen", "rejected"),
    "ultrafeedback": ("prompt", "chosen", "rejected"),
    "openai": ("input", "preferred_output", "non_preferred_output"),
    "candidates": ("prompt", "responses"),
    "argilla": ("fields", "responses"),
    "labelstudio": ("data", "annotations"),
}
KNOWN = {
    "ultrafeedback": ("score_chosen", "score_rejected", "prompt_id", "messages"),
    "candidates": ("response_1", "response_2", "completions", "response", "answers"),
    "argilla": ("suggestions", "metadata", "_server_id", "vectors", "status"),
    "labelstudio": ("predictions", "completions", "meta", "inner_id", "total_annotations"),
    "openai": ("output", "preferred", "rejected_output"),
}


def _is_argilla(row: dict) -> bool:
    if isinstance(row.get("fields"), dict) and isinstance(row.get("responses"), dict):
        return True   # records.to_list() / to_json(): nested
    if any(key.endswith((".responses", ".suggestion")) for key in row):
        return True   # records.to_datasets() / to_hub(): flattened, "question.responses"
    # Argilla 1.x FeedbackDataset on the Hub: a question column holds {"user_id": [...], "value": [...], "status": [...]}.
    return any(isinstance(v, dict) and {"value", "status"} <= set(v) and isinstance(v["value"], list)
               for v in row.values())


def detect_format(row: Any, path: Path, place: Place | int) -> str:
    """Pick the shape from a row's field names (and the prompt's type)."""
    place = place if isinstance(place, Place) else Place(place)
    where = dict(item=place.item, unit=place.unit)
    source = place.source or path
    if not isinstance(row, dict):
        raise FormatError(source, place.line, None, f"expected an object with named fields, got {type_name(row)}",
                          **where)
    keys = set(row)
    if isinstance(row.get("input"), dict) and {"preferred_output", "non_preferred_output"} <= keys:
        return "openai"
    if isinstance(row.get("data"), dict) and keys & {"annotations", "completions", "predictions"}:
        return "labelstudio"
    if _is_argilla(row):
        return "argilla"
    if "responses" in keys or any(RESPONSE_COLUMN.match(k) for k in keys):
        return "candidates"
    if {"chosen", "rejected"} <= keys:
        if "prompt" not in keys:
            return "implicit"
        if isinstance(row["prompt"], list):
            return "conversational"
        if isinstance(row["chosen"], list) or isinstance(row["rejected"], list):
            return "ultrafeedback"
        return "standard"
    shape = nearest_shape(keys)
    missing = [f for f in REQUIRED[shape] if f not in keys]
    if len(missing) == len(REQUIRED[shape]):
        nearest = f"no field of a known shape; the most common is {shape} ({SHAPE_LABELS[shape]})"
    else:
        lacks = f"lacks {', '.join(missing)}" if missing else "has its fields, but not of the types it needs"
        nearest = f"the nearest shape is {shape} ({SHAPE_LABELS[shape]}), which {lacks}"
    raise FormatError(source, place.line, None,
                      f"cannot tell the format from fields {sorted(keys)}: {nearest}; try --format {shape} "
                      "to check the rows against it, or rename the fields", **where)


def nearest_shape(keys: set[str]) -> str:
    """The shape sharing most field names with ``keys`` (required ones count double)."""
    lowered = {k.lower() for k in keys}

    def score(shape: str) -> tuple[int, int]:
        required = sum(2 for f in REQUIRED[shape] if f in lowered)
        known = sum(1 for f in KNOWN.get(shape, ()) if f in lowered)
        return required + known, -len(REQUIRED[shape])

    best = max(REQUIRED, key=score)
    return best if score(best)[0] else "standard"
