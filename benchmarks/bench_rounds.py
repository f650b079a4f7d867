"""Two rounds of the loop on the demo domain, with the demo's style scorer as the annotator.

    python benchmarks/bench_rounds.py [--steps 12 6] [--prompts 24] [--eval-prompts 48] [--json FILE]

Round 1 trains on the demo workspace's labelled pairs (the demo's settings, fewer steps).
Round 1's model (demo model + round 1's adapter) then writes two candidates for each of
``--prompts`` unlabelled demo prompts (``core.operations.generate``, temperature 0.8); the style
scorer judges each pair by the sides shown, as a person would (helpful beats curt or
unclassifiable, which beat reckless; equal styles tie, and ties make no example), through the
annotation queue. Round 2 trains from round 1's adapter on those verdicts, with round 1's model
as its reference (the DPO paper's setting, ``core.engine.run_start``). The scorer stands in
for a person here only: the app never judges for anyone.

Reported for the base model, round 1 and round 2, on held-out prompts (in no pair of the
workspace): the helpful share of one sampled reply per prompt at temperature 0.7 (the demo
evaluation's setting, ``core.demo.demo_eval``), with its binomial standard error, and the KL to
the base model, KL(π || π_base) in nats per reply, estimated from samples at temperature 1
with its standard error (``core.engine.sampled_kl.estimate_kl``). The bar: round 2 keeps or
raises round 1's helpful share.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.demo.demo_workspace import create_demo_workspace, held_out_prompts  # noqa: E402
from core.demo.sampling import sample_replies  # noqa: E402
from core.demo.style_scorer import classify, style_shares  # noqa: E402
from core.engine.trainer import train  # noqa: E402
from storage.models import Choice  # noqa: E402
from storage.rounds import trained_verdict_ids  # noqa: E402
from storage.verdicts import current_verdicts  # noqa: E402
from storage.workspace import Workspace  # noqa: E402
from tests.round_samples import candidate_prompts, generate_from, judge_pairs, quick_config  # noqa: E402

TEMPERATURE = 0.7


@dataclass
class ModelFigures:
    model: str
    helpful: float
    helpful_stderr: float
    kl: float | None = None
    kl_stderr: float | None = None


def measure(name: str, base_model: str, adapter_dir: Path | None, prompts: list[str], seed: int) -> ModelFigures:
    import torch
    from peft import PeftModel

    from core.engine.generation import SamplingSettings
    from core.engine.modeling import load_base_model, load_tokenizer, quiet_peft_wrap
    from core.engine.sampled_kl import estimate_kl

    tokenizer = load_tokenizer(base_model)
    model = load_base_model(base_model, torch.device("cpu"), torch.float32)
    if adapter_dir is not None:
        with quiet_peft_wrap():
            model = PeftModel.from_pretrained(model, str(adapter_dir))
    model.eval()
    samples = sample_replies(model, tokenizer, prompts, seed=seed, temperature=TEMPERATURE)
    helpful = style_shares(classify(s.reply, s.finished) for s in samples)["helpful"]
    figures = ModelFigures(name, helpful, math.sqrt(helpful * (1 - helpful) / len(samples)))
    if adapter_dir is not None:
        kl = estimate_kl(model, tokenizer, prompts, SamplingSettings(max_new_tokens=96, seed=seed))
        figures.kl, figures.kl_stderr = kl.mean, kl.stderr
    return figures


def run(root: Path, steps: tuple[int, int], prompts: int, eval_prompts: int, seed: int) -> dict:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    create_demo_workspace(root)
    ws = Workspace.open(root)
    round_1 = train(ws, quick_config(max_steps=steps[0], run_name="round 1"))
    timings["round 1"] = time.perf_counter() - started

    started = time.perf_counter()
    generated = generate_from(ws, round_1, candidate_prompts(prompts), n=2, seed=seed, max_new_tokens=96)
    judge_pairs(ws, generated)
    timings["generate + judge"] = time.perf_counter() - started

    started = time.perf_counter()
    round_2 = train(ws, quick_config(max_steps=steps[1], run_name="round 2", start_from_run=round_1,
                                     start_from="adapter"))
    timings["round 2"] = time.perf_counter() - started

    started = time.perf_counter()
    questions = held_out_prompts(eval_prompts)
    base_model = quick_config().base_model
    figures = [measure("base", base_model, None, questions, seed),
               measure("round 1", base_model, ws.runs_dir / round_1 / "adapter", questions, seed),
               measure("round 2", base_model, ws.runs_dir / round_2 / "adapter", questions, seed)]
    timings["evaluation"] = time.perf_counter() - started
    with ws.session() as session:
        ties = sum(1 for v in current_verdicts(session, generated) if v.choice == Choice.TIE)
    report = {"steps": list(steps), "candidate_prompts": prompts, "pairs": len(generated), "ties": ties,
              "round_2_trained_verdicts": len(trained_verdict_ids(ws, round_2)), "eval_prompts": len(questions),
              "figures": [asdict(f) for f in figures], "seconds": timings,
              "keeps_or_raises": figures[2].helpful >= figures[1].helpful}
    ws.close()
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, nargs=2, default=(12, 6), help="round 1's and round 2's steps")
    parser.add_argument("--prompts", type=int, default=24, help="unlabelled prompts round 1's model answers")
    parser.add_argument("--eval-prompts", type=int, default=48, help="held-out prompts for the figures")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = run(Path(tmp) / "ws", tuple(args.steps), args.prompts, args.eval_prompts, args.seed)
    print(f"round 1: {args.steps[0]} steps on the demo's labelled pairs; round 2: {args.steps[1]} steps from "
          f"round 1's adapter on {report['pairs']} pairs round 1's model wrote ({report['ties']} ties, "
          f"{report['round_2_trained_verdicts']} verdicts trained on)")
    print(f"{'model':<9} {'helpful share':>18} {'KL to base (nats/reply)':>26}")
    for f in report["figures"]:
        kl = "—" if f["kl"] is None else f"{f['kl']:.2f} ± {f['kl_stderr']:.2f}"
        print(f"{f['model']:<9} {f['helpful']:>11.1%} ± {f['helpful_stderr']:.1%} {kl:>26}")
    print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in report["seconds"].items()))
    print("round 2 keeps or raises round 1's helpful share:", "yes" if report["keeps_or_raises"] else "NO")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0 if report["keeps_or_raises"] else 1


if __name__ == "__main__":
    sys.exit(main())
