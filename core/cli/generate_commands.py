"""``generate``: sample candidates from the base model or a run's adapter and queue them as pairs.

    python main.py generate WS --model base|RUN_ID --prompts unlabelled|workspace|FILE -n 4
                               [--temperature 0.8 --top-p 0.95 --max-new-tokens 128 --seed 0 --limit N]

FILE is a prompts-only file: JSONL/JSON rows with a "prompt" field, CSV with a prompt column, or
.txt with one prompt per line. torch is imported inside the handler so that ``--help`` starts fast.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    generate = subparsers.add_parser(
        "generate", help="sample N replies per prompt from the base or a run's adapter; they become pairs to judge")
    generate.add_argument("workspace", help="workspace folder or postgresql:// URL")
    generate.add_argument("--model", default="base", help="'base' or a run id (see `main.py runs`); default base")
    generate.add_argument("--prompts", default="unlabelled", metavar="SOURCE",
                          help="'unlabelled' (prompts without a verdict, the default), 'workspace' (all), "
                               "or a prompts file (.jsonl/.json/.csv with a prompt field, .txt one per line)")
    generate.add_argument("-n", type=int, default=4, help="replies per prompt (at least 2; default 4 = 2 pairs)")
    generate.add_argument("--pairing", choices=("consecutive", "all"), default="consecutive",
                          help="consecutive: replies (1,2), (3,4)… (n/2 pairs, the default); all: every two")
    generate.add_argument("--temperature", type=float, default=0.8, help="0 = greedy (default 0.8)")
    generate.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling (default 0.95)")
    generate.add_argument("--max-new-tokens", type=int, default=128, help="default 128")
    generate.add_argument("--seed", type=int, default=0, help="same prompts, model and seed: same replies")
    generate.add_argument("--limit", type=int, help="at most N prompts")
    generate.add_argument("--batch-size", type=int, default=16, help="rows decoded at once (default 16)")
    generate.add_argument("--device", default="auto", help="auto (GPU when there is one), cuda, mps or cpu")
    generate.add_argument("--quiet", action="store_true", help="no progress bar")
    generate.set_defaults(func=run_generate)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def run_generate(args: argparse.Namespace) -> int:
    from core.cli.progress import ProgressBar, quiet_libraries
    from core.operations.generate import GenerateError, GenerateRequest, check_request
    from storage.workspace import Workspace, WorkspaceError

    if args.limit is not None and args.limit < 1:
        return _fail("--limit must be at least 1")
    if args.batch_size < 1:
        return _fail("--batch-size must be at least 1")
    from core.engine.generation import SamplingSettings

    settings = SamplingSettings(temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens,
                                seed=args.seed, n=args.n)
    request = GenerateRequest(args.model, prompt_source=args.prompts, settings=settings, pairing=args.pairing,
                              limit=args.limit, batch_size=args.batch_size, device=args.device)
    try:
        check_request(request)
    except GenerateError as exc:
        return _fail(str(exc))
    try:
        ws = Workspace.open(args.workspace, create=False)
    except WorkspaceError as exc:
        return _fail(str(exc))
    if args.quiet:
        quiet_libraries()
    bar = ProgressBar("generating", quiet=args.quiet)
    with ws:
        try:
            outcome = _generate(ws, request, bar)
        except GenerateError as exc:
            bar.end()
            return _fail(str(exc))
    print(outcome.summary_text() + (f"; generation #{outcome.generation_id}" if outcome.generation_id else ""))
    return 0


def _generate(ws, request, bar):
    from core.engine.modeling import DeviceError, ModelLoadError
    from core.operations.generate import GenerateError, generate_candidates
    from storage.workspace import WorkspaceError

    def progress(p) -> None:
        bar(p.done, p.total, f"{p.tokens} tokens, {p.tokens_per_second:.0f} tokens/s")

    try:
        return generate_candidates(ws, request, progress=progress)
    except (ModelLoadError, DeviceError, WorkspaceError) as exc:
        raise GenerateError(str(exc)) from None
