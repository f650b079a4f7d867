"""DPO Studio entry point.

    python main.py                       open the app (default workspace, demo on first start)
    python main.py --workspace DIR       open the app on that workspace
    python main.py COMMAND ...           run headless (python main.py --help lists commands)
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Each module registers its own subcommands; it must import torch/transformers lazily
# (inside the handlers) so that `--help` and the data commands start fast.
COMMAND_MODULES = (
    "core.cli.data_commands",   # import, export, stats
    "core.cli.train_commands",  # train, evaluate, runs
    "core.cli.demo_commands",   # demo, demo-eval, build-demo-model
    "core.cli.bundle_commands",  # bundle export, bundle merge
    "core.cli.check_commands",  # check
    "core.cli.restore_commands",  # restore
    "core.cli.team_commands",   # team add, team list, team set-role
    "core.cli.score_commands",  # score-pairs
    "core.cli.compare_commands",  # compare, compare-results (blind A/B)
    "core.cli.evaluate_commands",  # evaluate-run (per checkpoint: reward against KL)
    "core.cli.generate_commands",  # generate (candidates from the base or a run's adapter)
    "core.cli.rounds_commands",  # rounds (the chain of training rounds, the next step)
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dpo-studio",
        description="Label preference pairs and train LoRA adapters with DPO. "
                    "With no command, opens the desktop app.")
    parser.add_argument("--workspace", help="workspace folder (or database URL) to open in the app")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # a command group not built yet
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        # Before any QApplication: Qt aborts with a plugin dump where one line can say what to do.
        from gui.common.platform_check import window_problem

        problem = window_problem()
        if problem is not None:
            print(problem, file=sys.stderr)
            return 2
        from gui.app import run_app

        return run_app(args.workspace)
    return run_command(args)


#: Exceptions that mean the input was bad (a setting, a model path, a workspace, a data file),
#: wherever they are raised: exit code 2 and their one-line message. Named, not imported, so
#: that the data commands never import torch.
BAD_INPUT = {"ConfigError", "ModelLoadError", "DeviceError", "WorkspaceError", "SchemaTooNewError",
             "EvaluationError", "DemoEvalError", "InputRefused", "FileExistsError"}


def run_command(args: argparse.Namespace) -> int:
    """A command's exit code: 0 done, 2 bad input, 1 a failure during the work, 130 Ctrl+C. No
    traceback reaches the user: an unexpected error is one line plus the log file holding it."""
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place every command's surprise ends
        from core.operations.error_log import one_line, write_error_log

        location = getattr(args, "workspace", None) or ""
        message = one_line(exc, location)
        if any(kind.__name__ in BAD_INPUT for kind in type(exc).__mro__):
            print(f"error: {message}", file=sys.stderr)
            return 2
        log = write_error_log(exc, location)
        where = f"; the full trace is in {log}" if log else ""
        print(f"error: {type(exc).__name__}: {message}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
