"""From Start to the first optimizer step on a workspace of 100,000 labelled pairs, for a first
run (nothing cached) and a second run (tokens and reference log-probs cached), as the app runs
them: ``TrainingSession(ws, in_child=True, prepared=warm).start(values=...)`` and ``run()`` on a
thread, the training in a child process. The issue's bar: the second run's first step within 5 s
of Start.

    python benchmarks/bench_second_run.py [--pairs 100000] [--workspace DIR] [--reference placeholder|compute]
                                          [--gap 12] [--change-verdicts] [--warm-only]

Builds a workspace of ``--pairs`` labelled pairs in a temporary folder (or uses ``--workspace``,
which it changes: runs, caches; a copy of one without the ``tokenized_examples`` table gets it)
with the bundled demo model as its base model, then:

1. the first run, from Start until its reference pass has done a few batches (every pair's
   tokens are cached by then); stopped there, its rate gives the whole pass's estimate;
2. the reference log-probs of every pair: ``--reference compute`` lets a run finish the real pass
   (hours on a busy 2-core machine at 100,000 pairs); ``placeholder`` (the default) stores made-up
   values under the run's real cache keys, which costs the second run exactly what real values
   would (its first step's loss is then meaningless, and not reported);
3. the second run as the app starts it: a training process prepared when "the Train tab opens"
   (``core.operations.training_child.prepare_training_process``), Start ``--gap`` seconds later,
   to its first optimizer step (``--change-verdicts``: a colleague's verdict added just before
   Start, so the prepared training set is stale and built again); then the same run with no
   prepared process (the cold path).

``--warm-only`` skips 1 and 2 (a workspace this benchmark has already filled). Prints each run's
timeline: seconds from Start to every phase (the child's start, imports and launch checks come
before its first event), and the machine's load average and CPU count.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from benchmarks.bench_train_tab_stall import build_workspace  # noqa: E402

#: The first run is stopped after this many reference batches (enough for a rate).
_REFERENCE_BATCHES = 5


class Timeline:
    """Every event of one session, with the seconds since Start."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.marks: list[tuple[float, str]] = []
        self.reference_batches: list[tuple[float, int, int]] = []   # (seconds, done, total)
        self.first_step: float | None = None
        self.reached = threading.Event()

    def label(self, event) -> str | None:
        from core.engine.training_control import PhaseChanged, ReferencePassDone, RunStarted, StepMetrics

        name = type(event).__name__
        if isinstance(event, PhaseChanged):
            return None if event.done is not None and event.done > 1 else f"phase: {event.phase.value}"
        if isinstance(event, StepMetrics):
            return f"{event.split.value} metrics, step {event.step}"
        if isinstance(event, ReferencePassDone):
            return f"reference values: {event.cached:,} cached, {event.computed:,} computed"
        if isinstance(event, RunStarted):
            return f"run started ({event.info.train_pairs:,} train / {event.info.eval_pairs:,} eval pairs)"
        return name

    def on_event(self, event) -> None:
        from core.engine.training_control import MetricSplit, Phase, PhaseChanged, StepMetrics

        at = time.perf_counter() - self.started
        label = self.label(event)
        if label is not None and (not self.marks or self.marks[-1][1] != label):
            self.marks.append((at, label))
        if isinstance(event, PhaseChanged) and event.phase == Phase.REFERENCE_PASS and event.done:
            self.reference_batches.append((at, event.done, event.total))
        if isinstance(event, StepMetrics) and event.split == MetricSplit.TRAIN and self.first_step is None:
            self.first_step = at
            self.reached.set()

    def print(self, title: str) -> None:
        print(f"\n{title}")
        previous = 0.0
        for at, label in self.marks:
            print(f"  {at:8.2f} s  (+{at - previous:6.2f})  {label}")
            previous = at


def run_once(ws, values: dict, until, timeout: float, prepared=None, kill: bool = False) -> tuple[Timeline, str | None]:
    """One run as the app starts it (in ``prepared``, a process started ahead, when given); stopped
    when ``until(timeline)`` holds (or after ``timeout``), with ``kill`` by ending its process."""
    from core.operations.training import TrainingSession

    session = TrainingSession(ws, in_child=True, prepared=prepared)
    timeline = Timeline()
    session.subscribe(timeline.on_event)
    timeline.started = time.perf_counter()
    session.start(values=values)
    worker = threading.Thread(target=session.run, name="training")
    worker.start()
    deadline = time.perf_counter() + timeout
    while worker.is_alive() and not until(timeline) and time.perf_counter() < deadline:
        time.sleep(0.05)
    if kill and timeline.first_step is not None:
        # A stop would first evaluate the ~10,000 held-out pairs (a minute here): not what is measured.
        from storage.runs import get_run

        owner = get_run(ws, session.run_id).owner
        if owner is not None:
            os.kill(owner.pid, signal.SIGKILL)
    session.stop()
    worker.join()
    return timeline, session.run_id


def fill_reference(ws, run_dir: Path) -> int:
    """Made-up reference log-probs for every example, under the keys the run recorded."""
    from storage.reference_logps import load_reference_logps, store_reference_logps
    from storage.token_cache import load_tokenized
    from storage.training_set import build_training_set

    recorded = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    model_key, token_key = recorded["model_key"], recorded["tokenization_key"]
    hashes = {e.example_hash for e in build_training_set(ws).examples}
    tokens = load_tokenized(ws, token_key, hashes)
    known = load_reference_logps(ws, model_key, token_key, list(hashes))
    rows = [{"example_hash": h, "chosen_logp": -1.5 * (len(t.chosen_ids) - t.chosen_start),
             "rejected_logp": -1.6 * (len(t.rejected_ids) - t.rejected_start),
             "chosen_tokens": len(t.chosen_ids) - t.chosen_start,
             "rejected_tokens": len(t.rejected_ids) - t.rejected_start}
            for h, t in tokens.items() if t.dropped is None and h not in known]
    store_reference_logps(ws, model_key, token_key, rows)
    return len(rows)


def second_opinion(ws) -> None:
    """A verdict added while the tab is open (a colleague agreeing on the first pair): the
    prepared training set is no longer the current one."""
    from storage.verdicts import add_verdict, current_verdicts, get_or_create_annotator

    with ws.writing() as session:
        first = current_verdicts(session, [min(v.pair_id for v in current_verdicts(session, list(range(1, 50))))])[0]
        add_verdict(session, first.pair_id, get_or_create_annotator(session, "bench-second-opinion"), first.choice)


def prepared_run(ws, values: dict, gap: float, timeout: float, change: bool = False) -> tuple[Timeline, str]:
    """The Train tab opens (a training process prepared), Start ``gap`` seconds later, to the
    first step; also says how far the preparation had got at Start. ``change``: a verdict is
    added just before Start."""
    from core.operations.training_child import prepare_training_process

    opened = time.perf_counter()
    warm = prepare_training_process(ws)
    ready = warm.wait_ready(gap)
    time.sleep(max(0.0, gap - (time.perf_counter() - opened)))
    if change:
        second_opinion(ws)
    summary = warm.summary
    if ready and summary is not None:
        state = (f"prepared {summary.seconds:.1f} s after the tab opened ({summary.pairs:,} pairs, "
                 f"{summary.tokens:,} cached tokens, {summary.reference:,} reference values"
                 + (f"; stopped short: {summary.problem}" if summary.problem else "") + ")")
    else:
        state = "still preparing at Start (the run finishes what it had begun, and does the rest)"
    try:
        timeline, _ = run_once(ws, values, lambda t: t.first_step is not None, timeout, prepared=warm, kill=True)
    finally:
        warm.close()
    return timeline, state


def ensure_token_table(ws) -> None:
    """An older copy of the workspace may predate the token cache's table."""
    from storage.models import Base

    Base.metadata.tables["tokenized_examples"].create(ws.engine, checkfirst=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--workspace", type=Path, default=None, help="use (or create) this workspace folder")
    parser.add_argument("--reference", choices=("placeholder", "compute"), default="placeholder")
    parser.add_argument("--timeout", type=float, default=1800.0, help="longest wait for one run")
    parser.add_argument("--warm-only", action="store_true",
                        help="only the second run (a workspace this benchmark has already filled)")
    parser.add_argument("--gap", type=float, default=12.0,
                        help="seconds from the Train tab opening (the process prepared) to Start")
    parser.add_argument("--change-verdicts", action="store_true",
                        help="add a verdict just before Start (the prepared training set is then stale)")
    args = parser.parse_args()

    folder = args.workspace or Path(tempfile.mkdtemp(prefix="dpo-second-run-")) / "ws"
    if not (folder / "studio.db").exists():
        build_workspace(folder, args.pairs)   # the Train-tab benchmark's workspace: same pairs

    from core.engine.bundled_models import DEMO_MODEL
    from core.operations.training import default_training_config
    from storage.runs import get_run
    from storage.workspace import Workspace

    load_before = os.getloadavg()
    with Workspace.open(folder, create=False) as ws:
        ensure_token_table(ws)
        config = default_training_config(ws)
        config.base_model = config.base_model or DEMO_MODEL
        values = config.to_dict()
        first = None
        if args.warm_only:
            pass
        elif args.reference == "compute":
            first, run_id = run_once(ws, values, lambda t: t.first_step is not None, args.timeout)
        else:
            first, run_id = run_once(ws, values, lambda t: len(t.reference_batches) >= _REFERENCE_BATCHES,
                                     args.timeout)
            filled = fill_reference(ws, Path(get_run(ws, run_id).run_dir))
            print(f"stored placeholder reference log-probs for {filled:,} examples", file=sys.stderr)
        load_second = os.getloadavg()
        second, state = prepared_run(ws, values, args.gap, args.timeout, args.change_verdicts)
        load_cold = os.getloadavg()
        cold, _ = run_once(ws, values, lambda t: t.first_step is not None, args.timeout, kill=True)
    load_after = os.getloadavg()

    print(f"workspace: {folder} ({args.pairs:,} pairs), model {config.base_model}, "
          f"batch {config.batch_size}, max_length {config.max_length}")
    if first is not None:
        first.print("first run (nothing cached)")
    if first is not None and len(first.reference_batches) >= 2:
        (t0, d0, total), (t1, d1, _) = first.reference_batches[0], first.reference_batches[-1]
        rate = (d1 - d0) / max(t1 - t0, 1e-9)
        print(f"  its reference pass: {rate:.2f} batches/s over {total:,} batches "
              f"≈ {total / max(rate, 1e-9) / 60:.0f} min for the whole pass (stopped after {d1})")
    changed = "; a verdict added just before Start" if args.change_verdicts else ""
    second.print(f"second run, prepared process (Start {args.gap:g} s after the tab opened; {state}{changed})")
    cold.print("second run, no prepared process (the cold path)")

    def figure(timeline: Timeline) -> str:
        return "n/a" if timeline.first_step is None else f"{timeline.first_step:.2f} s"

    print(f"\nsecond run: Start -> first step {figure(second)} with a process prepared {args.gap:g} s "
          f"before Start (load {load_second[0]:.1f}), {figure(cold)} without (load {load_cold[0]:.1f}); bar: 5 s")
    print(f"machine: {os.cpu_count()} CPUs, load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
