"""The labelling guidelines beside the responses: Markdown, one text per workspace, editable.

Stored in the workspace setting ``guidelines`` so every annotator of a team store reads the
same rules.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QPlainTextEdit, QPushButton, QStackedWidget, QWidget

from gui.common.markdown_render import render_markdown
from gui.annotate.response_panel import Card, make_browser
from storage.workspace import Workspace

SETTING_KEY = "guidelines"
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

    saved = Signal(str)

    def __init__(self, workspace: Workspace, parent: QWidget | None = None):
        super().__init__("Guidelines", parent)
        self.workspace = workspace
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
        return str(self.workspace.get_setting(SETTING_KEY, DEFAULT_GUIDELINES))

    def reload(self) -> None:
        render_markdown(self.browser.document(), self.text())

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
        self.workspace.set_setting(SETTING_KEY, text)
        self.reload()
        self.stack.setCurrentWidget(self.browser)
        self.edit_button.setText("Edit")
        self.saved.emit(text)
