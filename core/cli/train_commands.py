"""``train``, ``evaluate`` and ``runs``: the training engine from the command line.

    python main.py train WORKSPACE [--config FILE.toml] [--set key=value ...] [--resume RUN_ID]
    python main.py evaluate WORKSPACE --adapter RUN_OR_PATH [--split eval|train|all] [--json]
    python main.py runs WORKSPACE [--json] [--export-adapter RUN DIR] [--export-merged RUN DIR]
                                  [--export-metrics RUN FILE.csv] [--delete RUN]

torch and transformers are imported inside the handlers so that ``--help`` starts fast.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from contextlib import contextmanager

from core.cli.progress import ProgressPrinter, StageProgress, quiet_libraries


def register(subparsers) -> None:
    train = subparsers.add_parser("train", help="train a LoRA adapter with DPO on the workspace's labelled pairs",
                                  description="Train a LoRA adapter with DPO. Settings: the workspace's saved "
                                              "training settings (its base_model setting wins; "
                                              "core.operations.training.default_training_config), then --config, then --set. "
                                              "Ctrl+C stops the run cleanly; it can be resumed.")
    train.add_argument("workspace", help="workspace folder or database URL")
    _add_runs_dir(train)
    train.add_argument("--config", help="TOML file of training settings (see core/engine/training_config.py)")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override one setting, e.g. --set lr=1e-4 --set max_steps=200 (repeatable)")
    train.add_argument("--resume", metavar="RUN_ID", help="continue a stopped or crashed run from its last checkpoint")
    train.add_argument("--processes", type=int, metavar="N",
                       help="data-parallel training in N processes, one per GPU (on the CPU: N processes); "
                            "each takes batch_size pairs (core/engine/distributed.py)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=run_train)

    evaluate = subparsers.add_parser("evaluate", help="DPO metrics of an adapter (policy) against its base (reference)")
    evaluate.add_argument("workspace", help="workspace folder or database URL")
    _add_runs_dir(evaluate)
    evaluate.add_argument("--adapter", required=True, help="a run id of this workspace, or an adapter folder")
    evaluate.add_argument("--split", choices=("eval", "train", "all"), default="eval")
    evaluate.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                          help="override a setting of the run (e.g. beta, max_length, device)")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(func=run_evaluate)

    runs = subparsers.add_parser("runs", help="list the workspace's training runs")
    runs.add_argument("workspace", help="workspace folder or database URL")
    _add_runs_dir(runs)
    runs.add_argument("--json", action="store_true", help="print the runs as JSON")
    runs.add_argument("--export-adapter", nargs=2, metavar=("RUN_ID", "FOLDER"),
                      help="copy the run's LoRA adapter into FOLDER (new or empty)")
    runs.add_argument("--export-merged", nargs=2, metavar=("RUN_ID", "FOLDER"),
                      help="write the base model with the run's adapter merged in (loads the model)")
    runs.add_argument("--export-metrics", nargs=2, metavar=("RUN_ID", "FILE"),
                      help="write every stored metric of the run as CSV")
    runs.add_argument("--delete", metavar="RUN_ID",
                      help="delete the run: its metrics, pair scores and folder (refused while it trains, or while "
                           "a later round, a comparison or generated candidates depend on it)")
    runs.set_defaults(func=run_runs)


def _add_runs_dir(parser) -> None:
    from storage.locations import RUNS_DIR_ENV

    parser.add_argument("--runs-dir", metavar="FOLDER",
                        help="for a database-URL workspace: the folder on this computer for run artifacts "
                             f"(default: ${RUNS_DIR_ENV}, else a folder per server and database in your data "
                             "folder); a workspace folder keeps its runs in its own runs/")


def _open(args: argparse.Namespace):
    from storage.workspace import SchemaTooNewError, Workspace, WorkspaceError

    try:
        return Workspace.open(args.workspace, create=False, runs_dir=args.runs_dir)
    except (WorkspaceError, SchemaTooNewError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


@contextmanager
def _ctrl_c_stops(session):
    """The first Ctrl+C stops the run cleanly (the step ends, a checkpoint and the adapter are
    saved; it can be resumed); a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_interrupt(_signum, _frame):
        if not session.stop():
            raise KeyboardInterrupt
        print("\nstopping after this step (saving a checkpoint and the adapter); Ctrl+C again to abort",
              file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_train(args: argparse.Namespace) -> int:
    from core.engine.distributed import follow_rank_zero, launcher_rank
    from core.engine.training_config import ConfigError, load_config
    from core.operations.training import TrainingSession, default_training_config

    rank, launched = launcher_rank()
    if rank > 0:   # torchrun / accelerate launch: this rank computes what rank 0 names and writes nothing
        return follow_rank_zero()
    if launched > 1 and args.processes not in (None, launched):
        print(f"error: --processes {args.processes} but {launched} processes were launched", file=sys.stderr)
        return 2
    processes = launched if launched > 1 else args.processes
    ws = _open(args)
    if ws is None:
        return 2
    if ws.read_only:   # refused before a setting is read or a model loaded
        ws.close()
        print(f"error: {ws.read_only_message}", file=sys.stderr)
        return 2
    with ws:
        from core.operations.runs import get_run, resume_refusal

        config = None
        if args.resume is None:
            try:
                overrides = args.overrides + ([f"processes={processes}"] if processes is not None else [])
                config = load_config(args.config, overrides, default_training_config(ws).to_dict())
            except ConfigError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
        else:
            run = get_run(ws, args.resume)
            refusal = resume_refusal(args.resume, run)
            if refusal is not None:
                print(f"error: cannot resume: {refusal}", file=sys.stderr)
                return 2
            kept = int(run.config.get("processes", 1))
            if processes is not None and processes != kept:   # the global batch would change
                print(f"error: cannot resume run {args.resume} in {processes} processes: it trains in "
                      f"{kept} process(es), so that it ends where it would have", file=sys.stderr)
                return 2
            changes = _resume_changes(args, run)
            if changes is None:
                return 2
        if args.quiet:
            quiet_libraries()
        printer = ProgressPrinter(quiet=args.quiet)
        session = TrainingSession(ws, on_event=printer.on_event)
        if config is None:
            session.start(resume_run_id=args.resume, resume_changes=args.overrides)
        else:
            # The same launch checks as the Train tab's Start: the model folder, the labelled pairs.
            session.start(values=config.to_dict())
            problems = session.check()
            if problems:
                from core.operations.launch_checks import DATA_KEY

                for key, message in problems.items():
                    print(f"error: {message}" if key == DATA_KEY else f"error: setting '{key}': {message}",
                          file=sys.stderr)
                return 2
        try:
            with _ctrl_c_stops(session):
                outcome = session.run()
        except KeyboardInterrupt:
            print("\ninterrupted; resume with --resume and the run id above", file=sys.stderr)
            return 130
        if outcome.status == outcome.status.FAILED:
            printer.end()
            if outcome.run_id is None:   # refused before a run began: the model, a setting or the data
                print(f"error: {outcome.error}", file=sys.stderr)
                return 2
            print(f"error: training failed (run {outcome.run_id}): {outcome.error}", file=sys.stderr)
            return 1
        run = get_run(ws, outcome.run_id)
        print(f"run {run.id} {run.status.value} at step {run.step}/{run.total_steps}; adapter: {run.adapter_path}")
        return 0


def _resume_changes(args: argparse.Namespace, run) -> list[str] | None:
    """The ``--set`` changes a resumed run accepts, printed; None (and the reason) when refused."""
    from core.engine.resume_changes import apply_resume_changes
    from core.engine.training_config import ConfigError, TrainingConfig

    if args.config:
        print("error: --config cannot change a resumed run; use --set for the settings that may change",
              file=sys.stderr)
        return None
    try:
        _config, changes = apply_resume_changes(TrainingConfig.from_dict(run.config), args.overrides)
    except ConfigError as exc:
        print(f"error: cannot resume run {args.resume} with these settings: {exc}", file=sys.stderr)
        return None
    for change in changes:
        print(f"resuming with {change}", file=sys.stderr)
    return changes


def run_evaluate(args: argparse.Namespace) -> int:
    ws = _open(args)
    if ws is None:
        return 2
    with ws:
        from core.engine.evaluation import EvaluationError, evaluate_adapter
        from core.engine.modeling import ModelLoadError
        from core.engine.training_config import ConfigError

        try:
            if args.quiet:
                quiet_libraries()
            metrics = evaluate_adapter(ws, args.adapter, args.split, args.overrides,
                                       progress=None if args.json or args.quiet else print,
                                       bar=StageProgress(quiet=args.quiet))
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
    ws = _open(args)
    if ws is None:
        return 2
    with ws:
        from core.operations import runs as run_ops
        from storage.workspace import WorkspaceError

        exports = [(what, pair) for what, pair in (("adapter", args.export_adapter), ("merged", args.export_merged),
                                                   ("metrics", args.export_metrics)) if pair]
        if exports:
            return _export_runs(ws, exports)
        if args.delete:
            try:
                deleted = run_ops.delete_run(ws, args.delete)
            except (LookupError, run_ops.RunInUseError, WorkspaceError) as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            print(deleted.describe())
            return 0
        rows = [run_ops.run_row(run) for run in run_ops.list_runs(ws)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no runs yet")
        return 0
    print(f"{'run':<22} {'status':<11} {'steps':>11}  {'created':<19}  base model")
    for row in rows:
        steps = f"{row['step']}/{row['total_steps']}"
        status = row["status"] + ("*" if row["resumable"] else "")
        print(f"{row['id']:<22} {status:<11} {steps:>11}  {row['created_at']:<19}  {row['base_model']}")
        if row["error"]:
            print(f"{'':<22} error: {row['error']}")
    if any(row["resumable"] for row in rows):
        from storage.workspace import display_location

        print(f"* can be resumed: python main.py train {display_location(args.workspace)} --resume RUN")
    return 0


def _export_runs(ws, exports) -> int:
    from core.operations import runs as run_ops

    do = {"adapter": run_ops.export_adapter, "merged": run_ops.export_merged, "metrics": run_ops.export_metrics}
    for what, (run_id, destination) in exports:
        try:
            path = do[what](ws, run_id, destination)
        except (run_ops.ExportError, ValueError, OSError) as exc:
            print(f"error: cannot export the {what} of run {run_id}: {exc}", file=sys.stderr)
            return 2
        print(f"exported the {what} of run {run_id} to {path}")
    return 0
