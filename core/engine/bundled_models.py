"""Models shipped inside the project (``resources/``), named so the name survives a move.

A workspace stores ``"bundled:demo_model"`` rather than an absolute path, because the
project folder (or the installed package) may live somewhere else next time it is opened.
``resolve_bundled`` turns the name into the folder where it lives now.
"""

from __future__ import annotations

from pathlib import Path

BUNDLED_PREFIX = "bundled:"
DEMO_MODEL = BUNDLED_PREFIX + "demo_model"


def resources_dir() -> Path:
    import resources

    return Path(resources.__file__).resolve().parent


def is_bundled(name: str) -> bool:
    return str(name).startswith(BUNDLED_PREFIX)


def resolve_bundled(name: str) -> Path:
    """The folder of a ``bundled:NAME`` model; ``ValueError`` naming what is missing."""
    if not is_bundled(name):
        raise ValueError(f"{name!r} is not a bundled model name (expected '{BUNDLED_PREFIX}NAME')")
    folder_name = name[len(BUNDLED_PREFIX):]
    folder = resources_dir() / folder_name
    if not folder_name or "/" in folder_name or "\\" in folder_name or not (folder / "config.json").is_file():
        raise ValueError(f"no bundled model {name!r}: {folder} has no config.json "
                         "(rebuild the demo model with `python main.py build-demo-model`)")
    return folder


def demo_model_dir() -> Path:
    return resolve_bundled(DEMO_MODEL)
