"""How long importing a large preference file takes (the issue asks: 100,000 pairs in well
under a minute).

    python benchmarks/bench_import.py [--rows 100000] [--format jsonl|csv]

Writes a synthetic TRL-standard file of ``--rows`` labelled pairs into a temporary folder,
then times reading + checking it (core.formats) and storing it (storage.ingest) into a new
workspace, and a second, idempotent import of the same file (every row a duplicate).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.formats import read_preference_file  # noqa: E402
from storage.ingest import import_records  # noqa: E402
from storage.workspace import Workspace  # noqa: E402


def make_rows(n: int) -> list[dict]:
    return [{"prompt": f"Question {i}: how should I go about task number {i % 977}?",
             "chosen": f"Here is a careful, helpful answer to question {i}, in a few sentences of text.",
             "rejected": f"No idea about {i}."} for i in range(n)]


def write(path: Path, rows: list[dict], container: str) -> None:
    if container == "csv":
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["prompt", "chosen", "rejected"])
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"prefs.{args.format}"
        write(path, make_rows(args.rows), args.format)
        size_mb = path.stat().st_size / 1e6
        with Workspace.open(Path(tmp) / "ws") as ws:
            t0 = time.perf_counter()
            parsed = read_preference_file(path)
            t1 = time.perf_counter()
            summary = import_records(ws, parsed.records, path.name)
            t2 = time.perf_counter()
            again = import_records(ws, read_preference_file(path).records, path.name)
            t3 = time.perf_counter()
        assert summary.pairs_added == args.rows and again.duplicates == args.rows
        print(f"{args.rows} rows, {size_mb:.1f} MB {args.format.upper()}")
        print(f"  read + check: {t1 - t0:6.2f} s")
        print(f"  store:        {t2 - t1:6.2f} s   ({summary.prompts_added} prompts, {summary.responses_added} "
              f"responses, {summary.pairs_added} pairs, {summary.verdicts_added} verdicts)")
        print(f"  total:        {t2 - t0:6.2f} s   ({args.rows / (t2 - t0):,.0f} rows/s)")
        print(f"  re-import:    {t3 - t2:6.2f} s   (all {again.duplicates} rows duplicates, nothing written)")


if __name__ == "__main__":
    main()
