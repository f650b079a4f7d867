"""The demo workspace: made in seconds from the generator, labelled + unlabelled pairs, settings."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from core.engine.bundled_models import DEMO_MODEL, resolve_bundled
from core.demo.demo_workspace import (
    CANDIDATE_PROMPTS,
    DEMO_ANNOTATOR,
    LABELLED_PAIRS,
    create_demo_workspace,
    demo_conversations,
    ensure_demo_workspace,
    held_out_prompts,
)
from core.demo.style_scorer import classify
from core.engine.modeling import ModelLoadError, resolve_model_path
from core.engine.training_config import TrainingConfig
from main import main
from storage.models import Annotator, Pair, Verdict
from storage.training_set import build_training_set
from storage.settings import read_settings
from storage.workspace import Workspace


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo") / "ws"
    started = time.monotonic()
    assert ensure_demo_workspace(folder) is True
    # The app calls this on first start: it must not keep the user waiting.
    assert time.monotonic() - started < 5.0
    return folder


def test_ensure_creates_once_and_leaves_existing_folders_alone(demo_folder, tmp_path):
    assert ensure_demo_workspace(demo_folder) is False
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    assert ensure_demo_workspace(other) is False
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    with pytest.raises(FileExistsError, match="not empty"):
        create_demo_workspace(other)
    # No staging folder is left beside the workspace.
    assert [p.name for p in demo_folder.parent.iterdir()] == ["ws"]


def test_labelled_pairs_prefer_the_helpful_answer_and_split_into_train_and_eval(demo_folder):
    with Workspace.open(demo_folder, create=False) as ws:
        training = build_training_set(ws)
        with ws.session() as s:
            pseudo = s.scalars(select(Annotator).where(Annotator.is_pseudo)).all()
            verdicts = s.scalar(select(func.count()).select_from(Verdict))
            pairs = s.scalar(select(func.count()).select_from(Pair))
    assert [a.name for a in pseudo] == [DEMO_ANNOTATOR]
    assert verdicts == LABELLED_PAIRS
    assert pairs == LABELLED_PAIRS + 3 * CANDIDATE_PROMPTS
    assert training.dropped["unlabelled"] == 3 * CANDIDATE_PROMPTS
    assert len(training.examples) == LABELLED_PAIRS
    assert 40 <= len(training.eval) <= 160 and len(training.train) == LABELLED_PAIRS - len(training.eval)
    rejected_styles = set()
    for example in training.examples:
        assert example.prompt[0]["role"] == "user"
        assert classify(example.chosen[0]["content"]) == "helpful"
        rejected_styles.add(classify(example.rejected[0]["content"]))
    assert rejected_styles == {"curt", "reckless"}


def test_settings_name_the_bundled_model_and_valid_training_defaults(demo_folder):
    with Workspace.open(demo_folder, create=False) as ws:
        settings = read_settings(ws)
    assert settings.base_model == DEMO_MODEL
    assert settings.demo["labelled_pairs"] > 0 and settings.demo["version"] == 1
    config = TrainingConfig.from_dict(settings.training_config).validate()
    assert config.base_model == DEMO_MODEL
    assert config.sft_weight > 0  # the SFT term keeps the small model's text clean under DPO
    location, local = resolve_model_path(config.base_model)
    assert local and location == str(resolve_bundled(DEMO_MODEL))


def test_unknown_bundled_model_fails_clearly():
    with pytest.raises(ModelLoadError, match="no bundled model 'bundled:nothing'"):
        resolve_model_path("bundled:nothing")


def test_held_out_prompts_are_in_no_workspace_pair():
    taken = {c.prompt for c in demo_conversations()}
    held_out = held_out_prompts(200)
    assert len(set(held_out)) == 200 and not taken & set(held_out)


def test_demo_command_creates_a_workspace_and_refuses_a_used_folder(tmp_path, capsys):
    folder = tmp_path / "demo"
    assert main(["demo", str(folder)]) == 0
    assert "python main.py train" in capsys.readouterr().out
    assert (folder / "studio.db").exists()
    assert main(["demo", str(folder)]) == 2
    assert "not empty" in capsys.readouterr().err
