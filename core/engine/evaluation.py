"""Evaluation: the DPO metrics of a policy (base + adapter) against its reference (the base)
on a set of pairs, averaged over pairs.

``evaluate_pairs`` is what the training loop calls on the held-out pairs;
``evaluate_adapter`` is the ``python main.py evaluate`` command: it loads a finished run's
adapter (or any adapter folder) onto its base model and scores a split of the workspace.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import torch

from core.engine.batching import TokenizedPair, sorted_batches, tokenize_examples
from core.engine.dpo_loss import summarize
from core.engine.logprobs import supports_packed_pairs
from core.engine.modeling import load_with_adapter, model_fingerprint, tokenization_fingerprint
from core.engine.objective import batch_objective
from core.engine.pair_packing import collate_pairs
from core.engine.reference_cache import ReferenceTable, ensure_reference_logps
from core.engine.run_records import CONFIG_FILE, read_run_config
from core.engine.training_config import TrainingConfig
from storage.runs import get_run
from storage.training_set import build_training_set
from storage.workspace import Workspace


class EvaluationError(RuntimeError):
    pass


@torch.no_grad()
def evaluate_pairs(model, pairs: Sequence[TokenizedPair], reference: ReferenceTable, config: TrainingConfig,
                   pad_token_id: int, device: torch.device, batch_size: int | None = None,
                   progress: Callable[[int, int], None] | None = None) -> dict[str, float]:
    """Mean over ``pairs`` of every metric. ``loss`` is the mean over pairs of the preference
    loss plus, when the SFT term is on, ``sft_weight`` times the pair's NLL per chosen token
    (``loss/sft`` is the mean of the latter): what TRL reports when it evaluates with batch size 1,
    and independent of the batch size used here."""
    if not pairs:
        return {}
    was_training = model.training
    model.eval()
    packed = config.packed_pairs and supports_packed_pairs(model)
    try:
        per_pair: dict[str, list[torch.Tensor]] = {}
        losses, nlls = [], []
        batches = list(sorted_batches(pairs, batch_size or config.reference_batch_size))
        for number, indices in enumerate(batches, 1):
            batch = collate_pairs([pairs[i] for i in indices], pad_token_id, packed).to(device)
            result = batch_objective(model, batch, reference, config, device)
            losses.append(result.pair_losses.double().cpu())
            if result.pair_nll is not None:
                nlls.append(result.pair_nll.cpu())
            for name, values in result.metrics.items():
                per_pair.setdefault(name, []).append(values.cpu())
            if progress is not None:
                progress(number, len(batches))
    finally:
        model.train(was_training)
    return pair_means({name: torch.cat(chunks) for name, chunks in per_pair.items()}, torch.cat(losses),
                      torch.cat(nlls) if nlls else None, config.sft_weight)


def pair_means(per_pair: dict[str, torch.Tensor], pair_losses: torch.Tensor, pair_nll: torch.Tensor | None,
               sft_weight: float) -> dict[str, float]:
    """The evaluation's metrics from per-pair values (each ``(N,)``): means over pairs, ``loss``
    the preference loss plus ``sft_weight`` times the NLL per chosen token (``loss/sft``)."""
    metrics = summarize(per_pair)
    if pair_nll is not None:
        metrics["loss/sft"] = float(pair_nll.mean())
        pair_losses = pair_losses + sft_weight * pair_nll
    metrics["loss"] = float(pair_losses.mean())
    return metrics


def resolve_adapter(ws: Workspace, adapter: str) -> tuple[Path, TrainingConfig]:
    """A run id (its final adapter, else its newest checkpoint) or an adapter folder, with the
    config it was trained with (a folder inside a run folder finds the run's config.json;
    otherwise the adapter's own base model and the default settings)."""
    from core.engine.checkpoints import latest_checkpoint

    run = get_run(ws, adapter)
    if run is not None:
        config = TrainingConfig.from_dict(json.loads(run.config_json))
        if run.adapter_path and Path(run.adapter_path).is_dir():
            return Path(run.adapter_path), config
        checkpoint = latest_checkpoint(Path(run.run_dir))
        if checkpoint is None:
            raise EvaluationError(f"run {adapter} has no adapter yet (status {run.status.value}, no checkpoint)")
        return checkpoint, config
    path = Path(adapter).expanduser()
    if not (path / "adapter_config.json").exists():
        raise EvaluationError(f"{adapter!r} is neither a run id of this workspace nor an adapter folder "
                              "(no adapter_config.json)")
    for parent in (path.parent, path.parent.parent):
        if (parent / CONFIG_FILE).exists():
            return path, read_run_config(parent)
    base = json.loads((path / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base:
        raise EvaluationError(f"{path}/adapter_config.json names no base model")
    return path, TrainingConfig(base_model=base)


def evaluate_adapter(ws: Workspace, adapter: str, split: str = "eval", overrides: list[str] | None = None,
                     batch_size: int | None = None,
                     progress: Callable[[str], None] | None = None,
                     bar: Callable[[str, int, int], None] | None = None) -> dict[str, float]:
    """Metrics of base + adapter (policy) vs base (reference) on a split of the workspace's pairs.
    ``progress`` gets lines of text; ``bar(stage, done, total)`` the reference pass's and the
    evaluation's batches."""
    if split not in ("eval", "train", "all"):
        raise EvaluationError(f"split must be eval, train or all, not {split!r}")
    adapter_dir, config = resolve_adapter(ws, adapter)
    config = config.with_overrides(overrides).validate()
    training_set = build_training_set(ws, config.selection_policy)
    examples = training_set.examples if split == "all" else [e for e in training_set.examples if e.split == split]
    if not examples:
        raise EvaluationError(f"the workspace has no labelled pairs in the {split!r} split")
    loaded = load_with_adapter(config.base_model, adapter_dir, config.device, config.dtype, config.trust_remote_code)
    pairs, dropped = tokenize_examples(loaded.tokenizer, examples, config.max_length, config.truncation_mode)
    if not pairs:
        raise EvaluationError(f"no pair of the {split!r} split has a completion token left at "
                              f"max_length={config.max_length}")
    model_key = model_fingerprint(config.base_model, loaded.dtype)
    token_key = tokenization_fingerprint(loaded.tokenizer, config.max_length, config.truncation_mode)
    reference, computed = ensure_reference_logps(ws, loaded.model, pairs, model_key, token_key,
                                                 loaded.tokenizer.pad_token_id, config.reference_batch_size,
                                                 loaded.device, _stage(bar, "reference log-probs"),
                                                 packed_pairs=config.packed_pairs)
    if progress is not None:
        progress(f"{len(pairs)} pairs ({sum(dropped.values())} dropped); reference log-probs: "
                 f"{len(pairs) - computed} cached, {computed} computed")
    metrics = evaluate_pairs(loaded.model, pairs, reference, config, loaded.tokenizer.pad_token_id, loaded.device,
                             batch_size, _stage(bar, "evaluating"))
    metrics["pairs"] = float(len(pairs))
    return metrics


def _stage(bar: Callable[[str, int, int], None] | None, stage: str) -> Callable[[int, int], None] | None:
    return None if bar is None else (lambda done, total: bar(stage, done, total))
