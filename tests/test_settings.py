"""storage.settings: the workspace's settings as one typed object, stored one row per field."""

from __future__ import annotations

import json

import pytest

from storage.models import Setting
from storage.settings import (SETTINGS_VERSION, VERSION_KEY, SettingsError, WorkspaceSettings, read_settings,
                              settings_in, update_settings)
from storage.workspace import Workspace

# Every test here runs on SQLite and on PostgreSQL (tests/backends.py).
pytestmark = pytest.mark.both_backends


def test_a_new_workspace_reads_the_defaults(workspace: Workspace) -> None:
    assert read_settings(workspace) == WorkspaceSettings()
    assert read_settings(workspace).overlap == 1 and read_settings(workspace).eval_fraction == 0.1


def test_settings_round_trip_and_record_their_version(workspace: Workspace) -> None:
    stored = update_settings(workspace, overlap=3, owners=["ada", "bo"], base_model="bundled:demo_model",
                             training_config={"beta": 0.2}, eval_fraction=0.25,
                             training_presets={"quick": {"max_steps": 5}}, guidelines="# Be kind")
    again = read_settings(workspace)
    assert stored == again
    assert again.overlap == 3 and again.owners == ("ada", "bo") and again.eval_fraction == 0.25
    assert again.training_config == {"beta": 0.2} and again.training_presets == {"quick": {"max_steps": 5}}
    with workspace.session() as s:
        assert json.loads(s.get(Setting, VERSION_KEY).value_json) == SETTINGS_VERSION
        assert settings_in(s) == again
    # Fields not named are left as they were.
    assert update_settings(workspace, overlap=2).owners == ("ada", "bo")


@pytest.mark.parametrize("changes, message", [
    ({"overlpa": 2}, "unknown workspace setting 'overlpa'"),
    ({"overlap": 0}, "setting 'overlap': must be a whole number of at least 1, got 0"),
    ({"overlap": True}, "setting 'overlap'"),
    ({"lease_minutes": -1}, "setting 'lease_minutes'"),
    ({"eval_fraction": 1.0}, "setting 'eval_fraction': must be a share from 0 up to"),
    ({"eval_fraction": "0.2"}, "setting 'eval_fraction'"),
    ({"base_model": 3}, "setting 'base_model': must be text"),
])
def test_bad_values_are_refused_naming_the_setting(workspace: Workspace, changes: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        update_settings(workspace, **changes)
    assert read_settings(workspace) == WorkspaceSettings()   # nothing was written
