"""A training process started before Start (core.operations.training_child.prepare_training_process,
core.operations.run_preparation): the run it serves trains on exactly the current verdicts (a
verdict added or retracted after it prepared is seen), a closed one exits and holds no database
file while it waits, a dead one gives way to a fresh process; and the pieces it relies on — the
training set's mark and its own verdicts, the prepared inputs used only under their own keys.
Real SQLite files, real tiny models, real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from core.engine.prepared_inputs import PreparedInputs
from core.engine.training_control import RunStarted
from core.operations.training import SessionError, TrainingSession
from core.operations.training_child import prepare_training_process
from storage.ingest import ImportRecord, import_records
from storage.models import Choice
from storage.rounds import trained_verdict_ids
from storage.runs import get_run
from storage.token_cache import CachedTokens
from storage.training_set import build_training_set, training_set_mark
from storage.verdicts import add_verdict, get_or_create_annotator, retract_last
from tests.test_training_session import small
from tests.tiny_models import fill_workspace, make_tiny_model_dir


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model")


def add_unlabelled(ws, n: int, first: int = 0) -> list[int]:
    records = [ImportRecord(prompt=f"Question {i}?", responses=[f"Yes, {i}.", f"No way {i}."], line=i + 1)
               for i in range(first, first + n)]
    pair_ids = list(import_records(ws, records, "open.jsonl").pair_ids)
    assert len(pair_ids) == n
    return pair_ids


def judge(ws, pair_id: int, choice: Choice, who: str = "ann") -> int:
    with ws.writing() as session:
        return add_verdict(session, pair_id, get_or_create_annotator(session, who), choice)


def current_train_verdicts(ws) -> list[int]:
    """What a run starting now should record: the current verdicts behind its training examples."""
    training_set = build_training_set(ws)
    train_pairs = {e.pair_id for e in training_set.train}
    return sorted(v for pair_id in train_pairs for v in training_set.verdict_ids[pair_id])


def owner_at_start(session: TrainingSession, ws) -> list[int]:
    """The pid of the process that owned the run when it started (filled on RunStarted)."""
    pids: list[int] = []
    session.subscribe(lambda e: pids.append(get_run(ws, e.info.run_id).owner.pid) if isinstance(e, RunStarted)
                      else None)
    return pids


def gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            finished, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:   # reaped already (by the reaper thread)
            return True
        if finished == pid:
            return True
        time.sleep(0.05)
    return False


# -- the pieces, no process -------------------------------------------------------------------------
@pytest.mark.both_backends
def test_the_mark_moves_with_every_change_a_training_set_sees(workspace) -> None:
    fill_workspace(workspace, 6)
    open_pairs = add_unlabelled(workspace, 2)
    built = build_training_set(workspace)
    assert built.mark == training_set_mark(workspace)
    judge(workspace, open_pairs[0], Choice.A)
    added = training_set_mark(workspace)
    assert added != built.mark
    with workspace.writing() as session:
        retract_last(session, get_or_create_annotator(session, "ann"))
    retracted = training_set_mark(workspace)
    assert retracted not in (built.mark, added)
    add_unlabelled(workspace, 1, first=10)   # a new pair changes the "unlabelled" count
    assert training_set_mark(workspace) != retracted
    assert build_training_set(workspace).mark == training_set_mark(workspace)


@pytest.mark.both_backends
def test_a_training_set_keeps_the_verdicts_a_run_records(workspace) -> None:
    fill_workspace(workspace, 4)
    pair = add_unlabelled(workspace, 1)[0]
    first = judge(workspace, pair, Choice.B, "ann")
    second = judge(workspace, pair, Choice.B, "bob")
    judge(workspace, pair, Choice.SKIP, "cat")   # a skip is not a verdict trained on
    training_set = build_training_set(workspace)
    assert training_set.verdict_ids[pair] == (first, second)
    assert all(len(ids) == 1 for pair_id, ids in training_set.verdict_ids.items() if pair_id != pair)


def test_prepared_inputs_serve_only_their_own_keys_and_examples(workspace) -> None:
    fill_workspace(workspace, 3)
    examples = build_training_set(workspace).examples
    tokens = {e.example_hash: CachedTokens((1, 2), 1, (1, 3), 1) for e in examples}
    prepared = PreparedInputs("tok", tokens, "model", {"h": (-1.0, -2.0)},
                              tokenized=(list(examples), (["kept"], Counter({"tie": 1}))))
    assert prepared.tokens_for("tok") is tokens and prepared.tokens_for("other") is None
    assert prepared.reference_for("model", "tok") == {"h": (-1.0, -2.0)}
    assert prepared.reference_for("model", "other") is None and prepared.reference_for("m2", "tok") is None
    assert prepared.tokenized_for("tok", list(examples)) == (["kept"], Counter({"tie": 1}))
    rebuilt = build_training_set(workspace).examples   # equal texts, other objects: not the prepared ones
    assert prepared.tokenized_for("tok", rebuilt) is None and prepared.tokenized_for("other", examples) is None
    assert prepared.tokenized_for("tok", examples[:-1]) is None


def test_a_prepared_process_serves_only_a_session_in_a_child(workspace) -> None:
    warm = prepare_training_process(workspace)
    try:
        with pytest.raises(SessionError):
            TrainingSession(workspace, prepared=warm)
    finally:
        warm.close(wait=10)


def test_a_closed_prepared_process_exits_at_once(workspace) -> None:
    warm = prepare_training_process(workspace)   # closed while it is still importing
    pid = warm.pid
    started = time.monotonic()
    warm.close()
    assert time.monotonic() - started < 0.5            # close() does not wait on the UI thread
    assert gone(pid, 10) and not warm.available and warm.take(workspace) is None


def test_a_prepared_process_whose_parent_dies_exits(workspace) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from storage.workspace import Workspace\n"
         "from core.operations.training_child import prepare_training_process\n"
         "warm = prepare_training_process(Workspace.open(sys.argv[1], create=False))\n"
         "print(warm.pid, flush=True)\n"
         "time.sleep(60)\n", workspace.location],
        stdout=subprocess.PIPE, text=True, cwd=str(Path(__file__).resolve().parents[1]))
    try:
        pid = int(parent.stdout.readline())
        parent.kill()                        # as a window killed with -9: the child's stdin ends
        parent.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and running(pid):
            time.sleep(0.05)
        assert not running(pid)
    finally:
        parent.kill()
        parent.wait()


def running(pid: int) -> bool:
    """Alive and not a zombie waiting for a reaper."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z")


# -- real runs in prepared processes ----------------------------------------------------------------
@pytest.mark.slow   # a prepared process imports torch and peft, then trains: over 5 s
def test_a_prepared_process_trains_on_the_verdicts_of_start_not_of_preparing(workspace, model_dir) -> None:
    fill_workspace(workspace, 12)
    taken_back_pair, judged_later = add_unlabelled(workspace, 2)
    taken_back = judge(workspace, taken_back_pair, Choice.A)
    values = small(model_dir, max_steps=1, eval_split="none")
    warm = prepare_training_process(workspace, values)
    assert warm.wait_ready(120), "the process never said it had prepared"
    assert warm.summary.problem is None and warm.summary.pairs == 13 and warm.summary.tokens == 0
    # Minds changed after it prepared: one pair judged, another's only verdict taken back.
    added = judge(workspace, judged_later, Choice.B)
    with workspace.writing() as session:
        assert retract_last(session, get_or_create_annotator(session, "ann"), taken_back) == taken_back_pair
    expected = current_train_verdicts(workspace)
    assert added in expected and taken_back not in expected and len(expected) == 13

    session = TrainingSession(workspace, in_child=True, prepared=warm)
    pids = owner_at_start(session, workspace)
    session.start(values=values)
    outcome = session.run()
    assert outcome.status is not None and outcome.error is None
    assert pids == [warm.pid]                                            # trained in the prepared process
    assert trained_verdict_ids(workspace, outcome.run_id) == expected
    assert session.info.train_pairs == 13
    assert not warm.available and gone(warm.pid, 30)                     # served one run, then ended


@pytest.mark.slow
def test_a_run_in_a_fresh_prepared_process_uses_what_it_read(workspace, model_dir) -> None:
    fill_workspace(workspace, 12)
    values = small(model_dir, max_steps=1)
    first = TrainingSession(workspace, in_child=True)   # fills the token and reference caches
    first.start(values=values)
    assert first.run().error is None
    warm = prepare_training_process(workspace, values)
    assert warm.wait_ready(120)
    assert (warm.summary.pairs, warm.summary.tokens, warm.summary.reference) == (12, 12, 12)
    session = TrainingSession(workspace, in_child=True, prepared=warm)
    pids = owner_at_start(session, workspace)
    seen = []
    session.subscribe(seen.append)
    session.start(values=values)
    outcome = session.run()
    assert outcome.error is None and pids == [warm.pid]
    done = next(e for e in seen if type(e).__name__ == "ReferencePassDone")
    assert (done.cached, done.computed) == (12, 0)
    assert trained_verdict_ids(workspace, outcome.run_id) == current_train_verdicts(workspace)


@pytest.mark.slow
def test_a_dead_prepared_process_gives_way_to_a_fresh_one(workspace, model_dir) -> None:
    fill_workspace(workspace, 12)
    warm = prepare_training_process(workspace)
    os.kill(warm.pid, signal.SIGKILL)
    assert gone(warm.pid, 10)
    session = TrainingSession(workspace, in_child=True, prepared=warm)
    pids = owner_at_start(session, workspace)
    session.start(values=small(model_dir, max_steps=1))
    outcome = session.run()
    assert outcome.error is None and outcome.status is not None
    assert len(pids) == 1 and pids[0] not in (warm.pid, os.getpid())


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads /proc to see the process's open files")
def test_a_waiting_prepared_process_holds_no_database_file(workspace, model_dir) -> None:
    fill_workspace(workspace, 8)
    warm = prepare_training_process(workspace, small(model_dir))
    try:
        assert warm.wait_ready(120)
        database = (Path(workspace.location) / "studio.db").resolve()
        held = set()
        for fd in Path(f"/proc/{warm.pid}/fd").iterdir():
            try:
                held.add(Path(os.readlink(fd)))
            except OSError:
                continue
        assert not any(str(path).startswith(str(database)) for path in held), held
        # A writer is not kept waiting: an exclusive transaction goes through at once.
        with workspace.writing() as session:
            session.connection().exec_driver_sql("SELECT 1")
    finally:
        pid = warm.pid
        warm.close()
    assert gone(pid, 10)
