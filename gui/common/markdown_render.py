"""Fill a QTextDocument from Markdown, raw text or chat messages, in the theme's colours.

Qt's own Markdown importer does the parsing (``QTextDocument.setMarkdown``: headings, lists,
code fences, tables); this module adds what it leaves plain: a tinted background behind
code, and chat turns with a coloured role label. The diff highlighter (``gui.annotate.word_diff``)
paints on top of whatever was rendered here.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QFontDatabase, QTextBlockFormat, QTextCharFormat, QTextCursor, QTextDocument, QTextFormat

from gui.common import theme

_MONO: QFont | None = None


def mono_font() -> QFont:
    global _MONO
    if _MONO is None:
        _MONO = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    return _MONO


def prepare_document(doc: QTextDocument, margin: float = 14.0) -> None:
    """One-time settings of a document that shows responses (kept across pairs)."""
    doc.setDocumentMargin(margin)
    doc.setUndoRedoEnabled(False)  # read-only views: an undo stack only costs memory per pair


def _style_blocks(doc: QTextDocument) -> None:
    """Tint code (fenced blocks and inline spans), space headings and paragraphs for reading."""
    c = theme.colors()
    code_bg = QColor(c["code_bg"])
    muted = QColor(c["muted"])
    cursor = QTextCursor(doc)
    cursor.beginEditBlock()
    block = doc.begin()
    while block.isValid():
        fmt = block.blockFormat()
        cursor.setPosition(block.position())
        if fmt.hasProperty(QTextFormat.Property.BlockCodeFence):
            fmt.setBackground(code_bg)
            # Wrap long code lines: a side-by-side panel with a horizontal scroll bar is unreadable.
            fmt.setNonBreakableLines(False)
            fmt.setLeftMargin(4)
            fmt.setRightMargin(4)
            prev, nxt = block.previous(), block.next()
            # Padding above the first and below the last line of a fence (margins would be unpainted).
            if not (prev.isValid() and prev.blockFormat().hasProperty(QTextFormat.Property.BlockCodeFence)):
                fmt.setTopMargin(6)
            if not (nxt.isValid() and nxt.blockFormat().hasProperty(QTextFormat.Property.BlockCodeFence)):
                fmt.setBottomMargin(8)
            cursor.setBlockFormat(fmt)
        else:
            if fmt.headingLevel():
                fmt.setTopMargin(12)
                fmt.setBottomMargin(4)
            else:
                fmt.setLineHeight(125, QTextBlockFormat.LineHeightTypes.ProportionalHeight.value)
            if fmt.hasProperty(QTextFormat.Property.BlockQuoteLevel):
                quote = QTextCharFormat()
                quote.setForeground(muted)
                quote.setFontItalic(True)
                cursor.movePosition(QTextCursor.MoveOperation.EndOfBlock, QTextCursor.MoveMode.KeepAnchor)
                cursor.mergeCharFormat(quote)
                cursor.setPosition(block.position())
            cursor.setBlockFormat(fmt)
            it = block.begin()
            while not it.atEnd():
                frag = it.fragment()
                if frag.isValid() and frag.charFormat().fontFixedPitch():
                    cursor.setPosition(frag.position())
                    cursor.setPosition(frag.position() + frag.length(), QTextCursor.MoveMode.KeepAnchor)
                    char = QTextCharFormat()
                    char.setBackground(code_bg)
                    cursor.mergeCharFormat(char)
                it += 1
        block = block.next()
    cursor.endEditBlock()


def render_markdown(doc: QTextDocument, text: str) -> None:
    doc.setMarkdown(text, QTextDocument.MarkdownFeature.MarkdownDialectGitHub)
    _style_blocks(doc)


def render_raw(doc: QTextDocument, text: str) -> None:
    """The text exactly as stored, in a fixed-width font (what will be trained on)."""
    doc.setPlainText(text)
    cursor = QTextCursor(doc)
    cursor.select(QTextCursor.SelectionType.Document)
    char = QTextCharFormat()
    char.setFont(mono_font())
    cursor.mergeCharFormat(char)


def render_text(doc: QTextDocument, text: str, raw: bool) -> None:
    if raw:
        render_raw(doc, text)
    else:
        render_markdown(doc, text)


ROLE_LABELS = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}


def render_chat(doc: QTextDocument, messages: list[dict], raw: bool) -> None:
    """A conversation as turns: a coloured role label, then the message (Markdown or raw)."""
    c = theme.colors()
    role_colours = {"user": c["user"], "assistant": c["assistant"], "system": c["system_role"]}
    doc.clear()
    cursor = QTextCursor(doc)
    for index, message in enumerate(messages):
        role = str(message.get("role", ""))
        content = str(message.get("content", ""))
        label_block = QTextBlockFormat()
        label_block.setTopMargin(0 if index == 0 else 12)
        label_block.setBottomMargin(2)
        label = QTextCharFormat()
        label.setFontWeight(QFont.Weight.Bold)
        label.setFontPointSize(8.5)
        label.setFontCapitalization(QFont.Capitalization.AllUppercase)
        label.setFontLetterSpacing(108)
        label.setForeground(QColor(role_colours.get(role, c["muted"])))
        if index:
            cursor.insertBlock(label_block, label)
        else:
            cursor.setBlockFormat(label_block)
            cursor.setCharFormat(label)
        cursor.insertText(ROLE_LABELS.get(role, role or "message"))
        cursor.insertBlock(QTextBlockFormat(), QTextCharFormat())
        if raw:
            plain = QTextCharFormat()
            plain.setFont(mono_font())
            cursor.insertText(content, plain)
        else:
            cursor.insertMarkdown(content, QTextDocument.MarkdownFeature.MarkdownDialectGitHub)
    if not raw:
        _style_blocks(doc)
