"""File ▸ Generate candidates: the models listed through the database worker, a real generation
from the demo model on a Worker with progress and tokens/s, Cancel, and the new pairs announced."""

from __future__ import annotations

import pytest
import torch

from core.demo.demo_workspace import create_demo_workspace
from gui.common.workers import running_workers
from gui.generate.generate_dialog import GenerateDialog
from storage.generations import list_generations
from storage.workspace import Workspace
from tests.gui_db import db, settle  # noqa: F401  (fixture)
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("isolated_settings")


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    return create_demo_workspace(tmp_path_factory.mktemp("gendlg") / "demo")


@pytest.fixture
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def generating() -> bool:
    return any(t.objectName() == "worker:run_generation" for t in running_workers())


def run(qtbot, dialog):
    with qtbot.waitSignal(dialog.generation_ended, timeout=120_000) as blocker:
        dialog.start()
    qtbot.waitUntil(lambda: not generating(), timeout=10_000)
    return blocker.args[0]


def test_typed_prompts_generate_pairs_with_progress(qtbot, db, demo_folder, one_thread):  # noqa: F811
    with Workspace.open(demo_folder, create=False) as ws:
        dialog = GenerateDialog(ws, db, prompts=["How do I keep basil alive?", "What is a good first bike?"])
        qtbot.addWidget(dialog)
        settle(db)
        assert dialog.model.isEnabled() and dialog.model.currentData() == "base"
        assert dialog.source.currentData() == "typed" and dialog.typed.toPlainText().count("\n") == 1
        assert not dialog.file_row.isVisible()
        dialog.n.setValue(2)
        dialog.max_new_tokens.setValue(24)
        rates, changes = [], []
        dialog.progress.valueChanged.connect(lambda _: rates.append(dialog.rate.text()))
        dialog.changes_made.connect(changes.append)
        outcome = run(qtbot, dialog)
        assert outcome is not None and outcome.replies == 4 and outcome.prompts == 2
        assert changes and changes[0].pairs and set(changes[0].pair_ids) and not dialog.running
        assert any("tokens/s" in r for r in rates)
        assert "replies to 2 prompts" in dialog.status.text() and "new pair" in dialog.rate.text()
        assert dialog.close_button.text() == "Close" and dialog.generate_button.isEnabled()
        (generation,) = list_generations(ws)
        assert generation.settings["n"] == 2 and generation.settings["max_new_tokens"] == 24


def test_bad_input_is_said_in_the_dialog_and_cancel_stops(qtbot, db, demo_folder, tmp_path, one_thread):  # noqa: F811
    with Workspace.open(demo_folder, create=False) as ws:
        dialog = GenerateDialog(ws, db)
        qtbot.addWidget(dialog)
        settle(db)
        dialog.source.setCurrentIndex(dialog.source.findData("file"))
        assert not dialog.typed.isVisibleTo(dialog) and dialog.file_row.isVisibleTo(dialog)
        dialog.start()
        assert "Choose a prompts file" in dialog.status.text() and not dialog.running
        dialog.path.setText(str(tmp_path / "missing.jsonl"))
        assert run(qtbot, dialog) is None and "no such file" in dialog.status.text()

        # Cancel as soon as the work starts: nothing (or only finished batches) is stored.
        dialog.source.setCurrentIndex(dialog.source.findData("unlabelled"))
        dialog.limit.setValue(40)
        dialog.max_new_tokens.setValue(64)
        before = len(list_generations(ws))
        with qtbot.waitSignal(dialog.generation_ended, timeout=120_000) as blocker:
            dialog.start()
            assert dialog.running and dialog.close_button.text() == "Cancel"
            dialog.close_button.click()
        qtbot.waitUntil(lambda: not generating(), timeout=10_000)
        outcome = blocker.args[0]
        assert outcome is not None and outcome.cancelled and outcome.replies < 40 * 4
        assert len(list_generations(ws)) <= before + 1 and not dialog.running
