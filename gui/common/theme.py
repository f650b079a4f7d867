"""Light and dark looks: a Fusion palette plus one stylesheet filled from a colour table.

"system" follows the desktop's colour scheme where Qt can read it (light otherwise, e.g.
offscreen). The stylesheet lives in ``resources/style/app.qss`` with ``@name`` tokens that
are replaced by the colours of the active theme, so both themes share one set of rules.
Widgets that paint themselves (word-diff highlight, chat turns) ask ``colors()``.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QLabel

STYLE_DIR = Path(__file__).resolve().parents[2] / "resources" / "style"
THEMES = ("system", "light", "dark")

LIGHT = {
    "window": "#f4f5f7", "card": "#ffffff", "base": "#ffffff", "alt": "#f7f8fa",
    "text": "#1d2129", "muted": "#6b7280", "border": "#dfe2e8", "border_strong": "#c5cad3",
    "accent": "#3b5bdb", "accent_hover": "#324fc4", "accent_text": "#ffffff", "accent_soft": "#e7ecfd", "accent_soft_hover": "#d5defb", "bad_soft_hover": "#fadada",
    "good": "#2b8a3e", "good_soft": "#e6f4ea", "bad": "#c92a2a", "bad_soft": "#fdecec",
    "neutral_soft": "#eef0f3", "code_bg": "#f3f4f6", "diff": "#ffe58f",
    "user": "#3b5bdb", "assistant": "#2b8a3e", "system_role": "#7c3aed", "keycap": "#eceef2",
    "keycap_text": "#3a404c", "warn": "#d9480f", "warn_soft": "#fff4e6",
}
DARK = {
    "window": "#16181d", "card": "#1f2229", "base": "#1f2229", "alt": "#252932",
    "text": "#e4e6eb", "muted": "#9aa1ad", "border": "#2e323b", "border_strong": "#3c414c",
    "accent": "#6d8cff", "accent_hover": "#809bff", "accent_text": "#0f1117", "accent_soft": "#262e4a", "accent_soft_hover": "#2f3960", "bad_soft_hover": "#4a2a2d",
    "good": "#69db7c", "good_soft": "#1e3326", "bad": "#ff8787", "bad_soft": "#3a2224",
    "neutral_soft": "#2a2e37", "code_bg": "#2a2e37", "diff": "#6b5a17",
    "user": "#8ca4ff", "assistant": "#69db7c", "system_role": "#c4a5ff", "keycap": "#2f343e",
    "keycap_text": "#cfd3da", "warn": "#ffa94d", "warn_soft": "#3a2a1a",
}

_active: dict[str, str] = dict(LIGHT)
_active_name = "light"


def colors() -> dict[str, str]:
    """The colour table of the theme in use."""
    return _active


def is_dark() -> bool:
    return _active_name == "dark"


def _system_is_dark() -> bool:
    hints = QGuiApplication.styleHints()
    return hints is not None and hints.colorScheme() == Qt.ColorScheme.Dark


def _palette(c: dict[str, str]) -> QPalette:
    p = QPalette()
    role = QPalette.ColorRole
    for r, key in ((role.Window, "window"), (role.WindowText, "text"), (role.Base, "base"),
                   (role.AlternateBase, "alt"), (role.Text, "text"), (role.Button, "card"),
                   (role.ButtonText, "text"), (role.ToolTipBase, "card"), (role.ToolTipText, "text"),
                   (role.Highlight, "accent"), (role.HighlightedText, "accent_text"),
                   (role.PlaceholderText, "muted"), (role.Link, "accent"), (role.Mid, "border"),
                   (role.Midlight, "alt"), (role.Dark, "border_strong"), (role.Light, "card")):
        p.setColor(r, QColor(c[key]))
    for r in (role.WindowText, role.Text, role.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, r, QColor(c["muted"]))
    return p


def stylesheet(c: dict[str, str]) -> str:
    """The app stylesheet with every ``@token`` replaced by its colour (longest names first)."""
    qss = (STYLE_DIR / "app.qss").read_text(encoding="utf-8")
    qss = qss.replace("@style_dir", STYLE_DIR.as_posix()).replace("@look", "dark" if c == DARK else "light")
    for key in sorted(c, key=len, reverse=True):
        qss = qss.replace(f"@{key}", c[key])
    return qss


def apply_theme(name: str, app: QApplication | None = None) -> str:
    """Switch the whole app to ``name`` ("system", "light" or "dark"); returns the look applied."""
    global _active, _active_name
    if name not in THEMES:
        raise ValueError(f"theme must be one of {', '.join(THEMES)}, got {name!r}")
    app = app or QApplication.instance()
    look = ("dark" if _system_is_dark() else "light") if name == "system" else name
    _active = dict(DARK if look == "dark" else LIGHT)
    _active_name = look
    app.setStyle("Fusion")
    app.setPalette(_palette(_active))
    app.setStyleSheet(stylesheet(_active))
    return look


def named_label(text: str, name: str, wrap: bool = False) -> QLabel:
    """A label the stylesheet dresses by its object name ("heading", "subheading", "cardTitle", "muted" …)."""
    label = QLabel(text)
    label.setObjectName(name)
    label.setWordWrap(wrap)
    return label
