"""Measure what DPO did to the demo model: helpful share of samples, and drift from the base.

The miniature of the paper's sentiment experiment (reward against KL). On held-out prompts
(in none of the workspace's pairs), one reply per prompt is sampled from the base model and
from base + adapter, with the same seeds. Each reply is classified by the style scorer; the
helpful share is the fraction classified ``helpful``.

Sampling temperature: 0.7 by default. At temperature 1 the tiny model's flat tail (dozens of
low-probability openers of the curt and reckless styles) keeps a third of the samples
non-helpful even after training, so the rise measured there is smaller (~35 points, against
~50-60 at 0.7); ``--temperature 1`` gives that measurement. The KL below is estimated from
the same (tempered) samples, so it is a drift measure of the sampler that was evaluated.

The KL estimate is the Monte-Carlo estimate of KL(π_tuned || π_base) per sequence:

    KL ≈ mean over tuned samples y ~ π_tuned(.|x) of  log π_tuned(y|x) − log π_base(y|x)

with log π summed over the reply's tokens (its end-of-turn token included).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from core.demo.demo_workspace import held_out_prompts
from core.demo.sampling import DEFAULT_MAX_NEW_TOKENS, reply_logps, sample_replies
from core.demo.style_scorer import classify, style_shares
from storage.models import RunStatus
from storage.settings import read_settings
from storage.workspace import Workspace

DEFAULT_PROMPTS = 128
DEFAULT_TEMPERATURE = 0.7


class DemoEvalError(RuntimeError):
    """No base model or adapter to evaluate; the message says what is missing."""


@dataclass
class SideReport:
    shares: dict[str, float]
    examples: list[dict] = field(default_factory=list)   # a few (prompt, reply, label) to show

    @property
    def helpful(self) -> float:
        return self.shares["helpful"]


@dataclass
class DemoEvalReport:
    base_model: str
    run_id: str | None
    prompts: int
    seed: int
    temperature: float
    base: SideReport
    tuned: SideReport | None = None
    kl: float | None = None                  # nats per sequence
    kl_per_token: float | None = None

    @property
    def helpful_gain(self) -> float | None:
        return None if self.tuned is None else self.tuned.helpful - self.base.helpful

    def to_dict(self) -> dict:
        data = asdict(self)
        data["helpful_gain"] = self.helpful_gain
        return data


def find_adapter(ws: Workspace, run_id: str | None) -> tuple[str, Path]:
    """(run id, adapter folder) of ``run_id``, or of the newest completed run when None."""
    from core.engine.run_start import adapter_folder
    from storage.runs import get_run, list_runs

    if run_id is not None:
        run = get_run(ws, run_id)
        if run is None:
            raise DemoEvalError(f"no run {run_id!r} in {ws.display_location} (see `python main.py runs`)")
    else:
        finished = [r for r in list_runs(ws) if r.adapter_path and r.status == RunStatus.COMPLETED]
        if not finished:
            raise DemoEvalError(f"no completed training run in {ws.display_location}; train one first "
                                "(`python main.py train WORKSPACE`) or evaluate the base model alone with --base-only")
        run = finished[-1]
    folder = adapter_folder(ws, run)   # also where a moved workspace folder holds it
    if folder is None:
        looked = [run.adapter_path] if run.adapter_path else []
        if ws.root is not None:
            looked.append(str(ws.runs_dir / run.id / "adapter"))
        raise DemoEvalError(f"run {run.id} has no saved adapter (looked in {', '.join(looked)})")
    return run.id, folder


def _side(samples, n_examples: int = 6) -> SideReport:
    labels = [classify(s.reply, s.finished) for s in samples]
    examples = [{"prompt": s.prompt, "reply": s.reply, "style": label}
                for s, label in list(zip(samples, labels))[:n_examples]]
    return SideReport(style_shares(labels), examples)


def evaluate_demo(ws: Workspace, run_id: str | None = None, prompts: int = DEFAULT_PROMPTS, seed: int = 0,
                  temperature: float = DEFAULT_TEMPERATURE, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                  base_only: bool = False, progress: Callable[[str, int, int], None] | None = None,
                  batch_size: int = 32) -> DemoEvalReport:
    """Sample ``prompts`` held-out prompts from the base (and tuned) model; shares and KL.
    ``progress(stage, done, total)`` follows each stage's batches."""
    import torch
    from peft import PeftModel

    from core.engine.modeling import load_base_model, load_tokenizer, quiet_peft_wrap

    base_name = read_settings(ws).base_model
    if not base_name:
        raise DemoEvalError(f"{ws.display_location} has no base_model setting; is it a demo workspace "
                            "(`python main.py demo FOLDER`)?")
    adapter = None if base_only else find_adapter(ws, run_id)
    tokenizer = load_tokenizer(base_name)
    model = load_base_model(base_name, torch.device("cpu"), torch.float32)
    questions = held_out_prompts(prompts)
    options = dict(seed=seed, temperature=temperature, max_new_tokens=max_new_tokens, batch_size=batch_size)

    def stage(name: str):
        return None if progress is None else (lambda done, total: progress(name, done, total))

    base_samples = sample_replies(model, tokenizer, questions, **options, progress=stage("sampling the base model"))
    report = DemoEvalReport(str(base_name), None, len(questions), seed, temperature, _side(base_samples))
    if adapter is None:
        return report
    report.run_id, adapter_dir = adapter
    with quiet_peft_wrap():
        tuned = PeftModel.from_pretrained(model, str(adapter_dir))
    tuned.eval()
    tuned_samples = sample_replies(tuned, tokenizer, questions, **options, progress=stage("sampling the tuned model"))
    tuned_logps = reply_logps(tuned, tokenizer, tuned_samples, batch_size, stage("log-probs, tuned"))
    with tuned.disable_adapter():
        base_logps = reply_logps(tuned, tokenizer, tuned_samples, batch_size, stage("log-probs, base"))
    gaps = [t - b for t, b in zip(tuned_logps, base_logps)]
    tokens = sum(len(s.reply_ids) for s in tuned_samples)
    report.tuned = _side(tuned_samples)
    report.kl = sum(gaps) / len(gaps)
    report.kl_per_token = sum(gaps) / max(tokens, 1)
    return report


def format_report(report: DemoEvalReport) -> str:
    def shares(side: SideReport) -> str:
        return "  ".join(f"{k} {v:6.1%}" for k, v in side.shares.items())

    lines = [f"{report.prompts} held-out prompts, one sample each, temperature {report.temperature}, "
             f"seed {report.seed}",
             f"base  ({report.base_model}):  {shares(report.base)}"]
    if report.tuned is not None:
        lines += [f"tuned (run {report.run_id}):  {shares(report.tuned)}",
                  f"helpful share: {report.base.helpful:.1%} -> {report.tuned.helpful:.1%} "
                  f"({report.helpful_gain * 100:+.1f} points)",
                  f"KL(tuned || base) estimate: {report.kl:.2f} nats per reply "
                  f"({report.kl_per_token:.3f} per token)"]
        lines.append("examples from the tuned model:")
        lines += [f"  [{e['style']}] {e['prompt']}\n      -> {e['reply']}" for e in report.tuned.examples[:4]]
    return "\n".join(lines)
