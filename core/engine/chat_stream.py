"""Streaming one chat answer token by token: the decoding loop behind the Chat tab.

``ReplyDecoder`` answers one conversation (a list of ``{"role", "content"}`` messages) with one
token per ``step()``, keeping the model's KV cache (``past_key_values``) between steps so each
step costs one position, not the whole conversation again. Two decoders can take turns on one
model (the base and an adapter of it: each step runs inside its own ``activate`` context), which
is how the Chat tab streams two answers side by side with one copy of the weights in memory.

Text comes out as deltas that never split a character: the whole reply is decoded again at
each step and only the new suffix is emitted, held back while it ends in an incomplete UTF-8
sequence (byte-level BPE splits multi-byte characters across tokens) or in whitespace (the
finished reply is stripped, as ``core.demo.sampling`` strips it). So the deltas of a reply
joined are exactly its final text.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Callable, ContextManager, Sequence

import torch

from core.engine.generation import (SamplingSettings, _context_limit, _forward_style, next_tokens, prompt_text,
                                   stop_token_ids)

#: The fewest new tokens an answer is given room for when a long conversation fills the context.
MIN_ANSWER_TOKENS = 16
_REPLACEMENT = "\ufffd"



class ChatContextError(ValueError):
    """The conversation cannot fit the model's context; the message says by how much."""


@dataclass(frozen=True)
class FittedPrompt:
    token_ids: tuple[int, ...]
    max_new_tokens: int
    dropped_exchanges: int        # earliest user/assistant exchanges left out to fit the context


def fit_prompt(tokenizer, messages: Sequence[dict], max_new_tokens: int, context: int | None) -> FittedPrompt:
    """The prompt of ``messages`` shortened to the model's context: the earliest exchanges are
    left out first (the newest user message always stays), then the answer's room shrinks down
    to ``MIN_ANSWER_TOKENS``. ``ChatContextError`` when even that does not fit."""
    messages = list(messages)
    dropped = 0
    while True:
        ids = list(tokenizer(prompt_text(tokenizer, messages), add_special_tokens=False)["input_ids"])
        if context is None or len(ids) + max_new_tokens <= context:
            return FittedPrompt(tuple(ids), max_new_tokens, dropped)
        if len(messages) > 2:
            messages = messages[2:]       # one user turn and its answer
            dropped += 1
            continue
        room = context - len(ids)
        if room >= MIN_ANSWER_TOKENS:
            return FittedPrompt(tuple(ids), room, dropped)
        raise ChatContextError(f"the message takes {len(ids)} tokens and the model's context holds {context}: "
                               f"shorten it by {len(ids) + MIN_ANSWER_TOKENS - context} tokens or more")


class IncrementalText:
    """The reply's text as tokens arrive, emitted as deltas that join to the final text."""

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer
        self.emitted = ""

    def _decode(self, ids: Sequence[int]) -> str:
        return self._tokenizer.decode(list(ids), skip_special_tokens=True).strip()

    def update(self, ids: Sequence[int]) -> str:
        text = self._tokenizer.decode(list(ids), skip_special_tokens=True).lstrip()
        if text.endswith(_REPLACEMENT):
            return ""                     # half a character: wait for its other bytes
        return self._advance(text.rstrip())

    def finish(self, ids: Sequence[int]) -> tuple[str, str]:
        """(the last delta, the final text)."""
        final = self._decode(ids)
        return self._advance(final), final

    def _advance(self, visible: str) -> str:
        if not visible.startswith(self.emitted):
            return ""                     # the decoder rewrote earlier text: the final text settles it
        delta = visible[len(self.emitted):]
        self.emitted = visible
        return delta


@dataclass(frozen=True)
class DecodedReply:
    text: str
    token_ids: tuple[int, ...]
    finished: bool                # the model ended its turn (EOS) before the length limit
    stopped: bool                 # cancelled before the end
    prompt_tokens: int
    dropped_exchanges: int
    seconds: float


class ReplyDecoder:
    """One answer, one token per ``step()``; ``activate`` is entered around every forward pass
    (which adapter of a shared peft model answers). Sampling is ``core.engine.generation``'s
    (``next_tokens``, its stop tokens and chat template), with the answer's own generator seeded
    from ``settings.seed``: the same conversation, model and settings give the same answer."""

    def __init__(self, model, tokenizer, messages: Sequence[dict], settings: SamplingSettings,
                 activate: Callable[[], ContextManager] = contextlib.nullcontext):
        problems = settings.problems()
        if problems:
            raise ValueError("; ".join(problems))
        self._model = model
        self._tokenizer = tokenizer
        self._settings = settings
        self._activate = activate
        self._prompt = fit_prompt(tokenizer, messages, settings.max_new_tokens, _context_limit(model))
        self._device = next(model.parameters()).device
        self._generators = [torch.Generator(device=self._device).manual_seed(int(settings.seed))]
        self._stops = stop_token_ids(model, tokenizer)
        keep_last, self._cache_name = _forward_style(model)
        self._extra = {"logits_to_keep": 1} if keep_last else {}
        self._cache = None
        self._next_input: list[int] = list(self._prompt.token_ids)
        self._ids: list[int] = []
        self._text = IncrementalText(tokenizer)
        self._seconds = 0.0
        self.done = False
        self._finished = False
        self._stopped = False
        self._final_text: str | None = None

    @property
    def tokens(self) -> int:
        return len(self._ids)

    @property
    def seconds(self) -> float:
        """Time spent in this answer's own forward passes (not the other slot's)."""
        return self._seconds

    def step(self) -> str:
        """Decode one token; returns the new text (may be empty)."""
        if self.done:
            return ""
        started = time.perf_counter()
        input_ids = torch.tensor([self._next_input], dtype=torch.long, device=self._device)   # (1, T)
        with torch.no_grad(), self._activate():
            out = self._model(input_ids=input_ids, use_cache=True, **{self._cache_name: self._cache}, **self._extra)
            token = int(next_tokens(out.logits[:, -1, :], self._settings, self._generators)[0])  # logits (1, 1, V)
        self._cache = getattr(out, self._cache_name, None)
        self._seconds += time.perf_counter() - started
        if token in self._stops:
            self._finished = True
            return self._close()
        self._ids.append(token)
        self._next_input = [token]
        if len(self._ids) >= self._prompt.max_new_tokens:
            return self._close()
        return self._text.update(self._ids)

    def stop(self) -> str:
        """End the answer here (cancelled); returns what was held back."""
        if self.done:
            return ""
        self._stopped = True
        return self._close()

    def _close(self) -> str:
        self.done = True
        self._cache = None                # the KV cache is the big allocation: free it now
        delta, self._final_text = self._text.finish(self._ids)
        return delta

    def result(self) -> DecodedReply:
        if not self.done:
            raise RuntimeError("the answer is still being decoded")
        return DecodedReply(self._final_text or "", tuple(self._ids), self._finished, self._stopped,
                            len(self._prompt.token_ids), self._prompt.dropped_exchanges, self._seconds)
