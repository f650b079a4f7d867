"""The demo workspace: labelled pairs, pairs to label, an eval split, the demo model as base.

``create_demo_workspace(folder)`` fills a new workspace from the deterministic corpus
generator (no files needed, nothing downloaded) in about a second:

- ``LABELLED_PROMPTS`` prompts, each with two labelled pairs: the helpful answer chosen over
  the curt one and over the reckless one (verdicts of the pseudo-annotator ``demo-labels``);
- ``CANDIDATE_PROMPTS`` prompts with all three answers, unlabelled: three pairs each for
  the user to judge;
- each pair's train/eval split drawn from its content hash (the workspace default);
- settings: ``base_model = "bundled:demo_model"`` and ``training_config`` = ``DEMO_TRAINING``,
  the defaults ``python main.py train`` and the app's Train tab start from.

``ensure_demo_workspace(folder)`` is what the app calls on first start.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Iterable

from core.engine.bundled_models import DEMO_MODEL
from core.demo.corpus import (
    HELD_OUT_SEED,
    WORKSPACE_SEED,
    Conversation,
    assistant_messages,
    generate_conversations,
    user_messages,
)
from storage.annotator_session import pair_count
from storage.ingest import ImportRecord, import_records
from storage.settings import update_settings
from storage.workspace import DB_NAME, Workspace

LABELLED_PROMPTS = 400
LABELLED_PAIRS = 2 * LABELLED_PROMPTS
CANDIDATE_PROMPTS = 100
DEMO_SOURCE = "demo"
DEMO_ANNOTATOR = "demo-labels"

# The demo's training defaults (a dict for TrainingConfig.from_dict). DPO with the SFT term:
# on a model this small plain DPO (beta 0.1) lowers the chosen log-prob too and a third of
# the samples drift into junk (KL ~100 nats); beta 1 stops pushing once the margin is a few
# nats, and the NLL on the chosen answer (weight 4) keeps moving mass to the helpful style
# (measured: KL ~2-3 nats, clean text). About 2-5 minutes on two CPU cores.
DEMO_TRAINING: dict = {
    "base_model": DEMO_MODEL,
    "device": "auto",
    "dtype": "float32",
    "lora_r": 8,
    "lora_alpha": 16.0,
    "lora_target_modules": "all-linear",
    "max_length": 256,
    "loss_type": "sigmoid",
    "beta": 1.0,
    "sft_weight": 4.0,
    "learning_rate": 1e-3,
    "lr_schedule": "linear",
    "warmup_steps": 10,
    "max_steps": 200,
    "batch_size": 16,
    "eval_interval": 50,
    "checkpoint_interval": 100,
    "keep_checkpoints": 1,
    "seed": 42,
    "run_name": "demo",
}


def demo_conversations() -> list[Conversation]:
    """The workspace's prompts: labelled ones first, then the candidates."""
    return generate_conversations(LABELLED_PROMPTS + CANDIDATE_PROMPTS, WORKSPACE_SEED)


def demo_records(conversations: list[Conversation]) -> Iterable[ImportRecord]:
    for i, c in enumerate(conversations):
        prompt = user_messages(c.prompt)
        if i < LABELLED_PROMPTS:
            # Both bad habits are taught away: helpful beats curt, and helpful beats reckless.
            for rejected in ("curt", "reckless"):
                yield ImportRecord(prompt, [assistant_messages(c.responses["helpful"]),
                                            assistant_messages(c.responses[rejected])], chosen=0, line=i + 1)
        else:
            # Order varies with the prompt so the helpful answer is not always response a.
            order = ("helpful", "curt", "reckless")[i % 3:] + ("helpful", "curt", "reckless")[:i % 3]
            yield ImportRecord(prompt, [assistant_messages(c.responses[s]) for s in order], line=i + 1)


def held_out_prompts(n: int) -> list[str]:
    """Prompts for demo-eval that are in none of the workspace's pairs."""
    taken = {c.prompt for c in demo_conversations()}
    return [c.prompt for c in generate_conversations(n, HELD_OUT_SEED, exclude_prompts=taken)]


def populate_demo_workspace(ws: Workspace, progress: Callable[[int, int], None] | None = None) -> None:
    import_records(ws, demo_records(demo_conversations()), source=DEMO_SOURCE, labelled_by=DEMO_ANNOTATOR,
                   progress=progress)
    update_settings(ws, base_model=DEMO_MODEL, training_config=dict(DEMO_TRAINING),
                    demo={"version": 1, "labelled_pairs": LABELLED_PAIRS, "candidate_prompts": CANDIDATE_PROMPTS})


def fill_demo_workspace(ws: Workspace, progress: Callable[[int, int], None] | None = None) -> None:
    """Fill ``ws``, an open workspace without pairs, with the demo (the app's welcome panel).
    All or nothing: the pairs and labels go in one transaction."""
    if pair_count(ws):
        raise FileExistsError(f"{ws.display_location} already holds pairs; the demo goes into an empty workspace")
    populate_demo_workspace(ws, progress)


def _is_new_or_empty(folder: Path) -> bool:
    if not folder.exists():
        return True
    return folder.is_dir() and not any(folder.iterdir())


def create_demo_workspace(folder: str | os.PathLike) -> Path:
    """Create the demo workspace in ``folder`` (new or empty). Built beside it and moved into
    place at the end, so an interrupted start never leaves a half-filled workspace behind."""
    target = Path(folder).expanduser().resolve()
    if not _is_new_or_empty(target):
        raise FileExistsError(f"{target} is not empty; the demo workspace needs a new or empty folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.creating-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with Workspace.open(staging) as ws:
            populate_demo_workspace(ws)
        if target.exists():
            target.rmdir()
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def ensure_demo_workspace(folder: str | os.PathLike) -> bool:
    """Create the demo workspace if ``folder`` is new or empty; True if it created one.

    A folder that already holds a workspace (``studio.db``) or anything else is left alone.
    """
    target = Path(folder).expanduser()
    if (target / DB_NAME).exists() or not _is_new_or_empty(target):
        return False
    create_demo_workspace(target)
    return True
