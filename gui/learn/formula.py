"""A step's formula (plain Unicode from ``core.operations.learn``) as rich text: subscripts and
superscripts set as such, in a serif face, so ``π_ref(y_w | x)`` reads like the paper."""

from __future__ import annotations

import html
import re

_SUBSCRIPT = re.compile(r"_(θ|ref|w|l)")
_SUPERSCRIPT = re.compile(r"\^\(([^)]*)\)")


def scripts_html(text: str) -> str:
    """Escaped text with ``_ref`` / ``_w``… as subscripts and ``^(…)`` as a superscript."""
    text = html.escape(text)
    text = _SUPERSCRIPT.sub(r"<sup>\1</sup>", text)
    return _SUBSCRIPT.sub(r"<sub>\1</sub>", text)


def formula_html(formula: str, size_pt: float = 17.0, color: str | None = None) -> str:
    text = scripts_html(formula)
    style = f"font-family: 'DejaVu Serif', 'Cambria Math', 'Times New Roman', serif; font-size: {size_pt}pt;"
    if color:
        style += f" color: {color};"
    return f"<span style=\"{style}\">{text}</span>"
