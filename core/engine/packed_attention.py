"""Packed pairs on the CPU: one row without padding, attention only where a token looks.

The packed layout (``core.engine.pair_packing``) gives the model one padded row per pair and a
(B, 1, T, T) mask. torch's CPU flash kernel then scores every query against every key of the
row: the rejected part against the chosen part it never sees, and the padding (7-8% of a step's
slots at the 32k bench shape) through every projection and MLP.

Here, for a model whose attention is ``NAME`` (``use_split_attention``), the rows are laid end
to end without their padding (``one_row``) and each pair's attention is computed as two calls:

- the shared prefix and the chosen part: plain causal attention over themselves;
- the rejected part: over the shared prefix and itself (causal, aligned lower right), from
  keys gathered next to each other.

The scores computed are the same ones the mask allows; nothing else is. A mask without the
layout (generation, a 2D mask) or an attention feature the split does not take goes to
transformers' own sdpa function unchanged, so the numbers there are sdpa's. The one-row mask is
a real block-diagonal mask, so even that path stays right.
"""

from __future__ import annotations

import torch

NAME = "dpo_packed_sdpa"
_FALLBACK_KWARGS = ("sliding_window", "softcap", "position_bias", "s_aux")


def use_split_attention(model) -> bool:
    """Switch an sdpa model to ``NAME`` (registered with transformers here); False, and the
    model left as it was, where its attention is another kind or cannot be switched."""
    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return False
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, packed_sdpa_forward)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    try:
        model.set_attn_implementation(NAME)
    except (ValueError, ImportError):
        return False
    return model.config._attn_implementation == NAME


def one_row(batch):
    """A ``PackedBatch``'s rows end to end without padding: ``(input_ids, position_ids, mask,
    predictor_index)`` for one row of S tokens, the mask (1, 1, S, S) block-diagonal and carrying
    each pair's ``(start, prefix, chosen_end, end, rejected_mask)`` as ``pair_segments``."""
    rows, width = batch.input_ids.shape
    device = batch.input_ids.device
    ends = torch.tensor([end for _, _, end in batch.segments], device=device)
    valid = (torch.arange(width, device=device).unsqueeze(0) < ends.unsqueeze(1)).reshape(-1)
    keep = valid.nonzero().squeeze(1)
    new_index = valid.cumsum(0) - 1
    total = keep.numel()
    mask = torch.zeros((1, 1, total, total), dtype=torch.bool, device=device)
    segments, start = [], 0
    for row, (prefix, chosen_end, end) in enumerate(batch.segments):
        mask[0, 0, start:start + end, start:start + end] = batch.attention_mask[row, 0, :end, :end]
        rejected = end - chosen_end
        below = torch.ones((rejected, prefix + rejected), dtype=torch.bool, device=device).tril(prefix)
        segments.append((start, prefix, chosen_end, end, below))
        start += end
    mask.pair_segments = tuple(segments)   # read by packed_sdpa_forward in every layer
    return (batch.input_ids.reshape(1, -1)[:, keep], batch.position_ids.reshape(1, -1)[:, keep], mask,
            new_index[batch.predictor_index])


def packed_sdpa_forward(module, query, key, value, attention_mask, dropout: float = 0.0,
                        scaling: float | None = None, is_causal: bool | None = None, **kwargs):
    """transformers' attention-function signature: query (1, Hq, S, D), key and value
    (1, Hkv, S, D) -> ((1, S, Hq, D), None)."""
    segments = getattr(attention_mask, "pair_segments", None)
    if segments is None or any(kwargs.get(name) is not None for name in _FALLBACK_KWARGS) \
            or kwargs.get("output_attentions"):
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, is_causal=is_causal, **kwargs)
    options = {"dropout_p": dropout, "scale": scaling,
               "enable_gqa": getattr(module, "num_key_value_groups", 1) > 1}
    attend = torch.nn.functional.scaled_dot_product_attention
    # The row is [chosen | rejected] pair after pair (each chosen part beginning with the pair's shared
    # prefix): one split cuts queries, keys and values into those parts, whose backward is one cat,
    # where a slice each would fill a zero tensor of the whole row in the backward.
    sizes = [size for _, _, chosen_end, end, _ in segments for size in (chosen_end, end - chosen_end)]
    queries, keys, values = (tensor.split(sizes, dim=2) for tensor in (query, key, value))
    pieces = []
    for i, (_, prefix, chosen_end, end, below) in enumerate(segments):
        if chosen_end:
            pieces.append(attend(queries[2 * i], keys[2 * i], values[2 * i], is_causal=True, **options))
        if end > chosen_end:
            shared_keys = torch.cat([keys[2 * i][:, :, :prefix], keys[2 * i + 1]], dim=2)
            shared_values = torch.cat([values[2 * i][:, :, :prefix], values[2 * i + 1]], dim=2)
            pieces.append(attend(queries[2 * i + 1], shared_keys, shared_values, attn_mask=below, **options))
    output = torch.cat(pieces, dim=2) if len(pieces) > 1 else pieces[0]        # (1, Hq, S, D)
    return output.transpose(1, 2).contiguous(), None
