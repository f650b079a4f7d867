"""A gated MLP whose backward keeps two values a position instead of four.

Llama-family MLPs compute ``down(silu(gate(x)) * up(x))``. Run as written, autograd keeps four
intermediate-sized tensors per position for the backward: the gate's output (for SiLU's
gradient), SiLU's output and the up projection's (for the product's), and the product itself
(LoRA's ``A`` on ``down`` needs its input). At Qwen2.5-0.5B's sizes that is 4 × 4,864 of the
≈26,600 values a decoder layer keeps per position.

``use_lean_mlps(model)`` gives each such MLP a forward whose last half (the SiLU, the product and
the ``down`` projection with its LoRA update) is one autograd function that keeps only the gate's
and the up projection's outputs (and LoRA's rank-sized inner values) and recomputes the rest,
elementwise, in the backward; the frozen ``down`` weight gets no gradient and needs no input, so
no matrix product is repeated. The forward computes exactly what peft's ``lora.Linear`` does, in
the same order, so the values are identical; gradients agree to float rounding
(``tests/test_lean_mlp.py``).

It takes over only where it is the same computation: the module's own forward is that one line
(read from its source), SiLU is the activation, ``down`` is a plain frozen ``nn.Linear`` or a peft
LoRA layer with one plain adapter active, unmerged, without dropout, and gradients are being
recorded. Anything else (a disabled adapter in the reference pass, a 4-bit base, dropout, a DoRA
variant, a trainable ``down``, mixed dtypes) runs the module's own forward.
"""

from __future__ import annotations

import inspect
import types

import torch
import torch.nn.functional as F

GATED_FORM = "self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))"


class _GatedDown(torch.autograd.Function):
    """``down(silu(gate) * up)`` with down's LoRA update; keeps ``gate``, ``up`` and LoRA's inner values."""

    @staticmethod
    def forward(ctx, gate, up, weight, bias, lora_a, lora_b, scaling):
        product = F.silu(gate) * up
        out = F.linear(product, weight, bias)
        inner = None
        if lora_a is not None:
            inner = F.linear(product, lora_a)
            out = out + F.linear(inner, lora_b) * scaling
        ctx.scaling = scaling
        ctx.save_for_backward(gate, up, weight, lora_a, lora_b, inner)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        # In place where it can be: besides gate and up, at most three intermediate-sized tensors at
        # once (the product's gradient, σ(gate), up's gradient), as many as autograd's own backward
        # of the module's forward holds beside its four.
        gate, up, weight, lora_a, lora_b, inner = ctx.saved_tensors
        grad_product = grad_out @ weight
        grad_a = grad_b = None
        sig = torch.sigmoid(gate)
        if lora_a is not None:
            rows = grad_product.view(-1, grad_product.shape[-1])
            grad_inner = (grad_out @ lora_b).mul_(ctx.scaling).view(-1, lora_b.shape[-1])
            grad_b = (grad_out.reshape(-1, grad_out.shape[-1]).T @ inner.view(-1, inner.shape[-1])).mul_(ctx.scaling)
            product = torch.mul(gate, sig).mul_(up)
            grad_a = grad_inner.T @ product.view(-1, product.shape[-1])
            del product
            rows.addmm_(grad_inner, lora_a)
        grad_up = torch.mul(gate, sig).mul_(grad_product)                  # ∂/∂up = silu(gate)
        grad_gate = grad_product.mul_(up).mul_(sig)
        grad_gate.mul_(sig.neg_().add_(1).mul_(gate).add_(1))              # silu'(g) = σ(g)(1 + g(1 − σ(g)))
        return grad_gate, grad_up, None, None, grad_a, grad_b, None


def _plain_frozen_linear(module) -> bool:
    return type(module) is torch.nn.Linear and not module.weight.requires_grad and (
        module.bias is None or not module.bias.requires_grad)


def _down_parts(down, dtype: torch.dtype):
    """(weight, bias, lora_A, lora_B, scaling) when ``down`` can run inside ``_GatedDown``, else None."""
    if _plain_frozen_linear(down):
        return (down.weight, down.bias, None, None, 1.0) if down.weight.dtype == dtype else None
    base = getattr(down, "base_layer", None)
    if base is None or not _plain_frozen_linear(base) or base.weight.dtype != dtype:
        return None
    if getattr(down, "disable_adapters", True) or getattr(down, "merged", True):
        return None
    active = [name for name in down.active_adapters if name in down.lora_A]
    if len(active) != 1 or active[0] in getattr(down, "lora_variant", {}):
        return None
    name = active[0]
    lora_a, lora_b = down.lora_A[name], down.lora_B[name]
    dropout = down.lora_dropout[name]
    if not isinstance(dropout, torch.nn.Identity) and dropout.p > 0 and dropout.training:
        return None
    if lora_a.bias is not None or lora_b.bias is not None or lora_a.weight.dtype != dtype:
        return None
    return base.weight, base.bias, lora_a.weight, lora_b.weight, float(down.scaling[name])


def _lean_forward(self, x):
    gate, up = self.gate_proj(x), self.up_proj(x)
    parts = _down_parts(self.down_proj, gate.dtype) if torch.is_grad_enabled() and up.dtype == gate.dtype else None
    if parts is None:
        return self.down_proj(self.act_fn(gate) * up)
    return _GatedDown.apply(gate, up, *parts)


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
