"""The banner over a read-only workspace's window: why it is read-only and what still works.

A workspace whose ``studio.db`` or folder cannot be written opens read-only
(``Workspace.read_only``); its writes raise ``WorkspaceReadOnly``. The banner says so once, at
the top of the window, instead of letting each refused write be the first news of it.
"""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

BANNER_NAME = "readOnlyBanner"


def read_only_text(reason: str) -> str:
    return (f"Read-only: {reason}. Browsing, stats and export work; labelling, import and training "
            "need a workspace you can write (copy the folder, or fix its permissions, and open it again).")


def with_read_only_banner(content: QWidget, workspace) -> QWidget:
    """``content`` as it is for a writable workspace; else ``content`` under the banner."""
    if not getattr(workspace, "read_only", False):
        return content
    page = QWidget()
    layout = QVBoxLayout(page)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(0)
    banner = QLabel(read_only_text(workspace.read_only_reason))
    banner.setObjectName(BANNER_NAME)
    banner.setWordWrap(True)
    banner.setStyleSheet("QLabel#readOnlyBanner { background: #fff4ce; color: #3b2f00; padding: 8px 12px;"
                         " border-bottom: 1px solid #e0c35c; }")
    layout.addWidget(banner)
    layout.addWidget(content, 1)
    return page
