"""Connecting to a team server, and how the connection stands.

``ServerDetails`` is what the connect dialog asks for (host, port, database, user and — never
stored — a password); ``url()`` is the workspace location to open, ``remembered()`` what this
computer may keep of it (no password). ``ConnectionState`` is what the screens say about the
connection: connected, or offline with verdicts waiting in the outbox file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote

from core.operations.wording import plural
from storage.locations import display_location
from storage.workspace import Workspace

DEFAULT_PORT = 5432


class ServerDetailsError(ValueError):
    """A connect form that cannot name a server (the field is named)."""


@dataclass(frozen=True)
class ServerDetails:
    host: str
    database: str
    user: str
    port: int = DEFAULT_PORT
    password: str = ""     # typed in the dialog; in memory only

    def problems(self) -> list[str]:
        found = []
        if not self.host.strip():
            found.append("Host: give the server's name or address (e.g. labelling.example.org)")
        if not self.database.strip():
            found.append("Database: give the database's name")
        if not self.user.strip():
            found.append("User: give your database user name")
        if not 1 <= int(self.port) <= 65535:
            found.append(f"Port: {self.port} is not a port number (1–65535; PostgreSQL's is {DEFAULT_PORT})")
        return found

    def url(self) -> str:
        """The workspace location: ``postgresql://user[:password]@host:port/database``. Holds the
        password when one was typed: show it only through ``shown()``."""
        problems = self.problems()
        if problems:
            raise ServerDetailsError("; ".join(problems))
        user = quote(self.user.strip(), safe="")
        secret = f":{quote(self.password, safe='')}" if self.password else ""
        host = self.host.strip()
        if ":" in host and not host.startswith("["):   # an IPv6 address
            host = f"[{host}]"
        return f"postgresql://{user}{secret}@{host}:{int(self.port)}/{quote(self.database.strip(), safe='')}"

    def shown(self) -> str:
        return display_location(self.url())

    def remembered(self) -> dict[str, str | int]:
        """What "remember" keeps on this computer: everything but the password."""
        return {"host": self.host.strip(), "port": int(self.port), "database": self.database.strip(),
                "user": self.user.strip()}


@dataclass(frozen=True)
class ConnectionState:
    """How the workspace's database answers, as the status bar, the Annotate header and the Team
    tab say it."""

    online: bool = True
    waiting: int = 0          # verdicts (and undos) kept on this computer, not yet stored
    error: str = ""           # the last sign of the server being away (password masked)
    kept_in: str = ""         # the outbox file holding them ("" when they are in memory only)

    def describe(self) -> str:
        if not self.online:
            return f"offline — {plural(self.waiting, 'verdict')} waiting"
        if self.waiting:
            return f"connected — sending {plural(self.waiting, 'verdict')}"
        return "connected"


def open_server(details: ServerDetails, report: Callable[[object], None] | None = None) -> Workspace:
    """Open (creating the schema on first use) the team store ``details`` name; ``WorkspaceError``
    (the password masked) when it cannot be used, ``ServerDetailsError`` for a form that names
    no server. Database work: call it off the UI thread (connecting may wait for a timeout)."""
    return Workspace.open(details.url())
