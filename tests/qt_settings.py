"""Keep GUI tests off the developer's own QSettings: every test gets an empty INI store."""

from __future__ import annotations

import pytest


@pytest.fixture
def isolated_settings(tmp_path):
    from PySide6.QtCore import QSettings

    folder = tmp_path / "qsettings"
    folder.mkdir()
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    yield folder
