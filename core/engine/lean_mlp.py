"""A gated MLP whose backward keeps two values a position instead of four.

Llama-family MLPs compute ``down(silu(gate(x)) * up(x))``. Run as written, autograd keeps four
intermediate-sized tensors per position for the backward: the gate's output (for SiLU's
gradient), SiLU's output and the up projection's (for the product's), and the product itself
(LoRA's ``A`` on ``down`` needs its input). At Qwen2.5-0.5B's sizes that is 4 × 4,864 of the
≈26,600 values a decoder layer keeps per position.

``use_lean_mlps(model)`` gives each such MLP a forward that is one autograd function: the three
projections with their LoRA updates, the SiLU and the product. It keeps the MLP's input, the gate's
and the up projection's outputs and LoRA's rank-sized inner values, and recomputes SiLU and the
product elementwise in the backward; the frozen weights get no gradient and need no input, so no
matrix product is repeated. The backward runs over row chunks (``core.engine.head_chunks.
mlp_chunk_rows``: 862 rows at 4,864 wide), so what it holds beyond the kept values is a chunk's
worth, not three more intermediate-sized tensors a position. The forward computes exactly what
peft's ``lora.Linear`` does, in the same order, so the values are identical; gradients agree to
float rounding (``tests/test_lean_mlp.py``).

It takes over only where it is the same computation: the module's own forward is that one line
(read from its source), SiLU is the activation, each projection is a plain frozen ``nn.Linear`` or
a peft LoRA layer with one plain adapter active, unmerged, without dropout, all in one dtype, and
gradients are being recorded. Anything else (a disabled adapter in the reference pass, a 4-bit
base, dropout, a DoRA variant, a trainable base weight) runs the module's own forward.
"""

from __future__ import annotations

import inspect
import types

import torch
import torch.nn.functional as F

from core.engine.head_chunks import MLP_CHUNK_ELEMENTS, MLP_CHUNK_MIN_ROWS, mlp_chunk_rows

GATED_FORM = "self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))"
CHUNK_ELEMENTS, MIN_CHUNK_ROWS = MLP_CHUNK_ELEMENTS, MLP_CHUNK_MIN_ROWS   # patched by the tests


def _project(x, weight, bias, lora_a, lora_b, scaling):
    """A frozen linear layer with its LoRA update, in peft's order: ``base(x) + B(A(x)) · s``, the
    update scaled and added in place (the same two roundings, one output-sized tensor fewer)."""
    out = F.linear(x, weight, bias)
    if lora_a is None:
        return out, None
    inner = F.linear(x, lora_a)
    return out.add_(F.linear(inner, lora_b).mul_(scaling)), inner


def _accumulate(total: torch.Tensor, left: torch.Tensor, right: torch.Tensor, alpha: float = 1.0) -> None:
    """``total += alpha · left @ right``, in float32 whatever the operands' dtype."""
    if left.dtype == total.dtype:
        total.addmm_(left, right, alpha=alpha)
    else:
        total.add_(left @ right, alpha=alpha)


def _rows(tensor: torch.Tensor | None) -> torch.Tensor | None:
    return None if tensor is None else tensor.reshape(-1, tensor.shape[-1])


class _LeanMLP(torch.autograd.Function):
    """``down(silu(gate(x)) · up(x))`` with each projection's LoRA update. Keeps ``x``, the gate's and
    up's outputs and LoRA's rank-sized inner values; the backward runs over row chunks, so what it
    holds beyond those is a chunk's worth."""

    @staticmethod
    def forward(ctx, x, chunk_rows, scalings, *weights):
        gate_parts, up_parts, down_parts = weights[0:4], weights[4:8], weights[8:12]
        gate, gate_inner = _project(x, *gate_parts, scalings[0])
        up, up_inner = _project(x, *up_parts, scalings[1])
        # SiLU's output becomes the product in place: gate, up and the product, never a fourth
        out, down_inner = _project(F.silu(gate).mul_(up), *down_parts, scalings[2])
        ctx.chunk_rows, ctx.scalings = chunk_rows, scalings
        ctx.save_for_backward(x, gate, up, gate_inner, up_inner, down_inner, *weights)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, gate, up, gate_inner, up_inner, down_inner, *weights = ctx.saved_tensors
        (wg, _, ag, bg), (wu, _, au, bu), (wd, _, ad, bd) = weights[0:4], weights[4:8], weights[8:12]
        sg, su, sd = ctx.scalings
        x2, g2, u2, go2 = _rows(x), _rows(gate), _rows(up), _rows(grad_out)
        inners = [_rows(gate_inner), _rows(up_inner), _rows(down_inner)]
        lora = {name: (torch.zeros(a.shape, dtype=torch.float32, device=a.device),
                       torch.zeros(b.shape, dtype=torch.float32, device=b.device))
                for name, a, b in (("gate", ag, bg), ("up", au, bu), ("down", ad, bd)) if a is not None}
        grad_x = torch.empty_like(x2) if ctx.needs_input_grad[0] else None
        for start in range(0, go2.shape[0], ctx.chunk_rows):
            rows = slice(start, start + ctx.chunk_rows)
            go, g, u = go2[rows], g2[rows], u2[rows]
            grad_product = go @ wd
            sig = torch.sigmoid(g)
            if ad is not None:
                grad_inner = (go @ bd).mul_(sd)
                _accumulate(lora["down"][1], go.T, inners[2][rows], sd)
                _accumulate(lora["down"][0], grad_inner.T, torch.mul(g, sig).mul_(u))
                grad_product.addmm_(grad_inner, ad)
            grad_up = torch.mul(g, sig).mul_(grad_product)                      # ∂/∂up = silu(gate)
            grad_gate = grad_product.mul_(u).mul_(sig)
            grad_gate.mul_(sig.neg_().add_(1).mul_(g).add_(1))                  # silu'(g) = σ(g)(1 + g(1 − σ(g)))
            del sig
            grad_rows = grad_gate @ wg if grad_x is not None else None
            if grad_rows is not None:
                grad_rows.addmm_(grad_up, wu)
            for name, grad, a, b, scaling, inner in (("gate", grad_gate, ag, bg, sg, inners[0]),
                                                     ("up", grad_up, au, bu, su, inners[1])):
                if a is None:
                    continue
                grad_inner = (grad @ b).mul_(scaling)
                _accumulate(lora[name][1], grad.T, inner[rows], scaling)
                _accumulate(lora[name][0], grad_inner.T, x2[rows])
                if grad_rows is not None:
                    grad_rows.addmm_(grad_inner, a)
            if grad_x is not None:
                grad_x[rows] = grad_rows
        grads = []
        for name, w in (("gate", wg), ("up", wu), ("down", wd)):
            a_grad, b_grad = lora.get(name, (None, None))
            grads += [None, None, None if a_grad is None else a_grad.to(w.dtype),
                      None if b_grad is None else b_grad.to(w.dtype)]
        return (None if grad_x is None else grad_x.view_as(x), None, None, *grads)


def _plain_frozen_linear(module) -> bool:
    return type(module) is torch.nn.Linear and not module.weight.requires_grad and (
        module.bias is None or not module.bias.requires_grad)


def _projection_parts(module, dtype: torch.dtype):
    """((weight, bias, lora_A, lora_B), scaling) when ``module`` can run inside ``_LeanMLP``, else None."""
    if _plain_frozen_linear(module):
        return ((module.weight, module.bias, None, None), 1.0) if module.weight.dtype == dtype else None
    base = getattr(module, "base_layer", None)
    if base is None or not _plain_frozen_linear(base) or base.weight.dtype != dtype:
        return None
    if getattr(module, "disable_adapters", True) or getattr(module, "merged", True):
        return None
    active = [name for name in module.active_adapters if name in module.lora_A]
    if len(active) != 1 or active[0] in getattr(module, "lora_variant", {}):
        return None
    name = active[0]
    lora_a, lora_b = module.lora_A[name], module.lora_B[name]
    dropout = module.lora_dropout[name]
    if not isinstance(dropout, torch.nn.Identity) and dropout.p > 0 and dropout.training:
        return None
    if lora_a.bias is not None or lora_b.bias is not None or lora_a.weight.dtype != dtype:
        return None
    return (base.weight, base.bias, lora_a.weight, lora_b.weight), float(module.scaling[name])


def chunk_rows(intermediate: int) -> int:
    """Rows of a backward chunk (``core.engine.head_chunks.mlp_chunk_rows``)."""
    return mlp_chunk_rows(intermediate, CHUNK_ELEMENTS, MIN_CHUNK_ROWS)


def _lean_forward(self, x):
    parts = [_projection_parts(p, x.dtype) for p in (self.gate_proj, self.up_proj, self.down_proj)] \
        if torch.is_grad_enabled() else [None]
    if any(part is None for part in parts):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))
    weights = [tensor for part, _ in parts for tensor in part]
    return _LeanMLP.apply(x, chunk_rows(self.down_proj.in_features), tuple(s for _, s in parts), *weights)


def _is_gated_silu_mlp(module) -> bool:
    if not all(hasattr(module, name) for name in ("gate_proj", "up_proj", "down_proj", "act_fn")):
        return False
    if not isinstance(module.act_fn, torch.nn.SiLU) and type(module.act_fn).__name__ != "SiLUActivation":
        return False
    try:
        source = inspect.getsource(type(module).forward)
    except (OSError, TypeError):
        return False
    return GATED_FORM.replace(" ", "") in source.replace(" ", "")


def use_lean_mlps(model) -> int:
    """Give every gated SiLU MLP of ``model`` the lean forward; the number of MLPs changed."""
    changed = 0
    for module in model.modules():
        if _is_gated_silu_mlp(module) and not getattr(module, "_lean_mlp", False):
            module.forward = types.MethodType(_lean_forward, module)
            module._lean_mlp = True
            changed += 1
    return changed
