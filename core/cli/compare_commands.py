"""The blind A/B commands: ``compare`` (two models answer held-out prompts; the answers become a
blind comparison to judge in the app's Blind A/B tab) and ``compare-results`` (the win rate).

Argument parsing and printing only: the work is ``core.operations.blind``.
Exit codes: 0 done, 1 cancelled (Ctrl+C while generating), 2 refused (bad input; one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare", help="make a blind A/B comparison: two models answer held-out prompts",
        description="Model A (the reference) and model B (the one under test) each answer the first N "
                    "prompts of the eval split (or of --prompts FILE, one prompt per line). The answers are "
                    "stored as pairs judged blind in the app's Blind A/B tab; `compare-results` gives B's "
                    "win rate against A.")
    p.add_argument("workspace", help="an existing workspace folder or database URL")
    p.add_argument("--a", default="base", metavar="MODEL", help="the reference: 'base' or a run id (default: base)")
    p.add_argument("--b", required=True, metavar="MODEL", help="the model under test: a run id (or 'base')")
    p.add_argument("-n", type=int, default=20, help="how many held-out prompts (default: 20)")
    p.add_argument("--prompts", metavar="FILE", help="a text file of prompts, one per line, instead of the eval split")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--seed", type=int, help="default: the comparison's number")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_compare)

    p = subparsers.add_parser("compare-results", help="a blind comparison's win rate (ties half, both-bad apart)")
    p.add_argument("workspace", help="an existing workspace folder or database URL")
    p.add_argument("id", type=int, nargs="?", help="the comparison (default: list them)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run_compare_results)


def _open(location: str):
    from storage.workspace import SchemaTooNewError, Workspace, WorkspaceError

    try:
        return Workspace.open(location, create=False)
    except (WorkspaceError, SchemaTooNewError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def _read_prompts(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as handle:
            prompts = [line.strip() for line in handle if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the prompts file {path}: {exc}") from exc
    if not prompts:
        raise ValueError(f"{path}: no prompts in the file (one prompt per line)")
    return prompts


def run_compare(args: argparse.Namespace) -> int:
    if args.n < 1:
        print("error: -n must be at least 1", file=sys.stderr)
        return 2
    ws = _open(args.workspace)
    if ws is None:
        return 2
    from core.cli.progress import ProgressBar, quiet_libraries
    from core.engine.modeling import ModelLoadError
    from core.operations import blind

    if args.quiet:
        quiet_libraries()
    bar = ProgressBar("answers", quiet=args.quiet)
    sampling = {"max_new_tokens": args.max_new_tokens, "temperature": args.temperature}
    if args.seed is not None:
        sampling["seed"] = args.seed
    with ws:
        try:
            prompts = _read_prompts(args.prompts) if args.prompts else None
            outcome = blind.create_comparison(ws, args.a, args.b, prompts=prompts, settings=sampling, limit=args.n,
                                              progress=lambda p: bar(p.done, p.total, p.model_label))
        except (ValueError, LookupError, ModelLoadError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("cancelled: nothing stored", file=sys.stderr)
            return 1
    skipped = outcome.skipped_identical + outcome.skipped_stored
    print(f"comparison #{outcome.comparison_id}: {outcome.pairs} pairs to judge blind (A = {args.a}, B = {args.b})"
          + (f"; {skipped} prompts left out (the same answer twice, or already stored)" if skipped else ""))
    print(f"judge them in the app's Blind A/B tab, then: python main.py compare-results {args.workspace} "
          f"{outcome.comparison_id}")
    return 0


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def run_compare_results(args: argparse.Namespace) -> int:
    ws = _open(args.workspace)
    if ws is None:
        return 2
    from core.operations import blind

    with ws:
        if args.id is None:
            records = blind.list_comparisons(ws)
            if args.json:
                print(json.dumps([{"id": r.id, "name": r.name, "a": r.label_a, "b": r.label_b, "pairs": r.pairs,
                                   "judged_pairs": r.judged_pairs} for r in records]))
                return 0
            for record in records:
                print(f"#{record.id}  {record.name}  A={record.label_a} B={record.label_b}  "
                      f"{record.judged_pairs}/{record.pairs} judged")
            return 0
        try:
            result = blind.comparison_result(ws, args.id)
        except LookupError as exc:
            print(f"error: {exc.args[0]}", file=sys.stderr)
            return 2
    rate, o = result.win_rate, result.outcomes
    if args.json:
        print(json.dumps({"id": args.id, "a": result.label_a, "b": result.label_b, "b_won": o.b_won, "a_won": o.a_won,
                          "ties": o.ties, "both_bad": o.both_bad, "n": rate.n, "win_rate": rate.rate,
                          "low": rate.low, "high": rate.high,
                          "by_annotator": {name: vars(counts) for name, counts in result.by_annotator.items()}}))
        return 0
    print(f"comparison #{args.id}: B = {result.label_b} against A = {result.label_a}")
    print(f"B won {o.b_won}, A won {o.a_won}, ties {o.ties}, both bad {o.both_bad} (not in the rate)")
    if rate.rate is None:
        print("no verdicts yet: judge the pairs in the app's Blind A/B tab")
    else:
        print(f"B's win rate {_percent(rate.rate)} (ties half), 95% Wilson interval "
              f"{_percent(rate.low)} - {_percent(rate.high)}, n = {rate.n}")
    return 0
