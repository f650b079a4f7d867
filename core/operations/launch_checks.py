"""Everything checked before a training thread starts, each problem named by its setting.

The set-up form calls ``launch_problems`` on Start (and ``config_problems`` as the user types):
every bad setting at once (``TrainingConfig.problems``), a model location that holds no model
or no tokenizer (``core.engine.model_location``), and a workspace with no pair to train on.
Nothing here loads weights; ``token_preview`` (which loads the tokenizer) and
``launch_problems`` / ``preview_data`` (which read the database) are meant for a worker thread.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from core.engine.bundled_models import DEMO_MODEL
from core.engine.batch_tokens import longest_batch_tokens, tokens_key
from core.engine.model_location import ModelCheck, inspect_model
from core.engine.quantization import four_bit_problem, resolved_device_type
from core.engine.run_start import start_problems
from core.engine.training_config import ConfigError, TrainingConfig
from core.engine.training_control import planned_steps, steps_per_epoch
from core.operations.wording import plural
from storage.settings import WorkspaceSettings
from storage.training_set import TrainingSet, build_training_set
from storage.workspace import Workspace

# Key under which problems that are not a single setting are reported.
DATA_KEY = "data"
__all__ = ["DATA_KEY", "ModelCheck", "inspect_model", "config_problems", "default_config", "launch_check",
           "launch_problems",
           "preview_data", "run_length", "token_preview"]


def config_problems(values: dict[str, Any]) -> tuple[TrainingConfig | None, dict[str, str]]:
    """Build a ``TrainingConfig`` from form values (text or typed) and collect *every* problem:
    setting name -> message (two problems of one setting joined). The config is None when
    there is any problem."""
    config, found = TrainingConfig.parse(values)
    problems: dict[str, str] = {}
    for problem in found:
        problems[problem.key] = f"{problems[problem.key]}; {problem.message}" if problem.key in problems \
            else problem.message
    return (None if problems else config), problems


def default_config(settings: WorkspaceSettings, demo_model_available: bool = True) -> TrainingConfig:
    """What a new run starts from, for the GUI and the CLI alike: the workspace's saved
    training settings (a demo workspace has some; unreadable ones are ignored), with the
    workspace's ``base_model`` setting winning over the saved one, else the bundled demo model."""
    config = TrainingConfig()
    try:
        config = TrainingConfig.from_dict(settings.training_config, source="workspace setting 'training_config'")
    except ConfigError:
        pass
    if settings.base_model:
        config.base_model = settings.base_model
    if not config.base_model and demo_model_available and inspect_model(DEMO_MODEL).folder is not None:
        config.base_model = DEMO_MODEL
    return config


@dataclass(frozen=True)
class RunLength:
    """How long a run will be, counted the way the engine counts it."""

    steps: int
    epochs: float               # passes over the training pairs those steps make
    steps_per_epoch: int
    from_max_steps: bool        # max_steps set the length (num_epochs is then ignored)

    def describe(self) -> str:
        """"≈ 4.4 epochs at 200 steps" (max steps wins) or "= 38 steps" (from the epochs)."""
        if self.from_max_steps:
            return f"≈ {self.epochs:.1f} epochs at {plural(self.steps, 'step')} (max steps wins)"
        return f"= {plural(self.steps, 'optimizer step')} ({self.steps_per_epoch:,} per epoch)"


def run_length(config: TrainingConfig, train_pairs: int) -> RunLength:
    per_epoch = steps_per_epoch(train_pairs, config.batch_size, config.gradient_accumulation_steps)
    steps = planned_steps(config.max_steps, config.num_epochs, per_epoch)
    return RunLength(steps, steps / per_epoch, per_epoch, config.max_steps > 0)


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
        text = (f"{plural(self.total, 'pair', grouped=False)}: {self.train_pairs} to train on, "
                f"{approx}{self.eval_pairs} held out for evaluation")
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
    """All reasons not to start: bad settings, a base model that is not there, a previous round
    that cannot be continued (``core.engine.run_start``), no pairs."""
    config, problems, _training_set = launch_check(ws, values)
    return config, problems


def launch_check(ws: Workspace, values: dict[str, Any],
                 built: TrainingSet | None = None) -> tuple[TrainingConfig | None, dict[str, str], TrainingSet]:
    """``launch_problems``, and the training set it built (the training process hands it to the
    run, so 100,000 pairs are read once). ``built``: a set of the current verdicts built already
    (a prepared training process's, checked current), used when its policy is the one asked for."""
    config, problems = config_problems(values)
    model = inspect_model(str(values.get("base_model", "")))
    if not model.ok:
        problems.setdefault("base_model", model.problem)
    if config is not None:
        for problem in start_problems(ws, config):
            problems.setdefault(problem.key, problem.message)
    if config is not None and config.load_in_4bit:   # the device a run would use (imports torch only then)
        four_bit = four_bit_problem(resolved_device_type(config.device))
        if four_bit:
            problems.setdefault("load_in_4bit", four_bit)
    policy = config.selection_policy if config else TrainingConfig().selection_policy
    if "selection_policy" not in problems:
        policy = str(values.get("selection_policy", policy))
    training_set = built if built is not None and built.policy == policy else build_training_set(ws, policy)
    if not training_set.examples:
        left_out = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in training_set.dropped.items() if n)
        problems[DATA_KEY] = ("the workspace has no labelled pairs to train on"
                              + (f" (left out: {left_out})" if left_out else "; import or annotate some first"))
    elif config is not None and config.eval_fraction() is None and not training_set.train:
        problems[DATA_KEY] = ("every labelled pair is in the evaluation split; set eval_split to a fraction "
                              "or 'none'")
    return (None if problems else config), problems, training_set


@dataclass(frozen=True)
class TokenPreview:
    truncated: int                  # pairs longer than max_length (cut, still used)
    dropped: dict[str, int]         # reason -> pairs tokenisation would leave out
    longest: int                    # tokens of the longest sequence before truncation
    #: Counted on an even sample of this many examples of ``of`` (None: all of them); the counts
    #: above are then scaled to the whole set and ``longest`` is the sample's.
    sample: int | None = None
    of: int | None = None
    #: The largest batch's real token counts (``core.engine.batch_tokens.longest_batch_tokens``) for the
    #: settings ``tokens_key`` names, so the memory estimate uses the real lengths.
    step_tokens: Any = None
    tokens_key: tuple = ()


#: The preview tokenises at most this many examples (evenly spread): on 100,000 pairs the form
#: answers in a second instead of a minute, and the run itself reports the exact counts.
PREVIEW_SAMPLE = 5_000


def even_sample(examples: Sequence[Any], sample: int = PREVIEW_SAMPLE) -> list:
    """At most ``sample`` of ``examples``, evenly spread over them (all when fewer)."""
    total = len(examples)
    if total <= sample:
        return list(examples)
    return [examples[i * total // sample] for i in range(sample)]


def token_preview(config: TrainingConfig, examples: Sequence[Any], sample: int = PREVIEW_SAMPLE,
                  of: int | None = None) -> TokenPreview:
    """Tokenise like the engine does and count what ``max_length`` cuts or drops (loads the
    tokenizer: call it from a worker). More than ``sample`` examples: an even sample of them,
    the counts scaled to all. ``of``: ``examples`` already are such a sample of ``of``."""
    from core.engine.batching import DROP_TRUNCATED, tokenize_examples, truncate
    from core.engine.modeling import load_tokenizer

    total = of if of is not None else len(examples)
    examples = even_sample(examples, sample)
    sample = len(examples)
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
    sized = {"step_tokens": longest_batch_tokens(pairs, config), "tokens_key": tokens_key(config)}
    if total <= sample:
        return TokenPreview(truncated, dict(Counter(dropped)), longest, **sized)
    scale = total / sample
    return TokenPreview(round(truncated * scale), {reason: round(n * scale) for reason, n in Counter(dropped).items()},
                        longest, sample, total, **sized)
