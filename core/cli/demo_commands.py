"""``demo``, ``demo-eval`` and ``build-demo-model``: the bundled offline demo from the command line.

    python main.py demo FOLDER                       create the demo workspace in a new folder
    python main.py train FOLDER                      train it with its default settings
    python main.py demo-eval FOLDER [--adapter RUN]  helpful share of samples, base vs tuned, and KL
    python main.py build-demo-model [--out DIR]      rebuild resources/demo_model from nothing

torch and transformers are imported inside the handlers so that ``--help`` starts fast.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    demo = subparsers.add_parser("demo", help="create the demo workspace (labelled pairs, pairs to label, demo model)")
    demo.add_argument("folder", help="a new or empty folder")
    demo.set_defaults(func=run_demo)

    evaluate = subparsers.add_parser(
        "demo-eval", help="sample held-out prompts from the base and tuned demo model: helpful share and KL")
    evaluate.add_argument("workspace", help="a demo workspace folder")
    evaluate.add_argument("--adapter", metavar="RUN", help="run id (default: the newest completed run)")
    evaluate.add_argument("--prompts", type=int, default=128, help="held-out prompts, one sample each (default 128)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--temperature", type=float, default=0.7,
                          help="sampling temperature (default 0.7; see core/demo/demo_eval.py for why)")
    evaluate.add_argument("--base-only", action="store_true", help="sample the base model only")
    evaluate.add_argument("--json", action="store_true", help="print the report as one JSON object")
    evaluate.add_argument("--batch-size", type=int, default=32, help="prompts sampled at once (default 32)")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(func=run_demo_eval)

    build = subparsers.add_parser("build-demo-model",
                                  help="rebuild the bundled demo model: corpus, tokenizer, pre-training (CPU, ~10 min)")
    build.add_argument("--out", help="output folder (default: resources/demo_model)")
    build.add_argument("--quick", action="store_true", help="a shortened build (seconds), for checking the pipeline")
    build.add_argument("--steps", type=int, help="pre-training steps (default 800)")
    build.add_argument("--threads", type=int, help="CPU threads (default 1; the same count gives the same weights)")
    build.set_defaults(func=run_build_demo_model)


def run_demo(args: argparse.Namespace) -> int:
    from core.demo.demo_workspace import DEMO_TRAINING, create_demo_workspace

    try:
        folder = create_demo_workspace(args.folder)
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"demo workspace created in {folder}")
    print(f"base model: {DEMO_TRAINING['base_model']}; train it with:  python main.py train {folder}")
    return 0


def run_demo_eval(args: argparse.Namespace) -> int:
    from core.cli.progress import StageProgress, quiet_libraries
    from core.demo.demo_eval import DemoEvalError, evaluate_demo, format_report
    from core.engine.modeling import ModelLoadError
    from storage.workspace import Workspace, WorkspaceError

    if args.prompts < 1 or args.batch_size < 1:
        print("error: --prompts and --batch-size must be at least 1", file=sys.stderr)
        return 2
    try:
        ws = Workspace.open(args.workspace, create=False)
    except WorkspaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with ws:
        try:
            if args.quiet:
                quiet_libraries()
            report = evaluate_demo(ws, args.adapter, prompts=args.prompts, seed=args.seed,
                                   temperature=args.temperature, base_only=args.base_only,
                                   progress=StageProgress(quiet=args.quiet), batch_size=args.batch_size)
        except (DemoEvalError, ModelLoadError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return 0


def run_build_demo_model(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from core.engine.bundled_models import resources_dir
    from core.demo.pretrain import BuildSettings, build_demo_model

    settings = BuildSettings.quick() if args.quick else BuildSettings()
    if args.steps is not None:
        settings = replace(settings, steps=args.steps)
    if args.threads is not None:
        settings = replace(settings, threads=args.threads)
    out = args.out or str(resources_dir() / "demo_model")
    build_demo_model(out, settings)
    return 0
