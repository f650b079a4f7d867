"""The bundle commands: ``bundle export`` and ``bundle merge`` (no torch, so they start fast).

Argument parsing and printing only: the work is ``core.operations.bundles`` (``export_bundle``,
``merge_bundle``), the functions File ▸ Export my verdicts as a bundle… and Merge a bundle… run.
Exit codes: 0 done, 2 bad input (one line on stderr; nothing written), 1 any other failure.
"""

from __future__ import annotations

import argparse

from core.cli.data_commands import _refused  # the one way a refusal is printed (exit code 2)
from core.operations.wording import plural

BUNDLE_HELP = """\
For a team without a server: each annotator labels in their own copy of a workspace (made
from the same import file as the owner's), exports a bundle of their verdicts, and sends it
to the owner, who merges it. Pairs are matched by their content, so the copies' ids need not
agree; pairs the owner lacks are added. Merging the same bundle twice changes nothing; where
the owner's workspace already holds the same annotator's verdict on a pair, the newer one
(by the time it was given) stays. Verdicts of different annotators are simply side by side,
and where they differ the Team tab lists the pair among the disagreements.

  python main.py bundle export MY_WS --annotator ada ada.dpobundle
  python main.py bundle merge OWNER_WS ada.dpobundle"""


def register(subparsers: argparse._SubParsersAction) -> None:
    bundle = subparsers.add_parser("bundle", help="carry one annotator's verdicts to another workspace",
                                   description=BUNDLE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = bundle.add_subparsers(dest="bundle_command", metavar="ACTION", required=True)

    p = actions.add_parser("export", help="write one annotator's verdicts, with their pairs, to a bundle file",
                           description="Writes the annotator's current verdicts (choice, note, time spent, "
                                       "when given), the verdicts they took back, and every pair they refer to.")
    p.add_argument("workspace", help="an existing workspace folder or database URL")
    p.add_argument("--annotator", required=True, help="whose verdicts to export")
    p.add_argument("out", help="the bundle file to write (e.g. ada.dpobundle)")
    p.set_defaults(func=run_bundle_export)

    p = actions.add_parser("merge", help="merge a bundle into this workspace",
                           description="Adds the bundle's verdicts (and the pairs this workspace lacks); "
                                       "idempotent. A bad file is refused whole, with nothing written.")
    p.add_argument("workspace", help="an existing workspace folder or database URL")
    p.add_argument("bundle", help="a .dpobundle file")
    p.set_defaults(func=run_bundle_merge)


def run_bundle_export(args: argparse.Namespace) -> int:
    from core.operations.bundles import export_bundle
    from core.operations.data import InputRefused
    from storage.workspace import SchemaTooNewError, WorkspaceError

    try:
        report = export_bundle(args.workspace, args.annotator, args.out)
    except (InputRefused, WorkspaceError, SchemaTooNewError) as exc:
        return _refused(exc)
    taken_back = f" and {report.retractions} taken back" if report.retractions else ""
    print(f"wrote {plural(report.verdicts, 'verdict', grouped=False)} of {report.annotator}{taken_back} "
          f"on {plural(report.pairs, 'pair', grouped=False)} "
          f"to {report.path}")
    return 0


def run_bundle_merge(args: argparse.Namespace) -> int:
    from core.operations.bundles import merge_bundle
    from core.operations.data import InputRefused
    from storage.workspace import SchemaTooNewError, WorkspaceError

    try:
        report = merge_bundle(args.workspace, args.bundle)
    except (InputRefused, WorkspaceError, SchemaTooNewError) as exc:
        return _refused(exc)
    print(f"merged {plural(report.in_bundle, 'verdict', grouped=False)} of {report.annotator} from {report.path}: "
          f"added {report.verdicts_added}, already present {report.already_present}, "
          f"kept the workspace's newer {report.kept_newer}, taken back {report.retracted}; "
          f"pairs added {report.pairs_added}"
          f"{f'; annotator {report.annotator} created' if report.annotator_created else ''}")
    return 0
