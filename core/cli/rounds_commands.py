"""``rounds``: the chain of training rounds and the next step, as the Rounds tab shows them.

    python main.py rounds WORKSPACE [--run RUN_ID]

Argument parsing and printing only: the numbers and the plan are ``core.operations.rounds``'s.
Exit codes: 0 shown, 2 refused (no such run, the workspace unusable; one line on stderr).
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    from core.cli.train_commands import _add_runs_dir

    p = subparsers.add_parser("rounds", help="the chain of training rounds (generate -> label -> train) "
                                             "and what to do next")
    p.add_argument("workspace", help="workspace folder or database URL")
    p.add_argument("--run", help="the chain that ends at this run (default: the newest run)")
    _add_runs_dir(p)
    p.set_defaults(func=run_rounds)


def _win_rate(round_) -> str:
    rate = round_.win_rate
    if rate is None or rate.rate is None:
        return "—"
    return f"{rate.rate:.0%} [{rate.low:.0%}, {rate.high:.0%}] n={rate.judged}"


def run_rounds(args: argparse.Namespace) -> int:
    from core.cli.train_commands import _open
    from core.operations.rounds import NextStep, next_round, round_chain
    from storage.runs import get_run

    ws = _open(args)
    if ws is None:
        return 2
    with ws:
        if args.run and get_run(ws, args.run) is None:
            print(f"error: no run {args.run!r} in this workspace (python main.py runs WORKSPACE lists them)",
                  file=sys.stderr)
            return 2
        chain = round_chain(ws, args.run)
    base = chain.base_generated
    print(f"{'round':<6} {'run':<24} {'started from':<14} {'trained on':>10} {'wrote':>6} {'judged':>7}  "
          "win rate vs previous")
    print(f"{'base':<6} {chain.base_model:<24} {'—':<14} {'—':>10} {base.generated:>6} {base.judged:>7}  —")
    for round_ in chain.rounds:
        print(f"{round_.number:<6} {round_.run_id:<24} {round_.start_from or 'base (new)':<14} "
              f"{round_.trained_verdicts:>10} {round_.generated:>6} {round_.judged:>7}  {_win_rate(round_)}")
    plan = next_round(chain)
    print(f"\nNext: {plan.text}")
    where = args.workspace
    if plan.step == NextStep.GENERATE:
        print(f"  python main.py generate {where} --model {plan.parent.run_id} --prompts unlabelled -n 2")
    elif plan.step in (NextStep.TRAIN, NextStep.LABEL):
        sets = " ".join(f"--set {key}={value!r}" if " " in value else f"--set {key}={value}"
                        for key, value in plan.training_values().items())
        print(f"  python main.py train {where} {sets}   (start_from=base: from the base on all verdicts)")
    return 0
