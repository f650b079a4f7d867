"""Blind A/B comparisons on real SQLite workspaces: sides drawn and stored, judged through the
comparison's queue, verdicts mapped back to the models, and kept out of training and the queue."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from core.operations import blind
from core.operations.labelling import LabellingSession
from storage import comparisons as store
from storage.annotation_queue import AnnotationQueue, choice_for_side
from storage.comparisons import ComparedAnswers, ModelSide, side_draws
from storage.ingest import ImportRecord, import_records
from storage.models import Generation, Pair, Response, ResponseOrigin
from storage.training_set import build_training_set
from tests.blind_samples import BASE, blind_workspace, model_of_left, store_sample

def test_held_out_prompts_are_the_eval_split(tmp_path):
    ws = blind_workspace(tmp_path)
    assert blind.held_out_prompts(ws, None) == [f"Question {i}?" for i in range(1, 12, 2)]


def test_stored_comparison_records_each_response_model_and_balanced_sides(tmp_path):
    ws = blind_workspace(tmp_path, prompts=24)
    stored = store_sample(ws, count=12)
    assert len(stored.pair_ids) == 12 and stored.skipped_identical == stored.skipped_stored == 0
    with ws.session() as session:
        for pair_id in stored.pair_ids:
            pair = session.get(Pair, pair_id)
            assert pair.comparison_id == stored.comparison_id and pair.split == "eval"
            for response in (pair.response_a, pair.response_b):
                generation = session.get(Generation, response.generation_id)
                assert response.origin is ResponseOrigin.GENERATED
                # The text says who wrote it: the stored generation must say the same.
                assert response.text.startswith(f"answer of {'A' if generation.run_id is None else 'B'}")
        sampling = {g.label: json.loads(g.settings_json) for g in session.scalars(select(Generation))}
    assert sampling == {"base": {"seed": 1}, "round 1": {"seed": 7920}}
    lefts = [model_of_left(ws, pair_id) for pair_id in stored.pair_ids]
    # Exactly half show the tuned model on the left, in no fixed pattern.
    assert lefts.count("round 1") == 6
    assert lefts not in (["round 1", "base"] * 6, ["base", "round 1"] * 6, sorted(lefts), sorted(lefts)[::-1])
    record = store.get_comparison(ws, stored.comparison_id)
    assert (record.run_a, record.run_b, record.label_a, record.label_b, record.pairs) == (None, "r1", "base",
                                                                                           "round 1", 12)


def test_side_draws_are_balanced_seeded_and_differ_between_comparisons():
    assert side_draws(20, "comparison:1") == side_draws(20, "comparison:1")
    assert side_draws(20, "comparison:1") != side_draws(20, "comparison:2")
    assert sum(side_draws(20, "x")) == 10 and sum(side_draws(21, "x")) in (10, 11)
    assert side_draws(0, "x") == []


def test_identical_or_already_stored_answers_are_left_out_and_counted(tmp_path):
    ws = blind_workspace(tmp_path)
    prompts = blind.held_out_prompts(ws, 3)
    answers = [ComparedAnswers(prompts[0], "same", "same"),
               ComparedAnswers(prompts[1], "good answer 3", "new text"),   # imported answer of that prompt
               ComparedAnswers(prompts[2], "one", "two")]
    stored = store.store_comparison(ws, "x", BASE, ModelSide(BASE.base_model, "r1", "round 1"), {}, {}, answers)
    assert (len(stored.pair_ids), stored.skipped_identical, stored.skipped_stored) == (1, 1, 1)
    assert store.get_comparison(ws, stored.comparison_id).settings["skipped_identical"] == 1


def test_judging_through_the_queue_maps_verdicts_back_to_the_models(tmp_path):
    ws = blind_workspace(tmp_path)
    stored = store_sample(ws, count=6)
    session = blind.open_judging(ws, "ada", stored.comparison_id)
    session.fill()
    seen = []
    # Ada prefers the tuned model's answer on the first three pairs whichever side it is on,
    # the base's on the fourth; a tie, then both bad.
    for step in range(6):
        view = session.current
        assert view is not None and view.source == store.SOURCE   # no model name on screen
        tuned_left = model_of_left(ws, view.pair_id) == "round 1"
        seen.append(tuned_left)
        if step < 4:
            want_tuned = step < 3
            side = "left" if tuned_left == want_tuned else "right"
            session.record(choice_for_side(side, view.swapped))
        else:
            session.record("tie" if step == 4 else "both_bad")
    assert session.current is None and session.queue.remaining_count() == 0
    assert True in seen and False in seen    # the tuned model was on both sides
    result = blind.comparison_result(ws, stored.comparison_id)
    assert (result.outcomes.b_won, result.outcomes.a_won, result.outcomes.ties, result.outcomes.both_bad) == (3, 1, 1, 1)
    # B's rate: (3 + 1/2) / 5 = 0.7; both-bad apart.
    assert result.win_rate.rate == pytest.approx(0.7) and result.win_rate.n == 5 and result.win_rate.both_bad == 1
    assert result.by_annotator["ada"] == result.outcomes
    assert (result.label_a, result.label_b) == ("base", "round 1")
    # Each pair revealed: which model was left, each model's answer, and what was said.
    assert [p.b_shown_left for p in result.pairs] == seen
    assert all(p.answer_a.startswith("answer of A") and p.answer_b.startswith("answer of B") for p in result.pairs)
    assert [p.outcomes for p in result.pairs] == [("b_won",)] * 3 + [("a_won",), ("ties",), ("both_bad",)]


def test_comparison_pairs_stay_out_of_training_and_the_normal_queue(tmp_path):
    ws = blind_workspace(tmp_path)
    before = build_training_set(ws)
    open_pair = import_records(ws, [ImportRecord("Open question?", ["one way", "another way"], line=1)],
                               source="open.jsonl").pair_ids[0]
    stored = store_sample(ws, count=4)
    normal = LabellingSession.open(ws, "bo")
    normal.fill()
    # The normal queue serves the one open preference pair, none of the comparison's four.
    assert normal.current.pair_id == open_pair and not normal.ahead
    assert AnnotationQueue(ws, "bo").remaining_count() == 1
    judging = blind.open_judging(ws, "bo", stored.comparison_id)
    judging.fill()
    while judging.current is not None:
        judging.record("a")
    after = build_training_set(ws)
    assert len(after.examples) == len(before.examples)
    assert not {e.pair_id for e in after.examples} & set(stored.pair_ids)


def test_round_win_rate_pools_comparisons_either_way_round(tmp_path):
    ws = blind_workspace(tmp_path)
    r1, r2 = ModelSide(BASE.base_model, "r1", "round 1"), ModelSide(BASE.base_model, "r2", "round 2")
    assert blind.round_win_rate(ws, "r2", "r1") is None
    forward = store_sample(ws, count=2, side_b=r2)   # base vs r2: not between r1 and r2
    prompts = blind.held_out_prompts(ws, 4)
    one = store.store_comparison(ws, "r2 vs r1", r1, r2, {}, {},
                                 [ComparedAnswers(p, f"r1 on {p}", f"r2 on {p}") for p in prompts[:2]])
    other = store.store_comparison(ws, "r1 vs r2", r2, r1, {}, {},
                                   [ComparedAnswers(p, f"R2 on {p}", f"R1 on {p}") for p in prompts[2:]])

    def judge_all(comparison_id, prefer_label):
        session = blind.open_judging(ws, "cy", comparison_id)
        session.fill()
        while session.current is not None:
            left_is = model_of_left(ws, session.current.pair_id)
            session.record(choice_for_side("left" if left_is == prefer_label else "right", session.current.swapped))

    judge_all(one.comparison_id, "round 2")     # r2 wins both
    judge_all(other.comparison_id, "round 2")   # r2 (here model A) wins both again
    judge_all(forward.comparison_id, "base")
    assert [c.id for c in blind.comparisons_between(ws, "r1", "r2")] == [one.comparison_id, other.comparison_id]
    rate = blind.round_win_rate(ws, "r2", "r1")
    assert (rate.wins, rate.losses, rate.ties) == (4, 0, 0) and rate.rate == 1.0
    assert blind.round_win_rate(ws, "r1", "r2").rate == 0.0
    assert blind.round_win_rate(ws, "r2", None).rate == 0.0


def test_bad_requests_are_refused_with_a_reason(tmp_path):
    ws = blind_workspace(tmp_path)
    with pytest.raises(ValueError, match="two different models"):
        blind.create_comparison(ws, "r1", "r1")
    with pytest.raises(ValueError, match="no run 'nope'"):
        blind.create_comparison(ws, "base", "nope")
    with pytest.raises(LookupError, match="no comparison #99"):
        blind.comparison_result(ws, 99)
    with pytest.raises(LookupError, match="no comparison #99"):
        blind.open_judging(ws, "ada", 99)


@pytest.mark.slow
def test_create_comparison_with_the_demo_model(tmp_path):
    """End to end: the demo model and an adapter of it answer held-out prompts; the answers are
    stored as a comparison (about 30 s on two busy cores: two model loads and 8 replies)."""
    from core.engine.generation import SamplingSettings
    from tests.blind_samples import add_perturbed_adapter_run

    ws = blind_workspace(tmp_path)
    add_perturbed_adapter_run(ws, tmp_path / "r3", "r3", "round 3")
    progress = []
    outcome = blind.create_comparison(ws, "base", "r3", settings=SamplingSettings(max_new_tokens=24, seed=3),
                                      limit=4, progress=progress.append)
    assert not outcome.cancelled and outcome.pairs + outcome.skipped_identical == 4 and outcome.pairs >= 3
    assert progress[-1].done == progress[-1].total == 8
    assert {p.model_label for p in progress} == {"base", "round 3"}
    record = blind.list_comparisons(ws)[0]
    assert record.id == outcome.comparison_id and record.run_b == "r3"
    assert record.settings["sampling_a"]["seed"] == 3 and record.settings["sampling_b"]["seed"] == 3 + blind.SEED_STRIDE_B
    with ws.session() as session:
        texts = session.scalars(select(Response.text).where(Response.generation_id.is_not(None))).all()
    assert len(texts) == 2 * outcome.pairs and all(texts)
    stopped = blind.create_comparison(ws, "base", "r3", settings=SamplingSettings(max_new_tokens=8),
                                      limit=2, should_stop=lambda: True)
    assert stopped.cancelled and len(blind.list_comparisons(ws)) == 1


def test_cli_compare_results_and_refusals(tmp_path, capsys):
    from main import main

    ws = blind_workspace(tmp_path)
    stored = store_sample(ws, count=4)
    session = blind.open_judging(ws, "ada", stored.comparison_id)
    session.fill()
    while session.current is not None:   # the tuned model (response b, written second) wins every pair
        session.record("b")
    location = str(tmp_path / "ws")
    assert main(["compare-results", location, str(stored.comparison_id), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["b_won"], printed["n"], printed["win_rate"]) == (4, 4, 1.0)
    assert printed["low"] == pytest.approx(4 / (4 + 1.959963984540054 ** 2))
    assert main(["compare-results", location, "99"]) == 2
    assert "no comparison #99" in capsys.readouterr().err
    assert main(["compare", location, "--b", "nope"]) == 2
    assert capsys.readouterr().err.strip() == ("error: no run 'nope' in this workspace "
                                               "(use 'base' or a run id from `main.py runs`)")
