"""Why a workspace cannot be opened or written: the errors every face (CLI, GUI) shows in one line.

``WorkspaceError`` is the base: a command catches it and exits 2, the GUI shows it in a
dialog. Its subclasses say what kind of refusal it is, so that code never reads the wording:
``WorkspaceDamaged`` (a ``studio.db`` that is not a sound SQLite database — nothing was written
to it), ``WorkspaceReadOnly`` (a write asked of a workspace opened read-only — refused before
anything was touched) and ``storage.migrations.SchemaTooNewError`` (written by a newer build).
"""

from __future__ import annotations


class WorkspaceError(RuntimeError):
    pass


class WorkspaceDamaged(WorkspaceError):
    """``studio.db`` is empty, truncated, not a SQLite file or fails SQLite's own checks."""


class WorkspaceReadOnly(WorkspaceError):
    """A write (label, import, train, settings) on a workspace whose file or folder is read-only."""


def is_database_error(exc: BaseException) -> bool:
    """``exc`` is an error of the database layer (SQLAlchemy's, the driver's wrapped in it)."""
    from sqlalchemy.exc import SQLAlchemyError

    return isinstance(exc, SQLAlchemyError)


def error_text(exc: BaseException) -> str:
    """One clear line for ``exc``. A database error says what the driver said ("no such table:
    tokenized_examples"), without the SQL statement and its hundreds of parameters that
    SQLAlchemy's own text carries; any other error its message's first line, else its type's name."""
    from sqlalchemy.exc import StatementError

    if isinstance(exc, StatementError):
        driver = exc.orig if exc.orig is not None else None
        text = str(driver).strip() if driver is not None else ""
        if not text:   # no driver message: SQLAlchemy's own, cut before "[SQL: …]"
            text = str(exc).split("[SQL:")[0].strip()
        return f"database error: {text.splitlines()[0] if text else type(exc).__name__}"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
