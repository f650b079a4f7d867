"""Generate candidates: sample N replies per prompt from the base or a run's adapter, and queue
them as pairs to judge.

Pairing: the distinct replies of one prompt, in sampling order, are paired consecutively and
disjointly — (1, 2), (3, 4), … — so ``n`` samples give ``n // 2`` pairs and each reply is judged
once. That is what a labeller expects (every comparison is new work, none repeats a reply) and
it is the paper's setting (two samples y1, y2 from the policy per prompt). ``pairing="all"``
makes every C(n, 2) pair instead (more verdicts per prompt, each reply seen n-1 times).
Identical replies (same text) never make a pair; nor does an empty reply.

Every generation is one ``generations`` row (base model, run, label, the sampling settings);
its responses carry its id and the model's name (``storage.generations``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from core.engine.generation import GenerationProgress, Reply, SamplingSettings
from core.formats.errors import FormatError
from core.formats.prompts_file import read_prompts_file
from core.operations.changes import Changes
from core.operations.chat import BASE_CHOICE, ModelChoice, chat_model_choices, workspace_base_model
from storage.generations import GeneratedPrompt, record_generation, workspace_prompts
from storage.runs import get_run
from storage.settings import read_settings
from storage.workspace import Workspace

BASE_KEY = "base"
PROMPT_SOURCES = ("unlabelled", "workspace")
PAIRINGS = ("consecutive", "all")
Text = str | list[dict]


class GenerateError(ValueError):
    """Bad input to a generation (unknown run, missing file, n < 2 …); the message says which."""


@dataclass(frozen=True)
class GenerateRequest:
    model_key: str = BASE_KEY                 # "base" or a run id (see model_choices)
    prompts: Sequence[Text] | None = None     # typed prompts; else prompt_source
    prompt_source: str | Path | None = None   # "unlabelled" | "workspace" | a prompts file
    settings: SamplingSettings = field(default_factory=lambda: SamplingSettings(n=4))
    pairing: str = "consecutive"
    limit: int | None = None                  # at most this many prompts
    batch_size: int = 16
    device: str = "auto"


@dataclass(frozen=True)
class GenerateOutcome:
    generation_id: int | None     # None when nothing was stored (cancelled before any reply)
    prompts: int
    responses: int                # new responses stored
    pairs: int                    # new pairs queued
    tokens: int
    seconds: float
    changes: Changes
    cancelled: bool = False
    replies: int = 0              # replies sampled

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def summary_text(self) -> str:
        head = "Cancelled: " if self.cancelled else ""
        return (f"{head}{self.replies} replies to {self.prompts} prompts, {self.pairs} new pairs to judge "
                f"({self.tokens} tokens in {self.seconds:.1f} s, {self.tokens_per_second:.0f} tokens/s)")


def model_choices(ws: Workspace) -> list[ModelChoice]:
    """The base model, then every run with a saved adapter (newest first) trained on the
    workspace's base model (an adapter loads on its own base only)."""
    return chat_model_choices(ws, read_settings(ws).base_model or None)


def resolve_model(ws: Workspace, model_key: str) -> tuple[str, ModelChoice]:
    """(base model to load, the choice) for ``model_key`` ("base": the workspace's base model,
    else the newest run's); ``GenerateError`` naming what is wrong. Blind A/B resolves its sides here too."""
    if model_key == BASE_KEY:
        base_model = workspace_base_model(ws)
        if not base_model:
            raise GenerateError(f"{ws.display_location} has no base model set; choose one in the Train tab first "
                                "(or train a run)")
        return base_model, BASE_CHOICE
    run = get_run(ws, model_key)
    if run is None:
        raise GenerateError(f"no run {model_key!r} in this workspace (use 'base' or a run id from `main.py runs`)")
    choice = next((c for c in chat_model_choices(ws, run.base_model) if c.key == model_key), None)
    if choice is None:
        raise GenerateError(f"run {model_key!r} has no saved adapter (it is saved when a run completes or is stopped)")
    return run.base_model, choice


def resolve_prompts(ws: Workspace, request: GenerateRequest) -> list[Text]:
    if request.prompts is not None:
        prompts = [p.strip() if isinstance(p, str) else p for p in request.prompts]
        prompts = [p for p in prompts if p]
    elif request.prompt_source in PROMPT_SOURCES:
        prompts = workspace_prompts(ws, unlabelled=request.prompt_source == "unlabelled", limit=request.limit)
    elif request.prompt_source:
        try:
            prompts = read_prompts_file(request.prompt_source)
        except FormatError as exc:
            raise GenerateError(str(exc)) from None
    else:
        raise GenerateError("no prompts: give prompts, 'unlabelled', 'workspace' or a prompts file")
    if request.limit is not None:
        prompts = prompts[:max(0, request.limit)]
    if not prompts:
        where = {"unlabelled": "no prompt without a verdict", "workspace": "no prompts"}.get(
            str(request.prompt_source), "no prompts")
        raise GenerateError(f"nothing to generate for: {where} in {ws.display_location}"
                            if request.prompt_source in PROMPT_SOURCES else "nothing to generate for: no prompts")
    return prompts


def check_request(request: GenerateRequest) -> None:
    problems = request.settings.problems()
    if request.settings.n < 2:
        problems.append(f"n must be at least 2 to make pairs (got {request.settings.n})")
    if request.pairing not in PAIRINGS:
        problems.append(f"pairing must be one of {', '.join(PAIRINGS)} (got {request.pairing!r})")
    if problems:
        raise GenerateError("; ".join(dict.fromkeys(problems)))


def pair_replies(texts: Sequence[str], pairing: str = "consecutive") -> list[tuple[str, str]]:
    """The pairs of one prompt's replies: distinct non-empty texts in order, paired (1,2), (3,4)…
    or, with ``pairing="all"``, every two of them."""
    distinct = list(dict.fromkeys(t for t in texts if t.strip()))
    if pairing == "all":
        return [(distinct[i], distinct[j]) for i in range(len(distinct)) for j in range(i + 1, len(distinct))]
    return [(distinct[i], distinct[i + 1]) for i in range(0, len(distinct) - 1, 2)]


def generate_candidates(ws: Workspace, request: GenerateRequest,
                        progress: Callable[[GenerationProgress], None] | None = None,
                        should_stop: Callable[[], bool] | None = None) -> GenerateOutcome:
    """Sample, pair and store. On cancel the replies of the batches already done are stored."""
    from core.engine.generation import generate_replies, load_generator

    check_request(request)
    ws.require_writable()
    prompts = resolve_prompts(ws, request)
    base_model, choice = resolve_model(ws, request.model_key)
    model, tokenizer = load_generator(base_model, choice.adapter_dir, device=request.device)
    started = time.monotonic()      # tokens/s counts sampling only, not loading the model
    if should_stop is not None and should_stop():
        return GenerateOutcome(None, len(prompts), 0, 0, 0, 0.0, Changes(), cancelled=True)
    replies = generate_replies(model, tokenizer, prompts, request.settings, batch_size=request.batch_size,
                               progress=progress, should_stop=should_stop)
    seconds = time.monotonic() - started
    tokens = sum(len(r.token_ids) for r in replies)
    cancelled = len(replies) < len(prompts) * request.settings.n
    items = _items(prompts, replies, request.pairing)
    if not replies:
        return GenerateOutcome(None, len(prompts), 0, 0, 0, seconds, Changes(), cancelled=cancelled)
    label = BASE_KEY if choice.run_id is None else choice.label
    model_name = base_model if choice.run_id is None else f"{base_model} + {choice.label}"
    settings = dict(request.settings.as_dict(), pairing=request.pairing)
    written = record_generation(ws, base_model=base_model, run_id=choice.run_id, label=label, settings=settings,
                                items=items, model_name=model_name)
    changes = Changes(pairs=True, pair_ids=frozenset(written.pair_ids))
    return GenerateOutcome(written.generation_id, len({r.prompt_index for r in replies}), written.responses_added,
                           written.pairs_added, tokens, seconds, changes, cancelled, len(replies))


def _items(prompts: Sequence[Text], replies: Sequence[Reply], pairing: str) -> list[GeneratedPrompt]:
    by_prompt: dict[int, list[str]] = {}
    for reply in replies:
        by_prompt.setdefault(reply.prompt_index, []).append(reply.text)
    items = [GeneratedPrompt(prompts[i], pair_replies(texts, pairing)) for i, texts in sorted(by_prompt.items())]
    return [item for item in items if item.pairs]
