"""How the app and the CLI write a few quantities in words (one spelling everywhere)."""

from __future__ import annotations


def format_duration(seconds: float | None, with_seconds: bool = False) -> str:
    """"1 h 05 min", "12 min" (or "12 min 05 s" ``with_seconds``), "40 s"; "—" when unknown.

    Labelling pace reads in whole minutes; a training run's time left, where the seconds
    still move, is written ``with_seconds``.
    """
    if seconds is None:
        return "—"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s" if with_seconds else f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def plural(count: int, noun: str, plural_form: str | None = None, grouped: bool = True) -> str:
    """``count`` and ``noun``, the noun plural unless the count is exactly one: "1 turn",
    "2 turns", "1,200 pairs".

    ``plural_form`` for nouns that do not just take an "s" ("query" -> "queries"); ``grouped``
    writes thousands with commas (the CLI's plain numbers pass ``grouped=False``).
    """
    word = noun if count == 1 else (plural_form or f"{noun}s")
    number = f"{count:,}" if grouped else str(count)
    return f"{number} {word}"
