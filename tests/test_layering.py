"""The layering contract of DESIGN.md, checked on the source (AST, imports hidden inside
functions included):

- core/ and storage/ never import Qt or gui; storage/ never imports torch (or what is built on it);
- gui/ never imports sqlalchemy;
- no SQL outside storage/: core/ and gui/ import no sqlalchemy, no ORM model class from
  storage.models (its plain enums and helpers — Choice, RunStatus, content_hash, utcnow… —
  are fine) and call no ``.session()`` / ``.writing()`` / ``.execute(...)``;
- the engine (core/engine) never imports the demo (core/demo).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QT = {"PySide6", "PyQt5", "PyQt6", "pyqtgraph", "shiboken6", "gui"}
TORCH = {"torch", "transformers", "peft", "trl", "tokenizers", "safetensors", "accelerate", "core"}
SQL_CALLS = {"session", "writing", "execute"}


def _tree(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _files(package: str) -> list[Path]:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no Python files found under {package}/"
    return files


def imported_modules(path: Path) -> set[str]:
    """Every absolute module a file imports (``from a.b import c`` gives ``a.b`` and ``a.b.c``)."""
    modules = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def imported_roots(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(path)}


def orm_names() -> set[str]:
    """What storage.models holds that is for querying: the mapped classes, their base, and the
    SQLAlchemy names it imports."""
    from storage import models

    names = {"Base"} | {mapper.class_.__name__ for mapper in models.Base.registry.mappers}
    names |= {name for name, value in vars(models).items()
              if getattr(value, "__module__", "").startswith("sqlalchemy")}
    return names


def sql_uses(path: Path, orm: set[str]) -> list[str]:
    """SQL in a file: sqlalchemy imports, ORM classes imported from storage.models (or the whole
    module, whose use cannot be told apart), and session / writing / execute calls."""
    found = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sqlalchemy":
                    found.append(f"import {alias.name}")
                elif alias.name == "storage.models":
                    found.append("import storage.models")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "sqlalchemy":
                found.append(f"from {node.module} import ...")
            elif node.module == "storage.models":
                found.extend(f"storage.models.{alias.name}" for alias in node.names if alias.name in orm)
            elif node.module == "storage":
                found.extend(f"storage.{alias.name}" for alias in node.names if alias.name == "models")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in SQL_CALLS):
            found.append(f".{node.func.attr}() at line {node.lineno}")
    return found


@pytest.mark.parametrize("package, forbidden", [("core", QT), ("storage", QT | TORCH), ("gui", {"sqlalchemy"})])
def test_package_respects_layering(package: str, forbidden: set[str]) -> None:
    offenders = {str(f.relative_to(ROOT)): sorted(imported_roots(f) & forbidden) for f in _files(package)}
    offenders = {f: names for f, names in offenders.items() if names}
    assert not offenders, f"layering broken (see DESIGN.md): {offenders}"


@pytest.mark.parametrize("package", ["core", "gui"])
def test_no_sql_outside_storage(package: str) -> None:
    orm = orm_names()
    offenders = {str(f.relative_to(ROOT)): uses for f in _files(package) if (uses := sql_uses(f, orm))}
    assert not offenders, f"SQL belongs in storage/ (DESIGN.md); move these into a storage function: {offenders}"


def test_engine_does_not_import_the_demo() -> None:
    offenders = {str(f.relative_to(ROOT)): sorted(m for m in imported_modules(f) if m.startswith("core.demo"))
                 for f in _files("core/engine")}
    offenders = {f: names for f, names in offenders.items() if names}
    assert not offenders, f"the engine must not depend on the demo: {offenders}"


# -- the checkers themselves ---------------------------------------------------------------

def test_checker_sees_nested_imports(tmp_path: Path) -> None:
    # The check must catch imports hidden inside functions, not only at module top.
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from PySide6.QtWidgets import QWidget\n    import torch.nn\n")
    assert imported_roots(sample) == {"PySide6", "torch"}


def test_sqlalchemy_check_sees_gui_style_imports(tmp_path: Path) -> None:
    sample = tmp_path / "view.py"
    sample.write_text("def on_error(exc):\n    from sqlalchemy.exc import SQLAlchemyError\n    return SQLAlchemyError\n")
    assert "sqlalchemy" in imported_roots(sample)
    assert sql_uses(sample, orm_names()) == ["from sqlalchemy.exc import ..."]


def test_sql_check_sees_orm_classes_and_sessions_but_not_plain_helpers(tmp_path: Path) -> None:
    orm = orm_names()
    assert {"Pair", "Verdict", "TrainingRun", "Setting", "Base"} <= orm
    assert not {"Choice", "RunStatus", "ResponseOrigin", "content_hash", "utcnow"} & orm
    clean = tmp_path / "clean.py"
    clean.write_text("from storage.models import Choice, RunStatus, content_hash, utcnow\n"
                     "from storage.runs import list_runs\n"
                     "def f(ws):\n    return list_runs(ws), Choice.A\n")
    assert sql_uses(clean, orm) == []
    dirty = tmp_path / "dirty.py"
    dirty.write_text("from storage.models import Choice, Pair\n"
                     "def f(ws):\n"
                     "    import sqlalchemy as sa\n"
                     "    with ws.session() as s:\n"
                     "        s.execute(sa.select(Pair.id))\n"
                     "    with ws.writing() as s:\n"
                     "        pass\n"
                     "    from storage import models\n")
    assert sorted(sql_uses(dirty, orm)) == [".execute() at line 5", ".session() at line 4", ".writing() at line 6",
                                            "import sqlalchemy", "storage.models", "storage.models.Pair"]


def test_demo_check_sees_engine_importing_the_demo(tmp_path: Path) -> None:
    sample = tmp_path / "modeling.py"
    sample.write_text("def load(name):\n    from core.demo import bundled\n    import core.demo.corpus\n")
    assert {m for m in imported_modules(sample) if m.startswith("core.demo")} == {
        "core.demo", "core.demo.bundled", "core.demo.corpus"}
