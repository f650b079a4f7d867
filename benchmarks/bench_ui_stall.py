"""How long the UI thread stalls while the demo model trains in the Train tab.

    python benchmarks/bench_ui_stall.py                         # demo workspace, 120 steps
    python benchmarks/bench_ui_stall.py --steps 300 --screenshots docs/screenshots

Creates the demo workspace in a temporary folder (the bundled demo model, its labelled
pairs and training settings), opens the real ``TrainView`` (offscreen unless a display is
set), waits until the tab's background work is done (its form's checks, as a user
reading the form would), clicks Start and, while the run trains, a 10 ms QTimer on the UI
thread records the gap between its ticks and another timer pans the loss plot every 100 ms.
Prints the longest gap, the 99th percentile and the training speed. With ``--screenshots``
it also saves the view mid-run (``train-mid-run.png``) and at the end (``train-done.png``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120, help="optimizer steps of the demo run")
    parser.add_argument("--screenshots", type=Path, default=None, help="folder for train-*.png")
    parser.add_argument("--mid", type=float, default=0.55, help="share of the run at which to take the mid-run shot")
    parser.add_argument("--size", default="1440x900", help="window size for the screenshots")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change a setting of the demo run (e.g. sft_weight=0)")
    parser.add_argument("--baseline", type=float, default=10.0,
                        help="seconds to measure the idle window first (what the machine's load alone costs)")
    parser.add_argument("--prefix", default="train", help="screenshot file names: PREFIX-mid-run.png, PREFIX-done.png")
    args = parser.parse_args()

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv)
    from core.demo.demo_workspace import create_demo_workspace
    from gui.common.theme import apply_theme
    from gui.train.train_view import TrainView
    from gui.common.ui_stall import StallMeter
    from gui.common.db_worker import DatabaseWorker
    from gui.common.workers import running_workers
    from storage.workspace import Workspace

    apply_theme("light", app)
    folder = Path(tempfile.mkdtemp(prefix="dpo-ui-stall-")) / "demo"
    create_demo_workspace(folder)
    ws = Workspace.open(folder)
    db = DatabaseWorker()
    view = TrainView(ws, db)
    width, height = (int(v) for v in args.size.split("x"))
    view.resize(width, height)
    view.show()
    view.form.set_value("max_steps", args.steps)
    for assignment in args.set:
        key, value = assignment.split("=", 1)
        view.form.set_value(key.strip(), value.strip())

    def pump(seconds: float, until=None) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (until and until()):
            app.processEvents()
            time.sleep(0.002)

    pump(0.5)
    # The form's checks in its helper process (the database thread itself stays, idle).
    pump(120, until=lambda: not db.busy and all(t.objectName() == "database" for t in running_workers()))

    idle = StallMeter(10)
    idle.start()
    pump(args.baseline)
    idle.stop()

    meter = StallMeter(10)
    panner = QTimer()
    panner.setInterval(100)
    pan = {"dx": 1.0}

    def pan_loss_plot() -> None:   # back and forth, as a user dragging the plot would
        pan["dx"] = -pan["dx"]
        view.plots.panels["loss"].plot.vb.translateBy(x=pan["dx"])

    panner.timeout.connect(pan_loss_plot)
    started = time.perf_counter()
    if not view.start():
        print("not started:", view.form.problems, file=sys.stderr)
        return 1
    meter.start()
    panner.start()
    shot_taken = False
    first_step_at = None
    while view.is_running():
        app.processEvents()
        time.sleep(0.002)
        if first_step_at is None and len(view.series):
            first_step_at = time.perf_counter()
        if (args.screenshots and not shot_taken and view.run_info
                and len(view.series) >= args.mid * view.run_info.total_steps):
            view.plots.panels["loss"].plot.enableAutoRange()   # panning switched auto-range off
            pump(0.6)   # let the staggered redraw reach every panel
            meter.pause()   # grabbing the whole window blocks the UI thread: not the app's doing
            args.screenshots.mkdir(parents=True, exist_ok=True)
            view.grab().save(str(args.screenshots / f"{args.prefix}-mid-run.png"))
            meter.resume()
            shot_taken = True
    panner.stop()
    meter.stop()
    ended = time.perf_counter()
    view.plots.panels["loss"].plot.enableAutoRange()
    pump(1.0)
    if args.screenshots:
        view.grab().save(str(args.screenshots / f"{args.prefix}-done.png"))

    import torch

    steps = len(view.series)
    result = {
        "status": view.last_status, "error": view.last_error, "steps": steps,
        "longest_stall_ms": round(meter.longest_ms, 1), "p99_stall_ms": round(meter.percentile_ms(0.99), 1),
        "median_tick_ms": round(meter.percentile_ms(0.5), 1), "ticks": len(meter.gaps_ms),
        "worst": [(round(at - started, 2), round(ms)) for at, ms in meter.worst(3)],
        "idle_longest_stall_ms": round(idle.longest_ms, 1), "idle_p99_stall_ms": round(idle.percentile_ms(0.99), 1),
        "load_average": os.getloadavg(),
        "seconds_total": round(ended - started, 1),
        "steps_per_second": round(steps / (ended - first_step_at), 2) if first_step_at else None,
        "device": view.run_info.device if view.run_info else None,
        "torch_threads_default": torch.get_num_threads(), "cpus": os.cpu_count(),
        "platform": platform.platform(), "qpa": os.environ.get("QT_QPA_PLATFORM"),
    }
    print(json.dumps(result, indent=1))
    view.close()
    view.stop_timers()
    db.close()
    ws.close()
    return 0 if view.last_status == "completed" else 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # Skip interpreter finalisation: tearing down Qt and pyqtgraph objects in arbitrary order
    # at exit can crash PySide6 after the results are printed.
    os._exit(code)
