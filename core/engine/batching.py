"""From preference examples to padded tensors, the way TRL's DPOTrainer does it.

Tokenisation (same token ids as TRL 1.x ``DPOTrainer._prepare_dataset``):

- plain text: EOS is appended to each completion unless it already ends with it (never
  doubled); ``prompt`` and ``prompt + completion`` are tokenised as whole strings (so a BOS
  the tokenizer adds comes first, and tokens may merge across the boundary); the completion
  starts where the two token lists first differ.
- chat (messages): the prompt is rendered with the model's chat template and the generation
  prompt, ``prompt + [completion message]`` without it; same common-prefix rule.

Truncation policy (``max_length``, per sequence, as TRL's collator): ``keep_start`` keeps
the first ``max_length`` tokens of prompt + completion (the completion's end is cut);
``keep_end`` keeps the last ``max_length`` (the prompt's start is cut first). A pair whose
chosen or rejected completion has no token left is dropped and counted.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from storage.training_set import example_key

DROP_TRUNCATED = "no completion tokens left after truncation to max_length"
DROP_EMPTY = "empty completion"


@dataclass(frozen=True)
class TokenizedPair:
    """One preference pair as two token sequences (prompt + completion, already truncated)."""

    pair_id: int
    example_hash: str            # hash of the texts (reference-cache key with the tokenisation fingerprint)
    chosen_ids: tuple[int, ...]
    chosen_start: int            # index of the first completion token in chosen_ids
    rejected_ids: tuple[int, ...]
    rejected_start: int
    split: str = "train"

    @property
    def length(self) -> int:
        return max(len(self.chosen_ids), len(self.rejected_ids))

    @property
    def chosen_tokens(self) -> int:
        return len(self.chosen_ids) - self.chosen_start

    @property
    def rejected_tokens(self) -> int:
        return len(self.rejected_ids) - self.rejected_start


@dataclass
class Batch:
    """A padded micro-batch: rows ``0..B-1`` are the chosen sequences, ``B..2B-1`` the rejected
    ones, so chosen and rejected go through one forward."""

    pair_ids: list[int]
    example_hashes: list[str]
    input_ids: torch.Tensor        # (2B, T) right-padded
    attention_mask: torch.Tensor   # (2B, T) 1 on real tokens
    loss_mask: torch.Tensor        # (2B, T-1) 1 where the *next* token is a completion token

    @property
    def num_pairs(self) -> int:
        return len(self.pair_ids)

    def to(self, device: torch.device) -> "Batch":
        return Batch(self.pair_ids, self.example_hashes, self.input_ids.to(device),
                     self.attention_mask.to(device), self.loss_mask.to(device))

    def completion_tokens(self) -> torch.Tensor:
        """(2B,) completion-token counts."""
        return self.loss_mask.sum(dim=1)

    def real_tokens(self) -> int:
        return int(self.attention_mask.sum())


def example_hash(prompt: Any, chosen: Any, rejected: Any) -> str:
    """The example's key in the caches (``storage.training_set.example_key``)."""
    return example_key(prompt, chosen, rejected)


def hash_of(example: Any) -> str:
    """``example_hash`` of an example, taken from it when it keeps its own (``PreferenceExample``)."""
    kept = getattr(example, "example_hash", None)
    return kept if isinstance(kept, str) else example_key(example.prompt, example.chosen, example.rejected)


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _as_messages(completion: str | list[dict]) -> list[dict]:
    return completion if isinstance(completion, list) else [{"role": "assistant", "content": completion}]


def tokenize_triple(tokenizer, prompt: str | list[dict], chosen: str | list[dict],
                    rejected: str | list[dict]) -> tuple[list[int], list[int], list[int]]:
    """(prompt_ids, chosen_ids, rejected_ids) before truncation, exactly as TRL tokenises."""
    if isinstance(prompt, list):  # conversational
        def render(messages: list[dict], generation_prompt: bool) -> list[int]:
            return list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                                      add_generation_prompt=generation_prompt)["input_ids"])

        prompt_ids = render(prompt, True)
        prompt_chosen = render(prompt + _as_messages(chosen), False)
        prompt_rejected = render(prompt + _as_messages(rejected), False)
    else:
        eos = tokenizer.eos_token
        texts = []
        for completion in (chosen, rejected):
            if isinstance(completion, list):  # a message list under a plain prompt: use its text
                completion = "".join(m.get("content", "") for m in completion)
            texts.append(completion if completion.endswith(eos) else completion + eos)
        prompt_ids = list(tokenizer(text=prompt)["input_ids"])
        prompt_chosen = list(tokenizer(text=prompt + texts[0])["input_ids"])
        prompt_rejected = list(tokenizer(text=prompt + texts[1])["input_ids"])
    # The completion starts where the prompt alone and prompt + completion diverge.
    prompt_len = min(common_prefix_length(prompt_ids, prompt_chosen),
                     common_prefix_length(prompt_ids, prompt_rejected))
    return prompt_ids[:prompt_len], prompt_chosen[prompt_len:], prompt_rejected[prompt_len:]


def truncate(prompt_ids: Sequence[int], completion_ids: Sequence[int], max_length: int,
             mode: str) -> tuple[tuple[int, ...], int]:
    """(sequence, index of the first completion token) after the truncation policy."""
    sequence = list(prompt_ids) + list(completion_ids)
    start = len(prompt_ids)
    if len(sequence) > max_length:
        if mode == "keep_start":
            sequence = sequence[:max_length]
        else:  # keep_end
            cut = len(sequence) - max_length
            sequence = sequence[cut:]
            start = max(0, start - cut)
    return tuple(sequence), min(start, len(sequence))


def tokenize_examples(tokenizer, examples: Sequence[Any], max_length: int,
                      truncation_mode: str = "keep_start") -> tuple[list[TokenizedPair], Counter]:
    """Tokenise ``PreferenceExample``-like objects (``pair_id, prompt, chosen, rejected, split``).

    Returns the kept pairs (in input order) and a Counter of dropped pairs by reason.
    """
    kept: list[TokenizedPair] = []
    dropped: Counter = Counter()
    for example in examples:
        prompt_ids, chosen_ids, rejected_ids = tokenize_triple(tokenizer, example.prompt, example.chosen,
                                                               example.rejected)
        if not chosen_ids or not rejected_ids:
            dropped[DROP_EMPTY] += 1
            continue
        chosen_seq, chosen_start = truncate(prompt_ids, chosen_ids, max_length, truncation_mode)
        rejected_seq, rejected_start = truncate(prompt_ids, rejected_ids, max_length, truncation_mode)
        if chosen_start >= len(chosen_seq) or rejected_start >= len(rejected_seq):
            dropped[DROP_TRUNCATED] += 1
            continue
        kept.append(TokenizedPair(
            pair_id=example.pair_id,
            example_hash=hash_of(example),
            chosen_ids=chosen_seq, chosen_start=chosen_start,
            rejected_ids=rejected_seq, rejected_start=rejected_start,
            split=getattr(example, "split", "train")))
    return kept, dropped


def collate(pairs: Sequence[TokenizedPair], pad_token_id: int) -> Batch:
    """Pad a list of pairs into one concatenated chosen-then-rejected batch."""
    sequences = [p.chosen_ids for p in pairs] + [p.rejected_ids for p in pairs]
    starts = [p.chosen_start for p in pairs] + [p.rejected_start for p in pairs]
    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    loss_mask = torch.zeros((len(sequences), max(width - 1, 1)), dtype=torch.long)
    for row, (sequence, start) in enumerate(zip(sequences, starts)):
        input_ids[row, :len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        attention_mask[row, :len(sequence)] = 1
        # Position t predicts token t+1: completion tokens [start, len) are predicted at [start-1, len-1).
        # A completion starting at 0 (keep_end cut the whole prompt) has no predictor for its first token.
        loss_mask[row, max(start - 1, 0):len(sequence) - 1] = 1
    return Batch([p.pair_id for p in pairs], [p.example_hash for p in pairs], input_ids, attention_mask, loss_mask)


def batch_order(lengths: Sequence[int], batch_size: int, seed: int, epoch: int,
                group_by_length: bool = True, shuffle: bool = True) -> list[list[int]]:
    """Indices of each micro-batch of one epoch; a pure function of its arguments, so a resumed
    run rebuilds exactly the same order.

    With ``group_by_length``, the shuffled pairs are cut into mega-batches of 50 batches, each
    sorted by length before it is split (similar lengths share a batch, cutting padding), and
    the batches are shuffled again so long and short ones alternate through the epoch.
    """
    indices = list(range(len(lengths)))
    rng = random.Random(f"{seed}:{epoch}")
    if shuffle:
        rng.shuffle(indices)
    if group_by_length:
        mega = batch_size * 50
        grouped: list[int] = []
        for begin in range(0, len(indices), mega):
            chunk = indices[begin:begin + mega]
            grouped.extend(sorted(chunk, key=lambda i: -lengths[i]))
        indices = grouped
    batches = [indices[i:i + batch_size] for i in range(0, len(indices), batch_size)]
    if group_by_length and shuffle:
        rng.shuffle(batches)
    return batches


def sorted_batches(pairs: Sequence[TokenizedPair], batch_size: int) -> list[list[int]]:
    """Deterministic length-sorted batches for no-grad passes (reference log-probs, evaluation)."""
    order = sorted(range(len(pairs)), key=lambda i: -pairs[i].length)
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
