"""The Team tab's live parts: who is labelling now (their reserved pairs and how long the
reservations last), the lease time and overlap as settings, the connection line, and the members
with their roles (an owner changes a role in place)."""

from __future__ import annotations

import pytest

from core.operations.members import Role, members
from core.operations.team import set_lease_minutes, team_settings, who_is_labelling
from storage.settings import read_settings
from tests.annotate_samples import add_sample_pairs
from tests.gui_db import settle
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)
from tests.test_main_window import open_window

pytestmark = pytest.mark.usefixtures("isolated_settings")


def test_who_is_labelling_and_the_lease_time_without_qt(workspace):
    add_sample_pairs(workspace, 20)
    from storage.annotation_queue import claim_pairs

    claim_pairs(workspace, "bob", 6, lease_s=120)
    [bob] = who_is_labelling(workspace)
    assert bob.name == "bob" and bob.pair_ids == (1, 2, 3, 4, 5, 6) and 100 < bob.seconds_left <= 120
    assert bob.pairs_text() == "#1, #2, #3, #4 and 2 more"
    assert set_lease_minutes(workspace, 4.5).settings
    assert team_settings(workspace).lease_minutes == 4.5


def test_the_team_tab_shows_the_live_leases_settings_connection_and_members(qtbot, workspace, tmp_path):
    add_sample_pairs(workspace, 30)
    window = open_window(qtbot, workspace, "ada")
    window.tabs.setCurrentWidget(window.team)
    team = window.team
    team.reload()
    settle(window.db)
    now = team.now
    assert [who.name for who in now.labellers] == ["ada"]
    assert now.table.item(0, 0).text() == "ada" and now.table.item(0, 1).text().startswith("9 pairs: #1, #2")
    assert now.connection.text().startswith("Workspace on this computer")
    assert team.lease.isEnabled() and team.lease.value() == read_settings(workspace).lease_minutes

    changes = []
    team.changes_made.connect(changes.append)
    team.lease.setValue(3.0)
    settle(window.db)
    assert read_settings(workspace).lease_minutes == 3.0 and changes and changes[-1].settings

    names = [team.members.table.item(r, 0).text() for r in range(team.members.table.rowCount())]
    assert names == ["ada"]
    assert "advisory" in team.members.note.text()
    combo = team.members.table.cellWidget(0, 1)
    assert combo.currentText() == "owner" and combo.isEnabled()   # no owner named: ada counts as one
    window.grab().save(str(tmp_path / "team-tab.png"))
    window.close()
    settle(window.db)


def test_an_owner_changes_a_role_in_place(qtbot, workspace):
    from core.operations.members import add_member

    add_sample_pairs(workspace, 5)
    add_member(workspace, "ada", "owner")
    add_member(workspace, "bob", "annotator")
    window = open_window(qtbot, workspace, "ada")
    team = window.team
    settle(window.db)
    rows = {team.members.table.item(r, 0).text(): r for r in range(team.members.table.rowCount())}
    combo = team.members.table.cellWidget(rows["bob"], 1)
    assert combo.isEnabled()
    combo.setCurrentText("viewer")
    settle(window.db)
    assert {m.name: m.role for m in members(workspace)}["bob"] == Role.VIEWER
    window.close()
    settle(window.db)
