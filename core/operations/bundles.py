"""Bundles, for teams without a server: File ▸ Export my verdicts as a bundle… / Merge a bundle…
and ``main.py bundle export`` / ``bundle merge`` call these.

An annotator labels in their own copy of a workspace (made from the same import file as the
owner's), exports a bundle of their verdicts, and the owner merges it. Pairs are matched by
content, so ids never need to agree; merging is idempotent; a pair the owner lacks is added;
where the owner's workspace already holds a verdict of the same annotator on a pair, the
newer one (by the time it was given) stays current. The file format is described in
``core.formats.bundle_file``; the rules of the merge in ``storage.bundles``.

    report = export_bundle(ws, "ada", "ada.dpobundle")
    report = merge_bundle(owner_ws, "ada.dpobundle")
    report.changes      # Changes(verdicts=True, pairs=…, annotators=…, pair_ids=…)

Bad input raises ``InputRefused`` (one line naming the file, and the line and field where
it applies); nothing is written then. Progress goes to ``progress(DataProgress)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.formats.bundle_file import BUNDLE_SUFFIX, read_bundle, write_bundle
from core.formats.errors import FormatError
from core.operations.changes import NOTHING, Changes
from core.operations.data import DataProgress, InputRefused, Progress, Stage
from core.operations.wording import plural
from storage.annotator_session import annotator_names
from storage.bundles import BundleRefused, merge_annotator_bundle, read_annotator_bundle
from storage.models import utcnow
from storage.workspace import Workspace

__all__ = ["BUNDLE_SUFFIX", "BundleExportReport", "BundleMergeReport", "bundle_annotators", "export_bundle",
           "merge_bundle"]


@dataclass(frozen=True)
class BundleExportReport:
    path: str
    annotator: str
    pairs: int
    verdicts: int                    # current verdicts written
    retractions: int                 # taken-back verdicts written (so a merge takes them back too)
    changes: Changes = NOTHING       # an export writes a file, not the workspace

    def summary_text(self) -> str:
        taken_back = f" and {self.retractions:,} taken back" if self.retractions else ""
        return (f"Wrote {plural(self.verdicts, 'verdict')} of {self.annotator}{taken_back} "
                f"on {plural(self.pairs, 'pair')} "
                f"to {self.path}.")


@dataclass(frozen=True)
class BundleMergeReport:
    path: str
    annotator: str
    in_bundle: int                   # verdict lines in the bundle (current ones and retractions)
    verdicts_added: int
    already_present: int             # the same verdict was already in the workspace
    kept_newer: int                  # the workspace's own verdict on the pair is newer: it stays
    retracted: int                   # verdicts taken back as the bundle says
    pairs_added: int
    annotator_created: bool
    changes: Changes

    def summary_text(self) -> str:
        parts = [f"{plural(self.verdicts_added, 'verdict')} added", f"{self.already_present:,} already present"]
        if self.kept_newer:
            parts.append(f"{self.kept_newer:,} older than the workspace's own (the newer kept)")
        if self.retracted:
            parts.append(f"{self.retracted:,} taken back")
        parts.append(f"{plural(self.pairs_added, 'pair')} added")
        created = f"; annotator {self.annotator} created" if self.annotator_created else ""
        return f"Merged the bundle of {self.annotator}: " + ", ".join(parts) + created + "."


def _open(workspace: Workspace | str | os.PathLike) -> tuple[Workspace, bool]:
    if isinstance(workspace, Workspace):
        return workspace, False
    return Workspace.open(workspace, create=False), True


def _reporter(progress: Progress | None, stage: Stage):
    def report(done: int, total: int) -> None:
        if progress is not None:
            progress(DataProgress(stage, done, total))
    return report


def bundle_annotators(workspace: Workspace | str | os.PathLike) -> list[str]:
    """The people whose verdicts can be exported (imported files' labels are not), oldest first."""
    ws, opened = _open(workspace)
    try:
        return annotator_names(ws)
    finally:
        if opened:
            ws.close()


def export_bundle(workspace: Workspace | str | os.PathLike, annotator: str, out: str | os.PathLike,
                  progress: Progress | None = None) -> BundleExportReport:
    """Write ``annotator``'s current verdicts (and the ones they took back) with their pairs
    to ``out``, whole or not at all. Raises ``InputRefused`` (no such annotator or folder)."""
    out = Path(out)
    if not out.parent.is_dir():
        raise InputRefused(f"{out.parent}: no such folder for the bundle", str(out),
                           message=f"no such folder: {out.parent}")
    if out.is_dir():
        raise InputRefused(f"{out}: is a folder; give a file name such as {annotator or 'me'}{BUNDLE_SUFFIX}",
                           str(out), message="is a folder, not a file name")
    ws, opened = _open(workspace)
    try:
        bundle = read_annotator_bundle(ws, annotator, progress=_reporter(progress, Stage.BUILDING))
    except BundleRefused as exc:
        raise InputRefused(str(exc), str(out), message=str(exc)) from None
    finally:
        if opened:
            ws.close()
    _reporter(progress, Stage.WRITING)(0, 1)
    try:
        write_bundle(out, bundle, utcnow())
    except OSError as exc:
        reason = f"cannot write the bundle: {exc.strerror or exc}"
        raise InputRefused(f"{out}: {reason}", str(out), message=reason) from None
    _reporter(progress, Stage.WRITING)(1, 1)
    retractions = sum(1 for v in bundle.verdicts if v.retracted_at is not None)
    return BundleExportReport(str(out), bundle.annotator, len(bundle.pairs), len(bundle.verdicts) - retractions,
                              retractions)


def merge_bundle(workspace: Workspace | str | os.PathLike, path: str | os.PathLike,
                 progress: Progress | None = None) -> BundleMergeReport:
    """Merge the bundle at ``path`` into ``workspace`` in one transaction (idempotent).

    The file is read and checked whole first: a bad one raises ``InputRefused`` and nothing
    is written (and a workspace given by location is not even opened).
    """
    path = Path(path)
    try:
        bundle = read_bundle(path, progress=_reporter(progress, Stage.READING))
    except FormatError as exc:
        raise InputRefused(str(exc), str(exc.path), exc.line, exc.field, exc.message) from None
    ws, opened = _open(workspace)
    try:
        summary = merge_annotator_bundle(ws, bundle, progress=_reporter(progress, Stage.STORING))
    except BundleRefused as exc:
        raise InputRefused(f"{path}: {exc}", str(path), message=str(exc)) from None
    finally:
        if opened:
            ws.close()
    changed_verdicts = bool(summary.verdicts_added or summary.retracted)
    changes = Changes(verdicts=changed_verdicts, pairs=summary.pairs_added > 0,
                      annotators=summary.annotator_created, pair_ids=frozenset(summary.pair_ids))
    return BundleMergeReport(str(path), bundle.annotator, len(bundle.verdicts), summary.verdicts_added,
                             summary.already_present, summary.kept_newer, summary.retracted, summary.pairs_added,
                             summary.annotator_created, changes)
