"""Paint the word-level difference between two shown responses.

The diff itself is ``core.operations.text_diff.word_diff`` (pure, tested without Qt). It runs on each
document's *rendered* text (``toRawText``), whose character offsets are the document's
cursor positions, so the highlight lands on the right words whether the response is shown
as Markdown or raw.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor, QTextDocument

from core.operations.text_diff import Span, word_diff
from gui.common import theme


def _paint(doc: QTextDocument, spans: list[Span], colour: QColor) -> None:
    fmt = QTextCharFormat()
    fmt.setBackground(colour)
    cursor = QTextCursor(doc)
    last = doc.characterCount() - 1
    for start, end in spans:
        cursor.setPosition(min(start, last))
        cursor.setPosition(min(end, last), QTextCursor.MoveMode.KeepAnchor)
        cursor.mergeCharFormat(fmt)


def highlight_differences(left: QTextDocument, right: QTextDocument) -> int:
    """Highlight words found on only one side; returns how many spans were painted."""
    diff = word_diff(left.toRawText(), right.toRawText())
    colour = QColor(theme.colors()["diff"])
    _paint(left, diff.removed, colour)
    _paint(right, diff.inserted, colour)
    return len(diff.removed) + len(diff.inserted)
