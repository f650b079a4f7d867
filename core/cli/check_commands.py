"""``check``: a workspace's integrity (storage.integrity), from the command line.

    python main.py check WORKSPACE [--fix] [--json]

Exit codes: 0 nothing wrong (after ``--fix``: nothing left wrong), 1 problems found, 2 the
workspace cannot be opened (a damaged ``studio.db``: the refusal, then what SQLite's
integrity_check finds in it).
"""

from __future__ import annotations

import argparse
import json

from core.operations.wording import plural

CHECK_HELP = """\
Recounts every pair's judged_count from its current verdicts and looks for verdicts, pairs,
responses or metrics that point at rows which do not exist, annotators with more than one
current verdict on a pair, pairs stored in the wrong order and (PostgreSQL) id sequences
behind their table. --fix repairs what can be repaired without losing anything (the counts,
the sequences); rows pointing at missing ones are only reported. On SQLite it also runs
SQLite's full integrity_check (pages, free lists, indexes against their tables), also on a
studio.db too damaged to open; the remedy for those is a backup: python main.py restore WS."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("check", help="recount judged counts and report integrity problems",
                              description=CHECK_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workspace", help="an existing workspace folder or database URL")
    p.add_argument("--fix", action="store_true", help="repair the counts and id sequences")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    from core.cli.data_commands import _refused
    from storage.integrity import check_workspace, damaged_file_findings
    from storage.workspace import SchemaTooNewError, Workspace, WorkspaceDamaged, WorkspaceError

    try:
        with Workspace.open(args.workspace, create=False) as ws:
            report = check_workspace(ws, fix=args.fix)
    except WorkspaceDamaged as exc:
        code = _refused(exc)
        findings = damaged_file_findings(args.workspace)
        if args.json:
            print(json.dumps({"workspace": args.workspace, "damaged": str(exc), "sqlite_integrity": findings},
                             indent=2))
        for finding in [] if args.json else findings:
            print(f"sqlite integrity_check: {finding}")
        return code
    except (WorkspaceError, SchemaTooNewError) as exc:
        return _refused(exc)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0 if report.clean else 1
    for repair in report.repaired:
        print(f"repaired: {repair.count} {repair.description}")
    for problem in report.problems:
        examples = ", ".join(json.dumps(example) for example in problem.examples)
        more = " …" if problem.count > len(problem.examples) else ""
        print(f"problem [{problem.kind}]: {problem.count} {problem.description}: {examples}{more}")
    if any(problem.repairable for problem in report.problems):
        print("check again with --fix to repair the counts and sequences")
    verdict = ("no problems found" if report.clean
               else f"{plural(len(report.problems), 'kind', grouped=False)} of problem found")
    print(f"{report.location}: {plural(report.pairs_checked, 'pair', grouped=False)}, "
          f"{plural(report.verdicts_checked, 'verdict', grouped=False)} checked; {verdict}")
    return 0 if report.clean else 1
