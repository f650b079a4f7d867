"""Bundles: one annotator's verdicts carried by content to the owner's workspace.

The done-when test: two annotators label different and overlapping pairs in their own copies
of a workspace made from the same import file (the copies' ids differ); their bundles merged
into the owner's workspace give the same current verdicts, per annotator and per pair
content, as labelling in it directly; merging a bundle twice changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import aliased

import main
from core.formats.bundle_file import BUNDLE_FORMAT, BUNDLE_VERSION
from core.operations.bundles import export_bundle, merge_bundle
from core.operations.data import InputRefused, import_file
from storage.annotation_queue import AnnotationQueue
from storage.bundles import pair_key
from storage.ingest import ImportRecord, import_records, prompt_hash, response_hash
from storage.models import (Annotator, Choice, Pair, Prompt, Response, ResponseOrigin, Verdict)
from storage.team import disagreements
from storage.verdicts import add_verdict, get_or_create_annotator, retract_last
from storage.workspace import Workspace

pytestmark = pytest.mark.both_backends   # the owner's workspace on SQLite and on PostgreSQL

PROMPTS = [f"How do I {verb} a {noun}?" for verb, noun in
           [("bake", "cake"), ("fix", "bike"), ("paint", "fence"), ("plant", "tree"), ("tune", "guitar")]]


def candidates_file(path: Path, prompts=PROMPTS, extra: str = "") -> Path:
    rows = [{"prompt": p, "responses": [f"{p} first way{extra}", f"{p} second way{extra}", f"{p} third way{extra}"]}
            for p in prompts]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def find_pair(ws: Workspace, prompt, first, second) -> tuple[int, bool]:
    """(pair id, whether ``first`` is the pair's stored response b)."""
    with ws.session() as s:
        pid = s.scalar(select(Prompt.id).where(Prompt.hash == prompt_hash(prompt)))
        ids = dict(s.execute(select(Response.hash, Response.id).where(Response.prompt_id == pid)).all())
        first_id, second_id = ids[response_hash(first)], ids[response_hash(second)]
        pair = s.scalar(select(Pair.id).where(Pair.response_a_id == min(first_id, second_id),
                                              Pair.response_b_id == max(first_id, second_id)))
    return pair, first_id > second_id


def label(ws: Workspace, name: str, prompt, first, second, choice: str, note: str = "", seconds: float = 1.5) -> None:
    """``name`` judges the pair (first, second) of ``prompt``: choice "first"/"second" prefers that
    response; "tie", "both_bad", "skip" as they are."""
    pair_id, flipped = find_pair(ws, prompt, first, second)
    stored = {"first": Choice.B if flipped else Choice.A, "second": Choice.A if flipped else Choice.B}.get(choice)
    with ws.writing() as s:
        add_verdict(s, pair_id, get_or_create_annotator(s, name), stored or Choice(choice), seconds, note)


def undo(ws: Workspace, name: str) -> None:
    with ws.writing() as s:
        retract_last(s, get_or_create_annotator(s, name))


def current_by_content(ws: Workspace) -> dict[tuple[str, str], tuple[str, str, float]]:
    """(annotator, pair key) -> (choice in hash order, note, seconds) of every person's current verdict."""
    a, b, newer = aliased(Response), aliased(Response), aliased(Verdict)
    with ws.session() as s:
        rows = s.execute(
            select(Annotator.name, Prompt.hash, a.hash, b.hash, Verdict.choice, Verdict.note, Verdict.seconds_spent)
            .join(Verdict, Verdict.annotator_id == Annotator.id).join(Pair, Pair.id == Verdict.pair_id)
            .join(Prompt, Prompt.id == Pair.prompt_id).join(a, a.id == Pair.response_a_id)
            .join(b, b.id == Pair.response_b_id)
            .where(Annotator.is_pseudo.is_(False), Verdict.retracted_at.is_(None),
                   ~select(newer.id).where(newer.pair_id == Verdict.pair_id, newer.annotator_id == Verdict.annotator_id,
                                           newer.retracted_at.is_(None), newer.id > Verdict.id).exists())).all()
    result = {}
    for name, p_hash, a_hash, b_hash, choice, note, seconds in rows:
        choice = Choice(choice)
        if a_hash > b_hash and choice in (Choice.A, Choice.B):
            choice = Choice.B if choice is Choice.A else Choice.A
        result[(name, pair_key(p_hash, a_hash, b_hash))] = (choice.value, note, seconds)
    return result


def dump(ws: Workspace) -> dict[str, list]:
    """Every row of the tables a merge writes, in id order."""
    with ws.session() as s:
        return {model.__tablename__: sorted((tuple(row) for row in s.execute(select(model.__table__)).all()),
                                            key=lambda row: row[0])
                for model in (Annotator, Prompt, Response, Pair, Verdict)}


def new_ws(location: Path | str, *files: Path) -> Workspace:
    ws = Workspace.open(location)
    for file in files:
        import_file(ws, file)
    return ws


@pytest.fixture
def workspaces(workspace_location: str, tmp_path: Path):
    """``make(name, *files)``: a workspace holding those imports, "owner" on the backend under
    test (SQLite, or PostgreSQL in the [postgresql] runs), the annotators' copies SQLite folders
    (a laptop's). All are closed at the end."""
    opened: list[Workspace] = []

    def make(name: str, *files: Path) -> Workspace:
        ws = new_ws(workspace_location if name == "owner" else tmp_path / name, *files)
        opened.append(ws)
        return ws

    yield make
    for ws in opened:
        ws.close()


P = PROMPTS


def ways(i: int, x: str, y: str) -> tuple[str, str, str]:
    return P[i], f"{P[i]} {x} way", f"{P[i]} {y} way"


# Each step: (annotator, (prompt, first, second), choice, note) or ("undo", annotator).
ALICE = [("alice", ways(0, "first", "second"), "first", "clearer"),
         ("alice", ways(0, "first", "third"), "second", ""),
         ("alice", ways(1, "second", "third"), "tie", ""),
         ("alice", ways(1, "second", "third"), "second", "changed my mind"),   # a newer verdict, same pair
         ("alice", ways(2, "first", "second"), "both_bad", ""),
         ("undo", "alice"),                                                    # takes back the both_bad
         ("alice", ways(3, "first", "third"), "skip", ""),
         ("alice", ways(4, "first", "second"), "first", "")]
BOB = [("bob", ways(0, "first", "second"), "second", "too long"),              # disagrees with alice
       ("bob", ways(1, "second", "third"), "second", ""),                      # agrees with alice's newer
       ("bob", ways(2, "second", "third"), "first", ""),
       ("bob", ways(4, "first", "second"), "first", ""),
       ("undo", "bob"),
       ("bob", ways(4, "first", "second"), "second", "")]
BOB_ONLY = [("bob", ("Write a haiku", "Autumn moonlight", "A worm digs silently"), "second", "")]


def play(ws: Workspace, steps) -> None:
    for step in steps:
        if step[0] == "undo":
            undo(ws, step[1])
        else:
            name, (prompt, first, second), choice, note = step
            label(ws, name, prompt, first, second, choice, note)


def haiku_file(path: Path) -> Path:
    path.write_text(json.dumps({"prompt": "Write a haiku", "responses": ["Autumn moonlight", "A worm digs silently"],
                                "split": "eval"}) + "\n", encoding="utf-8")
    return path


def test_merged_bundles_give_the_same_verdicts_as_labelling_directly(tmp_path: Path, workspaces) -> None:
    shared = candidates_file(tmp_path / "pairs.jsonl")
    other = candidates_file(tmp_path / "other.jsonl", ["What is a monad?", "Why is the sky blue?"])
    haiku = haiku_file(tmp_path / "haiku.jsonl")
    owner = workspaces("owner", shared)
    alice = workspaces("alice", other, shared)      # another file first: every id differs
    bob = workspaces("bob", shared, haiku)          # a pair the owner does not have
    direct = workspaces("direct", shared, haiku)
    play(alice, ALICE)
    play(bob, BOB + BOB_ONLY)
    play(direct, ALICE + BOB + BOB_ONLY)
    assert find_pair(alice, *ways(0, "first", "second"))[0] != find_pair(owner, *ways(0, "first", "second"))[0]

    alice_report = export_bundle(alice, "alice", tmp_path / "alice.dpobundle")
    bob_report = export_bundle(bob, "bob", tmp_path / "bob.dpobundle")
    assert (alice_report.verdicts, alice_report.retractions, alice_report.pairs) == (5, 1, 6)
    assert (bob_report.verdicts, bob_report.retractions, bob_report.pairs) == (5, 1, 5)

    merged_alice = merge_bundle(owner, tmp_path / "alice.dpobundle")
    assert (merged_alice.verdicts_added, merged_alice.already_present, merged_alice.pairs_added) == (5, 0, 0)
    assert merged_alice.annotator_created and merged_alice.changes.annotators and merged_alice.changes.verdicts
    merged_bob = merge_bundle(owner, tmp_path / "bob.dpobundle")
    assert (merged_bob.verdicts_added, merged_bob.pairs_added) == (5, 1)
    assert merged_bob.changes.pairs and len(merged_bob.changes.pair_ids) == 5

    expected = current_by_content(direct)
    assert current_by_content(owner) == expected
    assert len(expected) == 10
    # The owner's counts and disagreements are those of labelling directly.
    with owner.session() as s, direct.session() as d:
        counts = lambda session: sorted(session.execute(  # noqa: E731
            select(Prompt.text, Pair.judged_count).join(Pair, Pair.prompt_id == Prompt.id)).all())
        assert counts(s) == counts(d)
    haiku_pair, _ = find_pair(owner, "Write a haiku", "Autumn moonlight", "A worm digs silently")
    with owner.session() as s:
        assert s.get(Pair, haiku_pair).split == "eval" and s.get(Pair, haiku_pair).source == "haiku.jsonl"
    disputed = {d.pair_id: d.verdicts for d in disagreements(owner)}
    expected_disputes = {find_pair(owner, *ways(i, "first", "second"))[0] for i in (0, 4)}
    assert set(disputed) == expected_disputes and all(set(d) == {"alice", "bob"} for d in disputed.values())
    assert len(disagreements(direct)) == 2

    # Merging the same bundles again changes nothing at all.
    before = dump(owner)
    again = merge_bundle(owner, tmp_path / "alice.dpobundle")
    assert (again.verdicts_added, again.already_present, again.retracted, again.pairs_added) == (0, 5, 0, 0)
    assert not again.changes and not again.annotator_created
    merge_bundle(owner, tmp_path / "bob.dpobundle")
    assert dump(owner) == before


def test_the_newer_verdict_of_the_same_annotator_stays_current(tmp_path: Path, workspaces) -> None:
    shared = candidates_file(tmp_path / "pairs.jsonl")
    owner, copy = workspaces("owner", shared), workspaces("copy", shared)
    label(owner, "alice", *ways(0, "first", "second"), "first", "said at the owner's desk")
    label(copy, "alice", *ways(0, "first", "second"), "second", "later, at home")   # newer: wins
    label(copy, "alice", *ways(1, "first", "second"), "tie")                        # older: loses
    label(owner, "alice", *ways(1, "first", "second"), "first", "newer, at the desk")
    export_bundle(copy, "alice", tmp_path / "alice.dpobundle")
    report = merge_bundle(owner, tmp_path / "alice.dpobundle")
    assert (report.verdicts_added, report.kept_newer, report.already_present) == (1, 1, 0)
    notes = {key[1]: value[1] for key, value in current_by_content(owner).items()}
    assert sorted(notes.values()) == ["later, at home", "newer, at the desk"]
    assert not disagreements(owner)   # one annotator never disagrees with themself
    before = dump(owner)
    assert not merge_bundle(owner, tmp_path / "alice.dpobundle").changes
    assert dump(owner) == before


def test_a_verdict_taken_back_after_a_merge_is_taken_back_by_the_next_merge(tmp_path: Path, workspaces) -> None:
    shared = candidates_file(tmp_path / "pairs.jsonl")
    owner, copy = workspaces("owner", shared), workspaces("copy", shared)
    label(copy, "alice", *ways(0, "first", "second"), "first")
    label(copy, "alice", *ways(0, "first", "second"), "second")
    export_bundle(copy, "alice", tmp_path / "one.dpobundle")
    merge_bundle(owner, tmp_path / "one.dpobundle")
    undo(copy, "alice")                                    # back to "first" in the copy
    export_bundle(copy, "alice", tmp_path / "two.dpobundle")
    report = merge_bundle(owner, tmp_path / "two.dpobundle")
    assert report.retracted == 1 and report.verdicts_added == 1 and report.changes.verdicts
    assert current_by_content(owner) == current_by_content(copy)
    pair_id, _ = find_pair(owner, *ways(0, "first", "second"))
    with owner.session() as s:
        rows = s.execute(select(Verdict.retracted_at.is_(None)).where(Verdict.pair_id == pair_id)
                         .order_by(Verdict.id)).scalars().all()
    assert rows == [False, True]   # the newer one taken back, the older one added: current again


def test_chat_pairs_and_generated_responses_travel_with_their_content(tmp_path: Path, workspaces) -> None:
    chat = [{"role": "user", "content": "Name a colour"}]
    records = [ImportRecord(chat, [[{"role": "assistant", "content": "Blue"}],
                                   [{"role": "assistant", "content": "Seven"}]], split="eval")]
    copy, owner = workspaces("copy"), workspaces("owner")
    import_records(copy, records, "chat.jsonl")
    import_records(copy, [ImportRecord("Say hi", ["hi", "hello there"])], "generated",
                   origin=ResponseOrigin.GENERATED, model_name="tiny-llama+run-3")
    with copy.writing() as s:
        ada = get_or_create_annotator(s, "ada")
        for pair_id in s.scalars(select(Pair.id)).all():
            add_verdict(s, pair_id, ada, Choice.A, 2.0, "ok")
    export_bundle(copy, "ada", tmp_path / "ada.dpobundle")
    report = merge_bundle(owner, tmp_path / "ada.dpobundle")
    assert (report.pairs_added, report.verdicts_added) == (2, 2)
    assert current_by_content(owner) == current_by_content(copy)
    with owner.session() as s:
        prompt = s.scalar(select(Prompt).where(Prompt.hash == prompt_hash(chat)))
        assert prompt.messages == chat
        generated = s.scalars(select(Response).where(Response.origin == ResponseOrigin.GENERATED)).all()
        assert {r.text for r in generated} == {"hi", "hello there"}
        assert {r.model_name for r in generated} == {"tiny-llama+run-3"}
        owner_splits = sorted(s.execute(select(Prompt.text, Pair.split).join(Pair, Pair.prompt_id == Prompt.id)).all())
    with copy.session() as s:
        assert owner_splits == sorted(s.execute(select(Prompt.text, Pair.split)
                                                .join(Pair, Pair.prompt_id == Prompt.id)).all())
    assert ("User: Name a colour", "eval") in owner_splits


def test_a_verdict_keeps_its_client_id_and_a_merged_one_without_gets_the_bundle_id(tmp_path: Path, workspaces) -> None:
    shared = candidates_file(tmp_path / "pairs.jsonl")
    owner, copy = workspaces("owner", shared), workspaces("copy", shared)
    with_id, _ = find_pair(copy, *ways(0, "first", "second"))
    AnnotationQueue(copy, "alice", overlap=1).record(with_id, Choice.A, seconds_spent=2.0, client_id="c0ffee" * 5 + "00")
    label(copy, "alice", *ways(1, "first", "second"), "second")    # no client id
    export_bundle(copy, "alice", tmp_path / "alice.dpobundle")
    lines = [json.loads(line) for line in (tmp_path / "alice.dpobundle").read_text(encoding="utf-8").splitlines()]
    assert sorted(str(line.get("client_id")) for line in lines if line.get("type") == "verdict") == \
        ["None", "c0ffee" * 5 + "00"]
    merge_bundle(owner, tmp_path / "alice.dpobundle")
    with owner.session() as s:
        ids = dict(s.execute(select(Verdict.pair_id, Verdict.client_id)).all())
    assert ids[find_pair(owner, *ways(0, "first", "second"))[0]] == "c0ffee" * 5 + "00"
    made = ids[find_pair(owner, *ways(1, "first", "second"))[0]]
    assert made == next(line["verdict"] for line in lines if line.get("type") == "verdict" and not line["client_id"])
    # The owner's copy exported and merged back into the annotator's copy: all present already.
    export_bundle(owner, "alice", tmp_path / "back.dpobundle")
    back = merge_bundle(copy, tmp_path / "back.dpobundle")
    assert (back.verdicts_added, back.already_present) == (0, 2) and not back.changes


@pytest.fixture
def bundle_path(tmp_path: Path) -> Path:
    copy = new_ws(tmp_path / "copy", candidates_file(tmp_path / "pairs.jsonl"))
    label(copy, "alice", *ways(0, "first", "second"), "first")
    label(copy, "alice", *ways(1, "first", "second"), "second")
    path = tmp_path / "alice.dpobundle"
    export_bundle(copy, "alice", path)
    copy.close()
    return path


def rewrite(path: Path, edit) -> Path:
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    edit(lines)
    out = path.with_name("edited.dpobundle")
    out.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return out


def _set(index: int, **fields):
    return lambda lines: lines[index].update(fields)


BAD_BUNDLES = [
    ("not a bundle", lambda lines: lines[0].pop("format"), "not a DPO Studio bundle"),
    ("newer version", _set(0, version=BUNDLE_VERSION + 1), "newer than this DPO Studio reads"),
    ("odd version", _set(0, version="one"), "unknown bundle format version"),
    ("changed response", lambda lines: lines[1]["responses"].__setitem__(0, "edited"), "does not match the pair"),
    ("changed choice", _set(3, choice="tie"), "does not match the verdict"),
    ("unknown choice", _set(3, choice="maybe"), "field 'choice'"),
    ("unknown pair", _set(4, pair="0" * 32), "names no pair listed before it"),
    ("cut short", lambda lines: lines.pop(), "incomplete or damaged"),
    ("bad time", _set(3, created_at="yesterday"), "field 'created_at'"),
]


@pytest.mark.parametrize("what, edit, message", BAD_BUNDLES, ids=[b[0] for b in BAD_BUNDLES])
def test_a_bad_bundle_is_refused_whole_with_nothing_written(tmp_path, workspaces, bundle_path, what, edit,
                                                           message) -> None:
    owner = workspaces("owner", candidates_file(tmp_path / "pairs.jsonl"))
    before = dump(owner)
    bad = rewrite(bundle_path, edit)
    with pytest.raises(InputRefused, match=message) as refused:
        merge_bundle(owner, bad)
    assert str(refused.value).startswith(str(bad)) and "\n" not in str(refused.value)
    assert dump(owner) == before


def test_a_bundle_of_a_name_used_by_an_import_is_refused(workspaces, bundle_path) -> None:
    owner = workspaces("owner")
    import_records(owner, [ImportRecord("Q", ["x", "y"], chosen=0)], "alice")   # "alice" the file's labels
    before = dump(owner)
    with pytest.raises(InputRefused, match="imported file's labels"):
        merge_bundle(owner, bundle_path)
    assert dump(owner) == before


def test_export_refuses_unknown_and_pseudo_annotators(tmp_path) -> None:
    ws = Workspace.open(tmp_path / "ws")
    import_records(ws, [ImportRecord("Q", ["x", "y"], chosen=0)], "labels.jsonl")
    with pytest.raises(InputRefused, match="no annotator named 'zed'"):
        export_bundle(ws, "zed", tmp_path / "z.dpobundle")
    with pytest.raises(InputRefused, match="imported file's labels"):
        export_bundle(ws, "labels.jsonl", tmp_path / "z.dpobundle")
    with pytest.raises(InputRefused, match="no such folder"):
        export_bundle(ws, "labels.jsonl", tmp_path / "missing" / "z.dpobundle")
    assert not (tmp_path / "z.dpobundle").exists()


def test_cli_exports_merges_and_refuses_bad_files(tmp_path, capsys, bundle_path) -> None:
    owner = tmp_path / "owner"
    assert main.main(["import", str(owner), str(tmp_path / "pairs.jsonl")]) == 0
    capsys.readouterr()
    assert main.main(["bundle", "merge", str(owner), str(bundle_path)]) == 0
    out = capsys.readouterr().out
    assert "added 2, already present 0" in out and "pairs added 0" in out and "annotator alice created" in out
    assert main.main(["bundle", "merge", str(owner), str(bundle_path)]) == 0
    assert "added 0, already present 2" in capsys.readouterr().out
    out_file = tmp_path / "again.dpobundle"
    assert main.main(["bundle", "export", str(owner), "--annotator", "alice", str(out_file)]) == 0
    assert "wrote 2 verdicts of alice on 2 pairs" in capsys.readouterr().out
    assert json.loads(out_file.read_text(encoding="utf-8").splitlines()[0])["format"] == BUNDLE_FORMAT

    not_a_bundle = tmp_path / "pairs.jsonl"
    assert main.main(["bundle", "merge", str(owner), str(not_a_bundle)]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().count("\n") == 0 and "not a DPO Studio bundle" in captured.err
    assert "Traceback" not in captured.err
    assert main.main(["bundle", "merge", str(tmp_path / "nowhere"), str(bundle_path)]) == 2
    assert not (tmp_path / "nowhere").exists()
    assert main.main(["bundle", "export", str(owner), "--annotator", "nobody", str(out_file)]) == 2
    assert "no annotator named 'nobody'" in capsys.readouterr().err
