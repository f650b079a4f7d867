"""Sampling replies from a chat model and scoring their log-probabilities (demo evaluation).

Both are batched with left padding, so every prompt's reply starts at the same column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

DEFAULT_MAX_NEW_TOKENS = 96


@dataclass(frozen=True)
class Sample:
    prompt: str
    reply: str
    finished: bool                 # the model ended its turn before the length limit
    reply_ids: tuple[int, ...]     # the sampled tokens, up to and including <|end|> when finished


def _prompt_batch(tokenizer, prompts: Sequence[str]):
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                           add_generation_prompt=True) for p in prompts]
    tokenizer.padding_side = "left"
    return tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)


def sample_replies(model, tokenizer, prompts: Sequence[str], seed: int = 0, temperature: float = 1.0,
                   max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, batch_size: int = 32,
                   progress: Callable[[int, int], None] | None = None) -> list[Sample]:
    """One reply per prompt, sampled at ``temperature`` from the full distribution (no top-k/top-p).

    The app's one sampler does the work (``core.engine.generation.generate_replies``): seeded
    per reply, so the same model, prompts and seed give the same replies.
    """
    from core.engine.generation import SamplingSettings, generate_replies

    settings = SamplingSettings(temperature=temperature, top_p=1.0, max_new_tokens=max_new_tokens, seed=seed, n=1)
    report = None if progress is None else (lambda p: progress(p.done, p.total))
    replies = generate_replies(model, tokenizer, list(prompts), settings, batch_size=batch_size, progress=report)
    return [Sample(r.prompt, r.text, r.finished, r.token_ids) for r in replies]


def reply_logps(model, tokenizer, samples: Sequence[Sample], batch_size: int = 32,
                progress: Callable[[int, int], None] | None = None) -> list[float]:
    """log π(y|x) of each sample's reply tokens: summed over the reply, prompt tokens masked."""
    import torch

    logps: list[float] = []
    model.eval()
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        batch = _prompt_batch(tokenizer, [s.prompt for s in chunk])
        prompt_ids, prompt_mask = batch["input_ids"], batch["attention_mask"]  # (B, P)
        width = max(len(s.reply_ids) for s in chunk)
        reply_ids = torch.full((len(chunk), width), tokenizer.pad_token_id, dtype=torch.long)
        reply_mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, s in enumerate(chunk):
            reply_ids[i, :len(s.reply_ids)] = torch.tensor(s.reply_ids, dtype=torch.long)
            reply_mask[i, :len(s.reply_ids)] = 1
        input_ids = torch.cat([prompt_ids, reply_ids], dim=1)        # (B, P + R)
        attention = torch.cat([prompt_mask, reply_mask], dim=1)
        positions = (attention.cumsum(dim=1) - 1).clamp(min=0)       # left padding: count real tokens
        with torch.no_grad():
            logits = model(input_ids=input_ids, attention_mask=attention, position_ids=positions).logits
        # Token t is predicted by the logits at t-1; only the reply's tokens count.
        reply_logits = logits[:, prompt_ids.shape[1] - 1:-1, :].float()  # (B, R, V)
        token_logps = torch.log_softmax(reply_logits, dim=-1).gather(-1, reply_ids.unsqueeze(-1)).squeeze(-1)
        logps.extend((token_logps * reply_mask).sum(dim=1).tolist())
        if progress is not None:
            progress(len(logps), len(samples))
    return logps
