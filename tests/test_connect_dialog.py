"""File ▸ Connect to team server…: host, port, database, user and a password that is never echoed,
never stored; "remember" keeps the rest in this computer's settings; connecting opens the team
store off the UI thread in a new window whose title and status bar mask the password; a refusal
is one line, masked. The welcome panel's "Connect to a team server" opens the same dialog."""

from __future__ import annotations

import socket

import pytest
from PySide6.QtWidgets import QLineEdit
from sqlalchemy.engine import make_url

from gui import main_window as main_window_module
from gui.data.connect_dialog import ConnectDialog
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)
from tests.test_main_window import open_window

SECRET = "Pw-typed-1n-the-dialog"
pytestmark = pytest.mark.usefixtures("isolated_settings")


def settings_text(folder) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def fill(dialog: ConnectDialog, url: str, password: str = SECRET) -> None:
    parsed = make_url(url)
    dialog.host.setText(parsed.host)
    dialog.port.setValue(parsed.port)
    dialog.database.setText(parsed.database)
    dialog.user.setText(parsed.username)
    dialog.password.setText(password)


def test_the_form_hides_the_password_and_names_what_is_missing(qtbot, tmp_path):
    dialog = ConnectDialog()
    qtbot.addWidget(dialog)
    assert dialog.password.echoMode() == QLineEdit.EchoMode.Password
    assert dialog.port.value() == 5432 and not dialog.remember.isChecked()
    dialog.database.setText("labels")
    dialog.start_connecting()
    assert "Host:" in dialog.status.text() and not dialog.running
    dialog.host.setText("labelling.example.org")
    dialog.user.setText("ada")
    dialog.password.setText(SECRET)
    dialog.show()
    dialog.grab().save(str(tmp_path / "connect-dialog.png"))


def test_connecting_opens_the_team_store_in_a_new_window_and_remembers_no_password(
        qtbot, workspace, fresh_postgres_url, isolated_settings, tmp_path):
    window = open_window(qtbot, workspace, "ada")
    dialog = window.open_connect_dialog()
    fill(dialog, fresh_postgres_url)        # the test server trusts 127.0.0.1: any password passes
    dialog.remember.setChecked(True)
    dialog.connect_button.click()
    assert dialog.running                    # off the UI thread
    qtbot.waitUntil(lambda: dialog.workspace is not None, timeout=20_000)
    opened = main_window_module._windows[-1]
    qtbot.addWidget(opened)
    assert opened is not window and opened.workspace is dialog.workspace and not window.isVisible()
    shown = opened.windowTitle() + opened.workspace_label.text() + opened.connection_label.text()
    assert ":***@" in opened.windowTitle() and SECRET not in shown
    assert opened.connection_label.isVisible() and opened.connection_label.text() == "connected"
    assert dialog.password.text() == ""
    stored = settings_text(isolated_settings)
    assert make_url(fresh_postgres_url).host in stored and SECRET not in stored
    opened.close()
    qtbot.waitUntil(lambda: opened not in main_window_module._windows, timeout=20_000)


def test_a_refused_connection_is_one_masked_line(qtbot):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dialog = ConnectDialog()
    qtbot.addWidget(dialog)
    fill(dialog, f"postgresql://ada@127.0.0.1:{port}/labels")
    dialog.start_connecting()
    qtbot.waitUntil(lambda: not dialog.running, timeout=20_000)
    text = dialog.status.text()
    assert text.startswith("Could not connect:") and "\n" not in text and SECRET not in text
    assert "ada:***@127.0.0.1" in text and dialog.connect_button.isEnabled()


def test_the_welcome_panel_opens_the_connect_dialog(qtbot, workspace):
    window = open_window(qtbot, workspace, "ada")   # an empty workspace: the welcome panel
    view = window.annotate
    assert view.content.currentWidget() is view.welcome
    view.welcome.team_option.button.click()
    dialogs = window.findChildren(ConnectDialog)
    assert len(dialogs) == 1 and dialogs[0].isVisible()
    dialogs[0].reject()
