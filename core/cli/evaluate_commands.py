"""``evaluate-run``: every checkpoint of one or more runs, measured and printed as a table.

    python main.py evaluate-run WORKSPACE RUN [RUN ...] [--prompts 32] [--samples 2]
                                [--max-new-tokens 96] [--final-only] [--no-base] [--json]

Per checkpoint: held-out preference accuracy and reward margin, the KL to the base with its
standard error, and (demo workspace) the helpful share — ``core.operations.evaluate``. Results
are cached in each run folder; a second call prints them at once.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    from core.cli.train_commands import _add_runs_dir
    from core.operations.evaluate import EvaluateOptions

    defaults = EvaluateOptions()
    command = subparsers.add_parser(
        "evaluate-run", help="per checkpoint: held-out accuracy and margin, KL to the base (± s.e.), helpful share",
        description="Evaluate every checkpoint of the runs (and the base model, the frontier's origin): "
                    "the reward-against-KL table. Cached in each run folder.")
    command.add_argument("workspace", help="workspace folder or database URL")
    command.add_argument("runs", nargs="+", metavar="RUN", help="run ids (see `python main.py runs`)")
    _add_runs_dir(command)
    command.add_argument("--prompts", type=int, default=defaults.prompts,
                         help=f"held-out prompts the KL is sampled on (default {defaults.prompts})")
    command.add_argument("--samples", type=int, default=defaults.samples_per_prompt,
                         help=f"KL replies per prompt, temperature 1 (default {defaults.samples_per_prompt})")
    command.add_argument("--max-new-tokens", type=int, default=defaults.max_new_tokens,
                         help=f"longest sampled reply (default {defaults.max_new_tokens})")
    command.add_argument("--seed", type=int, default=defaults.seed)
    command.add_argument("--final-only", action="store_true", help="the final adapter only, not every checkpoint")
    command.add_argument("--no-base", action="store_true", help="leave out the base model's row")
    command.add_argument("--json", action="store_true", help="print the rows as JSON")
    command.add_argument("--quiet", action="store_true", help="no progress bar")
    command.set_defaults(func=run_evaluate_run)


def run_evaluate_run(args: argparse.Namespace) -> int:
    from core.cli.progress import StageProgress, quiet_libraries
    from core.cli.train_commands import _open
    from core.operations.evaluate import EvaluateError, EvaluateOptions, evaluate_runs

    for name in ("prompts", "samples", "max_new_tokens"):
        if getattr(args, name) < 1:
            print(f"error: --{name.replace('_', '-')} must be at least 1", file=sys.stderr)
            return 2
    ws = _open(args)
    if ws is None:
        return 2
    options = EvaluateOptions(prompts=args.prompts, samples_per_prompt=args.samples,
                              max_new_tokens=args.max_new_tokens, seed=args.seed,
                              include_base=not args.no_base, all_checkpoints=not args.final_only)
    bar = StageProgress(quiet=args.quiet or args.json)
    with ws:
        from core.engine.modeling import ModelLoadError

        if args.quiet or args.json:
            quiet_libraries()
        try:
            evaluations = evaluate_runs(ws, args.runs, options,
                                        progress=lambda e: bar(f"{e.run_name} {e.checkpoint}: {e.stage}",
                                                               e.done, e.total))
        except (EvaluateError, ModelLoadError) as exc:
            bar.end()
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps([e.to_dict() for e in evaluations], indent=2))
        return 0
    print(format_table(evaluations))
    return 0


def format_table(evaluations) -> str:
    def percent(value):
        return "     —" if value is None else f"{100 * value:5.1f}%"

    lines = []
    for evaluation in evaluations:
        beta = "" if evaluation.beta is None else f", β {evaluation.beta:g}"
        lines.append(f"run {evaluation.run_id} ({evaluation.run_name}{beta}): {evaluation.computed} measured, "
                     f"{evaluation.reused} from the cache")
        lines.append(f"  {'checkpoint':<12} {'step':>6} {'pairs':>6} {'accuracy':>9} {'margin':>8} "
                     f"{'KL (nats)':>10} {'± s.e.':>7} {'helpful':>8}")
        for r in evaluation.rows:
            margin = "       —" if r.margin is None else f"{r.margin:8.3f}"
            lines.append(f"  {r.label:<12} {r.step:>6} {r.pairs:>6} {percent(r.accuracy):>9} {margin} "
                         f"{r.kl:10.3f} {r.kl_stderr:7.3f} {percent(r.helpful_share):>8}")
    return "\n".join(lines)
