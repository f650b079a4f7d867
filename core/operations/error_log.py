"""Where an unexpected error goes: its full trace into ``<data folder>/logs/``, passwords
scrubbed, so the user is shown one line and the path instead of a traceback. Shared by the
command line (``main.run_command``) and the app (``gui.app``'s exception hook)."""

from __future__ import annotations

import sys
import time
import traceback


def scrubbed(text: str, location: str) -> str:
    """``text`` with the password of the workspace ``location`` (a database URL) masked."""
    if not location:
        return text
    from storage.locations import scrub

    return scrub(text, location)


def write_error_log(exc: BaseException, location: str = "") -> str | None:
    """The traceback of ``exc`` in a new log file; its path, or None when none could be written."""
    try:
        from storage.locations import user_data_dir

        folder = user_data_dir() / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"error-{time.strftime('%Y%m%d-%H%M%S')}.log"
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        path.write_text(scrubbed(" ".join(sys.argv) + "\n" + text, location), encoding="utf-8")
        return str(path)
    except Exception:  # noqa: BLE001 - no log is better than a second traceback
        return None


def one_line(exc: BaseException, location: str = "") -> str:
    """The first line of the error's message (or its type's name), password masked; a database
    error's driver message without the SQL and its parameters (``storage.errors.error_text``)."""
    from storage.errors import error_text

    return scrubbed(error_text(exc), location)


def failure_text(exc: BaseException, location: str = "") -> str:
    """The reason a run failed, for ``RunFinished``: ``one_line``. An error of the database layer
    (``exc`` or its cause, as in ``TrainingFailed``) is the driver's message, its full trace
    written to the error log, named after it."""
    from storage.errors import is_database_error

    database = next((e for e in (exc, exc.__cause__) if e is not None and is_database_error(e)), None)
    if database is None:
        return one_line(exc, location)
    text = one_line(database, location)
    log = write_error_log(exc, location)
    return text if log is None else f"{text} (details in {log})"
