"""The data commands: ``import``, ``export`` and ``stats`` (no torch, so they start fast).

Exit codes: 0 done, 2 bad input (nothing written; the reason on stderr as
"FILE:LINE: field 'x': message"), 1 any other failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable, TextIO

EXPORT_HELP = """\
Writes JSONL that TRL's DPOTrainer loads as it is (datasets.load_dataset("json", data_files=OUT)).
--format trl: {"prompt", "chosen", "rejected"} strings (chat prompts flattened to text);
--format conversational: the same fields as lists of {"role", "content"} messages.
--split all (default) writes every example with a "split" column ("train"/"eval");
--split train or --split eval writes only that part, without the column.
--policy decides how several verdicts on one pair merge: majority (default; ties of the vote
are dropped), unanimous, or all (every a/b verdict its own example). Ties, both-bad and skips
never become examples; an owner's resolution overrides the policy."""

IMPORT_HELP = """\
Reads JSONL, JSON (an array of rows) or CSV. Row shapes (--format):
  standard        {"prompt": str, "chosen": str, "rejected": str}        (alias: trl)
  conversational  prompt/chosen/rejected as lists of {"role","content"} messages
  implicit        only chosen/rejected; the prompt is their shared start
                  (Anthropic-HH "\\n\\nHuman:/\\n\\nAssistant:" transcripts become chat turns)
  candidates      {"prompt": ..., "responses": [r1, r2, ...]} -> every pair, to annotate
An optional "split" field (train/eval) fixes a new pair's split, as in our own exports;
without it the split is drawn from the pair's content (setting eval_fraction, default 0.1).
Labelled rows are stored as verdicts of a pseudo-annotator named after the file. Rows
already in the workspace are skipped, so importing a file twice changes nothing. Any bad
row refuses the whole file (exit code 2) with the file, line and field named."""

# Show a progress bar for files at least this big when stderr is a terminal.
PROGRESS_MIN_BYTES = 2_000_000


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("import", help="import preference pairs or candidates into a workspace",
                              description=IMPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workspace", help="workspace folder (created if new or empty) or database URL")
    p.add_argument("file", help="a .jsonl, .ndjson, .json or .csv file")
    p.add_argument("--format", default="auto",
                   choices=("auto", "standard", "trl", "conversational", "implicit", "candidates"),
                   help="row shape (default: auto, picked from the first row)")
    p.add_argument("--source", help="name the pairs' source and pseudo-annotator (default: the file name)")
    p.set_defaults(func=run_import)

    p = subparsers.add_parser("export", help="export the training set as TRL-ready JSONL",
                              description=EXPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workspace", help="an existing workspace folder or database URL")
    p.add_argument("out", help="output .jsonl file")
    p.add_argument("--format", default="trl", choices=("trl", "conversational"), help="default: trl")
    p.add_argument("--policy", default="majority", choices=("majority", "unanimous", "all"),
                   help="how verdicts on one pair merge (default: majority)")
    p.add_argument("--split", default="all", choices=("all", "train", "eval"),
                   help="which examples to write (default: all, with a 'split' column)")
    p.set_defaults(func=run_export)

    p = subparsers.add_parser("stats", help="counts and agreement of a workspace",
                              description="Counts of prompts, responses, pairs, verdicts by choice and by "
                                          "annotator, and inter-annotator agreement.")
    p.add_argument("workspace", help="an existing workspace folder or database URL")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run_stats)


class ProgressBar:
    """A one-line text progress bar on a terminal stream (redrawn at most 10 times a second)."""

    def __init__(self, label: str, stream: TextIO = sys.stderr, width: int = 30):
        self.label, self.stream, self.width = label, stream, width
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        fraction = done / total if total else 1.0
        filled = int(self.width * fraction)
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {fraction:6.1%}")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _progress(label: str, path: Path) -> Callable[[int, int], None] | None:
    try:
        large = path.stat().st_size >= PROGRESS_MIN_BYTES
    except OSError:
        return None
    return ProgressBar(label) if large and sys.stderr.isatty() else None


def _error(message: object) -> None:
    print(f"error: {message}", file=sys.stderr)


def _open_workspace(location: str, create: bool):
    from storage.workspace import SchemaTooNewError, Workspace, WorkspaceError

    try:
        return Workspace.open(location, create=create)
    except (WorkspaceError, SchemaTooNewError) as exc:
        _error(exc)
        return None


def run_import(args: argparse.Namespace) -> int:
    from core.formats import FormatError, read_preference_file
    from storage.ingest import IngestError, import_records

    path = Path(args.file)
    started = time.perf_counter()
    # Parse and check the whole file before the workspace is touched: bad input writes nothing.
    try:
        parsed = read_preference_file(path, args.format, progress=_progress("reading", path))
    except FormatError as exc:
        print(exc, file=sys.stderr)  # already "FILE:LINE: field 'x': message"
        return 2
    print(f"{path.name}: {len(parsed.records)} {parsed.describe()}")
    ws = _open_workspace(args.workspace, create=True)
    if ws is None:
        return 2
    try:
        summary = import_records(ws, parsed.records, args.source or path.name, progress=_progress("storing", path))
    except IngestError as exc:
        print(exc, file=sys.stderr)
        return 2
    finally:
        ws.close()
    print(f"added {summary.pairs_added} pairs ({summary.prompts_added} prompts, {summary.responses_added} "
          f"responses, {summary.verdicts_added} verdicts); skipped {summary.duplicates} duplicate rows "
          f"[{time.perf_counter() - started:.1f} s]")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from core.formats import write_preference_file
    from storage.training_set import build_training_set

    out = Path(args.out)
    if not out.parent.is_dir():
        _error(f"{out.parent}: no such folder for the output file")
        return 2
    ws = _open_workspace(args.workspace, create=False)
    if ws is None:
        return 2
    try:
        training = build_training_set(ws, args.policy)
    finally:
        ws.close()
    examples = training.examples if args.split == "all" else [e for e in training.examples if e.split == args.split]
    count = write_preference_file(out, examples, args.format, include_split=args.split == "all")
    dropped = ", ".join(f"{reason} {n}" for reason, n in training.dropped.items() if n) or "none"
    print(f"wrote {count} examples to {out} ({len(training.train)} train, {len(training.eval)} eval in the set; "
          f"policy {args.policy}, split {args.split}); dropped pairs/verdicts: {dropped}")
    return 0


def workspace_stats(ws) -> dict:
    """Counts and agreement as one JSON-ready dict."""
    from sqlalchemy import func, select

    from storage.models import Pair, Prompt, Response
    from storage.team import agreement, annotator_counts

    with ws.session() as s:
        counts = {name: s.scalar(select(func.count()).select_from(model))
                  for name, model in (("prompts", Prompt), ("responses", Response), ("pairs", Pair))}
        judged = s.scalar(select(func.count()).select_from(Pair).where(Pair.judged_count > 0))
    annotators = annotator_counts(ws)
    by_choice: dict[str, int] = {}
    for annotator in annotators:
        for choice, n in annotator.by_choice.items():
            by_choice[choice] = by_choice.get(choice, 0) + n
    return {"workspace": ws.location, **counts, "pairs_judged": judged,
            "verdicts": sum(by_choice.values()), "verdicts_by_choice": by_choice,
            "annotators": [a.to_dict() for a in annotators], "agreement": agreement(ws).to_dict()}


def run_stats(args: argparse.Namespace) -> int:
    ws = _open_workspace(args.workspace, create=False)
    if ws is None:
        return 2
    try:
        stats = workspace_stats(ws)
    finally:
        ws.close()
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    print(f"{stats['workspace']}: {stats['prompts']} prompts, {stats['responses']} responses, "
          f"{stats['pairs']} pairs ({stats['pairs_judged']} judged), {stats['verdicts']} verdicts")
    print("  by choice: " + ", ".join(f"{c} {n}" for c, n in stats["verdicts_by_choice"].items()))
    for a in stats["annotators"]:
        kind = " (import)" if a["pseudo"] else ""
        print(f"  {a['name']}{kind}: {a['total']} - " + ", ".join(f"{c} {n}" for c, n in a["by_choice"].items() if n))
    agree = stats["agreement"]
    if agree["pairs_with_2_or_more"]:
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        print(f"  agreement over {agree['pairs_with_2_or_more']} pairs: {fmt(agree['percent_agreement'])} "
              f"(Fleiss' kappa {fmt(agree['fleiss_kappa'])}, Krippendorff's alpha {fmt(agree['krippendorff_alpha'])})")
    else:
        print("  agreement: no pair has two human annotators yet")
    return 0
