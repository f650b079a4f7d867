"""Everything checked before a training thread starts, each problem named by its setting.

The set-up form calls ``launch_problems`` on Start (and ``config_problems`` as the user types):
every bad setting at once (not just the first), a model location that holds no model or no
tokenizer, and a workspace with no pair to train on. Nothing here loads weights; ``token_preview``
(which loads the tokenizer) is meant for a worker thread.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from core.engine.bundled_models import is_bundled, resolve_bundled
from core.engine.training_config import ConfigError, TrainingConfig
from storage.training_set import TrainingSet, build_training_set
from storage.workspace import Workspace

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "spiece.model")
# Key under which problems that are not a single setting are reported.
DATA_KEY = "data"


@dataclass(frozen=True)
class ModelCheck:
    folder: Path | None          # the folder the model would be loaded from (None: not found)
    problem: str | None          # None when the location holds a config, weights and a tokenizer

    @property
    def ok(self) -> bool:
        return self.problem is None


def inspect_model(name_or_path: str) -> ModelCheck:
    """Does ``name_or_path`` (a local folder or a hub id in the local cache) hold a model and
    its tokenizer? Only file names are looked at."""
    text = name_or_path.strip()
    if not text:
        return ModelCheck(None, "no base model given: pick a model folder or type a cached hub id")
    if is_bundled(text):   # a model shipped with the app ("bundled:demo_model")
        try:
            folder = resolve_bundled(text)
        except ValueError as exc:
            return ModelCheck(None, str(exc))
        return ModelCheck(folder, _folder_problem(folder))
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            return ModelCheck(None, f"{path} is a file; choose the folder that holds the model")
        return ModelCheck(path, _folder_problem(path))
    if _looks_like_path(text):
        return ModelCheck(None, f"the folder {path} does not exist")
    folder = _cached_hub_folder(text)
    if folder is None:
        return ModelCheck(None, f"{text!r} is not a local folder and not in the local Hugging Face cache "
                                "(nothing is downloaded; download it once, or pick a folder)")
    return ModelCheck(folder, _folder_problem(folder))


def _looks_like_path(text: str) -> bool:
    return text.startswith(("/", ".", "~", "\\")) or ":" in text[:3] or text.count("/") > 1


def _cached_hub_folder(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:   # an invalid repo id raises one of several validation errors
        return None
    return Path(found).parent if isinstance(found, str) else None


def _folder_problem(folder: Path) -> str | None:
    names = {p.name for p in folder.iterdir()}
    if "config.json" not in names:
        return f"{folder} holds no model (no config.json): choose a Hugging Face model folder"
    if not any(n.endswith(WEIGHT_SUFFIXES) or n.endswith(".index.json") for n in names):
        return f"{folder} holds no model weights (no .safetensors or .bin file)"
    if not any(n in names for n in TOKENIZER_FILES):
        return f"{folder} holds no tokenizer (no tokenizer.json or tokenizer_config.json)"
    return None


def config_problems(values: dict[str, Any]) -> tuple[TrainingConfig | None, dict[str, str]]:
    """Build a ``TrainingConfig`` from form values (text or typed) and collect *every* problem:
    setting name -> message. The config is None when there is any problem."""
    problems: dict[str, str] = {}
    config = TrainingConfig()
    for key, value in values.items():
        try:
            config._set(key, value, None)
        except ConfigError as exc:
            problems[exc.key] = _reason(exc)
    # validate() stops at the first bad setting: note it, put a good value there, go on.
    defaults = TrainingConfig(base_model="model")
    for _ in range(len(TrainingConfig.field_names())):
        try:
            config.validate()
            break
        except ConfigError as exc:
            problems.setdefault(exc.key, _reason(exc))
            setattr(config, exc.key, getattr(defaults, exc.key))
            if exc.key == "label_smoothing":
                config.label_smoothing = 0.0
    if problems:
        return None, problems
    return config, {}


def _reason(exc: ConfigError) -> str:
    """The message without the "setting 'x': " prefix (the form shows it next to field x)."""
    text = str(exc)
    marker = f"setting '{exc.key}': "
    return text.split(marker, 1)[1] if marker in text else text


@dataclass(frozen=True)
class DataPreview:
    """What the training set will be, before tokenisation."""

    train_pairs: int
    eval_pairs: int
    dropped: dict[str, int] = field(default_factory=dict)   # reason -> count (non-zero only)
    eval_estimated: bool = False    # eval_split is a fraction: the exact split is drawn at launch

    @property
    def total(self) -> int:
        return self.train_pairs + self.eval_pairs

    def describe(self) -> str:
        approx = "about " if self.eval_estimated else ""
        text = f"{self.total} pairs: {self.train_pairs} to train on, {approx}{self.eval_pairs} held out for evaluation"
        if self.dropped:
            text += "; left out: " + ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in self.dropped.items())
        return text


def preview_data(ws: Workspace, config: TrainingConfig, training_set: TrainingSet | None = None) -> DataPreview:
    training_set = training_set or build_training_set(ws, config.selection_policy)
    dropped = {reason: n for reason, n in training_set.dropped.items() if n}
    fraction = config.eval_fraction()
    examples = len(training_set.examples)
    if fraction is None:
        held_out = len(training_set.eval)
    else:
        held_out = int(round(examples * fraction))
    return DataPreview(examples - held_out, held_out, dropped, eval_estimated=bool(fraction))


def launch_problems(ws: Workspace, values: dict[str, Any]) -> tuple[TrainingConfig | None, dict[str, str]]:
    """All reasons not to start: bad settings, a base model that is not there, no pairs."""
    config, problems = config_problems(values)
    model = inspect_model(str(values.get("base_model", "")))
    if not model.ok:
        problems.setdefault("base_model", model.problem)
    policy = config.selection_policy if config else TrainingConfig().selection_policy
    if "selection_policy" not in problems:
        policy = str(values.get("selection_policy", policy))
    training_set = build_training_set(ws, policy)
    if not training_set.examples:
        left_out = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in training_set.dropped.items() if n)
        problems[DATA_KEY] = ("the workspace has no labelled pairs to train on"
                              + (f" (left out: {left_out})" if left_out else "; import or annotate some first"))
    elif config is not None and config.eval_fraction() is None and not training_set.train:
        problems[DATA_KEY] = ("every labelled pair is in the evaluation split; set eval_split to a fraction "
                              "or 'none'")
    return (None if problems else config), problems


@dataclass(frozen=True)
class TokenPreview:
    truncated: int                  # pairs longer than max_length (cut, still used)
    dropped: dict[str, int]         # reason -> pairs tokenisation would leave out
    longest: int                    # tokens of the longest sequence before truncation


def token_preview(config: TrainingConfig, examples: Sequence[Any]) -> TokenPreview:
    """Tokenise like the engine does and count what ``max_length`` cuts or drops (loads the
    tokenizer: call it from a worker)."""
    from core.engine.batching import DROP_TRUNCATED, tokenize_examples, truncate
    from core.engine.modeling import load_tokenizer

    tokenizer = load_tokenizer(config.base_model, config.trust_remote_code)
    pairs, dropped = tokenize_examples(tokenizer, examples, 10**9, config.truncation_mode)  # uncut
    truncated, longest = 0, 0
    for pair in pairs:
        longest = max(longest, pair.length)
        if pair.length <= config.max_length:
            continue
        truncated += 1
        # The same policy the engine applies: a pair with no completion token left is dropped.
        for ids, start in ((pair.chosen_ids, pair.chosen_start), (pair.rejected_ids, pair.rejected_start)):
            sequence, first = truncate(ids[:start], ids[start:], config.max_length, config.truncation_mode)
            if first >= len(sequence):
                dropped[DROP_TRUNCATED] += 1
                truncated -= 1
                break
    return TokenPreview(truncated, dict(Counter(dropped)), longest)


def with_values(config: TrainingConfig, **values: Any) -> TrainingConfig:
    return dataclasses.replace(config, **values)
