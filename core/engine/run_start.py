"""What a training run starts from: the model (a fresh LoRA, or an earlier round's adapter),
the reference it is measured against, and the pairs it trains on (tokenised and split).

Rounds. A run whose ``start_from_run`` names an earlier run (its *parent*) continues the loop:

- ``start_from="adapter"`` — the DPO paper's setting. The parent's adapter is loaded as the
  trainable LoRA, and the reference is the parent's model as well: the paper's π_ref is the
  model the preference data was sampled from (π_SFT there), and a new round's pairs were sampled
  from the previous round's model. The run trains on the pairs that model generated. Its
  reference log-probs are computed with the adapter enabled before the first step (the policy
  still is the parent then) and cached under a key that includes the adapter's weights, so at
  step 0 the loss is ln 2 again and each implicit reward is measured from the parent. The
  parent's LoRA shape (rank, alpha, dropout, target modules) becomes the run's.
- ``start_from="base"`` — a fresh LoRA on the base model, trained on every verdict with the base
  as reference: an offline run over all the data so far; the parent only names the round.

A first round (no ``start_from_run``) is the plain run: a fresh LoRA on all verdicts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from core.engine.config_fields import Problem
from core.engine.training_config import ConfigError, TrainingConfig
from storage.rounds import generated_pairs, pairs_generated_by
from storage.runs import RunRecord, get_run
from storage.splits import unit_draw
from storage.training_set import TrainingSet, build_training_set
from storage.workspace import Workspace

if TYPE_CHECKING:   # torch comes with these; the launch checks import this module on the UI's side
    from core.engine.batching import TokenizedPair
    from core.engine.modeling import LoadedModel

ADAPTER, BASE = "adapter", "base"
#: The settings a run continuing an adapter takes from its parent (the adapter's shape).
LORA_SHAPE = ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules")


@dataclass(frozen=True)
class StartPoint:
    parent_run_id: str | None = None
    start_from: str | None = None        # ADAPTER | BASE | None (a first round)
    adapter_dir: Path | None = None      # the parent's adapter, when training continues it

    @property
    def from_adapter(self) -> bool:
        return self.adapter_dir is not None


@dataclass
class RunData:
    train: list["TokenizedPair"]
    eval: list["TokenizedPair"]
    dropped: dict[str, int] = field(default_factory=dict)


def adapter_folder(ws: Workspace, run: RunRecord) -> Path | None:
    """The run's saved adapter folder (also where the workspace folder holds it after a move)."""
    candidates = [Path(run.adapter_path)] if run.adapter_path else []
    if ws.root is not None:
        candidates.append(ws.runs_dir / run.id / "adapter")
    return next((folder for folder in candidates if (folder / "adapter_config.json").is_file()), None)


def start_problems(ws: Workspace, config: TrainingConfig) -> list[Problem]:
    """Why the run cannot start where ``config`` says (empty when it can): an unknown previous
    round, one without a saved adapter, one on another base model, or no judged pair its model wrote."""
    return _resolve(ws, config)[1]


def resolve_start(ws: Workspace, config: TrainingConfig) -> tuple[StartPoint, TrainingConfig]:
    """The start point and the config the run records (with its parent's LoRA shape when it
    continues the parent's adapter); ``ConfigError`` naming every problem."""
    start, problems, config = _resolve(ws, config)
    if problems:
        raise ConfigError.of(problems)
    return start, config


def _resolve(ws: Workspace, config: TrainingConfig) -> tuple[StartPoint, list[Problem], TrainingConfig]:
    parent_id = str(config.start_from_run).strip()
    if not parent_id:
        return StartPoint(), [], config
    parent = get_run(ws, parent_id)
    if parent is None:
        return StartPoint(), [Problem("start_from_run", f"no run {parent_id!r} in this workspace")], config
    problems = []
    if parent.base_model != config.base_model:
        problems.append(Problem("start_from_run", f"run {parent_id} was trained on {parent.base_model!r}, "
                                                  f"not on {config.base_model!r}; pick the same base model"))
    if config.start_from == BASE:
        return StartPoint(parent_id, BASE), problems, config
    adapter = adapter_folder(ws, parent)
    if adapter is None:
        problems.append(Problem("start_from_run", f"run {parent_id} has no saved adapter to continue; "
                                                  "start from the base model instead"))
    elif not (written := generated_pairs(ws, parent_id)).judged:
        problems.append(Problem("start_from", f"none of the {written.generated} pairs run {parent_id}'s model "
                                              "generated is judged yet; generate candidates from it and label them, "
                                              "or start from the base model"))
    shape = {key: parent.config.get(key, getattr(config, key)) for key in LORA_SHAPE}
    return StartPoint(parent_id, ADAPTER, adapter), problems, replace(config, **shape)


def training_examples(ws: Workspace, config: TrainingConfig, start: StartPoint,
                      built: TrainingSet | None = None) -> TrainingSet:
    """The training set: every verdict's example, or (continuing an adapter) those of the pairs
    the parent's model generated. ``built``: the set the launch checks just built (used when its
    policy is the config's, so 100,000 pairs are not read twice)."""
    if built is not None and built.policy == config.selection_policy:
        training_set = replace(built, examples=list(built.examples), dropped=dict(built.dropped))
    else:
        training_set = build_training_set(ws, config.selection_policy)
    if start.from_adapter:
        generated = pairs_generated_by(ws, start.parent_run_id)
        training_set.examples = [e for e in training_set.examples if e.pair_id in generated]
    return training_set


def format_dropped(dropped: dict[str, int]) -> str:
    parts = [f"{count} {reason}" for reason, count in dropped.items() if count]
    return ", ".join(parts) or "nothing"


def tokenize_run_data(tokenizer, training_set: TrainingSet, config: TrainingConfig, tokenize=None) -> RunData:
    """Tokenised pairs, split into train and held-out (each pair's stored split, or drawn from
    the seed when ``eval_split`` is a fraction); ``ValueError`` when no training pair is left.
    ``tokenize``: in place of ``batching.tokenize_examples`` (same signature), e.g. the
    workspace's cache (``core.engine.token_cache.cached_tokenizer``)."""
    if tokenize is None:
        from core.engine.batching import tokenize_examples as tokenize

    pairs, dropped_tokens = tokenize(tokenizer, training_set.examples, config.max_length, config.truncation_mode)
    dropped = {k: v for k, v in training_set.dropped.items() if v}
    dropped.update(dropped_tokens)
    fraction = config.eval_fraction()
    if fraction is None:
        train = [p for p in pairs if p.split == "train"]
        held_out = [p for p in pairs if p.split == "eval"]
    else:
        held_out = [p for p in pairs if fraction > 0 and unit_draw(str(config.seed), p.example_hash) < fraction]
        held = {id(p) for p in held_out}
        train = [p for p in pairs if id(p) not in held]
    if not train:
        raise ValueError(f"no training pairs left after tokenisation (left out: {format_dropped(dropped)})")
    return RunData(train, held_out, dropped)


def load_start_model(config: TrainingConfig, start: StartPoint) -> "LoadedModel":
    from core.engine.modeling import load_for_training

    return load_for_training(config, start.adapter_dir)


def adapter_fingerprint(adapter_dir: Path) -> str:
    """Changes when the adapter's weights or config change (its files are small: hashed whole)."""
    digest = hashlib.sha256()
    for path in sorted(Path(adapter_dir).iterdir()):
        if path.name == "adapter_config.json" or path.name.startswith("adapter_model"):
            digest.update(path.name.encode())
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def reference_key(model_key: str, start: StartPoint) -> str:
    """The reference cache's model key: the base's, or (continuing an adapter) one naming it too."""
    if not start.from_adapter:
        return model_key
    payload = json.dumps({"base": model_key, "adapter": adapter_fingerprint(start.adapter_dir)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]
