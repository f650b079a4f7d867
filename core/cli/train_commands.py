"""``train``, ``evaluate`` and ``runs``: the training engine from the command line.

    python main.py train WORKSPACE [--config FILE.toml] [--set key=value ...] [--resume RUN_ID]
    python main.py evaluate WORKSPACE --adapter RUN_OR_PATH [--split eval|train|all] [--json]
    python main.py runs WORKSPACE [--json]

torch and transformers are imported inside the handlers so that ``--help`` starts fast.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from core.operations.wording import format_duration


def register(subparsers) -> None:
    train = subparsers.add_parser("train", help="train a LoRA adapter with DPO on the workspace's labelled pairs",
                                  description="Train a LoRA adapter with DPO. Settings: built-in defaults, then "
                                              "the workspace's base_model setting, then --config, then --set.")
    train.add_argument("workspace", help="workspace folder")
    train.add_argument("--config", help="TOML file of training settings (see core/engine/training_config.py)")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override one setting, e.g. --set lr=1e-4 --set max_steps=200 (repeatable)")
    train.add_argument("--resume", metavar="RUN_ID", help="continue a stopped or crashed run from its last checkpoint")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=run_train)

    evaluate = subparsers.add_parser("evaluate", help="DPO metrics of an adapter (policy) against its base (reference)")
    evaluate.add_argument("workspace", help="workspace folder")
    evaluate.add_argument("--adapter", required=True, help="a run id of this workspace, or an adapter folder")
    evaluate.add_argument("--split", choices=("eval", "train", "all"), default="eval")
    evaluate.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                          help="override a setting of the run (e.g. beta, max_length, device)")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    evaluate.set_defaults(func=run_evaluate)

    runs = subparsers.add_parser("runs", help="list the workspace's training runs")
    runs.add_argument("workspace", help="workspace folder")
    runs.add_argument("--json", action="store_true", help="print the runs as JSON")
    runs.set_defaults(func=run_runs)


def _open(path: str):
    from storage.workspace import Workspace, WorkspaceError

    try:
        return Workspace.open(path, create=False)
    except WorkspaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


class ProgressPrinter:
    """A one-line progress bar with ETA on a terminal; plain lines every 10% otherwise."""

    WIDTH = 28

    def __init__(self, stream=None, quiet: bool = False):
        from core.engine.training_control import TrainingObserver

        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self.total = 0
        self.start_step = 0
        self.started = time.monotonic()
        self.last_line = -1
        outer = self

        class _Observer(TrainingObserver):
            def on_start(self, info):
                outer.total, outer.start_step = info.total_steps, info.start_step
                outer.started = time.monotonic()
                dropped = ", ".join(f"{n} {reason}" for reason, n in info.dropped.items() if n) or "none"
                outer.line(f"run {info.run_id}: {info.train_pairs} train / {info.eval_pairs} eval pairs "
                           f"(left out: {dropped}); {info.trainable_parameters:,} trainable parameters; "
                           f"{info.device} {info.dtype}")

            def on_step(self, step, metrics):
                outer.step(step, metrics)

            def on_eval(self, step, metrics):
                outer.line(f"eval @ step {step}: loss {metrics['loss']:.4f}  accuracy "
                           f"{metrics['rewards/accuracies']:.3f}  margin {metrics['rewards/margins']:.4f}"
                           + ("  [likelihood displacement: chosen log-prob below reference]"
                              if metrics.get("likelihood_displacement") else ""))

            def on_message(self, text):
                if not text.startswith("computing reference"):
                    outer.line(text)

            def on_checkpoint(self, step, path):
                pass

            def on_finish(self, status, error):
                if outer.tty and not outer.quiet:
                    outer.stream.write("\n")

        self.observer = _Observer()

    def line(self, text: str) -> None:
        if self.quiet:
            return
        prefix = "\r\033[K" if self.tty else ""
        self.stream.write(f"{prefix}{text}\n")
        self.stream.flush()

    def step(self, step: int, metrics: dict) -> None:
        if self.quiet or not self.total:
            return
        done = step - self.start_step
        elapsed = time.monotonic() - self.started
        eta = elapsed / max(done, 1) * (self.total - step)
        fraction = step / self.total
        bar = "#" * int(fraction * self.WIDTH)
        text = (f"[{bar:<{self.WIDTH}}] {step}/{self.total}  loss {metrics['loss']:.4f}  "
                f"acc {metrics['rewards/accuracies']:.2f}  margin {metrics['rewards/margins']:.3f}  "
                f"{metrics['tokens_per_second']:.0f} tok/s  ETA {format_duration(eta, with_seconds=True)}")
        if self.tty:
            self.stream.write("\r\033[K" + text)
            self.stream.flush()
        elif int(fraction * 10) != self.last_line or step == self.total:
            self.last_line = int(fraction * 10)
            self.stream.write(text + "\n")
            self.stream.flush()


def run_train(args: argparse.Namespace) -> int:
    from core.engine.training_config import ConfigError, load_config

    ws = _open(args.workspace)
    if ws is None:
        return 2
    with ws:
        config = None
        if args.resume is None:
            # The workspace's saved training settings (the demo workspace ships its defaults).
            from storage.settings import read_settings

            settings = read_settings(ws)
            defaults = dict(settings.training_config)
            if settings.base_model:
                defaults["base_model"] = settings.base_model
            try:
                config = load_config(args.config, args.overrides, defaults)
            except ConfigError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
        from core.engine.trainer import TrainingFailed, train

        printer = ProgressPrinter(quiet=args.quiet)
        try:
            run_id = train(ws, config, printer.observer, resume_run_id=args.resume)
        except TrainingFailed as exc:
            where = f" (run {exc.run_id})" if exc.run_id else ""
            print(f"error: training failed{where}: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("\ninterrupted; resume with --resume and the run id above", file=sys.stderr)
            return 130
        from storage.runs import get_run

        run = get_run(ws, run_id)
        print(f"run {run_id} {run.status.value} at step {run.step}/{run.total_steps}; adapter: {run.adapter_path}")
        return 0


def run_evaluate(args: argparse.Namespace) -> int:
    ws = _open(args.workspace)
    if ws is None:
        return 2
    with ws:
        from core.engine.evaluation import EvaluationError, evaluate_adapter
        from core.engine.modeling import ModelLoadError
        from core.engine.training_config import ConfigError

        try:
            metrics = evaluate_adapter(ws, args.adapter, args.split, args.overrides,
                                       progress=None if args.json else print)
        except (EvaluationError, ModelLoadError, ConfigError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(metrics, sort_keys=True))
    else:
        width = max(len(name) for name in metrics)
        for name in sorted(metrics):
            print(f"{name:<{width}}  {metrics[name]:.6g}")
    return 0


def run_runs(args: argparse.Namespace) -> int:
    ws = _open(args.workspace)
    if ws is None:
        return 2
    with ws:
        from storage.runs import list_runs

        runs = list_runs(ws)
    rows = [{"id": r.id, "name": r.name, "status": r.status.value, "step": r.step, "total_steps": r.total_steps,
             "base_model": r.base_model, "created_at": r.created_at.isoformat(timespec="seconds"),
             "adapter": r.adapter_path, "error": r.error} for r in runs]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no runs yet")
        return 0
    print(f"{'run':<22} {'status':<10} {'steps':>11}  {'created':<19}  base model")
    for row in rows:
        steps = f"{row['step']}/{row['total_steps']}"
        print(f"{row['id']:<22} {row['status']:<10} {steps:>11}  {row['created_at']:<19}  {row['base_model']}")
        if row["error"]:
            print(f"{'':<22} error: {row['error']}")
    return 0
