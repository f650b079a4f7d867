"""Word-level difference between two texts, as character spans to highlight.

The annotation screen can highlight what differs between the left and the right response.
The diff runs on word tokens (a word and the punctuation glued to it), so a changed word is
highlighted whole and whitespace changes are not noise. The result is character spans into
each input text, so the caller can paint them on whatever shows the text (a rendered
Markdown document's plain text, or the raw text).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

# A token is a run of non-space characters; spans keep where it sits in the original text.
_TOKEN = re.compile(r"\S+")

Span = tuple[int, int]  # [start, end) character offsets


@dataclass(frozen=True)
class WordDiff:
    """Spans of words present only on one side.

    ``removed`` are spans in the left text whose words the right text lacks (or replaced);
    ``inserted`` are spans in the right text whose words the left text lacks.
    """

    removed: list[Span] = field(default_factory=list)
    inserted: list[Span] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.removed and not self.inserted


def tokenize(text: str) -> list[tuple[str, Span]]:
    """Word tokens of ``text`` with their character spans."""
    return [(m.group(), m.span()) for m in _TOKEN.finditer(text)]


def _merge(spans: list[Span], text: str) -> list[Span]:
    """Join neighbouring spans separated only by whitespace, so a changed phrase paints as one block."""
    merged: list[Span] = []
    for start, end in spans:
        if merged and text[merged[-1][1]:start].isspace():
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def word_diff(left: str, right: str, max_tokens: int = 20_000) -> WordDiff:
    """Which words of ``left`` and ``right`` differ.

    Texts longer than ``max_tokens`` words on either side are not diffed (an empty result):
    the quadratic worst case of the matcher would freeze the screen for a result nobody reads.
    """
    left_tokens, right_tokens = tokenize(left), tokenize(right)
    if len(left_tokens) > max_tokens or len(right_tokens) > max_tokens:
        return WordDiff()
    # autojunk off: on long answers it would treat common words ("the") as junk and report
    # whole paragraphs as changed.
    matcher = difflib.SequenceMatcher(None, [t for t, _ in left_tokens], [t for t, _ in right_tokens],
                                      autojunk=False)
    removed: list[Span] = []
    inserted: list[Span] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        removed.extend(span for _, span in left_tokens[i1:i2])
        inserted.extend(span for _, span in right_tokens[j1:j2])
    return WordDiff(removed=_merge(removed, left), inserted=_merge(inserted, right))
