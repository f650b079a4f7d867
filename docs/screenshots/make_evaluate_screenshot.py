"""Regenerate ``evaluate.png``: the Evaluate tab with real demo runs, reward against KL.

    QT_QPA_PLATFORM=offscreen python docs/screenshots/make_evaluate_screenshot.py [WORKSPACE]
        [--steps 80] [--betas 1.0,0.2] [--prompts 24]

Without WORKSPACE, a demo workspace is made in a temporary folder (``python main.py demo``) and
trained twice on the demo's settings with different β, a checkpoint every quarter of the run
(CPU: minutes each). With a WORKSPACE, its runs that have a final adapter (completed or stopped) are used as they are.
Every checkpoint is evaluated (``core.operations.evaluate``: cached in the run folders, so a
second call is quick), then the real Evaluate view draws them and is grabbed at 1300×820.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
OUT = Path(__file__).resolve().parent


def train_runs(folder: Path, steps: int, betas: list[float]) -> None:
    from core.demo.demo_workspace import create_demo_workspace
    from core.engine.trainer import train
    from core.operations.training import default_training_config
    from storage.workspace import Workspace

    create_demo_workspace(folder)
    with Workspace.open(str(folder)) as ws:
        for beta in betas:
            config = default_training_config(ws).with_overrides(
                [f"beta={beta}", f"max_steps={steps}", f"checkpoint_interval={max(1, steps // 4)}",
                 "keep_checkpoints=0", f"run_name=demo β {beta:g}"]).validate()
            print(f"training β {beta} for {steps} steps…", flush=True)
            train(ws, config)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", nargs="?")
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--betas", default="1.0,0.2")
    parser.add_argument("--prompts", type=int, default=24)
    args = parser.parse_args()
    folder = Path(args.workspace) if args.workspace else Path(tempfile.mkdtemp(prefix="evaluate-shot-")) / "ws"
    if not args.workspace:
        train_runs(folder, args.steps, [float(b) for b in args.betas.split(",")])

    from PySide6.QtWidgets import QApplication

    from core.operations.evaluate import EvaluateOptions, evaluate_runs
    from storage.models import RunStatus
    from storage.runs import list_runs
    from storage.workspace import Workspace

    app = QApplication.instance() or QApplication([])
    from gui.common.theme import apply_theme

    apply_theme("light", app)
    with Workspace.open(str(folder)) as ws:
        run_ids = [r.id for r in list_runs(ws) if r.adapter_path and r.status != RunStatus.RUNNING]
        options = EvaluateOptions(prompts=args.prompts)
        for evaluation in evaluate_runs(ws, run_ids, options,
                                        progress=lambda e: print(f"\r{e.run_name} {e.checkpoint} ({e.index}/{e.count})"
                                                                 f" {e.stage} {e.done}/{e.total}   ", end="")):
            print(f"\n{evaluation.run_name}: {evaluation.computed} measured, {evaluation.reused} cached")

        from gui.common.db_worker import DatabaseWorker
        from gui.evaluate.evaluate_view import EvaluateView

        db = DatabaseWorker()
        view = EvaluateView(ws, db, "ana")
        view.prompts.setValue(args.prompts)     # the options the rows were measured with
        view.resize(1300, 820)
        view.show()
        db.wait_idle(30_000)
        for _ in range(20):
            app.processEvents()
        view.progress_text.setText(f"{len(run_ids)} runs evaluated; results cached in each run folder.")
        app.processEvents()
        view.grab().save(str(OUT / "evaluate.png"))
        print(f"wrote {OUT / 'evaluate.png'}")
        view.close()
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
