"""The data commands: ``import``, ``export`` and ``stats`` (no torch, so they start fast).

Argument parsing and printing only: the work is ``core.operations.data`` (``import_file``,
``export_training_data``, ``workspace_stats``), the same functions File ▸ Import and Export run.

Exit codes: 0 done, 2 bad input (nothing written; the reason on stderr as
"FILE:LINE: field 'x': message"), 1 any other failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.cli.progress import StageProgress
from core.operations.wording import plural

EXPORT_HELP = """\
Writes JSONL that TRL's DPOTrainer loads as it is (datasets.load_dataset("json", data_files=OUT)),
or Parquet when OUT ends in .parquet (datasets.load_dataset("parquet", ...); needs pyarrow).
--format trl: {"prompt", "chosen", "rejected"} strings (chat prompts flattened to text);
--format conversational: the same fields as lists of {"role", "content"} messages;
--format openai: OpenAI preference fine-tuning JSONL (input.messages, preferred_output,
non_preferred_output; no "split" field: export --split train and --split eval apart).
--split all (default) writes every example with a "split" column ("train"/"eval");
--split train or --split eval writes only that part, without the column.
--policy decides how several verdicts on one pair merge: majority (default; ties of the vote
are dropped), unanimous, or all (every a/b verdict its own example). Ties, both-bad and skips
never become examples; an owner's resolution overrides the policy."""

IMPORT_HELP = """\
Reads JSONL, JSON (an array of rows), CSV, Parquet or Arrow files, a folder written by
datasets' save_to_disk, or a folder of Parquet shards (Parquet/Arrow need pyarrow:
pip install -e ".[parquet]"). Row shapes (--format; auto picks one from the first row):
  standard        {"prompt": str, "chosen": str, "rejected": str}        (alias: trl)
  conversational  prompt/chosen/rejected as lists of {"role","content"} messages
  implicit        only chosen/rejected; the prompt is their shared start
                  (Anthropic-HH "\\n\\nHuman:/\\n\\nAssistant:" transcripts become chat turns)
  ultrafeedback   prompt text, chosen/rejected whole conversations (HuggingFaceH4 UltraFeedback)
  openai          OpenAI preference fine-tuning: input.messages, preferred_output, non_preferred_output
  candidates      {"prompt": ..., "responses": [r1, r2, ...]} or response_1, response_2, ...
                  -> every pair, to annotate
  argilla         Argilla exports (fields + a ranking, label or rating question)
  labelstudio     Label Studio JSON exports with a Pairwise choice
An optional "split" field (train/eval) fixes a new pair's split, as in our own exports;
without it the split is drawn from the pair's content (setting eval_fraction, default 0.1).
Labelled rows are stored as verdicts of a pseudo-annotator named after the file; scores and
ratings the rows carry are kept in that verdict's note. Rows already in the workspace are
skipped (a prompt is found whether it comes as text or as chat, and a label the workspace
already holds is not added again), so importing a file twice - or our own export - changes
nothing. Any bad row refuses the whole file (exit code 2) with the file, line and field
named; --skip-bad-rows imports the good rows and lists the bad ones in a report file in the
workspace's exports folder."""

# Long work draws progress: a stage of at least this many rows, or anything still running after
# PROGRESS_MIN_SECONDS (a bar on a terminal, a line per 10% when piped; --quiet: none).
PROGRESS_MIN_ROWS = 1000
PROGRESS_MIN_SECONDS = 1.0


def register(subparsers: argparse._SubParsersAction) -> None:
    from core.operations.data import EXPORT_SPLITS, IMPORT_FORMATS
    from core.formats import EXPORT_FORMATS
    from storage.training_set import POLICIES

    p = subparsers.add_parser("import", help="import preference pairs or candidates into a workspace",
                              description=IMPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workspace", help="workspace folder (created if new or empty) or database URL")
    p.add_argument("file", help="a .jsonl, .ndjson, .json, .csv, .parquet or .arrow file, or a dataset folder")
    p.add_argument("--format", default="auto", choices=IMPORT_FORMATS,
                   help="row shape (default: auto, picked from the first row)")
    p.add_argument("--source", help="name the pairs' source and pseudo-annotator (default: the file name)")
    p.add_argument("--skip-bad-rows", action="store_true",
                   help="import the good rows; list the bad ones in a report in the workspace's exports folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_import)

    p = subparsers.add_parser("export", help="export the training set as TRL-ready JSONL",
                              description=EXPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workspace", help="an existing workspace folder or database URL")
    p.add_argument("out", help="output .jsonl file (or .parquet)")
    p.add_argument("--format", default="trl", choices=EXPORT_FORMATS, help="default: trl")
    p.add_argument("--policy", default="majority", choices=POLICIES,
                   help="how verdicts on one pair merge (default: majority)")
    p.add_argument("--split", default="all", choices=EXPORT_SPLITS,
                   help="which examples to write (default: all, with a 'split' column)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_export)

    p = subparsers.add_parser("stats", help="counts and agreement of a workspace",
                              description="Counts of prompts, responses, pairs, verdicts by choice and by "
                                          "annotator, and inter-annotator agreement.")
    p.add_argument("workspace", help="an existing workspace folder or database URL")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run_stats)


def data_progress(quiet: bool) -> StageProgress:
    """The shared printer for the data operations' ``DataProgress`` reports (long work only)."""
    return StageProgress(quiet=quiet, min_total=PROGRESS_MIN_ROWS, min_seconds=PROGRESS_MIN_SECONDS)


def _drawn(printer: StageProgress):
    return lambda report: printer(report.stage.value, report.done, report.total)


def _error(message: object) -> None:
    print(f"error: {message}", file=sys.stderr)


def _refused(exc: Exception) -> int:
    """Bad input or an unusable workspace: the reason on stderr, exit code 2."""
    from core.operations.data import InputRefused

    if isinstance(exc, InputRefused):
        print(exc, file=sys.stderr)  # already "FILE:LINE: field 'x': message"
    else:
        _error(exc)
    return 2


def run_import(args: argparse.Namespace) -> int:
    from core.operations.data import InputRefused, import_file
    from storage.workspace import SchemaTooNewError, WorkspaceError

    path = Path(args.file)
    printer = data_progress(args.quiet)
    try:
        report = import_file(args.workspace, path, args.format, args.source, progress=_drawn(printer),
                             skip_bad_rows=args.skip_bad_rows)
    except (InputRefused, WorkspaceError, SchemaTooNewError) as exc:
        printer.end()
        return _refused(exc)
    finally:
        printer.end()
    splits = ", ".join(f"{report.pairs_by_split[s]} {s}" for s in ("train", "eval") if s in report.pairs_by_split)
    print(f"{path.name}: {report.rows} {report.description}")
    print(f"added {plural(report.pairs_added, 'pair', grouped=False)} "
          f"({plural(report.prompts_added, 'prompt', grouped=False)}, "
          f"{plural(report.responses_added, 'response', grouped=False)}, "
          f"{plural(report.verdicts_added, 'verdict', grouped=False)}); "
          f"skipped {plural(report.duplicates, 'duplicate row', grouped=False)}"
          f"{f'; new pairs: {splits}' if splits else ''} [{report.seconds:.1f} s]")
    if report.skipped_rows:
        print(f"left out {plural(report.skipped_rows, 'bad row', grouped=False)}, listed in {report.bad_rows_report}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from core.operations.data import InputRefused, export_training_data
    from storage.workspace import SchemaTooNewError, WorkspaceError

    printer = data_progress(args.quiet)
    try:
        report = export_training_data(args.workspace, args.out, args.format, args.policy, args.split,
                                      progress=_drawn(printer))
    except (InputRefused, WorkspaceError, SchemaTooNewError) as exc:
        printer.end()
        return _refused(exc)
    finally:
        printer.end()
    dropped = ", ".join(f"{reason} {n}" for reason, n in report.dropped.items() if n) or "none"
    print(f"wrote {plural(report.written, 'example', grouped=False)} to {report.path} "
          f"({report.train} train, {report.eval} eval in the set; "
          f"policy {report.policy}, split {report.split}); dropped pairs/verdicts: {dropped}")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from core.operations.data import workspace_stats
    from storage.workspace import SchemaTooNewError, WorkspaceError

    try:
        stats = workspace_stats(args.workspace).to_dict()
    except (WorkspaceError, SchemaTooNewError) as exc:
        return _refused(exc)
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    counted = {noun: plural(stats[key], noun, grouped=False) for key, noun in
               (("prompts", "prompt"), ("responses", "response"), ("pairs", "pair"), ("verdicts", "verdict"))}
    print(f"{stats['workspace']}: {counted['prompt']}, {counted['response']}, "
          f"{counted['pair']} ({stats['pairs_judged']} judged), {counted['verdict']}")
    print("  by choice: " + ", ".join(f"{c} {n}" for c, n in stats["verdicts_by_choice"].items()))
    for a in stats["annotators"]:
        kind = " (import)" if a["pseudo"] else ""
        print(f"  {a['name']}{kind}: {a['total']} - " + ", ".join(f"{c} {n}" for c, n in a["by_choice"].items() if n))
    agree = stats["agreement"]
    if agree["pairs_with_2_or_more"]:
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        print(f"  agreement over {plural(agree['pairs_with_2_or_more'], 'pair', grouped=False)}: "
              f"{fmt(agree['percent_agreement'])} "
              f"(Fleiss' kappa {fmt(agree['fleiss_kappa'])}, Krippendorff's alpha {fmt(agree['krippendorff_alpha'])})")
    else:
        print("  agreement: no pair has two human annotators yet")
    return 0
