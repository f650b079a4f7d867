"""A rule-based style scorer for the demo domain: helpful, curt, reckless — or other.

It recognises the phrases the corpus generator uses for each style (the three phrase sets
are disjoint). A reply counts as a style only when it is clean:

- it finished (the model emitted its end-of-turn token before the length limit),
- no sentence repeats (the generator never repeats one; loops are a sign of drift),
- it carries phrases of exactly one style, and
- a helpful reply has at least two steps ("First, ... Next, ...").

Anything else — mixed styles, junk, an unfinished ramble — is ``other``. So a rise in the
helpful share is a rise in clean, helpful answers, not in text that merely mentions them.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from core.demo.corpus_words import (
    CURT_PHRASES,
    CURT_TOPIC_TAILS,
    HELPFUL_CLOSERS,
    HELPFUL_CONNECTORS,
    HELPFUL_OPENERS,
    RECKLESS_CLOSERS,
    RECKLESS_OPENERS,
    TOPICS,
)

LABELS: tuple[str, ...] = ("helpful", "curt", "reckless", "other")
MIN_HELPFUL_STEPS = 2


@dataclass(frozen=True)
class StyleScore:
    label: str                    # one of LABELS
    hits: dict[str, int]          # style -> number of that style's phrases found
    steps: int                    # helpful step connectors found
    reason: str                   # why "other", else ""


def _fixed_part(template: str) -> str:
    """The literal part of a phrase around a ``{placeholder}``, lower-cased, without end punctuation."""
    pieces = [p.strip(" .,:?!") for p in re.split(r"\{\w+\}", template.lower())]
    return max(pieces, key=len)


def _pattern(phrases) -> re.Pattern:
    cleaned = sorted({p for p in phrases if p}, key=len, reverse=True)
    alternatives = "|".join(re.escape(p) for p in cleaned)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


@lru_cache(maxsize=1)
def _patterns() -> tuple[dict[str, re.Pattern], re.Pattern]:
    helpful = [_fixed_part(p) for p in HELPFUL_OPENERS + HELPFUL_CLOSERS]
    helpful += [tip.lower() for topic in TOPICS for tip in topic.tips]
    connectors = [c.lower() for triple in HELPFUL_CONNECTORS for c in triple]
    curt = [_fixed_part(p) for p in CURT_PHRASES + CURT_TOPIC_TAILS]
    reckless = [_fixed_part(p) for p in RECKLESS_OPENERS + RECKLESS_CLOSERS]
    reckless += [advice.lower() for topic in TOPICS for advice in topic.reckless]
    by_style = {"helpful": _pattern(helpful + connectors), "curt": _pattern(curt),
                "reckless": _pattern(reckless)}
    return by_style, _pattern(connectors)


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]


def score_style(text: str, finished: bool = True) -> StyleScore:
    """Classify one assistant reply. ``finished``: False when generation hit its length limit."""
    by_style, connectors = _patterns()
    lowered = " ".join(text.lower().split())
    hits = {style: len(pattern.findall(lowered)) for style, pattern in by_style.items()}
    steps = len(connectors.findall(lowered))
    present = [style for style, n in hits.items() if n]

    def other(reason: str) -> StyleScore:
        return StyleScore("other", hits, steps, reason)

    if not finished:
        return other("unfinished")
    if not lowered:
        return other("empty")
    repeated = [s for s, n in Counter(_sentences(lowered)).items() if n > 1]
    if repeated:
        return other(f"repeats {repeated[0]!r}")
    if not present:
        return other("no style recognised")
    if len(present) > 1:
        return other("mixes " + " and ".join(present))
    label = present[0]
    if label == "helpful" and steps < MIN_HELPFUL_STEPS:
        return other(f"helpful with {steps} step(s)")
    return StyleScore(label, hits, steps, "")


def classify(text: str, finished: bool = True) -> str:
    return score_style(text, finished).label


def style_shares(labels) -> dict[str, float]:
    """Fraction of each label in ``labels`` (every label of LABELS present, 0.0 if unseen)."""
    labels = list(labels)
    counts = Counter(labels)
    total = max(len(labels), 1)
    return {label: counts[label] / total for label in LABELS}
