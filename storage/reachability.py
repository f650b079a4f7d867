"""Whether a failed database call failed because the server could not be reached.

An unreachable server (refused, reset, timed out, shut down under the client) is a passing
state: the caller keeps its writes and sends them again later. Anything else (a constraint,
a bad value, a locked SQLite file) is the database's answer to that write. Only the
SQLAlchemy and driver exception types are looked at, never the message's wording.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

# SQLSTATE classes of a lost connection: 08 (connection exception) and the shutdowns of 57P
# (admin shutdown, crash shutdown, cannot connect now — a server starting or stopping).
_LOST_CONNECTION_STATES = ("08", "57P01", "57P02", "57P03")


def is_unreachable(exc: BaseException) -> bool:
    """True when ``exc`` says the database server could not be reached (try again later)."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:   # SQLAlchemy saw the driver report a disconnect
        return True
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    original = exc.orig
    if isinstance(original, sqlite3.Error):
        return False   # a local file: "locked" is a busy writer, not a lost server
    state = getattr(original, "sqlstate", None)
    # psycopg reports a failed connect, a reset or a timeout with no SQLSTATE at all.
    return state is None or state.startswith(_LOST_CONNECTION_STATES)
