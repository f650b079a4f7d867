"""Schema versions and in-place upgrades.

A workspace records its schema version in the one-row table ``schema_version``. Opening
an older workspace runs each step from its version up to ``SCHEMA_VERSION`` in one
transaction; opening a newer one is refused (``SchemaTooNewError``) because this build
cannot know what the newer tables mean.
"""

from __future__ import annotations

import json
from typing import Callable

from sqlalchemy import Connection, inspect, text

from storage import pg_access
from storage.errors import WorkspaceError
from storage.models import Base, utcnow
from storage.splits import display_swapped_for, split_for

SCHEMA_VERSION = 6


class SchemaTooNewError(WorkspaceError):
    pass


def too_new(location: str, found: int) -> SchemaTooNewError:
    """The one refusal of a workspace written by a newer build (every command and the GUI show it)."""
    return SchemaTooNewError(
        f"{location} was written by a newer DPO Studio (schema version {found}; this build "
        f"understands up to {SCHEMA_VERSION}). Update DPO Studio to open it; nothing was changed.")


def _false(conn: Connection) -> str:
    return "false" if conn.dialect.name == "postgresql" else "0"


def _datetime(conn: Connection) -> str:
    """The column type SQLAlchemy's DateTime makes on this database (PostgreSQL has no DATETIME)."""
    return "TIMESTAMP WITHOUT TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"


def _v1_to_v2(conn: Connection) -> None:
    """v2: workspace settings; pairs remember their display side and split; verdicts gain a
    note, a resolution flag and retraction (undo no longer deletes history)."""
    Base.metadata.tables["settings"].create(conn)
    false = _false(conn)
    conn.execute(text(f"ALTER TABLE pairs ADD COLUMN display_swapped BOOLEAN NOT NULL DEFAULT {false}"))
    conn.execute(text("ALTER TABLE pairs ADD COLUMN split VARCHAR(8) NOT NULL DEFAULT 'train'"))
    conn.execute(text("ALTER TABLE verdicts ADD COLUMN note TEXT NOT NULL DEFAULT ''"))
    conn.execute(text(f"ALTER TABLE verdicts ADD COLUMN is_resolution BOOLEAN NOT NULL DEFAULT {false}"))
    conn.execute(text(f"ALTER TABLE verdicts ADD COLUMN retracted_at {_datetime(conn)}"))
    conn.execute(text("ALTER TABLE pairs ADD COLUMN judged_count INTEGER NOT NULL DEFAULT 0"))
    conn.execute(text("CREATE INDEX ix_pairs_judged_count ON pairs (judged_count, id)"))
    # v1 had no retraction, so every annotator's rows are current; skips do not count.
    conn.execute(text(
        "UPDATE pairs SET judged_count = (SELECT COUNT(DISTINCT v.annotator_id) FROM verdicts v "
        "WHERE v.pair_id = pairs.id AND v.choice != 'skip')"))
    rows = conn.execute(text(
        "SELECT pairs.id, p.hash, a.hash, b.hash FROM pairs "
        "JOIN prompts p ON p.id = pairs.prompt_id "
        "JOIN responses a ON a.id = pairs.response_a_id "
        "JOIN responses b ON b.id = pairs.response_b_id")).all()
    for pair_id, prompt_hash, a_hash, b_hash in rows:
        # Hashes in sorted order, as storage.ingest draws them: the draw must not depend on
        # which response happened to get the lower id.
        a_hash, b_hash = sorted((a_hash, b_hash))
        conn.execute(text("UPDATE pairs SET display_swapped = :s, split = :sp WHERE id = :id"),
                     {"s": display_swapped_for(prompt_hash, a_hash, b_hash),
                      "sp": split_for(prompt_hash, a_hash, b_hash), "id": pair_id})


def _v2_to_v3(conn: Connection) -> None:
    """v3: a run records the process that owns it (host, pid, process start time), so a run
    whose process was killed is seen as interrupted instead of "running" for ever."""
    conn.execute(text("ALTER TABLE runs ADD COLUMN owner_host VARCHAR(255)"))
    conn.execute(text("ALTER TABLE runs ADD COLUMN owner_pid INTEGER"))
    conn.execute(text("ALTER TABLE runs ADD COLUMN owner_started FLOAT"))
    # A v2 run still "running" or "paused" has no owner to check. The build that wrote it
    # cannot open a v3 workspace, so it is not training it now (and had it been, its own final
    # write would set the true status again): call it interrupted, which can be resumed.
    conn.execute(text("UPDATE runs SET status = 'interrupted' WHERE status IN ('running', 'paused')"))


def _v3_to_v4(conn: Connection) -> None:
    """v4: pair reservations (leases) for team labelling, and verdict ids made on the client
    so that a resent verdict is recognised instead of stored twice."""
    Base.metadata.tables["reservations"].create(conn)
    conn.execute(text("ALTER TABLE verdicts ADD COLUMN client_id VARCHAR(32)"))
    conn.execute(text("CREATE UNIQUE INDEX ux_verdicts_client_id ON verdicts (client_id)"))


def _v4_to_v5(conn: Connection) -> None:
    """v5: members have roles (storage.members). The ``owners`` setting becomes owner roles
    (a named owner without a row yet gets one; the row stays only for their order); everyone else keeps no role, which
    means what it meant before: anyone while no owner is named, an annotator once one is.
    PostgreSQL: the row-level security policies (storage.pg_access)."""
    conn.execute(text("ALTER TABLE annotators ADD COLUMN role VARCHAR(16)"))
    conn.execute(text("ALTER TABLE annotators ADD COLUMN db_role VARCHAR(63)"))
    conn.execute(text("CREATE UNIQUE INDEX ux_annotators_db_role ON annotators (db_role)"))
    stored = conn.execute(text("SELECT value_json FROM settings WHERE key = 'owners'")).scalar()
    for name in {str(n).strip() for n in (json.loads(stored) if stored else None) or ()} - {""}:
        if conn.execute(text("SELECT id FROM annotators WHERE name = :n"), {"n": name}).first() is None:
            conn.execute(text("INSERT INTO annotators (name, is_pseudo, created_at) VALUES (:n, :f, :at)"),
                         {"n": name, "f": False, "at": utcnow()})
        conn.execute(text("UPDATE annotators SET role = 'owner' WHERE name = :n"), {"n": name})
    if conn.dialect.name == "postgresql":
        pg_access.install_policies(conn)


def _v5_to_v6(conn: Connection) -> None:
    """v6, closing the loop: generations (who wrote a generated response and how), blind A/B
    comparisons (their pairs are kept out of the queue and the training set), rounds (a run's
    parent run, how it started, the verdicts it trained on), the adapters' pair scores and the
    tokenised examples' cache. What is already there is kept: SQLite cannot drop a column that
    holds a foreign key, so a v5 workspace may still have ``generation_id`` / ``comparison_id``
    from a build that had them (tests turn today's schema back into an older one that way)."""
    for table in ("generations", "comparisons", "run_verdicts", "pair_scores", "tokenized_examples"):
        Base.metadata.tables[table].create(conn, checkfirst=True)
    for table, column, ddl in (
            ("responses", "generation_id", "INTEGER REFERENCES generations (id) ON DELETE SET NULL"),
            ("pairs", "comparison_id", "INTEGER REFERENCES comparisons (id) ON DELETE CASCADE"),
            ("runs", "parent_run_id", "VARCHAR(64)"), ("runs", "start_from", "VARCHAR(16)")):
        if column not in {c["name"] for c in inspect(conn).get_columns(table)}:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}"))


# MIGRATIONS[v] upgrades a version-v workspace to v+1.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5, 5: _v5_to_v6}


def current_version(conn: Connection) -> int | None:
    """The workspace's schema version, or None for an empty database."""
    if not inspect(conn).has_table("schema_version"):
        return None
    return conn.execute(text("SELECT MAX(version) FROM schema_version")).scalar_one()


def ensure_schema(conn: Connection, location: str) -> int:
    """Create or upgrade the schema on ``conn`` (inside the caller's transaction).

    Returns the version found before any upgrade (``SCHEMA_VERSION`` for a new workspace).
    """
    found = current_version(conn)
    if found is None:
        Base.metadata.create_all(conn)
        conn.execute(text("CREATE TABLE schema_version (version INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": SCHEMA_VERSION})
        if conn.dialect.name == "postgresql":
            pg_access.install_policies(conn)
        return SCHEMA_VERSION
    if found > SCHEMA_VERSION:
        raise too_new(location, found)
    for version in range(found, SCHEMA_VERSION):
        MIGRATIONS[version](conn)
        conn.execute(text("UPDATE schema_version SET version = :v"), {"v": version + 1})
    if found < SCHEMA_VERSION and conn.dialect.name == "postgresql" and pg_access.groups_exist(conn):
        pg_access.grant_privileges(conn)   # the members' groups reach tables an upgrade added
    return found
