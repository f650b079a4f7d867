"""How fast the annotation queue answers (the GUI needs < 50 ms per key press end to end).

    python benchmarks/bench_next_pair.py [--sizes 1000 10000 100000] [--calls 200]

For each size: a workspace with that many pairs, half of them labelled by an imported file
(its pseudo-annotator), and an annotator who has already judged a tenth of the rest. Times
``next_pair`` (each followed by an untimed ``record``, as in a labelling session) with
overlap 1 and overlap 3, ``claim`` (serve and reserve one pair, as a labelling screen does),
plus ``record``, ``undo_last`` and ``remaining_count``, and prints
median and 95th-percentile milliseconds. Then the scored queue orders (storage.pair_scores):
every pair scored by one run, ``next_pair`` and ``claim`` under "uncertain" (overlap 1) and
"disagree" (overlap 3, where the colleague's verdicts are the ones contradicted); the first look
of a queue reads the order's ranking (kept 30 s), the later ones test ranked pairs by id.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select  # noqa: E402

from storage.annotation_queue import AnnotationQueue  # noqa: E402
from storage.ingest import ImportRecord, import_records  # noqa: E402
from storage.models import Choice, Pair  # noqa: E402
from storage.pair_scores import store_pair_scores  # noqa: E402
from storage.runs import create_run  # noqa: E402
from storage.verdicts import add_verdict  # noqa: E402
from storage.workspace import Workspace  # noqa: E402


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return (time.perf_counter() - start) * 1000, result


def summary(label: str, ms: list[float]) -> str:
    p95 = statistics.quantiles(ms, n=20)[-1] if len(ms) >= 20 else max(ms)
    return f"{label:<22} median {statistics.median(ms):7.2f} ms   p95 {p95:7.2f} ms"


def fill(ws: Workspace, n: int) -> None:
    half = n // 2
    import_records(ws, [ImportRecord(f"labelled prompt {i}", [f"good {i}", f"bad {i}"], chosen=0)
                        for i in range(half)], "labelled.jsonl")
    import_records(ws, [ImportRecord(f"open prompt {i}", [f"one {i}", f"two {i}"]) for i in range(n - half)],
                   "candidates.jsonl")
    # A colleague who already judged a tenth of the open pairs (so overlap 3 has partly judged pairs).
    earlier = AnnotationQueue(ws, "earlier", overlap=3)
    with ws.writing() as session:
        for pair_id in session.scalars(select(Pair.id).where(Pair.source == "candidates.jsonl")
                                       .order_by(Pair.id).limit((n - half) // 10)):
            add_verdict(session, pair_id, earlier.annotator_id, Choice.A)


def bench(n: int, calls: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, Workspace.open(Path(tmp) / "ws") as ws:
        t0 = time.perf_counter()
        fill(ws, n)
        print(f"\n{n:,} pairs (workspace filled in {time.perf_counter() - t0:.1f} s)")
        for overlap in (1, 3):
            queue = AnnotationQueue(ws, f"bench-{overlap}", overlap=overlap)
            next_ms, record_ms = [], []
            for i in range(calls):
                ms, view = timed(queue.next_pair)
                next_ms.append(ms)
                if view is None:
                    break
                ms, _ = timed(lambda: queue.record(view.pair_id, Choice.A if i % 2 else Choice.B))
                record_ms.append(ms)
            print(summary(f"next_pair overlap {overlap}", next_ms))
            # A labelling screen's way: claim (serve and reserve) the next pair, then answer it.
            claimer = AnnotationQueue(ws, f"claimer-{overlap}", overlap=overlap)
            claim_ms = []
            for i in range(calls):
                ms, views = timed(lambda: claimer.claim(1))
                claim_ms.append(ms)
                if not views:
                    break
                claimer.record(views[0].pair_id, Choice.A)
            print(summary(f"claim overlap {overlap}", claim_ms))
            if overlap == 1:
                print(summary("record", record_ms))
                print(summary("undo_last", [timed(queue.undo_last)[0] for _ in range(min(calls, 50))]))
                print(summary("remaining_count", [timed(queue.remaining_count)[0] for _ in range(20)]))
        bench_orders(ws, calls)


def bench_orders(ws: Workspace, calls: int) -> None:
    """``next_pair`` and ``claim`` under the scored orders, every pair scored by one run."""
    import random

    rng = random.Random(0)
    create_run(ws, "bench-run", name="bench", config_json="{}", base_model="m", run_dir="/tmp/none", total_steps=1)
    with ws.session() as session:
        pair_ids = list(session.scalars(select(Pair.id)))
    store_pair_scores(ws, "bench-run", {pair_id: rng.gauss(0.0, 1.0) for pair_id in pair_ids})
    for order, overlap in (("uncertain", 1), ("disagree", 3)):
        for method in ("next_pair", "claim"):
            queue = AnnotationQueue(ws, f"{order}-{method}", overlap=overlap, order=(order, "bench-run"))
            ms = []
            for _ in range(calls):
                elapsed, served = timed(queue.next_pair if method == "next_pair" else lambda: queue.claim(1))
                ms.append(elapsed)
                view = served if method == "next_pair" else (served[0] if served else None)
                if view is None:
                    break
                queue.record(view.pair_id, Choice.B)
            print(summary(f"{method} {order}", ms[1:]) + f"   first look {ms[0]:7.2f} ms (reads the ranking)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    for n in args.sizes:
        bench(n, args.calls)


if __name__ == "__main__":
    main()
