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
