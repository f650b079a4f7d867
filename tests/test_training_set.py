"""Building the training set: the three merge policies, resolutions, formats, the split."""

from __future__ import annotations

import pytest

from storage.annotation_queue import AnnotationQueue
from storage.ingest import ImportRecord, import_records
from storage.models import Choice
from storage.settings import update_settings
from storage.team import resolve
from storage.training_set import build_training_set, merge_votes
from storage.workspace import Workspace

# Every test here runs on SQLite and on PostgreSQL (tests/backends.py).
pytestmark = pytest.mark.both_backends

A, B, TIE, BAD, SKIP = Choice.A, Choice.B, Choice.TIE, Choice.BOTH_BAD, Choice.SKIP


@pytest.fixture
def voted(workspace: Workspace) -> tuple[Workspace, list[int]]:
    """Nine pairs of text prompts, with these current votes by ann, ben, cat:

    P0 a a a     unanimous a          P5 skip skip       only skips
    P1 a a b     majority a           P6 (none)          unlabelled
    P2 a b tie   no majority          P7 b b             unanimous b (two voters)
    P3 tie tie a majority tie         P8 both_bad a      no majority
    P4 both_bad both_bad both_bad
    """
    summary = import_records(workspace, [ImportRecord(f"prompt {i}", [f"first {i}", f"second {i}"])
                                         for i in range(9)], "c")
    p = summary.pair_ids
    table = {
        "ann": [A, A, A, TIE, BAD, SKIP, None, B, BAD],
        "ben": [A, A, B, TIE, BAD, SKIP, None, B, A],
        "cat": [A, B, TIE, A, BAD, None, None, None, None],
    }
    for name, votes in table.items():
        queue = AnnotationQueue(workspace, name, overlap=3)
        for pair_id, vote in zip(p, votes):
            if vote is not None:
                queue.record(pair_id, vote)
    return workspace, p


def _texts(workspace: Workspace, pair_id: int) -> tuple[str, str]:
    view = AnnotationQueue(workspace, "reader").pair_view(pair_id)
    a, b = (view.right_text, view.left_text) if view.swapped else (view.left_text, view.right_text)
    return a, b


def test_majority_policy(voted) -> None:
    ws, p = voted
    result = build_training_set(ws, "majority")
    assert [(e.pair_id, (e.chosen, e.rejected)) for e in result.examples] == [
        (p[0], _texts(ws, p[0])), (p[1], _texts(ws, p[1])), (p[7], _texts(ws, p[7])[::-1])]
    assert result.dropped == {"tie": 1, "both_bad": 1, "skipped": 1, "no_majority": 2, "not_unanimous": 0,
                              "unlabelled": 1}


def test_unanimous_policy(voted) -> None:
    ws, p = voted
    result = build_training_set(ws, "unanimous")
    assert [e.pair_id for e in result.examples] == [p[0], p[7]]
    assert result.dropped == {"tie": 0, "both_bad": 1, "skipped": 1, "no_majority": 0, "not_unanimous": 4,
                              "unlabelled": 1}


def test_all_policy_makes_one_example_per_a_or_b_vote(voted) -> None:
    ws, p = voted
    result = build_training_set(ws, "all")
    per_pair = {}
    for example in result.examples:
        per_pair.setdefault(example.pair_id, []).append(example.chosen)
    a0, b0 = _texts(ws, p[1])
    assert per_pair[p[1]] == [a0, a0, b0]
    assert {pid: len(chosen) for pid, chosen in per_pair.items()} == {p[0]: 3, p[1]: 3, p[2]: 2, p[3]: 1, p[7]: 2,
                                                                      p[8]: 1}
    assert result.dropped["tie"] == 3 and result.dropped["both_bad"] == 4
    assert result.dropped["skipped"] == 1 and result.dropped["unlabelled"] == 1


def test_a_resolution_overrides_every_policy(voted) -> None:
    ws, p = voted
    resolve(ws, p[2], "owner", B)       # no majority -> b
    resolve(ws, p[0], "owner", TIE)     # unanimous a -> dropped as a tie
    for policy in ("majority", "unanimous", "all"):
        examples = build_training_set(ws, policy).examples
        assert [(e.chosen, e.rejected) for e in examples if e.pair_id == p[2]] == [_texts(ws, p[2])[::-1]]
        assert not [e for e in examples if e.pair_id == p[0]]


def test_retracted_and_superseded_votes_do_not_count(voted) -> None:
    ws, p = voted
    cat = AnnotationQueue(ws, "cat", overlap=3)
    cat.record(p[2], A)                  # cat changes her mind on P2: tie -> a, now a/b/a
    assert [e.pair_id for e in build_training_set(ws).examples] == [p[0], p[1], p[2], p[7]]
    cat.undo_last()
    assert [e.pair_id for e in build_training_set(ws).examples] == [p[0], p[1], p[7]]


def test_split_is_the_pairs_stored_split_and_stable(workspace: Workspace) -> None:
    update_settings(workspace, eval_fraction=0.3)
    import_records(workspace, [ImportRecord(f"q{i}", [f"good {i}", f"bad {i}"], chosen=0) for i in range(100)], "f")
    first, second = build_training_set(workspace), build_training_set(workspace)
    assert first.examples == second.examples
    assert len(first.train) + len(first.eval) == 100 and 10 < len(first.eval) < 50
    assert all(e.chosen.startswith("good") for e in first.examples)
    assert {e.split for e in first.eval} == {"eval"}


def test_chat_prompts_give_conversational_examples(workspace: Workspace) -> None:
    prompt = [{"role": "user", "content": "Hi"}]
    import_records(workspace, [ImportRecord(prompt, [[{"role": "assistant", "content": "Hello!"}],
                                                     [{"role": "assistant", "content": "What."}]], chosen=0),
                               ImportRecord([{"role": "user", "content": "Bye"}], ["See you.", "No."], chosen=0)],
                   "chat.jsonl")
    examples = build_training_set(workspace).examples
    assert examples[0].prompt == prompt
    assert examples[0].chosen == [{"role": "assistant", "content": "Hello!"}]
    # Text completions under a chat prompt are wrapped as an assistant turn.
    assert examples[1].rejected == [{"role": "assistant", "content": "No."}]


def test_unknown_policy_is_refused(workspace: Workspace) -> None:
    with pytest.raises(ValueError, match="unknown merge policy 'most'"):
        build_training_set(workspace, "most")
    with pytest.raises(ValueError):
        merge_votes([A], "most")
