"""How far a tuned policy has drifted from its reference: KL(π || π_ref), estimated from samples.

The paper's frontier (reward against KL, Rafailov et al. 2023, figure 2) measures the
sequence-level KL of the policy from the reference on the evaluation prompts:

    KL(π || π_ref) = E_x E_{y ~ π(.|x)} [ log π(y|x) − log π_ref(y|x) ]

``estimate_kl`` samples replies y from the policy and averages ``log π(y|x) − log π_ref(y|x)``
over them (log π summed over the reply's tokens, its end-of-turn token included). This is the
plain Monte-Carlo estimator of the sequence-level KL: unbiased, with the standard error of a
mean; on few samples it can come out negative (each term can be negative, only their
expectation cannot). Replies are cut at ``max_new_tokens``, so what is estimated is the KL of
the replies' first ``max_new_tokens`` tokens (an unfinished reply is one outcome), which is at
most the KL of whole replies.

Sampling is always at temperature 1 and top-p 1, whatever the settings say: the KL of the
policy's own distribution, not of a tempered or truncated sampler (those would make the
estimator biased, and the figure would measure the sampler rather than the training).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from core.engine.batching import Batch
from core.engine.logprobs import completion_token_logps

DEFAULT_BATCH_SIZE = 16

# sampler(model, tokenizer, prompts, settings, batch_size=, progress=, should_stop=) -> replies
# with .prompt_index, .finished and .token_ids: the shape of core.engine.generation.generate_replies.
Sampler = Callable[..., Sequence[Any]]


class KLCancelled(Exception):
    """``should_stop`` said stop before the estimate was done."""


@dataclass(frozen=True)
class KLEstimate:
    mean: float          # nats per reply
    stderr: float        # standard error of ``mean`` (0 with fewer than two samples)
    n: int               # sampled replies
    tokens: int = 0      # reply tokens over all samples

    @property
    def per_token(self) -> float:
        """Nats per reply token (the mean divided by the mean reply length)."""
        return self.mean * self.n / self.tokens if self.tokens else 0.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def kl_from_gaps(gaps: Sequence[float], tokens: int = 0) -> KLEstimate:
    """The mean of per-sample ``log π − log π_ref`` and its standard error (sample std / √n)."""
    n = len(gaps)
    if n == 0:
        return KLEstimate(0.0, 0.0, 0, tokens)
    mean = math.fsum(gaps) / n
    if n < 2:
        return KLEstimate(mean, 0.0, n, tokens)
    variance = math.fsum((g - mean) ** 2 for g in gaps) / (n - 1)
    return KLEstimate(mean, math.sqrt(variance / n), n, tokens)


def kl_sampling_settings(settings):
    """``settings`` (a SamplingSettings) at temperature 1 and top-p 1; its length, seed and n kept."""
    if settings is None:
        from core.engine.generation import SamplingSettings

        settings = SamplingSettings()
    return dataclasses.replace(settings, temperature=1.0, top_p=1.0)


def prompt_token_ids(tokenizer, prompt: str | list[dict]) -> list[int]:
    """The tokens a reply to ``prompt`` follows, exactly as ``generate_replies`` feeds them
    (``core.engine.generation.prompt_text``: the chat template with its generation prompt)."""
    from core.engine.generation import prompt_text

    return list(tokenizer(prompt_text(tokenizer, prompt), add_special_tokens=False)["input_ids"])


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def sequence_logps(model, prompt_ids: Sequence[Sequence[int]], reply_ids: Sequence[Sequence[int]],
                   pad_token_id: int, batch_size: int = DEFAULT_BATCH_SIZE,
                   should_stop: Callable[[], bool] | None = None,
                   progress: Callable[[int, int], None] | None = None) -> list[float]:
    """log π(reply | prompt) of each row: summed over the reply's tokens, prompt masked.

    Rows are right-padded into a ``core.engine.batching.Batch`` and scored by
    ``core.engine.logprobs.completion_token_logps``, the same code that scores training pairs."""
    was_training = model.training
    model.eval()
    device = _device(model)
    rows = [list(p) + list(r) for p, r in zip(prompt_ids, reply_ids)]
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))    # similar lengths batch together
    logps = [0.0] * len(rows)
    try:
        for start in range(0, len(order), batch_size):
            if should_stop is not None and should_stop():
                raise KLCancelled()
            chunk = order[start:start + batch_size]
            width = max(len(rows[i]) for i in chunk)
            input_ids = torch.full((len(chunk), width), pad_token_id, dtype=torch.long)
            attention = torch.zeros((len(chunk), width), dtype=torch.long)
            loss_mask = torch.zeros((len(chunk), max(width - 1, 1)), dtype=torch.long)
            for row, i in enumerate(chunk):
                input_ids[row, :len(rows[i])] = torch.tensor(rows[i], dtype=torch.long)
                attention[row, :len(rows[i])] = 1
                # Position t predicts token t+1: the reply's tokens are predicted from the prompt's last one on.
                loss_mask[row, len(prompt_ids[i]) - 1:len(rows[i]) - 1] = 1
            batch = Batch(list(chunk), [""] * len(chunk), input_ids, attention, loss_mask).to(device)
            totals = completion_token_logps(model, batch).double().sum(dim=1).tolist()  # (rows,)
            for i, total in zip(chunk, totals):
                logps[i] = total
            if progress is not None:
                progress(min(start + batch_size, len(order)), len(order))
    finally:
        model.train(was_training)
    return logps


def _reply_ids(reply, eos_ids: set[int], eos: int) -> list[int]:
    """The reply's tokens with its end-of-turn token: stopping is part of the sampled outcome."""
    ids = list(reply.token_ids)
    if reply.finished and (not ids or ids[-1] not in eos_ids):
        ids.append(eos)
    return ids


def default_sampler() -> Sampler:
    from core.engine.generation import generate_replies

    return generate_replies


def estimate_kl(model, tokenizer, prompts: Sequence[str | list[dict]], settings=None, reference=None,
                batch_size: int = DEFAULT_BATCH_SIZE,
                progress: Callable[[str, int, int], None] | None = None,
                should_stop: Callable[[], bool] | None = None,
                sampler: Sampler | None = None) -> KLEstimate:
    """Sequence-level KL(π || π_ref) in nats per reply, with its standard error.

    ``model`` is the policy π; ``reference`` the reference π_ref — None with a peft model means
    the same model with its adapter disabled (the base). ``settings``: a
    ``core.engine.generation.SamplingSettings`` whose ``max_new_tokens``, ``seed`` and ``n``
    (replies per prompt) are used; temperature and top-p are set to 1 (see the module's text).
    ``progress(stage, done, total)`` follows the sampling and the two scoring passes;
    ``should_stop()`` true raises ``KLCancelled``. ``sampler`` defaults to
    ``core.engine.generation.generate_replies``.
    """
    if reference is None and not hasattr(model, "disable_adapter"):
        raise ValueError("estimate_kl needs a reference model, or a peft model whose adapter can be disabled")
    settings = kl_sampling_settings(settings)
    sample = sampler or default_sampler()

    def stage(name: str):
        return None if progress is None else (lambda done, total: progress(name, done, total))

    sampling_progress = None if progress is None else (lambda p: progress("sampling", p.done, p.total))
    was_training = model.training
    model.eval()
    try:
        replies = sample(model, tokenizer, list(prompts), settings, batch_size=batch_size,
                         progress=sampling_progress, should_stop=should_stop)
    finally:
        model.train(was_training)
    if should_stop is not None and should_stop():
        raise KLCancelled()
    from core.engine.generation import stop_token_ids

    eos_ids, eos = stop_token_ids(model, tokenizer), tokenizer.eos_token_id
    prompt_cache: dict[int, list[int]] = {}
    prompt_ids, reply_ids = [], []
    for reply in replies:
        if reply.prompt_index not in prompt_cache:
            prompt_cache[reply.prompt_index] = prompt_token_ids(tokenizer, prompts[reply.prompt_index])
        prompt_ids.append(prompt_cache[reply.prompt_index])
        reply_ids.append(_reply_ids(reply, eos_ids, eos))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    policy = sequence_logps(model, prompt_ids, reply_ids, pad, batch_size, should_stop, stage("log-probs, policy"))
    if reference is None:
        with model.disable_adapter():
            base = sequence_logps(model, prompt_ids, reply_ids, pad, batch_size, should_stop,
                                  stage("log-probs, reference"))
    else:
        base = sequence_logps(reference, prompt_ids, reply_ids, pad, batch_size, should_stop,
                              stage("log-probs, reference"))
    return kl_from_gaps([p - b for p, b in zip(policy, base)], sum(len(r) for r in reply_ids))
