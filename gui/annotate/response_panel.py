"""The cards of the annotation screen: the prompt on top and one response per side.

Each card keeps one QTextBrowser for its whole life; showing the next pair only swaps the
document's text (rebuilding widgets per pair would cost more than the database does).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QTextBrowser, QVBoxLayout, QWidget

from core.operations.wording import plural
from gui.common.markdown_render import prepare_document, render_chat, render_text


def keycap(text: str) -> QLabel:
    """A small key label ("1", "←") as drawn on buttons and card headers."""
    label = QLabel(text)
    label.setObjectName("keycap")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    return label


def reset_view(browser: QTextBrowser) -> None:
    """Back to the top of a freshly rendered text: the widget's own cursor otherwise stays
    where the render's edits left it (the end) and Qt scrolls there on the next resize."""
    browser.setTextCursor(QTextCursor(browser.document()))
    browser.verticalScrollBar().setValue(0)


def make_browser(object_name: str = "") -> QTextBrowser:
    browser = QTextBrowser()
    if object_name:
        browser.setObjectName(object_name)
    browser.setOpenExternalLinks(True)
    browser.setFrameShape(QFrame.Shape.NoFrame)
    # Keys belong to the screen (1, 2, arrows); the text stays selectable with the mouse.
    browser.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    browser.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                    | Qt.TextInteractionFlag.LinksAccessibleByMouse)
    prepare_document(browser.document())
    return browser


class Card(QFrame):
    """A rounded panel with a header row (title, chips, keys) above its content."""

    def __init__(self, title: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("card")
        self.setFrameShape(QFrame.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 10, 2, 2)
        layout.setSpacing(2)
        self.header = QHBoxLayout()
        self.header.setContentsMargins(14, 0, 12, 0)
        self.header.setSpacing(8)
        self.title = QLabel(title.upper())
        self.title.setObjectName("cardTitle")
        self.header.addWidget(self.title)
        layout.addLayout(self.header)
        self.body = layout


class ResponsePanel(Card):
    """One response: "LEFT · 240 words" with its keys, and the text below."""

    def __init__(self, side: str, keys: tuple[str, ...], parent: QWidget | None = None):
        super().__init__(f"{side} response", parent)
        self.side = side
        self.meta = QLabel("")
        self.meta.setObjectName("cardMeta")
        self.header.addWidget(self.meta)
        self.header.addStretch(1)
        self.keycaps = [keycap(k) for k in keys]
        for cap in self.keycaps:
            self.header.addWidget(cap)
        self.browser = make_browser(f"{side.lower()}Response")
        self.body.addWidget(self.browser, 1)
        self._text = ""

    @property
    def text(self) -> str:
        """The response as stored (what the annotator's verdict is about)."""
        return self._text

    def show_text(self, text: str, raw: bool) -> None:
        self._text = text
        words = len(text.split())
        self.meta.setText(f"·  {words:,} word{'s' if words != 1 else ''}")
        render_text(self.browser.document(), text, raw)
        reset_view(self.browser)


class PromptPanel(Card):
    """The prompt: plain text, or a conversation rendered as turns."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Prompt", parent)
        self.chips: dict[str, QLabel] = {}
        self.header.addStretch(1)
        for name in ("turns", "source", "split", "pair"):
            chip = QLabel("")
            chip.setObjectName("chip")
            chip.setVisible(False)
            self.header.addWidget(chip)
            self.chips[name] = chip
        self.browser = make_browser("promptView")
        self.body.addWidget(self.browser, 1)
        self._text = ""

    @property
    def text(self) -> str:
        return self._text

    def set_chip(self, name: str, text: str) -> None:
        chip = self.chips[name]
        chip.setText(text)
        chip.setVisible(bool(text))

    def show_prompt(self, text: str, messages: list[dict] | None, raw: bool) -> None:
        self._text = text
        if messages:
            render_chat(self.browser.document(), messages, raw)
            self.set_chip("turns", plural(len(messages), "turn"))
        else:
            render_text(self.browser.document(), text, raw)
            self.set_chip("turns", "")
        reset_view(self.browser)
