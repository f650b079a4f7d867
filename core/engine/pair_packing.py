"""Chosen and rejected of a pair in ONE sequence, their shared prefix computed once.

Layout of a pair's row (``L`` = length of the common prefix of the chosen and rejected
token sequences, at least the prompt when both were truncated alike)::

    [ shared prefix (L) | rest of chosen (Lc - L) | rest of rejected (Lr - L) | padding ]
      positions 0..L-1    positions L..Lc-1         positions L..Lr-1           0

A 4D mask lets every token see exactly what it sees in its own unpacked sequence: the shared
prefix and the chosen part attend causally; the rejected part attends to the shared prefix
and causally to itself, never to the chosen part; its position ids restart at ``L``. So each
hidden state equals the one at the same place of the unpacked layout (``core.engine.batching.collate``)
up to float rounding, and the log-probs are read from the states that predict each
completion token: a rejected token right after the shared prefix is predicted from the last
shared position, which serves both completions.

On prompts as long as their completions this removes about a third of the tokens of a step
and all of the padding between a pair's chosen and rejected rows. On the CPU the rows then go
end to end without their padding, and each pair's attention is computed by its parts, not
through the mask (``core.engine.packed_attention``; ``segments`` holds the layout for it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from core.engine.batching import TokenizedPair, collate, common_prefix_length


@dataclass
class PackedBatch:
    """A micro-batch with one row per pair. ``token_logps`` computed from it are laid out
    ``(2B, W)`` like the unpacked path's: rows ``0..B-1`` chosen, ``B..2B-1`` rejected, each
    row's completion-token log-probs first, then zeros (``loss_mask`` marks them)."""

    pair_ids: list[int]
    example_hashes: list[str]
    input_ids: torch.Tensor        # (B, T) right-padded
    position_ids: torch.Tensor     # (B, T) the positions each token has in its unpacked sequence
    attention_mask: torch.Tensor   # (B, 1, T, T) bool, True where query t may attend to key s
    predictor_index: torch.Tensor  # (N,) flat index into (B*T) of the state predicting each completion token
    labels: torch.Tensor           # (N,) the completion tokens, in the row-major order of loss_mask
    loss_mask: torch.Tensor        # (2B, W) 1 on the entries of token_logps that hold a completion token
    unpacked_tokens: int           # real tokens of the pairs' chosen + rejected sequences (unpacked count)
    segments: tuple[tuple[int, int, int], ...] = ()   # per row: (shared prefix, chosen end, end)

    @property
    def num_pairs(self) -> int:
        return len(self.pair_ids)

    def to(self, device: torch.device) -> "PackedBatch":
        return PackedBatch(self.pair_ids, self.example_hashes, self.input_ids.to(device),
                           self.position_ids.to(device), self.attention_mask.to(device),
                           self.predictor_index.to(device), self.labels.to(device), self.loss_mask.to(device),
                           self.unpacked_tokens, self.segments)

    def completion_tokens(self) -> torch.Tensor:
        """(2B,) completion-token counts (the same as the unpacked batch's)."""
        return self.loss_mask.sum(dim=1)

    def real_tokens(self) -> int:
        """Tokens of the pairs as chosen + rejected sequences, so ``tokens_per_second`` means the
        same whichever layout ran."""
        return self.unpacked_tokens


def _predicted(ids: Sequence[int], start: int) -> range:
    """Indices of the completion tokens that have a predictor (a completion starting at 0, when
    keep_end cut the whole prompt, has none for its first token, as in ``collate``)."""
    return range(max(start, 1), len(ids))


def collate_packed(pairs: Sequence[TokenizedPair], pad_token_id: int) -> PackedBatch:
    """Pack each pair into one row (see the module docstring)."""
    rows: list[list[int]] = []
    positions: list[list[int]] = []
    shared, chosen_ends, ends = [], [], []
    index_rows: list[list[int]] = []      # per (2B) output row: packed positions of the predictors
    label_rows: list[list[int]] = []
    for pair in pairs:
        chosen, rejected = pair.chosen_ids, pair.rejected_ids
        prefix = common_prefix_length(chosen, rejected)
        rows.append(list(chosen) + list(rejected[prefix:]))
        positions.append(list(range(len(chosen))) + list(range(prefix, len(rejected))))
        shared.append(prefix)
        chosen_ends.append(len(chosen))
        ends.append(len(rows[-1]))
    width = max(ends)
    for row, pair in enumerate(pairs):
        predicted = _predicted(pair.chosen_ids, pair.chosen_start)
        index_rows.append([row * width + t - 1 for t in predicted])
        label_rows.append([pair.chosen_ids[t] for t in predicted])
    for row, pair in enumerate(pairs):
        prefix, chosen_end = shared[row], chosen_ends[row]
        predicted = _predicted(pair.rejected_ids, pair.rejected_start)
        # Token t is predicted by rejected position t-1: in the shared prefix, or after the chosen part.
        index_rows.append([row * width + (t - 1 if t - 1 < prefix else chosen_end + t - 1 - prefix)
                           for t in predicted])
        label_rows.append([pair.rejected_ids[t] for t in predicted])

    batch_size = len(pairs)
    input_ids = torch.full((batch_size, width), pad_token_id, dtype=torch.long)
    position_ids = torch.zeros((batch_size, width), dtype=torch.long)
    for row, (sequence, position) in enumerate(zip(rows, positions)):
        input_ids[row, :len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        position_ids[row, :len(position)] = torch.tensor(position, dtype=torch.long)

    steps = torch.arange(width)
    query, key = steps.view(1, width, 1), steps.view(1, 1, width)
    prefix_t = torch.tensor(shared).view(-1, 1, 1)
    chosen_end_t = torch.tensor(chosen_ends).view(-1, 1, 1)
    end_t = torch.tensor(ends).view(-1, 1, 1)
    rejected_query = (query >= chosen_end_t) & (query < end_t)           # (B, T, 1)
    chosen_only_key = (key >= prefix_t) & (key < chosen_end_t)           # (B, 1, T)
    # Padding queries keep their causal row (never read, but a fully masked row would give NaN).
    allowed = (key <= query) & ~(rejected_query & chosen_only_key)       # (B, T, T)

    counts = [len(r) for r in index_rows]
    loss_mask = torch.zeros((2 * batch_size, max(max(counts), 1)), dtype=torch.long)
    for row, count in enumerate(counts):
        loss_mask[row, :count] = 1
    unpacked = sum(len(p.chosen_ids) + len(p.rejected_ids) for p in pairs)
    return PackedBatch([p.pair_id for p in pairs], [p.example_hash for p in pairs], input_ids, position_ids,
                       allowed.unsqueeze(1), torch.tensor([i for r in index_rows for i in r], dtype=torch.long),
                       torch.tensor([y for r in label_rows for y in r], dtype=torch.long), loss_mask, unpacked,
                       tuple(zip(shared, chosen_ends, ends)))


def collate_pairs(pairs: Sequence[TokenizedPair], pad_token_id: int, packed: bool):
    """``collate_packed`` when ``packed`` (the model takes the packed layout), else ``collate``."""
    return collate_packed(pairs, pad_token_id) if packed else collate(pairs, pad_token_id)
