"""Per-token and per-sequence log-probabilities of completions under a causal LM.

The LM head is applied only at the positions that predict a completion token (prompt and
padding positions never reach the vocabulary projection), which on small models is most of
the forward's cost. The head and its log-softmax run in row chunks (``core.engine.head_chunks``:
32 MiB of logits, at least 256 rows), so the ``(N, V)`` logits are never all alive at once and
nothing of vocabulary size is kept for the backward: a frozen head's backward needs only
``d logp / d hidden = W[label] - softmax(logits) @ W`` per row, computed in the forward chunk by
chunk (``_FusedHeadLogps``; no recompute), the softmax made in place in the chunk's logits (one
chunk-sized buffer in all). A trainable head (LoRA or modules_to_save on it)
takes the checkpointed chunks instead, which recompute each chunk's logits in the backward.

Two batch layouts give the same numbers: ``core.engine.batching.Batch`` (chosen and rejected as
separate rows) and ``core.engine.pair_packing.PackedBatch`` (one row per pair, shared prefix once,
a 4D attention mask). ``supports_packed_pairs`` says whether a model can take the latter.
"""

from __future__ import annotations

import inspect

import torch
from torch.utils.checkpoint import checkpoint

from core.engine.batching import Batch
from core.engine.head_chunks import HEAD_CHUNK_MIN_ROWS, LOGITS_CHUNK_ELEMENTS, head_chunk_rows
from core.engine.pair_packing import PackedBatch
from core.engine.packed_attention import NAME as PACKED_SDPA, one_row

# LOGITS_CHUNK_ELEMENTS and HEAD_CHUNK_MIN_ROWS (core.engine.head_chunks) are read from this module at
# each call, so a test can set smaller chunks here.
_LOGIT_TRANSFORM_ATTRS = ("final_logit_softcapping", "logit_scale", "output_multiplier",
                          "lm_head_multiplier", "logits_scaling")
# Attention implementations that apply a custom 4D mask as given (transformers' masking_utils
# returns a 4D mask as is; flash-attention kernels take no mask, flex attention wants a BlockMask).
_MASKED_ATTENTION = ("sdpa", "eager", PACKED_SDPA)


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


def _logit_transform(causal_lm):
    """The element-wise map from ``lm_head(hidden)`` to the model's logits for the known non-plain
    heads (Gemma's soft-capping, Cohere's ``logit_scale``, Granite's ``logits_scaling``), so their
    head can run in chunks too; None when the head is plain or its transform is not known here."""
    config = _text_config(causal_lm)
    if _plain_head(causal_lm) or any(getattr(config, attr, None) not in (None, 1.0)
                                     for attr in ("output_multiplier", "lm_head_multiplier")):
        return None
    cap = getattr(config, "final_logit_softcapping", None)
    scale = getattr(config, "logit_scale", None)
    divisor = getattr(config, "logits_scaling", None)

    def transform(logits: torch.Tensor) -> torch.Tensor:
        if scale not in (None, 1.0):
            logits = logits * scale
        if divisor not in (None, 1.0):
            logits = logits / divisor
        if cap is not None:
            logits = torch.tanh(logits / cap) * cap
        return logits

    return transform


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


def _head_logps(head: torch.nn.Module, hidden: torch.Tensor, labels: torch.Tensor,
                transform=None) -> torch.Tensor:
    """log softmax(transform(head(hidden)))[label] for ``hidden`` (N, H), ``labels`` (N,) -> (N,) float32."""
    logits = head(hidden)                                           # (N, V)
    logits = (logits if transform is None else transform(logits)).float()
    return logits.gather(-1, labels.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


class _FusedHeadLogps(torch.autograd.Function):
    """log softmax(hidden @ W.T + b)[label] of a frozen head, by row chunks: (N, H) -> (N,) float32.

    For one row, ``logp = z[y] - logsumexp(z)`` with ``z = W h + b``, so
    ``d logp / d h = W[y] - softmax(z) @ W``: the forward stores that (N, H) Jacobian and the backward
    scales it by the incoming gradient. The same numbers as autograd through the full logits, without
    keeping (or recomputing) any (rows, V) tensor for the backward. The logsumexp is torch's own
    recipe (``m + log Σ exp(z - m)``, m the row's maximum) done in place in the chunk's logits, which
    then become the softmax: torch.logsumexp would allocate two more chunk-sized temporaries."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, labels, rows):
        need_grad = ctx.needs_input_grad[0]
        logps = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)     # (N,)
        jacobian = torch.empty_like(hidden) if need_grad else None                           # (N, H)
        for begin in range(0, hidden.shape[0], rows):
            end = min(begin + rows, hidden.shape[0])
            h, y = hidden[begin:end], labels[begin:end]
            logits = torch.nn.functional.linear(h, weight, bias).float()                     # (n, V)
            target = logits.gather(-1, y.unsqueeze(-1))                                      # (n, 1)
            peak = logits.amax(dim=-1, keepdim=True)                                         # (n, 1)
            # An all -inf row: torch.logsumexp's guard (no inf - inf); its log-prob comes out -inf.
            peak = peak.masked_fill(torch.isinf(peak), 0.0)
            exp_shifted = logits.sub_(peak).exp_()                                           # (n, V) in place
            total = exp_shifted.sum(dim=-1, keepdim=True)                                    # (n, 1)
            logps[begin:end] = (target - (peak + total.log())).squeeze(-1)
            if need_grad:
                probabilities = exp_shifted.div_(total).to(weight.dtype)                     # (n, V) softmax
                jacobian[begin:end] = weight.index_select(0, y) - probabilities @ weight
            del logits, exp_shifted
        ctx.save_for_backward(jacobian)
        return logps

    @staticmethod
    def backward(ctx, grad_logps):
        (jacobian,) = ctx.saved_tensors
        grad_hidden = None
        if jacobian is not None:
            grad_hidden = grad_logps.unsqueeze(-1).to(jacobian.dtype) * jacobian             # (N, H)
        return grad_hidden, None, None, None, None


def _frozen_linear(head: torch.nn.Module) -> bool:
    """True for a plain ``nn.Linear`` head with no trainable parameter (the fused path's case)."""
    return (type(head) is torch.nn.Linear
            and not any(parameter.requires_grad for parameter in head.parameters()))


def _selected_logps(head: torch.nn.Module, selected_hidden: torch.Tensor, selected_labels: torch.Tensor,
                    transform=None) -> torch.Tensor:
    """log-probs of ``selected_labels`` (N,) under the head (then ``transform``, see
    ``_logit_transform``) at ``selected_hidden`` (N, H) -> (N,) float32, one chunk of
    ``head_chunk_rows`` rows alive at a time."""
    rows = head_chunk_rows(head.weight.shape[0], LOGITS_CHUNK_ELEMENTS, HEAD_CHUNK_MIN_ROWS)
    if transform is None and _frozen_linear(head):
        return _FusedHeadLogps.apply(selected_hidden, head.weight, head.bias, selected_labels, rows)
    if selected_hidden.shape[0] <= rows:
        return _head_logps(head, selected_hidden, selected_labels, transform)
    pieces = []
    for begin in range(0, selected_hidden.shape[0], rows):
        h, y = selected_hidden[begin:begin + rows], selected_labels[begin:begin + rows]
        if torch.is_grad_enabled():
            pieces.append(checkpoint(_head_logps, head, h, y, transform, use_reentrant=False))
        else:
            pieces.append(_head_logps(head, h, y, transform))
    return torch.cat(pieces)


def _packed_token_logps(causal_lm, batch: PackedBatch) -> torch.Tensor:
    """``completion_token_logps`` of a packed batch: ``(2B, W)`` float32."""
    backbone = causal_lm.base_model
    attention = batch.attention_mask                                # (B, 1, T, T) bool
    if causal_lm.config._attn_implementation == "eager":            # eager adds the mask to the scores
        dtype = causal_lm.get_input_embeddings().weight.dtype
        attention = torch.zeros(attention.shape, dtype=dtype, device=attention.device).masked_fill(
            ~attention, torch.finfo(dtype).min)
    input_ids, position_ids, predictor_index = batch.input_ids, batch.position_ids, batch.predictor_index
    if causal_lm.config._attn_implementation == PACKED_SDPA and batch.segments:
        input_ids, position_ids, attention, predictor_index = one_row(batch)    # (1, S): no padding
    hidden = backbone(input_ids=input_ids, attention_mask=attention, position_ids=position_ids,
                      use_cache=False).last_hidden_state           # (B, T, H) or (1, S, H)
    selected_hidden = hidden.reshape(-1, hidden.shape[-1]).index_select(0, predictor_index)  # (N, H)
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
    transform = _logit_transform(causal_lm)
    if not _plain_head(causal_lm) and transform is None:           # an unknown head: the model's own logits
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                       use_cache=False).logits[:, :-1].float()     # (2B, T-1, V)
        token_logps = torch.log_softmax(logits, dim=-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
        return token_logps * mask
    backbone = causal_lm.base_model                                 # e.g. LlamaModel (LoRA layers live inside)
    hidden = backbone(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                      use_cache=False).last_hidden_state[:, :-1]    # (2B, T-1, H)
    selected = _selected_logps(causal_lm.get_output_embeddings(), hidden[mask], labels[mask],
                               transform)                           # (N,)
    return torch.zeros(mask.shape, dtype=selected.dtype, device=selected.device).masked_scatter(mask, selected)


def sequence_logps(token_logps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over completion tokens, split into (chosen (B,), rejected (B,))."""
    totals = token_logps.sum(dim=1)                                 # (2B,)
    chosen, rejected = totals.chunk(2, dim=0)
    return chosen, rejected
