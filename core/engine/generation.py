"""Sampling replies from a causal LM: batched, KV-cached, left-padded, seeded, cancellable.

One sampler for the whole app (generate candidates, chat, blind A/B, the demo evaluation).
Several prompts and their ``n`` samples share a forward: each prompt is repeated ``n`` times in
the batch, padded on the left so every row's next token sits in the last column, and decoded
step by step over the model's KV cache (our own loop rather than ``model.generate`` so that
cancel and progress work between decoding steps, and so the randomness is per reply).

Every reply draws its noise from its own generator, seeded from ``(seed, prompt index,
sample index)``: the same model, prompts and settings give the same replies whatever the
batch size. Temperature 0 is greedy decoding. A reply ends at the tokenizer's EOS or an
end-of-turn token (``<|im_end|>``, ``<|eot_id|>`` …), or at ``max_new_tokens``.
"""

from __future__ import annotations

import hashlib
import inspect
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence, Union

if TYPE_CHECKING:    # torch is imported where it is used: the settings and replies are plain data the GUI uses
    import torch

Messages = list[dict]
PromptInput = Union[str, Messages]

END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>")
PROGRESS_EVERY_S = 0.2


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 0.8     # 0 = greedy
    top_p: float = 0.95          # nucleus: the smallest set of tokens holding this much probability
    max_new_tokens: int = 128
    seed: int = 0
    n: int = 1                   # replies per prompt

    def problems(self) -> list[str]:
        """What is wrong with these settings, one line each (empty when they can be used)."""
        found = []
        if not self.temperature >= 0:
            found.append(f"temperature must be 0 or more (got {self.temperature})")
        if not 0 < self.top_p <= 1:
            found.append(f"top-p must be in (0, 1] (got {self.top_p})")
        if self.max_new_tokens < 1:
            found.append(f"max new tokens must be at least 1 (got {self.max_new_tokens})")
        if self.n < 1:
            found.append(f"n must be at least 1 (got {self.n})")
        return found

    def as_dict(self) -> dict:
        return {"temperature": self.temperature, "top_p": self.top_p, "max_new_tokens": self.max_new_tokens,
                "seed": self.seed, "n": self.n}


@dataclass(frozen=True)
class Reply:
    prompt_index: int
    prompt: PromptInput
    text: str
    finished: bool                 # the model ended its turn before the length limit
    token_ids: tuple[int, ...]     # the sampled tokens, up to and including the stop token when finished


@dataclass(frozen=True)
class GenerationProgress:
    done: int          # replies finished (whole batches)
    total: int         # replies asked for
    tokens: int        # tokens generated so far
    seconds: float     # since the start

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


# -- prompts -----------------------------------------------------------------------------------
def prompt_text(tokenizer, prompt: PromptInput) -> str:
    """The text the model continues: the chat template with its generation prompt when the
    tokenizer has one, else the prompt itself (chat messages as ``role: content`` lines)."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"


def stop_token_ids(model, tokenizer) -> set[int]:
    """EOS, the model's configured end tokens and any end-of-turn token the vocabulary has."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in configured if isinstance(configured, (list, tuple)) else [configured]:
        if value is not None:
            ids.add(int(value))
    vocab = tokenizer.get_vocab()
    ids.update(vocab[token] for token in END_OF_TURN_TOKENS if token in vocab)
    return ids


def _row_seed(seed: int, prompt_index: int, sample_index: int) -> int:
    digest = hashlib.sha256(f"{seed}:{prompt_index}:{sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def _context_limit(model) -> int | None:
    config = getattr(model, "config", None)
    return getattr(config, "max_position_embeddings", None)


def _forward_style(model) -> tuple[bool, str]:
    """(does forward take ``logits_to_keep``, the name of its KV-cache argument): transformers
    5.2x renamed ``past_key_values`` to ``cache``."""
    target = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        params = inspect.signature(target.forward).parameters
    except (TypeError, ValueError):
        return False, "past_key_values"
    return "logits_to_keep" in params, "cache" if "cache" in params else "past_key_values"


# -- sampling one step ---------------------------------------------------------------------------
def next_tokens(logits: torch.Tensor, settings: SamplingSettings, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """One token per row from ``logits`` (B, V): greedy at temperature 0, else softmax at the
    temperature, cut to the top-p nucleus, drawn with each row's own generator (exponential
    race: argmax p / E with E ~ Exp(1) samples from p)."""
    import torch

    if settings.temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / settings.temperature, dim=-1)
    if settings.top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        before = sorted_probs.cumsum(dim=-1) - sorted_probs       # mass of the tokens ranked higher
        sorted_probs = sorted_probs.masked_fill(before >= settings.top_p, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    # E = -log U from uniform draws: torch's own ``exponential_`` on the CPU gave visibly skewed
    # replies (the demo's helpful share ~0.17 against ~0.27 from ``torch.multinomial``).
    noise = -torch.log(torch.stack([torch.rand(probs.shape[-1], device=probs.device, generator=g)
                                    for g in generators]))
    return (probs / noise).argmax(dim=-1)


# -- the decoding loop ---------------------------------------------------------------------------
def generate_replies(model, tokenizer, prompts: Sequence[PromptInput], settings: SamplingSettings,
                     batch_size: int = 16, progress: Callable[[GenerationProgress], None] | None = None,
                     should_stop: Callable[[], bool] | None = None) -> list[Reply]:
    """``settings.n`` replies for each prompt, in prompt order (prompt 0's n replies first).

    ``batch_size`` counts rows (a prompt's n samples are n rows). ``should_stop()`` is asked
    between decoding steps; when it says yes the replies of the batches already done are
    returned (fewer than asked). ``progress`` gets a ``GenerationProgress`` a few times a second.
    """
    problems = settings.problems()
    if problems:
        raise ValueError("; ".join(problems))
    rows = [(p, k) for p in range(len(prompts)) for k in range(settings.n)]
    texts = [prompt_text(tokenizer, prompt) for prompt in prompts]
    stops = stop_token_ids(model, tokenizer)
    device = next(model.parameters()).device
    style = _forward_style(model)
    limit = _context_limit(model)
    max_prompt = None if limit is None else max(1, limit - settings.max_new_tokens)
    replies: list[Reply] = []
    started = time.monotonic()
    tokens = 0
    last_report = 0.0

    def report(force: bool = False, generated_now: int = 0) -> None:
        nonlocal last_report
        now = time.monotonic()
        if progress is not None and (force or now - last_report >= PROGRESS_EVERY_S):
            last_report = now
            progress(GenerationProgress(len(replies), len(rows), tokens + generated_now, now - started))

    model.eval()
    report(force=True)
    for start in range(0, len(rows), max(1, batch_size)):
        chunk = rows[start:start + batch_size]
        result = _decode_batch(model, tokenizer, [texts[p] for p, _ in chunk],
                               [_row_seed(settings.seed, p, k) for p, k in chunk], settings, stops, device,
                               style, max_prompt, should_stop, lambda n: report(generated_now=n))
        if result is None:
            break
        for (p, _), ids in zip(chunk, result):
            finished = bool(ids) and ids[-1] in stops
            body = ids[:-1] if finished else ids
            text = tokenizer.decode(body, skip_special_tokens=True).strip()
            replies.append(Reply(p, prompts[p], text, finished, tuple(ids)))
            tokens += len(ids)
        report(force=True)
    return replies


def _decode_batch(model, tokenizer, texts: list[str], seeds: list[int], settings: SamplingSettings,
                  stops: set[int], device, style: tuple[bool, str], max_prompt: int | None,
                  should_stop: Callable[[], bool] | None, step_report: Callable[[int], None]) -> list[list[int]] | None:
    """The new token ids of each row (up to and including its stop token); None when stopped."""
    import torch

    encoded = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    if max_prompt is not None:
        encoded = [ids[-max_prompt:] for ids in encoded]
    width = max(len(ids) for ids in encoded)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(stops))
    input_ids = torch.full((len(encoded), width), pad, dtype=torch.long)
    attention = torch.zeros((len(encoded), width), dtype=torch.long)
    for i, ids in enumerate(encoded):                      # left padding
        input_ids[i, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
        attention[i, width - len(ids):] = 1
    input_ids, attention = input_ids.to(device), attention.to(device)
    positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
    generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]
    rows: list[list[int]] = [[] for _ in encoded]
    live = list(range(len(encoded)))       # the original rows in the batch, in batch order
    ended: set[int] = set()
    keep_last, cache_name = style
    extra = {"logits_to_keep": 1} if keep_last else {}
    cache = None
    generated = 0
    with torch.no_grad():
        step_ids = input_ids
        for _step in range(settings.max_new_tokens):
            if should_stop is not None and should_stop():
                return None
            result = model(input_ids=step_ids, attention_mask=attention, position_ids=positions,
                           use_cache=True, **{cache_name: cache}, **extra)
            cache = getattr(result, cache_name, None)
            chosen = next_tokens(result.logits[:, -1, :], settings, generators)
            tokens = chosen.tolist()
            for row, token in zip(live, tokens):
                if row not in ended:
                    rows[row].append(token)
                    generated += 1
                    if token in stops:
                        ended.add(row)
            step_report(generated)
            going = [i for i, row in enumerate(live) if row not in ended]
            if not going:
                break
            if len(going) < len(live) and hasattr(cache, "batch_select_indices"):
                # Finished rows leave the batch (and the KV cache), so the rest decode faster;
                # a cache that cannot drop rows keeps them, their tokens ignored.
                index = torch.tensor(going, device=device)
                cache.batch_select_indices(index)
                chosen, attention, positions = chosen[index], attention[index], positions[index]
                live = [live[i] for i in going]
                generators = [generators[i] for i in going]
            step_ids = chosen.unsqueeze(1)
            attention = torch.cat([attention, torch.ones_like(attention[:, :1])], dim=1)
            positions = positions[:, -1:] + 1
    return rows


def load_generator(base_model: str, adapter_dir=None, device: str = "auto", dtype: str = "auto",
                   trust_remote_code: bool = False):
    """(model, tokenizer) ready to sample: the base, or the base plus a saved LoRA adapter,
    on the GPU when there is one (``device="auto"``). Raises ``ModelLoadError`` / ``DeviceError``."""
    from core.engine.modeling import (load_base_model, load_tokenizer, load_with_adapter, select_device,
                                      select_dtype)

    if adapter_dir is not None:
        loaded = load_with_adapter(base_model, adapter_dir, device=device, dtype=dtype,
                                   trust_remote_code=trust_remote_code)
        return loaded.model, loaded.tokenizer
    torch_device = select_device(device)
    tokenizer = load_tokenizer(base_model, trust_remote_code)
    model = load_base_model(base_model, torch_device, select_dtype(torch_device, dtype), trust_remote_code)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return model, tokenizer
