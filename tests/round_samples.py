"""Two real rounds on the demo workspace, for the rounds tests and the Rounds screenshot.

Round 1 trains on the demo's labelled pairs; its model (the demo model plus round 1's adapter)
generates candidates for some of the demo's unlabelled prompts; a judge labels them through
the annotation queue; round 2 trains from round 1's adapter on them. The judge is the demo's
style scorer standing in for a person (tests and screenshots only, never the app).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.demo.corpus import user_messages
from core.demo.demo_workspace import DEMO_TRAINING, LABELLED_PROMPTS, create_demo_workspace, demo_conversations
from core.demo.style_scorer import classify
from core.engine.trainer import TrainingObserver, train
from core.engine.training_config import TrainingConfig
from core.engine.training_control import MetricSplit, StepMetrics
from storage.annotation_queue import AnnotationQueue, choice_for_side
from storage.models import Choice
from storage.workspace import Workspace

JUDGE = "style scorer (stand-in)"
RANK = {"helpful": 3, "curt": 1, "other": 1, "reckless": 0}


def quick_config(**values) -> TrainingConfig:
    """The demo's training settings, a few steps long, no checkpoints or evaluations between."""
    return TrainingConfig.from_dict({**DEMO_TRAINING, "max_steps": 8, "eval_interval": 0, "checkpoint_interval": 0,
                                     "eval_split": "none", "warmup_steps": 0, **values})


class FirstSteps(TrainingObserver):
    """Keeps the metrics of every training step."""

    def __init__(self):
        self.steps: list[dict] = []

    def on_event(self, event) -> None:
        if isinstance(event, StepMetrics) and event.split == MetricSplit.TRAIN:
            self.steps.append(event.metrics)


def candidate_prompts(count: int, offset: int = 0) -> list[list[dict]]:
    """Unlabelled demo prompts (chat messages), none of them in a labelled pair."""
    conversations = demo_conversations()[LABELLED_PROMPTS + offset:LABELLED_PROMPTS + offset + count]
    return [user_messages(c.prompt) for c in conversations]


def generate_from(ws: Workspace, run_id: str | None, prompts: list, n: int = 2, seed: int = 0,
                  max_new_tokens: int = 64) -> list[int]:
    """Candidates from ``run_id``'s model (None: the base) stored as pairs to judge; their ids."""
    from core.engine.generation import SamplingSettings
    from core.operations.generate import GenerateRequest, generate_candidates

    settings = SamplingSettings(temperature=0.8, top_p=0.95, max_new_tokens=max_new_tokens, seed=seed, n=n)
    outcome = generate_candidates(ws, GenerateRequest(model_key=run_id or "base", prompts=prompts,
                                                      settings=settings, device="cpu"))
    return sorted(outcome.changes.pair_ids)


def scorer_choice(left_text: str, right_text: str, swapped: bool) -> Choice:
    """The stand-in judge's verdict on a pair as shown: the better style wins (helpful over
    curt or unclassifiable, those over reckless), equal styles tie."""
    left, right = RANK[classify(left_text)], RANK[classify(right_text)]
    if left == right:
        return Choice.TIE
    return choice_for_side("left" if left > right else "right", swapped)


def judge_pairs(ws: Workspace, pair_ids: list[int]) -> dict[int, int]:
    """The stand-in judge's verdict on each pair, by the sides on screen as a person would see
    them; pair id -> verdict id."""
    queue = AnnotationQueue(ws, JUDGE)
    verdicts = {}
    for pair_id in pair_ids:
        view = queue.pair_view(pair_id)
        verdicts[pair_id] = queue.record(pair_id, scorer_choice(view.left_text, view.right_text, view.swapped))
    return verdicts


@dataclass
class TwoRounds:
    ws: Workspace
    round_1: str
    round_2: str
    generated: list[int]            # pairs round 1's model wrote
    verdicts: dict[int, int]        # their verdicts (pair id -> verdict id)
    round_2_steps: list[dict]       # round 2's training-step metrics


def two_rounds(root: Path, prompts: int = 8, round_1_steps: int = 3, round_2_steps: int = 2) -> TwoRounds:
    create_demo_workspace(root)
    ws = Workspace.open(root)
    round_1 = train(ws, quick_config(max_steps=round_1_steps, run_name="round 1"))
    generated = generate_from(ws, round_1, candidate_prompts(prompts))
    verdicts = judge_pairs(ws, generated)
    steps = FirstSteps()
    round_2 = train(ws, quick_config(max_steps=round_2_steps, run_name="round 2", start_from_run=round_1,
                                     start_from="adapter", batch_size=32), steps)
    return TwoRounds(ws, round_1, round_2, generated, verdicts, steps.steps)
