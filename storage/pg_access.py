"""PostgreSQL: the database itself enforces the members' roles (grants + row-level security).

Each member connects as their own database role (``annotators.db_role``). Three group roles
per workspace database hold the table privileges, and a member's login role is put in the
group of their role (``storage.members`` keeps the group and ``annotators.role`` in step, in
one transaction):

- viewer: ``SELECT`` on every table, nothing else;
- annotator: that, plus exactly what labelling writes — ``INSERT`` verdicts and ``UPDATE`` of
  their ``retracted_at`` (undo), ``INSERT``/``UPDATE (expires_at)``/``DELETE`` on reservations
  (claim, renew, release), ``UPDATE (judged_count)`` on pairs (kept in step with the verdicts;
  the same privilege lets the queue lock pairs ``FOR UPDATE``) and the two id sequences;
- owner: every privilege on every table and sequence.

Row-level security on ``verdicts`` and ``reservations`` (installed with the schema, migration
v5) narrows the rows: a non-owner inserts verdicts only in their own name (the member whose
``db_role`` is ``current_user``) and never a resolution, retracts only their own, and holds
leases only for themselves. The table owner (the role that created the workspace) and
superusers bypass row-level security: they are the server's administrators.

What an annotator can still do by hand: set a pair's ``judged_count`` to a wrong value (it only
changes the order pairs are served in; ``main.py check --fix`` recounts it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from sqlalchemy import Connection, text

from storage.models import MemberRole

_SCRAM_ITERATIONS = 4096

# The functions the policies call. Their bodies name the schema and fix search_path, so a
# temporary table called "annotators" cannot stand in for the real one.
_FUNCTIONS = (
    "CREATE OR REPLACE FUNCTION {schema}.dpo_member_id() RETURNS integer LANGUAGE sql STABLE "
    "SET search_path = pg_catalog, pg_temp "
    "AS $$ SELECT id FROM {schema}.annotators WHERE db_role = current_user $$",
    "CREATE OR REPLACE FUNCTION {schema}.dpo_member_is_owner() RETURNS boolean LANGUAGE sql STABLE "
    "SET search_path = pg_catalog, pg_temp "
    "AS $$ SELECT EXISTS (SELECT 1 FROM {schema}.annotators WHERE db_role = current_user AND role = 'owner') $$")

_ME = "(SELECT {schema}.dpo_member_id())"
_OWNER = "(SELECT {schema}.dpo_member_is_owner())"
# A lease longer than a day is not a lease (it would hide pairs from everyone else).
_SHORT_LEASE = "expires_at <= timezone('UTC', now()) + interval '1 day'"

_POLICIES = {
    "verdicts": [
        ("verdicts_read", "SELECT", "USING (true)"),
        ("verdicts_add", "INSERT", f"WITH CHECK ({_OWNER} OR (annotator_id = {_ME} AND NOT is_resolution))"),
        # USING (true): an UPDATE of another member's row is refused with an error by the
        # check on the new row, not silently skipped.
        ("verdicts_change", "UPDATE", f"USING (true) WITH CHECK ({_OWNER} OR annotator_id = {_ME})"),
        ("verdicts_remove", "DELETE", f"USING ({_OWNER})"),
    ],
    "reservations": [
        ("reservations_read", "SELECT", "USING (true)"),
        ("reservations_add", "INSERT", f"WITH CHECK ({_OWNER} OR (annotator_id = {_ME} AND {_SHORT_LEASE}))"),
        ("reservations_change", "UPDATE",
         f"USING ({_OWNER} OR annotator_id = {_ME}) WITH CHECK ({_OWNER} OR (annotator_id = {_ME} AND {_SHORT_LEASE}))"),
        ("reservations_remove", "DELETE", f"USING ({_OWNER} OR annotator_id = {_ME})"),
    ],
}


def quote(conn: Connection, identifier: str) -> str:
    return conn.dialect.identifier_preparer.quote_identifier(identifier)


def _schema(conn: Connection) -> str:
    return quote(conn, conn.execute(text("SELECT current_schema()")).scalar_one())


def install_policies(conn: Connection) -> None:
    """The membership functions and the row-level security policies (idempotent; run by the
    tables' owner when the schema is created or upgraded to v5)."""
    schema = _schema(conn)
    for function in _FUNCTIONS:
        conn.execute(text(function.format(schema=schema)))
    for table, policies in _POLICIES.items():
        conn.execute(text(f"ALTER TABLE {schema}.{table} ENABLE ROW LEVEL SECURITY"))
        for name, command, clauses in policies:
            conn.execute(text(f"DROP POLICY IF EXISTS {name} ON {schema}.{table}"))
            conn.execute(text(f"CREATE POLICY {name} ON {schema}.{table} FOR {command} "
                              + clauses.format(schema=schema)))


def group_names(conn: Connection) -> dict[MemberRole, str]:
    """The three group roles of this database: ``dpo_<database>_<role>`` (role names are
    server-wide, so the database's name is in them; a long one is shortened with a hash)."""
    database = conn.execute(text("SELECT current_database()")).scalar_one()
    stem = re.sub(r"[^a-z0-9_]+", "_", database.lower())
    if len(stem) > 40 or stem != database:
        stem = f"{stem[:30]}_{hashlib.sha256(database.encode()).hexdigest()[:8]}"
    return {role: f"dpo_{stem}_{role.value}" for role in MemberRole}


def role_exists(conn: Connection, name: str) -> bool:
    return conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).first() is not None


def groups_exist(conn: Connection) -> bool:
    return all(role_exists(conn, name) for name in group_names(conn).values())


def ensure_groups(conn: Connection) -> dict[MemberRole, str]:
    """Create this database's group roles when missing and (re)grant their privileges; the
    database is then closed to roles outside them (``CONNECT`` revoked from PUBLIC). Needs a
    role that may create roles and owns the tables (the workspace's creator, or a superuser)."""
    groups = group_names(conn)
    for name in groups.values():
        if not role_exists(conn, name):
            conn.execute(text(f"CREATE ROLE {quote(conn, name)} NOLOGIN"))
    grant_privileges(conn)
    return groups


def grant_privileges(conn: Connection) -> None:
    """The groups' privileges on every table and sequence now in the schema (run again after
    a migration adds one)."""
    groups = {role: quote(conn, name) for role, name in group_names(conn).items()}
    everyone = ", ".join(groups.values())
    schema = _schema(conn)
    database = quote(conn, conn.execute(text("SELECT current_database()")).scalar_one())
    owner, annotator = groups[MemberRole.OWNER], groups[MemberRole.ANNOTATOR]
    sequences = [conn.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": f"{schema}.{table}"}).scalar_one()
                 for table in ("verdicts", "reservations")]
    for statement in (
            f"REVOKE CONNECT ON DATABASE {database} FROM PUBLIC",
            f"GRANT CONNECT ON DATABASE {database} TO {everyone}",
            f"GRANT USAGE ON SCHEMA {schema} TO {everyone}",
            f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {everyone}",
            f"GRANT ALL ON ALL TABLES IN SCHEMA {schema} TO {owner}",
            f"GRANT ALL ON ALL SEQUENCES IN SCHEMA {schema} TO {owner}",
            f"GRANT INSERT, UPDATE (retracted_at) ON {schema}.verdicts TO {annotator}",
            f"GRANT INSERT, UPDATE (expires_at), DELETE ON {schema}.reservations TO {annotator}",
            f"GRANT UPDATE (judged_count) ON {schema}.pairs TO {annotator}",
            f"GRANT USAGE ON SEQUENCE {', '.join(sequences)} TO {annotator}"):
        conn.execute(text(statement))


def scram_verifier(password: str) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677), made here
    so that the password itself never travels to the server or into its statement log."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, _SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda raw: base64.b64encode(raw).decode("ascii")  # noqa: E731
    return f"SCRAM-SHA-256${_SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def create_login(conn: Connection, db_role: str) -> str:
    """Create the login role ``db_role`` with a new random password; returns the password (to
    be shown once: it is stored nowhere, the server keeps only its SCRAM verifier)."""
    password = secrets.token_urlsafe(18)
    # exec_driver_sql: the verifier's colons are not bind parameters (it holds no quote or %).
    conn.exec_driver_sql(f"CREATE ROLE {quote(conn, db_role)} LOGIN PASSWORD '{scram_verifier(password)}'")
    return password


def put_in_group(conn: Connection, db_role: str, role: MemberRole) -> None:
    """Make ``db_role`` a member of exactly the group of ``role`` (among this database's)."""
    member = quote(conn, db_role)
    for group_role, group in group_names(conn).items():
        verb = "GRANT {g} TO {m}" if group_role == role else "REVOKE {g} FROM {m}"
        conn.execute(text(verb.format(g=quote(conn, group), m=member)))
