"""Key press -> next pair on screen, on a workspace with many pairs (target: median < 50 ms).

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_annotate_keys.py [--pairs 100000] [--presses 200]

Builds a throw-away workspace with ``--pairs`` pairs (one in ``--long-every`` a chat prompt
with a long Markdown answer holding code), opens the real labelling screen offscreen and
presses "1" ``--presses`` times. Each time is from the key event to the new pair's text
being set (the commit, the queue lookup and the Markdown render included). Prints the
median and 95th percentile, over all presses and over those that brought a long answer.
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
        view = AnnotateView(ws, "bench")
        view.resize(1400, 860)
        view.show()
        view.activateWindow()
        app.processEvents()

        all_times, long_times = [], []
        for _ in range(args.presses):
            start = time.perf_counter()
            QTest.keyClick(view, Qt.Key.Key_1)
            elapsed = time.perf_counter() - start
            all_times.append(elapsed)
            if view.current is not None and view.current.prompt_messages:
                long_times.append(elapsed)
            app.processEvents()  # deferred work runs between presses, as between a person's
        for label, times in (("all presses", all_times), ("long Markdown answers", long_times)):
            if times:
                print(f"{label:>22}: n={len(times):4d}  median {statistics.median(times) * 1000:6.1f} ms"
                      f"  p95 {percentile(times, 0.95) * 1000:6.1f} ms")
        view.close()
        view.deleteLater()
        app.processEvents()
        ws.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
