"""Generating candidates into a real SQLite workspace: the generation row and its settings, the
responses tagged with it and the model, the pairs queued for annotation; the prompts-only file
reader; ``main.py generate`` and its exit codes."""

from __future__ import annotations

import json

import pytest
import torch
from sqlalchemy import select

import main
from core.demo.demo_workspace import create_demo_workspace
from core.engine.generation import SamplingSettings
from core.formats.errors import FormatError
from core.formats.prompts_file import read_prompts_file
from core.operations.generate import (GenerateError, GenerateRequest, generate_candidates, model_choices,
                                      pair_replies)
from storage.annotation_queue import AnnotationQueue
from storage.generations import list_generations, workspace_prompts
from storage.models import Choice, Generation, Pair, Response, ResponseOrigin
from storage.workspace import Workspace


@pytest.fixture(scope="module")
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory, one_thread):
    return create_demo_workspace(tmp_path_factory.mktemp("gen") / "demo")


def test_pairing_is_consecutive_disjoint_pairs_of_distinct_replies():
    assert pair_replies(["a", "b", "c", "d"]) == [("a", "b"), ("c", "d")]
    assert pair_replies(["a", "a", "b", "c", "b"]) == [("a", "b")]          # duplicates never pair
    assert pair_replies(["a", " ", "b"]) == [("a", "b")]                    # nor does an empty reply
    assert pair_replies(["a", "a"]) == []
    assert pair_replies(["a", "b", "c"], "all") == [("a", "b"), ("a", "c"), ("b", "c")]


def test_generated_candidates_are_tagged_and_queued(demo_folder):
    with Workspace.open(demo_folder, create=False) as ws:
        assert [c.key for c in model_choices(ws)] == ["base"]
        unlabelled = workspace_prompts(ws, unlabelled=True)
        remaining_before = AnnotationQueue(ws, "ann").remaining_count()
        settings = SamplingSettings(temperature=0.9, top_p=0.95, max_new_tokens=32, seed=3, n=4)
        seen = []
        outcome = generate_candidates(ws, GenerateRequest("base", prompt_source="unlabelled", limit=3, settings=settings,
                                                          device="cpu"), progress=seen.append)
        assert outcome.generation_id and outcome.prompts == 3 and outcome.replies == 12 and not outcome.cancelled
        assert 1 <= outcome.pairs <= 6 and outcome.changes.pairs and len(outcome.changes.pair_ids) == outcome.pairs
        assert outcome.tokens == seen[-1].tokens and outcome.tokens_per_second > 0
        with ws.session() as session:
            generation = session.get(Generation, outcome.generation_id)
            assert generation.run_id is None and generation.label == "base"
            assert generation.base_model == "bundled:demo_model"
            assert json.loads(generation.settings_json) == {**settings.as_dict(), "pairing": "consecutive"}
            pairs = session.scalars(select(Pair).where(Pair.id.in_(outcome.changes.pair_ids))).all()
            for pair in pairs:
                assert pair.response_a_id < pair.response_b_id and pair.judged_count == 0
                assert pair.comparison_id is None and pair.split in ("train", "eval")
                a, b = session.get(Response, pair.response_a_id), session.get(Response, pair.response_b_id)
                assert a.text != b.text and a.prompt_id == b.prompt_id == pair.prompt_id
                for response in (a, b):
                    assert response.origin == ResponseOrigin.GENERATED
                    assert response.generation_id == outcome.generation_id
                    assert response.model_name == "bundled:demo_model"
        # Queued for annotation (the queue serves them like any pair), and their prompts stay
        # "unlabelled" until judged.
        queue = AnnotationQueue(ws, "ann")
        assert queue.remaining_count() == remaining_before + outcome.pairs
        pair_id = min(outcome.changes.pair_ids)
        assert queue.pair_view(pair_id).left_text in {r.text for r in session_texts(ws, pair_id)}
        (record,) = list_generations(ws)
        assert (record.pairs, record.judged, record.responses) == (outcome.pairs, 0, outcome.responses)
        assert workspace_prompts(ws, unlabelled=True) == unlabelled
        # The same request again: the same replies (seeded), nothing new stored.
        again = generate_candidates(ws, GenerateRequest("base", prompt_source="unlabelled", limit=3, settings=settings,
                                                        device="cpu"))
        assert again.pairs == 0 and again.responses == 0 and again.changes.pair_ids == outcome.changes.pair_ids
        queue.record(pair_id, Choice.A)
        assert list_generations(ws)[0].judged == 1
        assert len(workspace_prompts(ws, unlabelled=True)) == len(unlabelled) - 1



def session_texts(ws, pair_id):
    with ws.session() as session:
        pair = session.get(Pair, pair_id)
        return [session.get(Response, pair.response_a_id), session.get(Response, pair.response_b_id)]


def test_bad_requests_are_refused_in_one_line(demo_folder, tmp_path):
    with Workspace.open(demo_folder, create=False) as ws:
        for request, words in [(GenerateRequest("run-nope", prompts=["hi"]), "no run 'run-nope'"),
                               (GenerateRequest(prompts=["hi"], settings=SamplingSettings(n=1)), "at least 2"),
                               (GenerateRequest(prompt_source=tmp_path / "none.jsonl"), "no such file"),
                               (GenerateRequest(prompts=["  "]), "no prompts")]:
            with pytest.raises(GenerateError, match=words):
                generate_candidates(ws, request)


def test_prompts_files_read_text_chat_csv_and_lines(tmp_path):
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"prompt": "one"}\n\n{"prompt": [{"role": "user", "content": "two"}]}\n')
    assert read_prompts_file(jsonl) == ["one", [{"role": "user", "content": "two"}]]
    csv = tmp_path / "p.csv"
    csv.write_text("id,prompt\n1,first\n2,\"second, with a comma\"\n")
    assert read_prompts_file(csv) == ["first", "second, with a comma"]
    txt = tmp_path / "p.txt"
    txt.write_text("alpha\n\n beta \n")
    assert read_prompts_file(txt) == ["alpha", "beta"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"question": "no"}\n')
    with pytest.raises(FormatError, match=r"bad\.jsonl:2: field 'prompt': missing"):
        read_prompts_file(bad)
    bad.write_text('{"prompt": [{"role": "robot", "content": "x"}]}\n')
    with pytest.raises(FormatError, match=r":1: field 'prompt\[0\]'"):
        read_prompts_file(bad)
    with pytest.raises(FormatError, match="unknown prompts file type"):
        (tmp_path / "p.xml").write_text("<x/>")
        read_prompts_file(tmp_path / "p.xml")


def test_cli_generates_from_a_file_and_refuses_bad_input(demo_folder, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("How do I keep basil alive?\nWhat should I pack for a rainy hike?\n")
    code = main.main(["generate", str(demo_folder), "--prompts", str(prompts), "-n", "2", "--max-new-tokens", "24",
                      "--device", "cpu", "--quiet"])
    out = capsys.readouterr()
    assert code == 0 and "replies to 2 prompts" in out.out and "tokens/s" in out.out
    with Workspace.open(demo_folder, create=False) as ws:
        assert any(g.settings["max_new_tokens"] == 24 for g in list_generations(ws))
    for args, words in [(["--model", "r-unknown"], "no run 'r-unknown'"), (["-n", "1"], "at least 2"),
                        (["--prompts", str(tmp_path / "missing.csv")], "no such file"),
                        (["--temperature", "-1"], "temperature")]:
        code = main.main(["generate", str(demo_folder), "--quiet", *args])
        err = capsys.readouterr().err.strip()
        assert code == 2 and words in err and len(err.splitlines()) == 1, err


def test_a_runs_adapter_is_offered_and_writes_candidates_tagged_with_its_run(demo_folder, tmp_path):
    from peft import LoraConfig, get_peft_model

    from core.engine.generation import load_generator
    from core.engine.modeling import quiet_peft_wrap
    from storage.runs import create_run, update_run
    from tests.tiny_models import randomise_lora

    model, _ = load_generator("bundled:demo_model", device="cpu")
    torch.manual_seed(0)
    with quiet_peft_wrap():
        tuned = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    randomise_lora(tuned, seed=1, scale=0.05)
    adapter = tmp_path / "adapter"
    tuned.save_pretrained(adapter)
    with Workspace.open(demo_folder, create=False) as ws:
        create_run(ws, "r-tuned", name="round-1", config_json="{}", base_model="bundled:demo_model",
                   run_dir=str(tmp_path), total_steps=1)
        update_run(ws, "r-tuned", adapter_path=str(adapter))
        create_run(ws, "r-bare", name="unfinished", config_json="{}", base_model="bundled:demo_model",
                   run_dir=str(tmp_path / "none"), total_steps=1)
        assert [c.key for c in model_choices(ws)] == ["base", "r-tuned"]
        with pytest.raises(GenerateError, match="no saved adapter"):
            generate_candidates(ws, GenerateRequest("r-bare", prompts=["hi"]))
        outcome = generate_candidates(ws, GenerateRequest("r-tuned", prompts=["How do I keep basil alive?"],
                                                          settings=SamplingSettings(n=4, max_new_tokens=24, seed=5),
                                                          device="cpu"))
        assert outcome.replies == 4 and outcome.pairs >= 1
        (generation,) = [g for g in list_generations(ws) if g.id == outcome.generation_id]
        assert generation.run_id == "r-tuned" and generation.label == "round-1" and generation.pairs == outcome.pairs
        with ws.session() as session:
            names = set(session.scalars(select(Response.model_name)
                                        .where(Response.generation_id == outcome.generation_id)).all())
        assert names == {"bundled:demo_model + round-1"}
