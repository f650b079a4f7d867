"""What this computer remembers between sessions (annotator name, theme, session target).

Everything goes through ``app_settings()`` so tests can redirect it: they point QSettings'
INI path at a temporary folder (``QSettings.setPath``) and never read the developer's own.
"""

from __future__ import annotations

from PySide6.QtCore import QSettings

from storage.locations import display_location

ORGANISATION = "DPO Studio"
APPLICATION = "DPO Studio"


def app_settings() -> QSettings:
    """The user-scope settings store, always INI so its location is predictable and redirectable."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION)


def _workspace_key(location: str, name: str) -> str:
    # QSettings treats "/" and "\" as group separators; keep the location as one key segment.
    # A URL's password never reaches the settings file: the key is the location as shown.
    safe = display_location(location).replace("\\", "|").replace("/", "|")
    return f"workspaces/{safe}/{name}"


def remembered_annotator(location: str) -> str | None:
    """The annotator who last labelled this workspace on this computer."""
    settings = app_settings()
    name = settings.value(_workspace_key(location, "annotator"), None)
    return str(name) if name else None


def remember_annotator(location: str, name: str) -> None:
    settings = app_settings()
    settings.setValue(_workspace_key(location, "annotator"), name)
    settings.sync()


def get_value(key: str, default):
    value = app_settings().value(key, default)
    if isinstance(default, bool):
        return value in (True, "true", "1", 1)
    if isinstance(default, int):
        try:
            return int(value)
        except (TypeError, ValueError):
            return default
    return value


def set_value(key: str, value) -> None:
    settings = app_settings()
    settings.setValue(key, value)
    settings.sync()
