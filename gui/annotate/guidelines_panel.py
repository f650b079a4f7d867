"""The labelling guidelines beside the responses: Markdown, one text per workspace, editable.

Stored in the workspace setting ``guidelines`` (``storage.settings``) so every annotator of a
team store reads the same rules. Read and saved on the database thread; a save reports
``Changes(settings=True)`` through ``saved``.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QPlainTextEdit, QPushButton, QStackedWidget, QWidget

from core.operations.changes import Changes
from gui.annotate.response_panel import Card, make_browser
from gui.common.db_worker import DatabaseWorker
from gui.common.markdown_render import render_markdown
from storage.settings import read_settings, update_settings
from storage.workspace import Workspace

DEFAULT_GUIDELINES = """\
### What makes a response better

1. **Correct.** Facts, code and numbers are right. A confident wrong answer is worse than a careful partial one.
2. **Helpful.** It answers the question that was asked, completely, without padding.
3. **Safe and honest.** It declines harmful requests and says when it is unsure.
4. **Clear.** Well organised; code is runnable and formatted.

### When to use the other keys

- **Tie** — both are good and you cannot prefer one.
- **Both bad** — neither should be learned from.
- **Skip** — you cannot judge it (topic you don't know, broken text).

Don't let length decide: a longer answer is not better by itself.
"""


class GuidelinesPanel(Card):
    """Shows the workspace's guidelines; Edit switches to a text editor, Save stores them."""

    saved = Signal(object)   # Changes, once stored

    def __init__(self, workspace: Workspace, db: DatabaseWorker, parent: QWidget | None = None):
        super().__init__("Guidelines", parent)
        self.workspace = workspace
        self.db = db
        self._text = DEFAULT_GUIDELINES
        self.header.addStretch(1)
        self.edit_button = QPushButton("Edit")
        self.edit_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.edit_button.clicked.connect(self._toggle_edit)
        self.header.addWidget(self.edit_button)
        self.stack = QStackedWidget()
        self.browser = make_browser("guidelinesView")
        self.editor = QPlainTextEdit()
        self.editor.setObjectName("guidelinesEditor")
        self.stack.addWidget(self.browser)
        self.stack.addWidget(self.editor)
        self.body.addWidget(self.stack, 1)
        self.reload()

    def text(self) -> str:
        """The guidelines as last read or saved."""
        return self._text

    def reload(self) -> None:
        """Read the guidelines again (database thread), then show them."""
        self.db.submit(read_settings, self.workspace, on_done=lambda s: self._show(s.guidelines))

    def rerender(self) -> None:
        """Draw the text again (the theme changed); no database."""
        render_markdown(self.browser.document(), self._text)

    def _show(self, text: str | None) -> None:
        self._text = text if text is not None else DEFAULT_GUIDELINES
        self.rerender()

    @property
    def editing(self) -> bool:
        return self.stack.currentWidget() is self.editor

    def _toggle_edit(self) -> None:
        if self.editing:
            self.save(self.editor.toPlainText())
        else:
            self.editor.setPlainText(self.text())
            self.stack.setCurrentWidget(self.editor)
            self.edit_button.setText("Save")
            self.editor.setFocus()

    def save(self, text: str) -> None:
        """Store ``text`` (database thread); the panel shows it at once and reports when stored."""
        self._show(text)
        self.stack.setCurrentWidget(self.browser)
        self.edit_button.setText("Edit")
        self.db.submit(update_settings, self.workspace, guidelines=text,
                       on_done=lambda _s: self.saved.emit(Changes(settings=True)))
