"""Roles enforced by PostgreSQL itself: each member connects as their own database role and
the grants and row-level security policies (storage.pg_access) refuse what their role may not
do — tested with raw SQL through that role, not only through the app — while the app, on the
same connection, still does everything an annotator does (claim, record, undo, renew, release).

Needs the tests' server (tests/pg_server.py; .ci/postgres makes every role but the superuser
log in with a password)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from main import main
from storage.annotation_queue import AnnotationQueue
from storage.ingest import ImportRecord, import_records
from storage.integrity import check_workspace
from storage.members import RoleError, add_member, list_members, me, set_role
from storage.models import Choice
from storage.reservations import live_leases
from storage.settings import read_settings, update_settings
from storage.team import NotAnOwnerError, resolve
from storage.workspace import PermissionDeniedError, Workspace
from tests.pg_server import url_for

REFUSED = "42501"   # insufficient privilege: a missing grant or a row-level security refusal


@dataclass
class Team:
    database: str
    admin: str                       # the superuser's URL of the workspace's database
    passwords: dict[str, str]        # member name -> their database role's one-time password
    roles: dict[str, str]            # member name -> database role

    def url(self, name: str, password: str | None = None) -> str:
        url = make_url(self.admin).set(username=self.roles[name], password=password or self.passwords[name])
        return url.render_as_string(hide_password=False)

    def ids(self) -> dict[str, int]:
        with Workspace.open(self.admin) as ws, ws.session() as s:
            return dict(s.execute(text("SELECT name, id FROM annotators")).all())


def _drop_roles(admin: str, names: list[str]) -> None:
    engine = create_engine(make_url(admin).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for name in names:
            if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).first():
                conn.execute(text(f'DROP OWNED BY "{name}"'))
                conn.execute(text(f'DROP ROLE "{name}"'))
    engine.dispose()


@pytest.fixture
def team(fresh_postgres_url: str):
    """Six pairs; olga an owner, ann and ben annotators, vic a viewer, each with a login."""
    database = make_url(fresh_postgres_url).database
    admin = url_for(database)
    with Workspace.open(admin) as ws:
        import_records(ws, [ImportRecord(f"prompt {i}", [f"x{i}", f"y{i}"]) for i in range(6)], "c")
        added = {name: add_member(ws, name, role, db_role=f"{database}_{name}")
                 for name, role in (("olga", "owner"), ("ann", "annotator"), ("ben", "annotator"), ("vic", "viewer"))}
        groups = [f"dpo_{database}_{role}" for role in ("owner", "annotator", "viewer")]
    team = Team(database, admin, {n: a.password for n, a in added.items()},
                {n: a.member.db_role for n, a in added.items()})
    yield team
    _drop_roles(admin, list(team.roles.values()) + groups)


def raw(team: Team, name: str, sql: str, **params):
    """Run one statement as ``name``'s database role, in its own transaction."""
    engine = create_engine(make_url(team.url(name)).set(drivername="postgresql+psycopg"))
    try:
        with engine.begin() as conn:
            result = conn.execute(text(sql), params)
            return result.all() if result.returns_rows else result.rowcount
    finally:
        engine.dispose()


def refused(team: Team, name: str, sql: str, **params) -> str:
    with pytest.raises(DBAPIError) as caught:
        raw(team, name, sql, **params)
    assert caught.value.orig.sqlstate == REFUSED, caught.value
    return str(caught.value.orig)


INSERT_VERDICT = ("INSERT INTO verdicts (pair_id, annotator_id, choice, seconds_spent, note, is_resolution, created_at) "
                  "VALUES (:pair, :who, 'a', 0, '', :res, now())")


def test_raw_sql_as_an_annotator_is_refused_what_an_annotator_may_not_do(team: Team) -> None:
    ids = team.ids()
    raw(team, "ben", INSERT_VERDICT, pair=1, who=ids["ben"], res=False)
    ben_verdict = raw(team, "ben", "SELECT id FROM verdicts WHERE annotator_id = :b", b=ids["ben"])[0][0]

    # A verdict in another member's name, another's verdict taken back, a resolution, the overlap.
    assert "row-level security" in refused(team, "ann", INSERT_VERDICT, pair=2, who=ids["ben"], res=False)
    assert "row-level security" in refused(team, "ann", "UPDATE verdicts SET retracted_at = now() WHERE id = :v",
                                           v=ben_verdict)
    assert "row-level security" in refused(team, "ann", INSERT_VERDICT, pair=1, who=ids["ann"], res=True)
    refused(team, "ann", "UPDATE settings SET value_json = '3' WHERE key = 'overlap'")
    refused(team, "ann", "INSERT INTO settings (key, value_json) VALUES ('overlap', '3')")
    # Nor a way round: making themselves an owner, deleting, a lease in ben's name, other tables.
    refused(team, "ann", "UPDATE annotators SET role = 'owner' WHERE name = 'ann'")
    refused(team, "ann", "DELETE FROM verdicts WHERE id = :v", v=ben_verdict)
    refused(team, "ann", "DELETE FROM runs")
    refused(team, "ann", "UPDATE verdicts SET choice = 'b' WHERE annotator_id = :a", a=ids["ann"])
    refused(team, "ann", "INSERT INTO reservations (pair_id, annotator_id, expires_at, created_at) "
                         "VALUES (3, :b, now() + interval '5 minutes', now())", b=ids["ben"])
    refused(team, "ann", "INSERT INTO reservations (pair_id, annotator_id, expires_at, created_at) "
                         "VALUES (3, :a, now() + interval '30 days', now())", a=ids["ann"])   # not a lease
    refused(team, "ann", "INSERT INTO prompts (text, hash, created_at) VALUES ('p', 'h', now())")
    # A temporary table named like the members' cannot make ann an owner to the policies.
    engine = create_engine(make_url(team.url("ann")).set(drivername="postgresql+psycopg"))
    with engine.connect() as conn:
        conn.execute(text("CREATE TEMP TABLE annotators (id integer, db_role text, role text)"))
        conn.execute(text("INSERT INTO annotators VALUES (:a, current_user, 'owner')"), {"a": ids["ann"]})
        with pytest.raises(DBAPIError, match="row-level security"):
            conn.execute(text(INSERT_VERDICT), {"pair": 1, "who": ids["ann"], "res": True})
    engine.dispose()

    with Workspace.open(team.admin) as ws:
        assert read_settings(ws).overlap == 1
        with ws.session() as s:
            assert s.execute(text("SELECT annotator_id, is_resolution, retracted_at FROM verdicts")).all() == [
                (ids["ben"], False, None)]


def test_raw_sql_as_an_annotator_does_their_own_labelling(team: Team) -> None:
    ids = team.ids()
    raw(team, "ann", INSERT_VERDICT, pair=1, who=ids["ann"], res=False)
    assert raw(team, "ann", "UPDATE verdicts SET retracted_at = now() WHERE annotator_id = :a", a=ids["ann"]) == 1
    raw(team, "ann", "INSERT INTO reservations (pair_id, annotator_id, expires_at, created_at) "
                     "VALUES (2, :a, timezone('UTC', now()) + interval '10 minutes', now())", a=ids["ann"])
    assert raw(team, "ann", "UPDATE pairs SET judged_count = 0 WHERE id = 1") == 1
    assert raw(team, "ann", "SELECT count(*) FROM verdicts")[0][0] == 1   # everyone reads everything


def test_raw_sql_as_the_owner_can(team: Team) -> None:
    ids = team.ids()
    raw(team, "ann", INSERT_VERDICT, pair=1, who=ids["ann"], res=False)
    ann_verdict = raw(team, "ann", "SELECT id FROM verdicts")[0][0]
    raw(team, "olga", INSERT_VERDICT, pair=1, who=ids["olga"], res=True)                # a resolution
    raw(team, "olga", INSERT_VERDICT, pair=2, who=ids["ann"], res=False)                # in another's name
    assert raw(team, "olga", "UPDATE verdicts SET retracted_at = now() WHERE id = :v", v=ann_verdict) == 1
    assert raw(team, "olga", "UPDATE settings SET value_json = '2' WHERE key = 'overlap'") in (0, 1)
    raw(team, "olga", "INSERT INTO settings (key, value_json) VALUES ('lease_minutes', '5')")
    raw(team, "olga", "DELETE FROM runs")
    with Workspace.open(team.admin) as ws:
        assert read_settings(ws).lease_minutes == 5


def test_a_viewer_reads_and_writes_nothing_and_strangers_cannot_connect(team: Team) -> None:
    ids = team.ids()
    assert raw(team, "vic", "SELECT count(*) FROM pairs")[0][0] == 6
    refused(team, "vic", INSERT_VERDICT, pair=1, who=ids["vic"], res=False)
    refused(team, "vic", "UPDATE pairs SET judged_count = 5")
    # A role of the same server outside the team does not get in at all.
    stranger = f"{team.database}_stranger"
    engine = create_engine(make_url(team.admin).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE ROLE \"{stranger}\" LOGIN PASSWORD 'pw-of-a-stranger'"))
    engine.dispose()
    try:
        team.roles["stranger"], team.passwords["stranger"] = stranger, "pw-of-a-stranger"
        with pytest.raises(OperationalError, match="permission denied for database"):
            raw(team, "stranger", "SELECT 1")
    finally:
        _drop_roles(team.admin, [stranger])


def test_the_app_as_an_annotator_labels_and_is_refused_the_rest_in_words(team: Team) -> None:
    with Workspace.open(team.url("ann")) as ws:
        assert me(ws).name == "ann" and me(ws).role.value == "annotator"
        queue = AnnotationQueue(ws, "ann")
        claimed = queue.claim(3)
        assert len(claimed) == 3 and {lease.annotator_name for lease in live_leases(ws)} == {"ann"}
        assert queue.renew([p.pair_id for p in claimed]) == frozenset(p.pair_id for p in claimed)
        queue.record(claimed[0].pair_id, Choice.A, seconds_spent=1.5)
        queue.record(claimed[1].pair_id, Choice.B)
        assert queue.undo_last(reserve_again=True) == claimed[1].pair_id
        queue.release()
        assert live_leases(ws) == []
        with pytest.raises(RoleError, match="cannot act as 'ben'"):
            AnnotationQueue(ws, "ben").record(claimed[2].pair_id, Choice.A)
        with pytest.raises(NotAnOwnerError, match="only the workspace's owners \\(olga\\)"):
            resolve(ws, claimed[0].pair_id, "ann", Choice.B)
        with pytest.raises(RoleError, match="'ann' may not change the workspace's settings"):
            update_settings(ws, overlap=2)
        with pytest.raises(PermissionDeniedError, match=f"connected as the database role {team.roles['ann']}"):
            import_records(ws, [ImportRecord("new prompt", ["n1", "n2"])], "c")   # the database says no
        with pytest.raises(RoleError):
            add_member(ws, "zed", "owner")
    with Workspace.open(team.admin) as ws:
        report = check_workspace(ws)
        assert report.clean, report.problems          # the counts the annotator's role kept are right
        with ws.session() as s:
            assert s.execute(text("SELECT pair_id, choice FROM verdicts WHERE retracted_at IS NULL")).all() == [
                (claimed[0].pair_id, "a")]


def test_the_app_as_a_viewer_and_as_the_owner(team: Team) -> None:
    with Workspace.open(team.url("vic")) as ws:
        assert read_settings(ws).owners == ("olga",)
        with pytest.raises(RoleError, match="'vic' may not label pairs: they are a viewer"):
            AnnotationQueue(ws, "vic").claim(1)
    with Workspace.open(team.url("ann")) as ws:
        AnnotationQueue(ws, "ann").record(1, Choice.A)
    with Workspace.open(team.url("ben")) as ws:
        AnnotationQueue(ws, "ben").record(1, Choice.B)
    with Workspace.open(team.url("olga")) as ws:
        update_settings(ws, overlap=2, lease_minutes=3.0)
        resolve(ws, 1, "olga", Choice.A, note="settled")
        assert read_settings(ws).overlap == 2
        # Changing roles moves database roles between groups: that needs CREATEROLE, which olga lacks.
        with pytest.raises(PermissionDeniedError):
            set_role(ws, "ben", "viewer")
    with Workspace.open(team.admin) as ws:
        assert [m.role.value for m in list_members(ws)] == ["owner", "annotator", "annotator", "viewer"]


def test_team_commands_make_a_login_whose_password_works_once_shown(team: Team, capsys) -> None:
    assert main(["team", "add", team.admin, "Zoë Q", "--role", "annotator", "--db-user", f"{team.database}_zoe"]) == 0
    out = capsys.readouterr().out
    password = out.split("stored nowhere):\n", 1)[1].split()[0]
    team.roles["Zoë Q"], team.passwords["Zoë Q"] = f"{team.database}_zoe", password
    try:
        assert raw(team, "Zoë Q", "SELECT current_user")[0][0] == f"{team.database}_zoe"
        team.passwords["Zoë Q"] = "not-" + password
        with pytest.raises(OperationalError, match="password authentication failed"):
            raw(team, "Zoë Q", "SELECT 1")
        team.passwords["Zoë Q"] = password
        # The password is stored nowhere: not in the workspace, only its SCRAM verifier on the server.
        with Workspace.open(team.admin) as ws, ws.session() as s:
            dump = " ".join(str(row) for table in ("annotators", "settings")
                            for row in s.execute(text(f"SELECT * FROM {table}")).all())
            verifier = s.execute(text("SELECT rolpassword FROM pg_authid WHERE rolname = :r"),
                                 {"r": f"{team.database}_zoe"}).scalar()
        assert password not in dump and verifier.startswith("SCRAM-SHA-256$") and password not in verifier
        assert main(["team", "set-role", team.admin, "Zoë Q", "viewer"]) == 0
        refused(team, "Zoë Q", INSERT_VERDICT, pair=1, who=team.ids()["Zoë Q"], res=False)
        assert main(["team", "list", team.admin]) == 0
        listed = capsys.readouterr().out
        assert "Zoë Q" in listed and f"{team.database}_zoe" in listed and "viewer" in listed
        assert main(["team", "set-role", team.admin, "olga", "annotator"]) == 2   # the only owner
        assert "only owner" in capsys.readouterr().err
    finally:
        _drop_roles(team.admin, [f"{team.database}_zoe"])
