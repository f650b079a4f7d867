"""The layering contract of DESIGN.md: core/ and storage/ never import Qt or gui;
storage/ never imports torch (or the libraries built on it)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QT = {"PySide6", "PyQt5", "PyQt6", "pyqtgraph", "shiboken6", "gui"}
TORCH = {"torch", "transformers", "peft", "trl", "tokenizers", "safetensors", "accelerate", "core"}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package, forbidden", [("core", QT), ("storage", QT | TORCH)])
def test_package_respects_layering(package: str, forbidden: set[str]) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no Python files found under {package}/"
    offenders = {str(f.relative_to(ROOT)): sorted(imported_roots(f) & forbidden) for f in files}
    offenders = {f: names for f, names in offenders.items() if names}
    assert not offenders, f"layering broken (see DESIGN.md): {offenders}"


def test_checker_sees_nested_imports(tmp_path: Path) -> None:
    # The check must catch imports hidden inside functions, not only at module top.
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from PySide6.QtWidgets import QWidget\n    import torch.nn\n")
    assert imported_roots(sample) == {"PySide6", "torch"}
