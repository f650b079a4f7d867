"""Key press -> next pair with 4 annotators labelling one PostgreSQL team store at once, over
loopback (target: median < 16 ms).

    python benchmarks/bench_team_keys.py [--url postgresql://postgres@127.0.0.1:5432/postgres]
        [--annotators 4] [--presses 150] [--pairs 20000] [--overlap 2] [--think 0.05 0.3]

``--url`` (default ``$DPO_TEST_POSTGRES_URL``, the tests' server, see .ci/postgres) must be a
role that may create databases and roles: the benchmark makes a throw-away database, imports
``--pairs`` pairs, adds the annotators as members (``storage.members.add_member``: each gets
their own database role, so the row-level security policies are in the path) and drops it all
at the end.

What is measured. Each annotator is a process modelled on the app: a "UI" thread holding a
``LabellingSession`` and one database thread (the app's DatabaseWorker: FIFO, one
connection), connected as the annotator's own role. A key press is ``session.judge`` on the UI
thread; the next pair is on screen as soon as the session has one (from its prefetch, claimed
ahead by ``fetch_pairs``), else when the database thread's next fetch answers. That is what a
person waits for after a key — **key -> next pair** — and it is what the app does (the screen
never waits for the verdict's commit). Behind it, the database thread stores the verdict
(``record``: the verdict, the pair's recount, the lease's end, one transaction) and refills
the prefetch (``claim``: FOR UPDATE SKIP LOCKED among the other annotators' claims); those are
timed too (**key -> verdict committed**, and each call's own time), as the path a screen
without prefetch would wait on. Between presses each annotator thinks for a random time in
``--think`` (seconds), as people do; the four run at the same time. Rendering is not included
(benchmarks/bench_annotate_keys.py measures the screen: add its figure for the whole path).
Prints the median and 95th percentile of each, the load average before and after, and checks
that no pair was judged by more than ``--overlap`` annotators and the counts equal a recount.
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import statistics
import subprocess
import sys
import threading
import time
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def annotate(url: str, name: str, presses: int, think: tuple[float, float], seed: int, start_at: float) -> dict:
    """One annotator's process: a UI thread and a database thread, as in the app."""
    from core.operations.labelling import LabellingSession, held_ahead
    from storage.models import Choice
    from storage.workspace import Workspace

    ws = Workspace.open(url)
    jobs: queue.Queue = queue.Queue()
    answers: queue.Queue = queue.Queue()
    times = {"record": [], "claim": []}

    def database_thread() -> None:
        while (job := jobs.get()) is not None:
            kind, fn, arg, on_done = job
            began = time.perf_counter()
            result = fn(arg)
            times[kind].append(time.perf_counter() - began)
            answers.put((on_done, result))

    worker = threading.Thread(target=database_thread, daemon=True)
    worker.start()
    session = LabellingSession.open(ws, name, prefetch=held_ahead(ws))
    committed: dict[int, float] = {}

    def handle(block_until: float | None = None) -> None:
        """The UI thread's event loop: run the answers' callbacks until ``block_until``."""
        while True:
            timeout = None if block_until is None else block_until - time.perf_counter()
            if timeout is not None and timeout <= 0:
                return
            try:
                on_done, result = answers.get(timeout=timeout)
            except queue.Empty:
                return
            on_done(result)
            if block_until is None:
                return

    def fetch() -> None:
        request = session.take_fetch()
        if request is not None:
            jobs.put(("claim", session.fetch_pairs, request, lambda pairs: (session.receive_pairs(request, pairs), fetch())))

    fetch()
    while session.current is None:
        handle()
    time.sleep(max(0.0, start_at - time.time()))   # all annotators start together
    rng = random.Random(seed)
    to_next, pressed_at = [], []
    for press in range(presses):
        handle(time.perf_counter() + rng.uniform(*think))    # reading the pair
        pressed = time.perf_counter()
        write = session.judge(Choice.A if rng.random() < 0.5 else Choice.B)
        write.in_flight = True
        jobs.put(("record", session.store, write,
                  lambda _changes, w=write, p=press: (session.stored(w), committed.__setitem__(p, time.perf_counter()))))
        fetch()
        while session.current is None:
            handle()
        to_next.append(time.perf_counter() - pressed)
        pressed_at.append(pressed)
    while len(committed) < presses:   # the last verdicts' answers
        handle()
    jobs.put(None)
    worker.join()
    released = session.close()
    if released:
        session.release_pairs(released)
    ws.close()
    return {"to_next": to_next, "to_commit": [committed[i] - pressed_at[i] for i in range(presses)],
            "record": times["record"], "claim": times["claim"]}


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except OSError:
        return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("DPO_TEST_POSTGRES_URL"))
    parser.add_argument("--annotators", type=int, default=4)
    parser.add_argument("--presses", type=int, default=150)
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--overlap", type=int, default=2)
    parser.add_argument("--think", type=float, nargs=2, default=(0.05, 0.3))
    args = parser.parse_args()
    if not args.url:
        print("needs a PostgreSQL server: --url, or DPO_TEST_POSTGRES_URL (.ci/postgres start DIR prints it)",
              file=sys.stderr)
        return 2

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from storage.ingest import import_records
    from storage.integrity import check_workspace
    from storage.members import add_member
    from storage.settings import update_settings
    from storage.workspace import Workspace
    from tests.annotate_samples import sample_records

    database = f"dpo_bench_team_keys_{os.getpid()}"
    admin = create_engine(make_url(args.url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    ws_url = make_url(args.url).set(database=database)
    roles = [f"{database}_{i}" for i in range(args.annotators)]
    groups = [f"dpo_{database}_{r}" for r in ("owner", "annotator", "viewer")]
    try:
        with Workspace.open(ws_url.render_as_string(hide_password=False)) as ws:
            import_records(ws, sample_records(args.pairs), "bench")
            with ws.session() as s:   # a settled server: autovacuum would have analysed the import by now
                s.execute(text("ANALYZE"))
            update_settings(ws, overlap=args.overlap)
            urls = {}
            for i, role in enumerate(roles):
                added = add_member(ws, f"annotator {i}", "annotator", db_role=role)
                urls[f"annotator {i}"] = ws_url.set(username=role, password=added.password).render_as_string(
                    hide_password=False)
        load_before = uptime()
        start_at = time.time() + 3.0
        with get_context("spawn").Pool(args.annotators) as pool:
            results = pool.starmap(annotate, [(url, name, args.presses, tuple(args.think), i, start_at)
                                              for i, (name, url) in enumerate(urls.items())])
        load_after = uptime()
        with Workspace.open(ws_url.render_as_string(hide_password=False)) as ws:
            report = check_workspace(ws)
            with ws.session() as s:
                most = s.execute(text("SELECT max(judged_count) FROM pairs")).scalar()
                verdicts = s.execute(text("SELECT count(*) FROM verdicts")).scalar()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            for role in roles + groups:
                conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()

    def line(label: str, seconds: list[float]) -> str:
        ms = [s * 1000 for s in seconds]
        return f"{label:<34} median {statistics.median(ms):6.2f} ms   p95 {percentile(ms, 0.95):6.2f} ms   (n={len(ms)})"

    print(f"{args.annotators} annotators at once on PostgreSQL over loopback, each its own database role "
          f"(row-level security on), {args.pairs} pairs, overlap {args.overlap}, think {args.think[0]}-{args.think[1]} s")
    print(line("key -> next pair (what one waits)", [x for r in results for x in r["to_next"]]))
    print(line("key -> verdict committed", [x for r in results for x in r["to_commit"]]))
    print(line("record (one transaction)", [x for r in results for x in r["record"]]))
    print(line("claim (prefetch refill)", [x for r in results for x in r["claim"]]))
    print(f"{verdicts} verdicts; most annotators on one pair: {most} (overlap {args.overlap}); "
          f"counts equal a recount: {report.clean}")
    print(f"load before: {load_before}\nload after:  {load_after}")
    return 0 if report.clean and most <= args.overlap else 1


if __name__ == "__main__":
    sys.exit(main())
