"""core.operations.child_call: a function run in a child process answers with its value or its
error's one line; the form's data preview (core.operations.data_preview) runs that way and sends
back the counts and an even sample (real workspace, real processes)."""

from __future__ import annotations

import os

import pytest

from core.engine.training_config import TrainingConfig
from core.operations.child_call import ChildCallError, call_in_child
from tests.tiny_models import fill_workspace


def test_a_function_runs_in_another_process_and_its_value_comes_back() -> None:
    assert call_in_child("os", "getpid") != os.getpid()
    assert call_in_child("math", "fsum", [0.1] * 10) == 1.0


def test_an_error_in_the_child_is_one_line() -> None:
    with pytest.raises(ChildCallError) as raised:
        call_in_child("json", "loads", "{not json")
    assert "\n" not in str(raised.value) and "Expecting property name" in str(raised.value)


def test_the_data_preview_counts_in_a_child_and_sends_an_even_sample(workspace) -> None:
    fill_workspace(workspace, 24)
    part = call_in_child("core.operations.data_preview", "preview", workspace.location, None,
                         TrainingConfig(base_model="m"), 5)
    assert part.result.error is None and part.result.data.total == 24 == part.total
    assert len(part.sample) == 5 and len({e.pair_id for e in part.sample}) == 5
    missing = call_in_child("core.operations.data_preview", "preview", str(workspace.root / "nowhere"), None,
                            TrainingConfig(base_model="m"))
    assert missing.result.data is None and missing.result.error
