"""``score-pairs``: score the workspace's pairs with a run's adapter, for the scored queue orders.

    python main.py score-pairs WORKSPACE RUN [--all] [--rescore] [--quiet]

Argument parsing and printing only: the work is ``core.operations.pair_scores.score_pairs``.
Exit codes: 0 done, 2 refused (no such run, no adapter, the workspace unusable; one line on stderr).
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    from core.cli.train_commands import _add_runs_dir

    p = subparsers.add_parser("score-pairs", help="score pairs with a run's adapter (the implicit-reward margin), "
                                                  "so the annotation queue can serve the least sure first")
    p.add_argument("workspace", help="workspace folder or database URL")
    p.add_argument("run", help="a run id of this workspace")
    _add_runs_dir(p)
    p.add_argument("--all", action="store_true", help="every pair, not only the open ones (still to be judged)")
    p.add_argument("--rescore", action="store_true", help="score again the pairs the run already scored")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_score_pairs)


def run_score_pairs(args: argparse.Namespace) -> int:
    from core.cli.progress import StageProgress, quiet_libraries
    from core.cli.train_commands import _open

    ws = _open(args)
    if ws is None:
        return 2
    with ws:
        from core.engine.evaluation import EvaluationError
        from core.engine.modeling import ModelLoadError
        from core.operations.pair_scores import score_pairs
        from storage.runs import get_run

        if get_run(ws, args.run) is None:
            print(f"error: no run {args.run!r} in this workspace (python main.py runs WORKSPACE lists them)",
                  file=sys.stderr)
            return 2
        if args.quiet:
            quiet_libraries()
        bar = StageProgress(quiet=args.quiet)
        try:
            outcome = score_pairs(ws, args.run, open_only=not args.all, rescore=args.rescore,
                                  progress=lambda event: bar(event.stage.value, event.done, event.total))
        except (EvaluationError, ModelLoadError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print(outcome.describe().capitalize())
    return 0
