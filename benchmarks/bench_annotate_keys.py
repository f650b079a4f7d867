"""Key press -> next pair on screen, on a workspace with many pairs (target: median < 50 ms).

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_annotate_keys.py [--pairs 100000] [--presses 200]

Builds a throw-away workspace with ``--pairs`` pairs (one in ``--long-every`` a chat prompt
with a long Markdown answer holding code), opens the real labelling screen offscreen and
presses "1" ``--presses`` times. Each time is from the key event to the new pair's text
being set (the pair comes from the session's prefetched pairs and its Markdown is rendered;
the verdict is committed in the background on the database worker, timed separately from the
key to its commit's answer on the UI thread). Between presses the database worker is let go
idle, as it is in a person's seconds of reading. Prints the median and 95th percentile.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--long-every", type=int, default=20)
    args = parser.parse_args()

    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from gui.common import theme
    from gui.annotate.annotate_view import AnnotateView
    from gui.common.db_worker import DatabaseWorker
    from storage.ingest import import_records
    from storage.workspace import Workspace
    from tests.annotate_samples import sample_records

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp)
        ws = Workspace.open(Path(tmp) / "ws")
        start = time.perf_counter()
        import_records(ws, sample_records(args.pairs, long_every=args.long_every), "bench.jsonl")
        print(f"built {args.pairs:,} pairs in {time.perf_counter() - start:.1f} s")
        theme.apply_theme("light", app)
        db = DatabaseWorker()
        view = AnnotateView(ws, db, "bench")
        view.resize(1400, 860)
        view.show()
        view.activateWindow()
        db.wait_idle()
        app.processEvents()

        all_times, long_times, commit_times = [], [], []
        pressed_at: dict[int, float] = {}
        view.sender.stored.connect(
            lambda write, _c: commit_times.append(time.perf_counter() - pressed_at.pop(id(write), time.perf_counter())))
        for _ in range(args.presses):
            start = time.perf_counter()
            QTest.keyClick(view, Qt.Key.Key_1)
            elapsed = time.perf_counter() - start
            all_times.append(elapsed)
            if view.session.undo_stack:
                pressed_at[id(view.session.undo_stack[-1])] = start
            if view.current is not None and view.current.prompt_messages:
                long_times.append(elapsed)
            db.wait_idle()  # the commit and the prefetch run between presses, as between a person's
            app.processEvents()
        for label, times in (("all presses", all_times), ("long Markdown answers", long_times),
                             ("key -> verdict committed", commit_times)):
            if times:
                print(f"{label:>22}: n={len(times):4d}  median {statistics.median(times) * 1000:6.1f} ms"
                      f"  p95 {percentile(times, 0.95) * 1000:6.1f} ms")
        view.stop_timers()
        view.close()
        view.deleteLater()
        db.close()
        app.processEvents()
        ws.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
