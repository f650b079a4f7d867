"""Roles as the storage layer enforces them (storage.members), on SQLite and PostgreSQL: who
is acting when a caller names a person, the open workspace (no owner named), owner-only
settings, resolutions and member changes, a viewer who writes nothing, an annotator who
retracts only their own verdicts, the ``owners`` setting as roles, the v4 -> v5 upgrade and
the ``team`` commands. (PostgreSQL's own enforcement, per database role: test_roles_postgres.py.)"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from main import main
from storage.annotation_queue import AnnotationQueue
from storage.members import Role, RoleError, add_member, list_members, set_role
from storage.migrations import SCHEMA_VERSION
from storage.models import Choice
from storage.settings import read_settings, update_settings
from storage.team import NotAnOwnerError, resolve
from storage.workspace import Workspace
from tests.annotate_samples import add_sample_pairs

pytestmark = pytest.mark.both_backends


def current(ws: Workspace) -> list[tuple[str, str, bool]]:
    with ws.session() as s:
        return [tuple(row) for row in s.execute(text(
            "SELECT a.name, v.choice, v.is_resolution FROM verdicts v JOIN annotators a ON a.id = v.annotator_id "
            "WHERE v.retracted_at IS NULL ORDER BY v.id")).all()]


def test_with_no_owner_named_everyone_counts_as_an_owner(workspace: Workspace) -> None:
    pair = add_sample_pairs(workspace, 1)[0]
    AnnotationQueue(workspace, "ann").record(pair, Choice.A)
    AnnotationQueue(workspace, "ben").record(pair, Choice.B)
    update_settings(workspace, actor="ben", overlap=2)
    resolve(workspace, pair, "ann", Choice.A)
    assert [(m.name, m.role, m.assigned) for m in list_members(workspace)] == [
        ("ann", Role.OWNER, False), ("ben", Role.OWNER, False)]


def test_once_an_owner_is_named_the_others_are_annotators(workspace: Workspace) -> None:
    pair = add_sample_pairs(workspace, 1)[0]
    AnnotationQueue(workspace, "ann").record(pair, Choice.A)
    AnnotationQueue(workspace, "ben").record(pair, Choice.B)
    add_member(workspace, "olga", "owner")
    assert [(m.name, m.role) for m in list_members(workspace)] == [
        ("olga", Role.OWNER), ("ann", Role.ANNOTATOR), ("ben", Role.ANNOTATOR)]
    with pytest.raises(NotAnOwnerError, match=r"'ann' cannot resolve pair \d+: only the workspace's owners \(olga\)"):
        resolve(workspace, pair, "ann", Choice.A)
    for change in ({"overlap": 3}, {"lease_minutes": 1.0}, {"guidelines": "be kind"}, {"owners": ["ann"]}):
        with pytest.raises(RoleError, match="'ann' may not change the workspace's settings: they are an annotator; "
                                            r"the workspace's owners \(olga\) may"):
            update_settings(workspace, actor="ann", **change)
    with pytest.raises(RoleError, match="may not add members"):
        set_role(workspace, "ben", "owner", actor="ann")
    with pytest.raises(RoleError):
        add_member(workspace, "mallory", "owner", actor="ben")
    settings = read_settings(workspace)
    assert (settings.overlap, settings.lease_minutes, settings.guidelines, settings.owners) == (1, 10.0, None, ("olga",))
    assert current(workspace) == [("ann", "a", False), ("ben", "b", False)]
    # The owner may, and so may the workspace's holder (no name: a CLI on the file).
    update_settings(workspace, actor="olga", overlap=2)
    resolve(workspace, pair, "olga", Choice.B)
    set_role(workspace, "ben", "owner")
    assert read_settings(workspace).owners == ("ben", "olga") and read_settings(workspace).overlap == 2


def test_a_viewer_writes_nothing(workspace: Workspace) -> None:
    pair = add_sample_pairs(workspace, 2)[0]
    add_member(workspace, "olga", "owner")
    add_member(workspace, "vic", "viewer")
    viewer = AnnotationQueue(workspace, "vic")
    for attempt in (lambda: viewer.record(pair, Choice.A), lambda: viewer.claim(1), lambda: viewer.undo_last()):
        with pytest.raises(RoleError, match="'vic' may not label pairs: they are a viewer"):
            attempt()
    with pytest.raises(RoleError):
        update_settings(workspace, actor="vic", overlap=2)
    with pytest.raises(NotAnOwnerError):
        resolve(workspace, pair, "vic", Choice.A)
    assert current(workspace) == [] and viewer.next_pair() is not None   # reading is fine


def test_an_annotator_retracts_only_their_own_verdicts(workspace: Workspace) -> None:
    pair = add_sample_pairs(workspace, 1)[0]
    add_member(workspace, "olga", "owner")
    ann, ben = AnnotationQueue(workspace, "ann", overlap=2), AnnotationQueue(workspace, "ben", overlap=2)
    ben_verdict = ben.record(pair, Choice.B)
    assert ann.undo_last(verdict_id=ben_verdict) is None and ann.undo_last() is None
    ann_verdict = ann.record(pair, Choice.A)
    assert ann.undo_last(verdict_id=ann_verdict) == pair
    assert current(workspace) == [("ben", "b", False)]


def test_the_owners_setting_reads_and_writes_the_roles(workspace: Workspace) -> None:
    add_member(workspace, "ann", "annotator")
    update_settings(workspace, owners=["zed", "ann"])
    assert read_settings(workspace).owners == ("zed", "ann")          # in the order named
    assert {m.name: m.role for m in list_members(workspace)} == {"zed": Role.OWNER, "ann": Role.OWNER}
    update_settings(workspace, owners=["zed"])
    assert {m.name: m.role for m in list_members(workspace)} == {"zed": Role.OWNER, "ann": Role.ANNOTATOR}
    with pytest.raises(RoleError, match="zed is the workspace's only owner"):
        set_role(workspace, "zed", "annotator")
    update_settings(workspace, owners=[])                              # open again
    assert read_settings(workspace).owners == ()
    assert {m.name: m.role for m in list_members(workspace)} == {"zed": Role.OWNER, "ann": Role.ANNOTATOR}
    with pytest.raises(LookupError):
        set_role(workspace, "nobody", "viewer")


# What schema v6 added, undone (storage.migrations._v5_to_v6).
V6_ADDITIONS = ("ALTER TABLE runs DROP COLUMN parent_run_id", "ALTER TABLE runs DROP COLUMN start_from",
                "DROP TABLE run_verdicts", "DROP TABLE pair_scores", "DROP TABLE tokenized_examples",
                "DROP TABLE comparisons", "DROP TABLE generations")


def test_a_v4_workspace_turns_its_owners_setting_into_roles(workspace_location: str) -> None:
    with Workspace.open(workspace_location) as ws:
        pair = add_sample_pairs(ws, 1)[0]
        for name in ("ada", "bob"):
            AnnotationQueue(ws, name).record(pair, Choice.A)
        with ws.session() as s:   # back to v4 as that build left it: no role columns, owners a setting
            s.execute(text("DROP INDEX ux_annotators_db_role"))
            s.execute(text("ALTER TABLE annotators DROP COLUMN role"))
            s.execute(text("ALTER TABLE annotators DROP COLUMN db_role"))
            s.execute(text("INSERT INTO settings (key, value_json) VALUES ('owners', :v)"), {"v": json.dumps(["zed", "ada"])})
            if s.get_bind().dialect.name == "postgresql":   # SQLite cannot drop a foreign-key column
                s.execute(text("ALTER TABLE responses DROP COLUMN generation_id"))
                s.execute(text("ALTER TABLE pairs DROP COLUMN comparison_id"))
            for statement in V6_ADDITIONS:   # and nothing of what later versions add
                s.execute(text(statement))
            s.execute(text("UPDATE schema_version SET version = 4"))
    with Workspace.open(workspace_location) as ws:
        assert ws.upgraded_from == 4 and SCHEMA_VERSION >= 5
        assert read_settings(ws).owners == ("zed", "ada")
        assert {m.name: (m.role, m.assigned) for m in list_members(ws)} == {
            "zed": (Role.OWNER, True), "ada": (Role.OWNER, True), "bob": (Role.ANNOTATOR, False)}
        with pytest.raises(NotAnOwnerError):
            resolve(ws, pair, "bob", Choice.B)
        resolve(ws, pair, "ada", Choice.B)


def test_team_commands(workspace_location: str, capsys) -> None:
    Workspace.open(workspace_location).close()
    assert main(["team", "list", workspace_location]) == 0
    assert "0 members" in capsys.readouterr().out
    assert main(["team", "add", workspace_location, "olga", "--role", "owner"]) == 0
    assert main(["team", "add", workspace_location, "ann"]) == 0
    out = capsys.readouterr().out
    assert "olga is now an owner" in out and "ann is now an annotator" in out
    assert main(["team", "set-role", workspace_location, "ann", "viewer"]) == 0
    assert main(["team", "list", workspace_location, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert [(m["name"], m["role"]) for m in listed["members"]] == [("olga", "owner"), ("ann", "viewer")]
    assert main(["team", "set-role", workspace_location, "nobody", "owner"]) == 2
    assert main(["team", "set-role", workspace_location, "olga", "viewer"]) == 2
    assert main(["team", "list", str(workspace_location) + "-missing"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "no member called 'nobody'" in err[0] and "only owner" in err[1]
