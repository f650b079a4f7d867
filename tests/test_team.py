"""Team queries: per-annotator counts, agreement (hand-computed and published examples),
disagreements and resolutions."""

from __future__ import annotations

import random
from itertools import permutations

import pytest

from storage.agreement import (cohen_kappa, fleiss_kappa, krippendorff_alpha_nominal, percent_agreement)
from storage.annotation_queue import AnnotationQueue
from storage.ingest import ImportRecord, import_records
from storage.models import Choice
from storage.pair_browser import count_pairs, list_pairs
from storage.settings import update_settings
from storage.team import NotAnOwnerError, agreement, annotator_counts, disagreements, may_resolve, resolve
from storage.workspace import Workspace

# Every test here runs on SQLite and on PostgreSQL (tests/backends.py).
pytestmark = pytest.mark.both_backends

A, B, TIE, BAD, SKIP = Choice.A, Choice.B, Choice.TIE, Choice.BOTH_BAD, Choice.SKIP


@pytest.fixture
def team_workspace(workspace: Workspace) -> tuple[Workspace, list[int]]:
    """Five pairs judged by ann, ben and cat as in the hand-computed example below.

         P1    P2    P3    P4    P5
    ann  a     a     b     tie   a
    ben  a     b     b     b     -
    cat  a     a     b     skip  -

    Plus, to be left out of the agreement: a pseudo-annotator (labelled import) on P1 and
    an owner's resolution on P2.
    """
    summary = import_records(workspace, [ImportRecord(f"prompt {i}", [f"x{i}", f"y{i}"]) for i in range(1, 6)], "c")
    p = summary.pair_ids
    table = {"ann": [A, A, B, TIE, A], "ben": [A, B, B, B, None], "cat": [A, A, B, SKIP, None]}
    for name, choices in table.items():
        queue = AnnotationQueue(workspace, name, overlap=3)
        for pair_id, choice in zip(p, choices):
            if choice is not None:
                queue.record(pair_id, choice, seconds_spent=1.0)
    import_records(workspace, [ImportRecord("prompt 1", ["y1", "x1"], chosen=0)], "labels.jsonl")
    resolve(workspace, p[1], "owner", A, note="ben misread")
    return workspace, p


def test_agreement_matches_the_hand_computed_example(team_workspace) -> None:
    ws, _ = team_workspace
    report = agreement(ws)
    # Units with >= 2 labels: P1..P4 (P5 has one; cat's skip is no label).
    assert report.n_pairs == 4 and report.n_annotators == 3
    # Per-unit share of agreeing annotator pairs: P1 1, P2 1/3, P3 1, P4 0 -> mean 7/12.
    assert report.percent_agreement == pytest.approx(7 / 12)
    # Fleiss: P-bar = 7/12; pooled labels a 5, b 5, tie 1 of 11 -> P_e = 51/121;
    # kappa = (7/12 - 51/121) / (1 - 51/121) = 47/168.
    assert report.fleiss_kappa == pytest.approx(47 / 168)
    # Krippendorff: coincidences o_aa 4, o_bb 3, o_ab = o_ba = o_bt = o_tb = 1; n_a 5, n_b 5, n_t 1, n 11;
    # alpha = 1 - (n - 1) * 4 / (2 * (25 + 5 + 5)) = 1 - 40/70 = 3/7.
    assert report.krippendorff_alpha == pytest.approx(3 / 7)
    # Cohen: ann/ben on P1..P4: p_o 1/2, p_e (2*1 + 1*3)/16 = 5/16 -> 3/11;
    # ann/cat on P1..P3: identical -> 1; ben/cat on P1..P3: p_o 2/3, p_e 4/9 -> 2/5.
    kappas = {names: value for names, value in report.cohen_kappa.items()}
    assert kappas[("ann", "ben")] == (pytest.approx(3 / 11), 4)
    assert kappas[("ann", "cat")] == (pytest.approx(1.0), 3)
    assert kappas[("ben", "cat")] == (pytest.approx(2 / 5), 3)
    assert report.to_dict()["cohen_kappa"][0] == {"annotators": ["ann", "ben"], "kappa": pytest.approx(3 / 11), "pairs": 4}


def test_pseudo_annotators_join_the_agreement_only_when_asked(team_workspace) -> None:
    ws, _ = team_workspace
    with_pseudo = agreement(ws, include_pseudo=True)
    assert with_pseudo.n_annotators == 4 and ("ann", "labels.jsonl") in with_pseudo.cohen_kappa


def test_annotator_counts_are_by_current_choice(team_workspace) -> None:
    ws, p = team_workspace
    AnnotationQueue(ws, "cat").record(p[4], BAD)
    AnnotationQueue(ws, "ben").undo_last()  # retracts ben's P4 "b"
    counts = {c.name: c for c in annotator_counts(ws)}
    assert [c.name for c in annotator_counts(ws)] == ["ann", "ben", "cat", "owner", "labels.jsonl"]
    assert counts["ann"].by_choice == {"a": 3, "b": 1, "tie": 1, "both_bad": 0, "skip": 0}
    assert counts["ann"].total == 5 and counts["ann"].seconds_spent == pytest.approx(5.0)
    assert counts["ben"].by_choice == {"a": 1, "b": 2, "tie": 0, "both_bad": 0, "skip": 0}
    assert counts["cat"].by_choice == {"a": 2, "b": 1, "tie": 0, "both_bad": 1, "skip": 1}
    assert counts["labels.jsonl"].is_pseudo and counts["labels.jsonl"].by_choice["b"] == 1


def test_disagreements_list_differing_pairs_and_their_resolution(team_workspace) -> None:
    ws, p = team_workspace
    found = {d.pair_id: d for d in disagreements(ws)}
    # P1: the pseudo-annotator chose y1 (stored b) while people chose a; P2: ben differs; P4: tie vs b.
    assert sorted(found) == [p[0], p[1], p[3]]
    assert found[p[1]].verdicts == {"ann": A, "ben": B, "cat": A} and found[p[1]].resolution == A
    assert found[p[3]].resolution is None
    assert [d.pair_id for d in disagreements(ws, include_resolved=False)] == [p[0], p[3]]


def test_only_an_owner_resolves_when_owners_are_named(team_workspace) -> None:
    ws, p = team_workspace
    update_settings(ws, owners=["owner", "ann"])
    with pytest.raises(NotAnOwnerError, match=r"'ben' cannot resolve pair \d+: only the workspace's owners "
                                              r"\(owner, ann\) resolve disputes"):
        resolve(ws, p[3], " ben ", B)
    assert disagreements(ws, include_resolved=False)[-1].pair_id == p[3]   # nothing was written
    assert isinstance(NotAnOwnerError("x"), PermissionError)
    resolve(ws, p[3], "owner", B)
    assert {d.pair_id: d.resolution for d in disagreements(ws)}[p[3]] == B
    assert may_resolve(("owner",), "owner") and not may_resolve(("owner",), None)
    assert may_resolve((), "anyone")   # no owners named: anyone may


def test_an_owner_who_took_part_in_a_dispute_resolves_it(team_workspace) -> None:
    ws, p = team_workspace
    update_settings(ws, owners=["ben"])
    before = agreement(ws)
    # P2: ann a, ben b, cat a. Ben, an owner, settles it his way: the dispute stays listed,
    # resolved, and his own label is still one side of it.
    resolve(ws, p[1], "ben", B, note="on reflection")
    found = {d.pair_id: d for d in disagreements(ws)}
    assert found[p[1]].verdicts == {"ann": A, "ben": B, "cat": A} and found[p[1]].resolution == B
    assert p[1] not in [d.pair_id for d in disagreements(ws, include_resolved=False)]
    # The pair browser's "disputed" filter keeps it too, and the agreement figures are unchanged.
    assert p[1] in [row.pair_id for row in list_pairs(ws, "disputed")] and count_pairs(ws, "disputed") == 3
    assert agreement(ws) == before
    # A dispute between two people where one of them (the owner) resolves it.
    ws_pair = import_records(ws, [ImportRecord("prompt 9", ["x9", "y9"])], "c").pair_ids[0]
    AnnotationQueue(ws, "ann", overlap=3).record(ws_pair, A)
    AnnotationQueue(ws, "ben", overlap=3).record(ws_pair, B)
    resolve(ws, ws_pair, "ben", A)
    settled = {d.pair_id: d for d in disagreements(ws)}[ws_pair]
    assert settled.verdicts == {"ann": A, "ben": B} and settled.resolution == A


def test_percent_agreement_and_kappas_on_edge_cases() -> None:
    assert percent_agreement([]) is None and fleiss_kappa([{"x": "a"}]) is None
    # Everyone always says "a": agreement is perfect but kappa is undefined (P_e = 1).
    unanimous = [{"x": "a", "y": "a"}] * 3
    assert percent_agreement(unanimous) == 1.0
    assert fleiss_kappa(unanimous) is None and krippendorff_alpha_nominal(unanimous) is None
    assert cohen_kappa(["a", "a"], ["a", "a"]) is None
    assert cohen_kappa(["a", "b", "a", "b"], ["b", "a", "b", "a"]) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        cohen_kappa(["a"], ["a", "b"])


def test_fleiss_kappa_on_the_published_example() -> None:
    # Fleiss (1971) as tabulated on Wikipedia: 10 subjects, 14 raters, 5 categories -> 0.210.
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    units = []
    for row in table:
        labels = [category for category, n in enumerate(row) for _ in range(n)]
        units.append({f"rater{i}": label for i, label in enumerate(labels)})
    assert fleiss_kappa(units) == pytest.approx(0.210, abs=5e-4)


def test_krippendorff_alpha_on_the_published_example() -> None:
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", nominal data: 0.743.
    rows = {"A": "1 2 3 3 2 1 4 1 2 . . .", "B": "1 2 3 3 2 2 4 1 2 5 . 3",
            "C": ". 3 3 3 2 3 4 2 2 5 1 .", "D": "1 2 3 3 2 4 4 1 2 5 1 ."}
    units = [{} for _ in range(12)]
    for observer, values in rows.items():
        for unit, value in zip(units, values.split()):
            if value != ".":
                unit[observer] = value
    assert krippendorff_alpha_nominal(units) == pytest.approx(0.743, abs=5e-4)


def _reference_alpha(units: list[dict]) -> float:
    """Textbook definition: alpha = 1 - D_o / D_e over pairable values, by brute force."""
    rated = [list(u.values()) for u in units if len(u) >= 2]
    pooled = [v for labels in rated for v in labels]
    n = len(pooled)
    d_o = sum(sum(x != y for x, y in permutations(labels, 2)) / (len(labels) - 1) for labels in rated) / n
    d_e = sum(x != y for x, y in permutations(pooled, 2)) / (n * (n - 1))
    return 1 - d_o / d_e


def _reference_fleiss(units: list[dict], categories: list[str]) -> float:
    """Fleiss via the subject x category count matrix (every unit has the same rater count)."""
    matrix = [[list(u.values()).count(c) for c in categories] for u in units]
    n_sub, n_rat = len(matrix), sum(matrix[0])
    p_j = [sum(row[j] for row in matrix) / (n_sub * n_rat) for j in range(len(categories))]
    p_i = [(sum(x * x for x in row) - n_rat) / (n_rat * (n_rat - 1)) for row in matrix]
    p_bar, p_e = sum(p_i) / n_sub, sum(p * p for p in p_j)
    return (p_bar - p_e) / (1 - p_e)


def test_alpha_and_fleiss_agree_with_reference_implementations_on_random_data() -> None:
    rng = random.Random(7)
    categories = ["a", "b", "tie", "both_bad"]
    for _ in range(20):
        ragged = [{f"r{i}": rng.choice(categories[:rng.randint(2, 4)]) for i in rng.sample(range(6), rng.randint(1, 5))}
                  for _ in range(rng.randint(3, 15))]
        if len({v for u in ragged if len(u) >= 2 for v in u.values()}) > 1:
            assert krippendorff_alpha_nominal(ragged) == pytest.approx(_reference_alpha(ragged))
        square = [{f"r{i}": rng.choice(categories) for i in range(4)} for _ in range(rng.randint(3, 15))]
        if len({v for u in square for v in u.values()}) > 1:
            assert fleiss_kappa(square) == pytest.approx(_reference_fleiss(square, categories))


def test_the_team_overview_is_the_three_queries_from_one_read(team_workspace) -> None:
    from collections import Counter

    from storage.team import team_overview
    from storage.verdicts import current_verdicts

    ws, p = team_workspace
    resolve(ws, p[1], "ben", B, note="on reflection")     # ben labelled P2, then settled it: his resolution is newest
    AnnotationQueue(ws, "ann", overlap=3).record(p[3], B)  # a changed mind: the newer label counts
    assert team_overview(ws) == (agreement(ws), annotator_counts(ws), disagreements(ws))
    # The counts are of each annotator's newest current verdict of either kind, as read directly.
    with ws.session() as session:
        expected = Counter((v.annotator_name, v.choice.value) for v in current_verdicts(session))
    counted = Counter({(c.name, choice): n for c in annotator_counts(ws) for choice, n in c.by_choice.items() if n})
    assert counted == expected


def test_seconds_spent_count_only_current_verdicts(team_workspace) -> None:
    from storage.team import team_overview

    ws, p = team_workspace
    ann = AnnotationQueue(ws, "ann", overlap=3)
    ann.record(p[3], B, seconds_spent=4.0)     # a changed mind: the older label's 1 s no longer counts
    cat = AnnotationQueue(ws, "cat", overlap=3)
    cat.record(p[4], A, seconds_spent=9.0)
    cat.undo_last()                            # retracted: its 9 s never count
    resolve(ws, p[2], "ben", B)                # ben's label on P3 keeps its second beside his resolution
    counts = {c.name: c for c in team_overview(ws)[1]}
    assert counts["ann"].total == 5 and counts["ann"].seconds_spent == pytest.approx(4 * 1.0 + 4.0)
    assert counts["cat"].seconds_spent == pytest.approx(4.0)
    assert counts["ben"].seconds_spent == pytest.approx(4.0)
    assert counts == {c.name: c for c in annotator_counts(ws)}


def test_judges_who_differ_on_a_blind_pair_are_no_dispute(team_workspace) -> None:
    from storage.team import team_overview
    from tests.test_pair_history import _blind_pair

    ws, p = team_workspace
    comparison_id, blind = _blind_pair(ws)
    for name, choice in (("ann", A), ("ben", B)):
        AnnotationQueue(ws, name, comparison_id=comparison_id).record(blind, choice)
    assert blind not in [d.pair_id for d in disagreements(ws)]
    assert [d.pair_id for d in team_overview(ws)[2]] == [d.pair_id for d in disagreements(ws)] == [p[0], p[1], p[3]]
