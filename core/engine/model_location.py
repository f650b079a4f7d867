"""Where a base model lives: a model shipped with the app (``bundled:NAME``), a local folder,
or a Hugging Face hub id already in the local cache. The one resolver the engine (loading),
the launch checks and the form (its caption) share. Only file names are looked at: no torch,
no weights read, so the form may call it as the user types.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.engine.bundled_models import BUNDLED_PREFIX, is_bundled, resolve_bundled

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "spiece.model")
BUNDLED, FOLDER, HUB, MISSING = "bundled", "folder", "hub", "missing"


@dataclass(frozen=True)
class ModelCheck:
    folder: Path | None          # the folder the model would be loaded from (None: not found)
    problem: str | None          # None when the location holds a config, weights and a tokenizer
    kind: str = MISSING          # bundled, folder, hub or missing

    @property
    def ok(self) -> bool:
        return self.problem is None


def inspect_model(name_or_path: str) -> ModelCheck:
    """Does ``name_or_path`` (a bundled name, a local folder or a cached hub id) hold a model
    and its tokenizer?"""
    text = str(name_or_path).strip()
    if not text:
        return ModelCheck(None, "no base model given: pick a model folder or type a cached hub id")
    if is_bundled(text):   # a model shipped with the app ("bundled:demo_model")
        try:
            folder = resolve_bundled(text)
        except ValueError as exc:
            return ModelCheck(None, str(exc), BUNDLED)
        return ModelCheck(folder, folder_problem(folder), BUNDLED)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            return ModelCheck(None, f"{path} is a file; choose the folder that holds the model", FOLDER)
        return ModelCheck(path, folder_problem(path), FOLDER)
    if _looks_like_path(text):
        return ModelCheck(None, f"no model folder at {path} (the folder does not exist)", FOLDER)
    folder = _cached_hub_folder(text)
    if folder is None:
        return ModelCheck(None, f"{text!r} is not a local folder and not in the local Hugging Face cache "
                                "(nothing is downloaded; download it once, or pick a folder)", HUB)
    return ModelCheck(folder, folder_problem(folder), HUB)


def describe_model(name_or_path: str) -> str:
    """A short name for people: "Demo model (bundled)", "tiny-model (folder)", "org/name (hub cache)"."""
    text = str(name_or_path).strip()
    if is_bundled(text):
        name = text[len(BUNDLED_PREFIX):].replace("_", " ").strip()
        return f"{name[:1].upper()}{name[1:]} (bundled with the app)"
    path = Path(text).expanduser()
    if _looks_like_path(text) or path.exists():
        return f"{path.name or text} (folder in {path.parent})"
    return f"{text} (Hugging Face cache)" if text else ""


def _looks_like_path(text: str) -> bool:
    return text.startswith(("/", ".", "~", "\\")) or ":" in text[:3] or text.count("/") > 1


def _cached_hub_folder(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:   # an invalid repo id raises one of several validation errors
        return None
    return Path(found).parent if isinstance(found, str) else None


def folder_problem(folder: Path) -> str | None:
    """What a model folder lacks (config, weights, tokenizer), or None."""
    names = {p.name for p in folder.iterdir()}
    if "config.json" not in names:
        return f"{folder} holds no model (no config.json): choose a Hugging Face model folder"
    if not any(n.endswith(WEIGHT_SUFFIXES) or n.endswith(".index.json") for n in names):
        return f"{folder} holds no model weights (no .safetensors or .bin file)"
    if not any(n in names for n in TOKENIZER_FILES):
        return f"{folder} holds no tokenizer (no tokenizer.json or tokenizer_config.json)"
    return None


def load_location(name_or_path: str) -> tuple[str, bool]:
    """(what to pass to ``from_pretrained``, is it a local folder). A hub id is passed on as
    it is (loading uses the local cache only); ``ValueError`` when a bundled name or a folder
    holds no model."""
    text = str(name_or_path)
    if is_bundled(text):
        return str(resolve_bundled(text)), True
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").exists():
            raise ValueError(f"{path} is not a Hugging Face model folder (no config.json)")
        return str(path.resolve()), True
    return text, False
