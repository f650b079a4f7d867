"""The model side of evaluating a run's checkpoints (``core.operations.evaluate``): the base model
loaded once, the held-out pairs tokenised once with their reference log-probs, then each
checkpoint's adapter weights swapped in and measured.

Per checkpoint: the DPO metrics of the held-out pairs (``core.engine.evaluation.evaluate_pairs``,
the training loop's own evaluation, the base as reference), the sequence-level KL to the base
(``core.engine.sampled_kl.estimate_kl``, temperature 1) and, for the demo domain, the helpful
share of replies sampled at the demo evaluation's temperature (``core.demo.demo_eval``) and
classified by its style scorer. Call from a worker: it loads torch and a model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from core.engine.training_config import TrainingConfig

Progress = Callable[[str, int, int], None]      # (stage, done, total)


@dataclass(frozen=True)
class CheckpointScores:
    pairs: int
    metrics: dict[str, float]       # evaluate_pairs' means (empty without held-out pairs)
    kl: float
    kl_stderr: float
    kl_samples: int
    kl_tokens: int
    helpful_share: float | None
    seconds: float


class CheckpointScorer:
    """Scores one run's adapters against its base. ``prompts``: what the KL (and the helpful
    share) is sampled on; ``helpful``: whether to measure the demo's helpful share."""

    def __init__(self, ws, config: TrainingConfig, examples: Sequence, prompts: Sequence[str],
                 kl_settings, helpful_settings=None, batch_size: int = 16):
        self.ws, self.config, self.examples, self.prompts = ws, config, list(examples), list(prompts)
        self.kl_settings, self.helpful_settings, self.batch_size = kl_settings, helpful_settings, batch_size
        self.model = self.tokenizer = self.device = None
        self.pairs: list = []
        self.reference = None

    def load(self, first_adapter: Path, progress: Progress | None = None,
             should_stop: Callable[[], bool] | None = None) -> None:
        """The base with ``first_adapter`` on it, the pairs tokenised and their reference log-probs."""
        from core.engine.batching import tokenize_examples
        from core.engine.modeling import load_with_adapter, model_fingerprint, tokenization_fingerprint
        from core.engine.reference_cache import ensure_reference_logps

        config = self.config
        loaded = load_with_adapter(config.base_model, first_adapter, config.device, config.dtype,
                                   config.trust_remote_code)
        self.model, self.tokenizer, self.device = loaded.model, loaded.tokenizer, loaded.device
        self.model.eval()
        self.pairs, _ = tokenize_examples(self.tokenizer, self.examples, config.max_length, config.truncation_mode)
        if self.pairs:
            model_key = model_fingerprint(config.base_model, loaded.dtype)
            token_key = tokenization_fingerprint(self.tokenizer, config.max_length, config.truncation_mode)
            self.reference, _ = ensure_reference_logps(
                self.ws, self.model, self.pairs, model_key, token_key, self.tokenizer.pad_token_id,
                config.reference_batch_size, self.device, _stage(progress, "reference log-probs"), should_stop,
                packed_pairs=config.packed_pairs)

    def use_adapter(self, adapter_dir: Path) -> None:
        """Swap ``adapter_dir``'s LoRA weights into the loaded model (same LoRA shape as the run's)."""
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        weights = load_file(str(Path(adapter_dir) / "adapter_model.safetensors"), device=str(self.device))
        result = set_peft_model_state_dict(self.model, weights)
        unexpected = getattr(result, "unexpected_keys", [])
        if unexpected:
            raise ValueError(f"the adapter in {adapter_dir} does not fit the run's model "
                             f"(unexpected keys, e.g. {unexpected[0]})")

    def score(self, base: bool, progress: Progress | None = None,
              should_stop: Callable[[], bool] | None = None) -> CheckpointScores:
        """The loaded adapter's scores, or with ``base`` the base model's (adapter disabled: the
        policy is the reference, so its KL is measured as exactly 0 and its rewards are 0)."""
        import contextlib

        from core.engine.evaluation import evaluate_pairs
        from core.engine.sampled_kl import estimate_kl

        started = time.monotonic()
        disabled = self.model.disable_adapter() if base else contextlib.nullcontext()
        with disabled:
            metrics = {}
            if self.pairs:
                metrics = evaluate_pairs(self.model, self.pairs, self.reference, self.config,
                                         self.tokenizer.pad_token_id, self.device, None,
                                         _stage(progress, "held-out pairs"))
            # Under disable_adapter the reference must be named: the same (base) model.
            kl = estimate_kl(self.model, self.tokenizer, self.prompts, self.kl_settings,
                             reference=self.model if base else None, batch_size=self.batch_size,
                             progress=progress, should_stop=should_stop)
            helpful = self._helpful_share(progress, should_stop) if self.helpful_settings is not None else None
        return CheckpointScores(len(self.pairs), metrics, kl.mean, kl.stderr, kl.n, kl.tokens, helpful,
                                time.monotonic() - started)

    def _helpful_share(self, progress: Progress | None, should_stop: Callable[[], bool] | None) -> float:
        from core.demo.style_scorer import classify, style_shares
        from core.engine.generation import generate_replies
        from core.engine.sampled_kl import KLCancelled

        replies = generate_replies(self.model, self.tokenizer, self.prompts, self.helpful_settings,
                                   batch_size=self.batch_size, should_stop=should_stop,
                                   progress=None if progress is None else
                                   (lambda p: progress("sampling for the helpful share", p.done, p.total)))
        if should_stop is not None and should_stop():
            raise KLCancelled()
        return style_shares(classify(r.text, r.finished) for r in replies)["helpful"]


def _stage(progress: Progress | None, name: str) -> Callable[[int, int], None] | None:
    return None if progress is None else (lambda done, total: progress(name, done, total))
