"""Per-token and per-sequence log-probabilities of completions under a causal LM.

The LM head is applied only at the positions that predict a completion token (prompt and
padding positions never reach the vocabulary projection), which on small models is most of
the forward's cost. For large vocabularies the head runs in chunks under activation
checkpointing, so the ``(N, V)`` logits are never all alive at once.

Two batch layouts give the same numbers: ``core.engine.batching.Batch`` (chosen and rejected as
separate rows) and ``core.engine.pair_packing.PackedBatch`` (one row per pair, shared prefix once,
a 4D attention mask). ``supports_packed_pairs`` says whether a model can take the latter.
"""

from __future__ import annotations

import inspect

import torch
from torch.utils.checkpoint import checkpoint

from core.engine.batching import Batch
from core.engine.pair_packing import PackedBatch

# Rows of the (N, V) logits computed at once before chunking kicks in (about 256 MiB of fp32).
LOGITS_CHUNK_ELEMENTS = 1 << 26
_LOGIT_TRANSFORM_ATTRS = ("final_logit_softcapping", "logit_scale", "output_multiplier",
                          "lm_head_multiplier", "logits_scaling")
# Attention implementations that apply a custom 4D mask as given (transformers' masking_utils
# returns a 4D mask as is; flash-attention kernels take no mask, flex attention wants a BlockMask).
_MASKED_ATTENTION = ("sdpa", "eager")


def _causal_lm(model):
    """The transformers model inside a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _plain_head(causal_lm) -> bool:
    """True when logits are just ``lm_head(hidden)`` (no soft-capping or scaling the fast path would miss)."""
    config = _text_config(causal_lm)
    return all(getattr(config, attr, None) in (None, 1.0) for attr in _LOGIT_TRANSFORM_ATTRS)


def _text_config(causal_lm):
    config = causal_lm.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def supports_packed_pairs(model) -> bool:
    """True when ``model`` gives the packed layout the same numbers as the unpacked one: a plain
    LM head, sdpa or eager attention (which take a 4D mask as is), every layer full attention
    (a sliding window would be replaced by the packed mask) and a backbone that takes position ids."""
    causal_lm = _causal_lm(model)
    if not _plain_head(causal_lm) or not hasattr(causal_lm, "base_model"):
        return False
    config = _text_config(causal_lm)
    if getattr(causal_lm.config, "_attn_implementation", None) not in _MASKED_ATTENTION:
        return False
    layer_types = getattr(config, "layer_types", None)
    if layer_types is not None:
        if any(kind != "full_attention" for kind in layer_types):
            return False
    elif getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True):
        return False
    try:
        return "position_ids" in inspect.signature(causal_lm.base_model.forward).parameters
    except (TypeError, ValueError):
        return False


def _head_logps(head: torch.nn.Module, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log softmax(head(hidden))[label] for ``hidden`` (N, H), ``labels`` (N,) -> (N,) float32."""
    logits = head(hidden).float()                                   # (N, V)
    return logits.gather(-1, labels.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def _selected_logps(head: torch.nn.Module, selected_hidden: torch.Tensor,
                    selected_labels: torch.Tensor) -> torch.Tensor:
    """``_head_logps`` in row chunks when the (N, V) logits would be large: (N, H), (N,) -> (N,)."""
    vocab = head.weight.shape[0]
    rows = max(1, LOGITS_CHUNK_ELEMENTS // vocab)
    if selected_hidden.shape[0] <= rows:
        return _head_logps(head, selected_hidden, selected_labels)
    pieces = []
    for begin in range(0, selected_hidden.shape[0], rows):
        h, y = selected_hidden[begin:begin + rows], selected_labels[begin:begin + rows]
        if torch.is_grad_enabled():
            pieces.append(checkpoint(_head_logps, head, h, y, use_reentrant=False))
        else:
            pieces.append(_head_logps(head, h, y))
    return torch.cat(pieces)


def _packed_token_logps(causal_lm, batch: PackedBatch) -> torch.Tensor:
    """``completion_token_logps`` of a packed batch: ``(2B, W)`` float32."""
    backbone = causal_lm.base_model
    attention = batch.attention_mask                                # (B, 1, T, T) bool
    if causal_lm.config._attn_implementation == "eager":            # eager adds the mask to the scores
        dtype = causal_lm.get_input_embeddings().weight.dtype
        attention = torch.zeros(attention.shape, dtype=dtype, device=attention.device).masked_fill(
            ~attention, torch.finfo(dtype).min)
    hidden = backbone(input_ids=batch.input_ids, attention_mask=attention, position_ids=batch.position_ids,
                      use_cache=False).last_hidden_state           # (B, T, H)
    selected_hidden = hidden.reshape(-1, hidden.shape[-1]).index_select(0, batch.predictor_index)  # (N, H)
    selected = _selected_logps(causal_lm.get_output_embeddings(), selected_hidden, batch.labels)  # (N,)
    mask = batch.loss_mask.bool()                                   # (2B, W)
    return torch.zeros(mask.shape, dtype=selected.dtype, device=selected.device).masked_scatter(mask, selected)


def completion_token_logps(model, batch: Batch | PackedBatch) -> torch.Tensor:
    """Log-prob of each completion token, zero elsewhere: ``(2B, W)`` float32, rows ``0..B-1``
    chosen, ``B..2B-1`` rejected; ``batch.loss_mask`` (same shape) is 1 on the completion tokens.

    For a ``Batch``, ``W = T-1`` and entry ``[i, t]`` is ``log p(input_ids[i, t+1] | input_ids[i, :t+1])``.
    For a ``PackedBatch`` (see ``supports_packed_pairs``), each row holds its completion tokens'
    log-probs first; row sums and counts are those of the unpacked layout.
    """
    causal_lm = _causal_lm(model)
    if isinstance(batch, PackedBatch):
        return _packed_token_logps(causal_lm, batch)
    labels = batch.input_ids[:, 1:]                                 # (2B, T-1)
    mask = batch.loss_mask.bool()                                   # (2B, T-1)
    if not _plain_head(causal_lm):
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                       use_cache=False).logits[:, :-1].float()     # (2B, T-1, V)
        token_logps = torch.log_softmax(logits, dim=-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
        return token_logps * mask
    backbone = causal_lm.base_model                                 # e.g. LlamaModel (LoRA layers live inside)
    hidden = backbone(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                      use_cache=False).last_hidden_state[:, :-1]    # (2B, T-1, H)
    selected = _selected_logps(causal_lm.get_output_embeddings(), hidden[mask], labels[mask])  # (N,)
    return torch.zeros(mask.shape, dtype=selected.dtype, device=selected.device).masked_scatter(mask, selected)


def sequence_logps(token_logps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over completion tokens, split into (chosen (B,), rejected (B,))."""
    totals = token_logps.sum(dim=1)                                 # (2B,)
    chosen, rejected = totals.chunk(2, dim=0)
    return chosen, rejected
