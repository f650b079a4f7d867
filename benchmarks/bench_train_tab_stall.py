"""The longest UI stall when the Train tab is first opened, and when Start is pressed, on a
workspace with 100,000 labelled pairs (the issue asks: both under 100 ms on the 2-core machine).

    python benchmarks/bench_train_tab_stall.py [--pairs 100000] [--after-start 20] [--workspace DIR]

Builds (or reuses, with ``--workspace``) a workspace of ``--pairs`` labelled pairs, opens the
real ``MainWindow`` on the Annotate tab (offscreen unless a display is set) and lets it settle.
Then a 10 ms QTimer on the UI thread records the gaps between its ticks while:

1. the Train tab is clicked for the first time, until the tab is built (a frame, then a form
   card or a plot per turn) and its background work is done (the form's settings read, its
   helper process's device list, free memory and data preview, and the training process
   prepared for the first run) or ``--open-for`` s;
2. Start is clicked with the bundled demo model: the run goes to the prepared process, whose
   launch check confirms the training set it built, which then reads (or tokenises) the pairs,
   loads the model and begins the reference pass — measured for ``--after-start`` seconds or
   until the first optimizer step, then the run is stopped.

Prints one JSON object: the longest gap and the 99th percentile of each window, the three worst
gaps (seconds after the click, ms), how far the run got, and the machine's load average; and
the same figures for ``--baseline`` seconds of the idle window measured first, which is what the
machine's load alone costs (other processes on the 2 cores delay the UI thread too).
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


def build_workspace(folder: Path, pairs: int) -> None:
    from storage.ingest import ImportRecord, import_records
    from storage.workspace import Workspace

    with Workspace.open(folder) as ws:
        import_records(ws, [ImportRecord(f"Question {i}: how should I go about task number {i % 977}?",
                                         [f"Here is a careful, helpful answer to question {i}.",
                                          f"no idea about {i}"], chosen=0) for i in range(pairs)], "bench.jsonl")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--workspace", type=Path, default=None, help="reuse (or create) this workspace folder")
    parser.add_argument("--open-for", type=float, default=60.0, help="longest wait for the tab's background work")
    parser.add_argument("--after-start", type=float, default=20.0, help="seconds measured after Start")
    parser.add_argument("--baseline", type=float, default=10.0,
                        help="seconds of the idle window measured first (what the machine's load alone costs)")
    args = parser.parse_args()

    folder = args.workspace or Path(tempfile.mkdtemp(prefix="dpo-train-tab-")) / "ws"
    if not (folder / "studio.db").exists():
        started = time.perf_counter()
        build_workspace(folder, args.pairs)
        print(f"built {args.pairs} labelled pairs in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv)
    from gui.common.pyside_fixes import collect_garbage_on_ui_thread
    from gui.common.theme import apply_theme
    from gui.common.ui_stall import StallMeter
    from gui.common.workers import running_workers
    from gui.main_window import MainWindow
    from gui.train.warm_up import WARM_UP_DELAY_MS
    from storage.workspace import Workspace

    collect_garbage_on_ui_thread()   # as gui.app.run_app does before the window
    apply_theme("light", app)
    ws = Workspace.open(folder, create=False)
    window = MainWindow(ws, "bench")
    window.resize(1440, 900)
    window.show()

    def pump(seconds: float, until=None) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (until and until()):
            app.processEvents()
            time.sleep(0.002)

    def background_done() -> bool:
        return window.db.busy is False and not running_workers_but_db()

    def running_workers_but_db() -> list:
        return [t for t in running_workers() if t.objectName() != "database"]

    pump(WARM_UP_DELAY_MS / 1000 + 0.5)
    pump(60, until=background_done)          # the Annotate tab's first pairs, counts; the Train tab's warm-up
    idle = StallMeter(10)
    idle.start()
    idle_started = time.perf_counter()
    pump(args.baseline)
    idle.stop()

    opening = StallMeter(10)
    opening.start()
    open_clicked = time.perf_counter()
    window.tabs.setCurrentWidget(window.train_page)
    def tab_ready() -> bool:     # every card and plot built, the checks they started done, the run's process ready
        view = window.train_view
        prepared = view.preparer.prepared if view is not None and view.preparer is not None else None
        return (view is not None and view.is_built and background_done()
                and (view.preparer is None or (prepared is not None and prepared.ready)))

    pump(args.open_for, until=tab_ready)
    pump(0.5)
    opening.stop()
    opened_in = time.perf_counter() - open_clicked
    view = window.train_view

    starting = StallMeter(10)
    starting.start()
    start_clicked = time.perf_counter()
    view.start_button.click()
    pump(args.after_start, until=lambda: len(view.series) > 0 or (view.last_status is not None))
    first_step_s = round(time.perf_counter() - start_clicked, 2) if len(view.series) else None
    starting.stop()
    phase = view.phase.value if view.phase else None
    got_to = {"phase": phase, "steps": len(view.series), "status": view.last_status and view.last_status.value,
              "error": view.last_error, "message": view.message_label.text(), "first_step_s": first_step_s}
    view.stop_and_wait(300_000)

    def figures(meter, at) -> dict:
        return {"longest_stall_ms": round(meter.longest_ms, 1), "p99_stall_ms": round(meter.percentile_ms(0.99), 1),
                "ticks": len(meter.gaps_ms),
                "worst": [(round(t - at, 2), round(ms)) for t, ms in meter.worst(3)]}

    result = {
        "pairs": args.pairs,
        "idle_window": {**figures(idle, idle_started), "seconds": args.baseline},
        "train_tab_first_open": {**figures(opening, open_clicked), "seconds": round(opened_in, 1)},
        "start_pressed": {**figures(starting, start_clicked), "seconds": args.after_start, "run": got_to},
        "load_average": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
        "platform": platform.platform(), "qpa": os.environ.get("QT_QPA_PLATFORM"),
    }
    print(json.dumps(result, indent=1))
    window.close()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # Skip interpreter finalisation: tearing down Qt and pyqtgraph objects in arbitrary order
    # at exit can crash PySide6 after the results are printed.
    os._exit(code)
