"""Issue 10's first check: a scripted session in the main window runs no SQL statement on the
UI thread, and torch, transformers and peft are first imported on another thread (in the
window's process only by the Learn tab's worker; the form's checks and the run have processes of
their own).

The session runs in a fresh interpreter (``tests/ui_isolation_session.py``) so that nothing this
test process imported counts; the workspace and the tiny model are built here, beforehand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from storage.models import Annotator, Verdict
from tests.annotate_samples import add_sample_pairs
from tests.tiny_models import fill_workspace, make_tiny_model_dir

SCRIPT = Path(__file__).with_name("ui_isolation_session.py")
pytestmark = pytest.mark.slow


def test_a_scripted_session_keeps_sql_and_the_ml_libraries_off_the_ui_thread(workspace, tmp_path):
    model_dir = make_tiny_model_dir(tmp_path / "tiny-model")
    fill_workspace(workspace, 24)            # labelled pairs to train on
    add_sample_pairs(workspace, 260)         # pairs to label
    root = workspace.root
    workspace.close()
    result_path = tmp_path / "result.json"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, str(SCRIPT), str(root), str(model_dir), str(result_path)],
                          env=env, capture_output=True, text=True, timeout=540)
    assert result_path.exists(), f"the session script wrote nothing:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    result = json.loads(result_path.read_text(encoding="utf-8"))
    assert "error" not in result, result.get("error", "") + "\n" + proc.stderr[-2000:]
    assert proc.returncode == 0, proc.stderr[-3000:]

    statements = result["ui_statements"]
    assert statements == [], "SQL on the UI thread:\n" + "\n".join(
        f"{s['statement']}\n    " + "\n    ".join(s["stack"]) for s in statements[:10])
    threads = result["first_import_thread"]
    # The Train tab imports none of them in the window's process: its form's checks run in a
    # helper process and the run trains in a child process. The Learn tab's worker loads the run's
    # model in this process (torch, transformers and peft), off the UI thread.
    assert {"torch", "transformers"} <= set(threads) <= {"torch", "transformers", "peft"}, threads
    assert "ui" not in threads.values(), f"imported on the UI thread: {threads}"

    # The session's verdicts, notes and undos are all stored, each on the pair it was given for.
    from storage.workspace import Workspace

    with Workspace.open(root) as ws, ws.session() as s:
        stored = [tuple(r) for r in s.execute(
            select(Verdict.pair_id, Verdict.choice, Verdict.note).join(Annotator, Annotator.id == Verdict.annotator_id)
            .where(Annotator.name == "ada", Verdict.retracted_at.is_(None)).order_by(Verdict.id)).all()]
    expected = result["expected_verdicts"]
    assert len(expected) == 200 - 200 // 7
    assert sorted((p, c.value, n) for p, c, n in stored) == sorted(tuple(e) for e in expected)
    assert sum(1 for _, _, n in stored if n) >= 15
    assert result["runs"], "the run is in the runs list"
    from storage.models import RunStatus
    from storage.runs import get_run

    with Workspace.open(root) as ws:
        run = get_run(ws, result["runs"][0])
    assert run.status == RunStatus.STOPPED and run.step > 0 and run.resumable   # trained, in its own process
