"""Where a workspace is: a folder, or a PostgreSQL database URL — and how to show it.

A URL is what the user typed (``postgresql://user@host/db``; ``postgres://`` too): it is
normalised to SQLAlchemy's psycopg dialect before use, and shown only through
``display_location``, which masks a password given in it (``user:***@``, ``?password=***``).
The password itself is never stored: it lives in the URL the user typed (in memory), in
``PGPASSWORD`` or in ``~/.pgpass`` (libpq reads both by itself).

A URL workspace has no folder, so its run artifacts (checkpoints, adapters) and exports go to
a folder on this computer: ``DPO_STUDIO_RUNS_DIR`` (or ``--runs-dir``) when set, otherwise
``<data folder>/DPO Studio/servers/<host>-<port>/<database>/runs``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

#: Names the folder for a URL workspace's run artifacts (overridden by ``--runs-dir``).
RUNS_DIR_ENV = "DPO_STUDIO_RUNS_DIR"
POSTGRES_DRIVER = "postgresql+psycopg"
MASK = "***"
_POSTGRES_SCHEMES = {"postgresql", "postgres", "postgresql+psycopg"}


class LocationError(ValueError):
    """A location that is neither a folder nor a database URL this build can use."""


def is_url(location: str | os.PathLike) -> bool:
    return "://" in os.fspath(location)


def user_data_dir() -> Path:
    """The user's data folder for DPO Studio (XDG / AppData / Application Support)."""
    if sys.platform.startswith("win"):
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "DPO Studio"


def _parse(location: str) -> URL:
    try:
        return make_url(location)
    except ArgumentError:
        # Said without the text: a malformed URL may still hold a password.
        raise LocationError("not a valid database URL (expected postgresql://user@host[:port]/database)") from None


def database_url(location: str) -> URL:
    """The SQLAlchemy URL for a workspace location that is a URL (psycopg for PostgreSQL)."""
    url = _parse(location)
    scheme = url.drivername
    if scheme in _POSTGRES_SCHEMES:
        return url.set(drivername=POSTGRES_DRIVER)
    if scheme.startswith("postgresql+"):
        raise LocationError(f"the PostgreSQL driver {scheme.split('+', 1)[1]!r} is not supported; "
                            "write the URL as postgresql://user@host/database")
    if scheme.startswith("sqlite"):
        raise LocationError("a SQLite workspace is opened by its folder, not by a sqlite:// URL")
    raise LocationError(f"{scheme}:// is not a database this app can use; a team store is postgresql://…")


def _parsed_url(location: str | os.PathLike) -> URL | None:
    """The location as a URL; None for a folder or a URL too malformed to parse."""
    text = os.fspath(location)
    if not is_url(text):
        return None
    try:
        return make_url(text)
    except ArgumentError:
        return None


def _password_keys(url: URL) -> list[str]:
    return [key for key in url.query if key.lower() == "password"]


def display_location(location: str | os.PathLike) -> str:
    """The location as it may be shown, printed or logged: a URL's password masked."""
    text = os.fspath(location)
    url = _parsed_url(text)
    if url is None:
        # A folder as it is; a URL that cannot be parsed without its whole user part.
        return re.sub(r"://[^/?#]*@", f"://{MASK}@", text) if is_url(text) else text
    placeholder = "MASKEDPASSWORD"  # URL-safe, so the mask is not %-escaped
    if _password_keys(url):
        url = url.update_query_dict({key: placeholder for key in _password_keys(url)})
    return url.render_as_string(hide_password=True).replace(placeholder, MASK)


def scrub(message: str, location: str | os.PathLike) -> str:
    """``message`` with the location's password (if any) replaced by the mask, wherever it occurs."""
    url = _parsed_url(location)
    if url is None:
        return message
    secrets = ([url.password] if url.password else []) + [url.query[key] for key in _password_keys(url)]
    for secret in secrets:
        if isinstance(secret, str) and secret:
            message = message.replace(secret, MASK)
    return message


def server_folder(location: str) -> Path:
    """This computer's folder for a URL workspace: ``servers/<host>-<port>/<database>``."""
    url = _parse(location)
    host = url.host or str(url.query.get("host") or "local-socket")
    port = url.port or 5432
    parts = [f"{host}-{port}", url.database or "default"]
    safe = [re.sub(r"[^A-Za-z0-9._-]+", "_", part).strip("._") or "_" for part in parts]
    return user_data_dir() / "servers" / safe[0] / safe[1]


def url_runs_dir(location: str, runs_dir: str | os.PathLike | None = None) -> Path:
    """Where a URL workspace's runs go: ``runs_dir``, else ``$DPO_STUDIO_RUNS_DIR``, else the default."""
    chosen = runs_dir or os.environ.get(RUNS_DIR_ENV)
    if chosen:
        return Path(chosen).expanduser().resolve()
    return server_folder(location) / "runs"
