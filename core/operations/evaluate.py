"""Evaluate runs checkpoint by checkpoint: the paper's reward-against-KL frontier, per run.

For each checkpoint of a run (``checkpoints/step-N``, then the final adapter; first the base
model itself, the frontier's origin) a ``CheckpointEval`` row holds

- the held-out preference accuracy and reward margin: the DPO metrics of the workspace's
  ``eval`` split (``core.engine.evaluation.evaluate_pairs``, the base model as reference);
- the KL to the base, nats per reply, with its standard error: the sequence-level estimate of
  ``core.engine.sampled_kl`` from replies sampled at temperature 1;
- for the demo domain, the helpful share: replies sampled at the demo evaluation's temperature
  (``core.demo.demo_eval.DEFAULT_TEMPERATURE``) on its held-out prompts, classified by the style scorer.

Rows are cached in the run folder (``evaluation.json``), keyed by checkpoint, each with a
fingerprint of what it was measured on (the options, the adapter file, the held-out pairs);
evaluating again recomputes only what changed, and ``cached_evaluation`` reads the file alone,
so reopening a screen is instant. ``evaluate_runs`` loads models: call it from a worker; importing
this module (and ``cached_evaluation``, ``runs_and_cached``) does not import torch.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Sequence

from core.engine.training_config import TrainingConfig
from storage.models import RunStatus
from storage.runs import RunRecord, get_run
from storage.workspace import Workspace

EVALUATION_FILE = "evaluation.json"
CACHE_VERSION = 1
BASE_LABEL, FINAL_LABEL = "base", "final"


class EvaluateError(RuntimeError):
    """A run cannot be evaluated; the message says which and why."""


class EvaluationCancelled(Exception):
    """Stopped before the end; the rows finished so far are in the cache."""


@dataclass(frozen=True)
class EvaluateOptions:
    prompts: int = 24               # prompts sampled for the KL (and the helpful share)
    samples_per_prompt: int = 2     # KL replies per prompt
    max_new_tokens: int = 96
    seed: int = 0
    include_base: bool = True       # a row for the base model (KL 0: the frontier's origin)
    all_checkpoints: bool = True    # False: the final adapter only

    def fingerprint(self) -> dict:
        """What a cached row depends on (include_base / all_checkpoints only choose the rows)."""
        return {"prompts": self.prompts, "samples_per_prompt": self.samples_per_prompt,
                "max_new_tokens": self.max_new_tokens, "seed": self.seed}


@dataclass(frozen=True)
class CheckpointEval:
    label: str                      # "base", "step-40", "final"
    step: int
    pairs: int                      # held-out pairs scored
    accuracy: float | None          # rewards/accuracies on them (None without held-out pairs)
    margin: float | None            # rewards/margins, mean over pairs
    chosen_reward: float | None
    rejected_reward: float | None
    loss: float | None
    kl: float                       # nats per reply
    kl_stderr: float
    kl_samples: int
    kl_per_token: float
    helpful_share: float | None     # demo domain only
    seconds: float = 0.0            # how long it took to measure

    @classmethod
    def from_dict(cls, data: dict) -> "CheckpointEval":
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass
class RunEvaluation:
    run_id: str
    run_name: str
    beta: float | None
    rows: list[CheckpointEval] = field(default_factory=list)    # in step order
    computed: int = 0               # rows measured by this call
    reused: int = 0                 # rows taken from the cache

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "run_name": self.run_name, "beta": self.beta,
                "rows": [asdict(r) for r in self.rows], "computed": self.computed, "reused": self.reused}


@dataclass(frozen=True)
class EvaluateProgress:
    run_id: str
    run_name: str
    checkpoint: str                 # the label being measured
    index: int                      # 1-based, over all runs' checkpoints to measure
    count: int
    stage: str                      # "loading", "sampling", "log-probs, policy", …
    done: int
    total: int


@dataclass(frozen=True)
class _Target:
    label: str
    step: int
    adapter: Path | None            # None: the base model

    def fingerprint(self) -> str:
        if self.adapter is None:
            return BASE_LABEL
        weights = self.adapter / "adapter_model.safetensors"
        stat = weights.stat()
        return f"{stat.st_size}:{stat.st_mtime_ns}"


def run_folder(ws: Workspace, run: RunRecord) -> Path:
    folder = Path(run.run_dir)
    if not folder.is_dir() and ws.root is not None:
        folder = ws.runs_dir / run.id           # the workspace folder may have moved
    return folder


def _final_adapter(ws: Workspace, run: RunRecord) -> Path | None:
    candidates = [Path(run.adapter_path)] if run.adapter_path else []
    candidates.append(run_folder(ws, run) / "adapter")
    return next((c for c in candidates if (c / "adapter_model.safetensors").is_file()), None)


def checkpoint_targets(ws: Workspace, run: RunRecord, options: EvaluateOptions) -> list[_Target]:
    """What to measure, in step order: the base, each checkpoint, the final adapter (a checkpoint
    at the final adapter's step is the same weights and is left out)."""
    from core.engine.checkpoints import STATE_FILE, list_checkpoints   # imports torch: not at module level

    targets = []
    for path in list_checkpoints(run_folder(ws, run)) if options.all_checkpoints else []:
        step = int(json.loads((path / STATE_FILE).read_text(encoding="utf-8")).get("step", path.name[5:]))
        if (path / "adapter_model.safetensors").is_file():
            targets.append(_Target(path.name, step, path))
    # A running run's adapter folder, if any, is left from before a resume: not its step's weights.
    final = _final_adapter(ws, run) if run.status != RunStatus.RUNNING else None
    if final is not None:
        targets = [t for t in targets if t.step != run.step]
        targets.append(_Target(FINAL_LABEL, run.step, final))
    if not targets:
        raise EvaluateError(f"run {run.id} ({run.name}) has no checkpoint or adapter yet "
                            f"(status {run.status.value})")
    if options.include_base:
        targets.insert(0, _Target(BASE_LABEL, 0, None))
    return targets


def _read_cache(folder: Path) -> dict:
    try:
        data = json.loads((folder / EVALUATION_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data.get("rows", {}) if data.get("version") == CACHE_VERSION else {}


def _write_cache(folder: Path, rows: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{EVALUATION_FILE}.partial"
    partial.write_text(json.dumps({"version": CACHE_VERSION, "rows": rows}, indent=2, sort_keys=True),
                       encoding="utf-8")
    os.replace(partial, folder / EVALUATION_FILE)


def _beta(run: RunRecord) -> float | None:
    beta = run.config.get("beta")
    return float(beta) if isinstance(beta, (int, float)) else None


def cached_evaluation(ws: Workspace, run_id: str) -> RunEvaluation | None:
    """The run's cached rows as they were last measured (no model, no check of what changed
    since): what a screen shows when it opens. None when the run was never evaluated."""
    run = get_run(ws, run_id)
    if run is None:
        return None
    cached = _read_cache(run_folder(ws, run))
    if not cached:
        return None
    rows = sorted((CheckpointEval.from_dict(entry["row"]) for entry in cached.values()),
                  key=lambda r: (r.step, r.label != BASE_LABEL, r.label == FINAL_LABEL))
    return RunEvaluation(run.id, run.name, _beta(run), rows, 0, len(rows))


def is_demo_workspace(ws: Workspace, base_model: str) -> bool:
    from core.engine.bundled_models import DEMO_MODEL
    from storage.settings import read_settings

    return base_model == DEMO_MODEL or read_settings(ws).demo is not None


def _held_out(ws: Workspace, config: TrainingConfig):
    """The eval split's examples and a fingerprint of them (pair ids and texts)."""
    from core.engine.batching import example_hash
    from storage.training_set import build_training_set

    examples = [e for e in build_training_set(ws, config.selection_policy).examples if e.split == "eval"]
    digest = hashlib.sha256()
    for e in examples:
        digest.update(f"{e.pair_id}:{example_hash(e.prompt, e.chosen, e.rejected)};".encode())
    return examples, f"{len(examples)}:{digest.hexdigest()[:16]}"


def _kl_prompts(ws: Workspace, demo: bool, examples: Sequence, n: int) -> list:
    """The demo's held-out prompts (in none of its pairs), else the held-out pairs' prompts."""
    if demo:
        from core.demo.demo_workspace import held_out_prompts

        return held_out_prompts(n)
    prompts, seen = [], set()
    for e in examples:
        key = json.dumps(e.prompt, sort_keys=True) if not isinstance(e.prompt, str) else e.prompt
        if key not in seen:
            seen.add(key)
            prompts.append(e.prompt)
    return prompts[:n]


def evaluate_runs(ws: Workspace, run_ids: Sequence[str], options: EvaluateOptions = EvaluateOptions(),
                  progress: Callable[[EvaluateProgress], None] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> list[RunEvaluation]:
    """Every run's rows (cached where still valid, measured otherwise), in the order given."""
    runs = []
    for run_id in run_ids:
        run = get_run(ws, run_id)
        if run is None:
            raise EvaluateError(f"no run {run_id!r} in {ws.display_location} (see `python main.py runs`)")
        runs.append(run)
    plans = [_plan(ws, run, options) for run in runs]
    count = sum(len(plan.missing) for plan in plans)
    results, index = [], 0
    for plan in plans:
        evaluation, index = _evaluate_plan(ws, plan, options, index, count, progress, should_stop)
        results.append(evaluation)
    return results


@dataclass
class _Plan:
    run: RunRecord
    config: TrainingConfig
    targets: list[_Target]
    examples: list
    pairs_key: str
    cache: dict
    missing: list[_Target]

    def key(self, target: _Target, options: EvaluateOptions) -> str:
        return json.dumps({"options": options.fingerprint(), "adapter": target.fingerprint(),
                           "pairs": self.pairs_key}, sort_keys=True)


def _plan(ws: Workspace, run: RunRecord, options: EvaluateOptions) -> _Plan:
    config = TrainingConfig.from_dict(run.config)
    targets = checkpoint_targets(ws, run, options)
    examples, pairs_key = _held_out(ws, config)
    cache = _read_cache(run_folder(ws, run))
    plan = _Plan(run, config, targets, examples, pairs_key, cache, [])
    plan.missing = [t for t in targets if cache.get(t.label, {}).get("key") != plan.key(t, options)]
    return plan


def _row(target: _Target, scores) -> CheckpointEval:
    m = scores.metrics
    return CheckpointEval(target.label, target.step, scores.pairs, m.get("rewards/accuracies"),
                          m.get("rewards/margins"), m.get("rewards/chosen"), m.get("rewards/rejected"),
                          m.get("loss"), scores.kl, scores.kl_stderr, scores.kl_samples,
                          scores.kl * scores.kl_samples / scores.kl_tokens if scores.kl_tokens else 0.0,
                          scores.helpful_share, scores.seconds)


def _evaluate_plan(ws: Workspace, plan: _Plan, options: EvaluateOptions, index: int, count: int,
                   progress, should_stop) -> tuple[RunEvaluation, int]:
    run = plan.run
    if plan.missing:
        from core.engine.generation import SamplingSettings
        from core.engine.sampled_kl import KLCancelled
        from core.operations.checkpoint_scoring import CheckpointScorer

        demo = is_demo_workspace(ws, run.base_model)
        helpful = None
        if demo:
            from core.demo.demo_eval import DEFAULT_TEMPERATURE

            helpful = SamplingSettings(temperature=DEFAULT_TEMPERATURE, top_p=1.0,
                                       max_new_tokens=options.max_new_tokens, seed=options.seed)
        kl_settings = SamplingSettings(temperature=1.0, top_p=1.0, max_new_tokens=options.max_new_tokens,
                                       seed=options.seed, n=options.samples_per_prompt)
        prompts = _kl_prompts(ws, demo, plan.examples, options.prompts)
        if not prompts:
            raise EvaluateError(f"run {run.id}: no held-out prompts to sample the KL on "
                                "(the workspace has no labelled pairs in the eval split)")
        scorer = CheckpointScorer(ws, plan.config, plan.examples, prompts, kl_settings, helpful)
        first = next(t.adapter for t in plan.targets if t.adapter is not None)

        def report(target_label: str, at: int):
            if progress is None:
                return None
            return lambda stage, done, total: progress(
                EvaluateProgress(run.id, run.name, target_label, at, count, stage, done, total))

        try:
            scorer.load(first, report(plan.missing[0].label, index + 1), should_stop)
            for target in plan.missing:
                index += 1
                if should_stop is not None and should_stop():
                    raise EvaluationCancelled()
                if target.adapter is not None:
                    scorer.use_adapter(target.adapter)
                scores = scorer.score(target.adapter is None, report(target.label, index), should_stop)
                plan.cache[target.label] = {"key": plan.key(target, options), "row": asdict(_row(target, scores))}
                _write_cache(run_folder(ws, run), plan.cache)
        except KLCancelled:
            raise EvaluationCancelled() from None
    rows = [CheckpointEval.from_dict(plan.cache[t.label]["row"]) for t in plan.targets]
    return RunEvaluation(run.id, run.name, _beta(run), rows, len(plan.missing),
                         len(plan.targets) - len(plan.missing)), index


@dataclass(frozen=True)
class EvaluateOutcome:
    evaluations: list[RunEvaluation]
    cancelled: bool                 # stopped early: ``evaluations`` are the cached rows so far


def evaluate_or_keep(ws: Workspace, run_ids: Sequence[str], options: EvaluateOptions = EvaluateOptions(),
                     progress: Callable[[EvaluateProgress], None] | None = None,
                     should_stop: Callable[[], bool] | None = None) -> EvaluateOutcome:
    """``evaluate_runs``; when cancelled, what the cache holds by then (the screen's action)."""
    try:
        return EvaluateOutcome(evaluate_runs(ws, run_ids, options, progress, should_stop), False)
    except EvaluationCancelled:
        kept = (cached_evaluation(ws, run_id) for run_id in run_ids)
        return EvaluateOutcome([e for e in kept if e is not None], True)


def runs_and_cached(ws: Workspace) -> tuple[list[RunRecord], dict[str, RunEvaluation | None]]:
    """Every run (oldest first) and its cached evaluation: what the screen opens with."""
    from storage.runs import list_runs

    runs = list_runs(ws)
    return runs, {run.id: cached_evaluation(ws, run.id) for run in runs}
