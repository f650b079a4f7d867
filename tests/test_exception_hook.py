"""An exception no code caught, in the app: one line shown, the trace in a log file, no password."""

from __future__ import annotations

import sys

import gui.app
from gui.app import install_exception_hook

URL = "postgresql://ada:s3cret-pw@127.0.0.1:5432/team"


def test_an_uncaught_error_is_logged_and_shown_in_one_line_without_the_password(qapp, tmp_path, monkeypatch,
                                                                               capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    shown = []
    monkeypatch.setattr(gui.app.QMessageBox, "warning", lambda _parent, title, text: shown.append((title, text)))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)   # restored after the test
    install_exception_hook(URL)
    try:
        raise RuntimeError(f"could not reach {URL}\nsecond line")
    except RuntimeError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)

    [(title, text)] = shown
    assert title == "Something went wrong"
    assert text.startswith("RuntimeError: could not reach") and "second line" not in text
    logs = list((tmp_path / "DPO Studio" / "logs").glob("error-*.log"))
    assert len(logs) == 1 and str(logs[0]) in text
    trace = logs[0].read_text(encoding="utf-8")
    assert "Traceback" in trace and "test_exception_hook.py" in trace
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: RuntimeError:")
    for output in (text, trace, err):
        assert "s3cret-pw" not in output
