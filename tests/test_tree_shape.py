"""The shape of the tree: small modules, and an architecture page that names real ones."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400
PACKAGES = ("core", "storage", "gui")
PATH_MENTION = re.compile(r"(?<![\w/.])((?:core|storage|gui|tests|benchmarks|resources|docs)/[\w/.-]*\w)")
DOTTED_MENTION = re.compile(r"(?<![\w./])((?:core|storage|gui)(?:\.\w+)+)")


def test_no_module_over_the_limit() -> None:
    files = [ROOT / "main.py", *(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))]
    too_long = {str(p.relative_to(ROOT)): n for p in files
                if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not too_long, f"split these along their jobs (STYLE.md 10; at most {MAX_LINES} lines): {too_long}"


def mentioned_paths(text: str) -> set[str]:
    found = {m.rstrip(".") for m in PATH_MENTION.findall(text)}
    for dotted in DOTTED_MENTION.findall(text):
        parts = dotted.split(".")
        # core.engine.trainer.train -> the longest prefix that is a module or package
        for end in range(len(parts), 0, -1):
            candidate = "/".join(parts[:end])
            if (ROOT / f"{candidate}.py").exists() or (ROOT / candidate).is_dir():
                found.add(candidate if (ROOT / candidate).is_dir() else f"{candidate}.py")
                break
        else:
            found.add(dotted.replace(".", "/") + ".py")
    return found


def test_architecture_page_names_modules_that_exist() -> None:
    page = ROOT / "docs" / "architecture.md"
    mentions = mentioned_paths(page.read_text(encoding="utf-8"))
    assert len(mentions) >= 20, "the architecture page should name the real modules"
    missing = sorted(m for m in mentions if not (ROOT / m).exists())
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"


def test_mention_checker_sees_both_spellings() -> None:
    text = "see core/engine/trainer.py and storage.workspace.Workspace, not core/nothing_here.py"
    assert mentioned_paths(text) == {"core/engine/trainer.py", "storage/workspace.py", "core/nothing_here.py"}
