"""The app on a PostgreSQL workspace opened by a URL holding a password: the window title, the
status bar and this computer's settings file show it masked, and the labelling screen works."""

from __future__ import annotations

import pytest

from gui.main_window import MainWindow
from storage.workspace import Workspace
from tests.annotate_samples import add_sample_pairs
from tests.gui_db import settle
from tests.pg_server import url_for
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)

SECRET = "S3cret-pw-not-shown"

pytestmark = pytest.mark.usefixtures("isolated_settings")


def test_the_window_shows_a_url_workspace_with_its_password_masked(qtbot, fresh_postgres_url, isolated_settings,
                                                                    tmp_path) -> None:
    url = url_for(fresh_postgres_url.rsplit("/", 1)[1], password=SECRET)
    with Workspace.open(url) as ws:
        add_sample_pairs(ws, 3)
        window = MainWindow(ws, "ann")
        qtbot.addWidget(window)
        with qtbot.waitActive(window):
            window.show()
        settle(window.db)
        shown = "postgresql://postgres:***@"
        assert shown in window.windowTitle() and shown in window.workspace_label.text()
        assert SECRET not in window.windowTitle() + window.workspace_label.text()
        window.grab().save(str(tmp_path / "main-window-postgres.png"))
        window.close()
        settle(window.db)
    # What this computer remembers per workspace (the annotator's name) is keyed by the masked URL.
    from gui.common import settings as app_settings

    app_settings.remember_annotator(url, "ann")
    assert app_settings.remembered_annotator(url) == "ann"
    stored = "".join(path.read_text(errors="replace") for path in isolated_settings.rglob("*") if path.is_file())
    assert "ann" in stored and SECRET not in stored
