"""The bundle file (``.dpobundle``): one annotator's verdicts and the pairs they judge.

A bundle is UTF-8 JSON Lines, one object per line, written whole or not at all:

1. the header::

       {"format": "dpo-studio-bundle", "version": 1, "annotator": "ada",
        "exported_at": "2025-05-01T10:00:00", "pairs": 2, "verdicts": 3}

2. one line per pair, before any verdict that names it::

       {"type": "pair", "pair": KEY, "prompt": TEXT_OR_MESSAGES,
        "responses": [TEXT_OR_MESSAGES, TEXT_OR_MESSAGES], "source": "prefs.jsonl",
        "split": "train", "origins": ["imported", "imported"], "models": [null, null]}

   ``KEY`` hashes the content (``storage.bundles.pair_key``); the responses are in the order
   of their content hashes, and that order is what a verdict's "a" and "b" mean;

3. one line per verdict: the annotator's current verdict on a pair, or (with
   ``retracted_at``) one they took back::

       {"type": "verdict", "verdict": ID, "pair": KEY, "choice": "a", "note": "",
        "seconds_spent": 4.2, "created_at": "2025-05-01T09:58:12.123456", "retracted_at": null,
        "client_id": "9f0c…"}

   ``choice`` is a, b, tie, both_bad or skip; times are UTC without an offset; ``ID``
   (``storage.bundles.verdict_key`` of annotator, pair, time and choice) is the verdict's
   identity in every workspace; ``client_id`` the id its client made (null if none).

``read_bundle`` refuses a file that is not a bundle, a version newer than ``BUNDLE_VERSION``,
a line that does not match its key or id (changed or damaged), and a file with fewer lines
than its header counts (cut short), raising ``FormatError`` ("FILE:LINE: field 'x': message").
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any, Callable

from core.formats.containers import read_file_bytes, read_jsonl
from core.formats.errors import FormatError
from core.formats.shapes import RowReader
from storage.annotator_session import validate_annotator_name
from storage.bundles import CLIENT_ID_MAX, AnnotatorBundle, BundlePair, BundleVerdict, pair_key, verdict_key
from storage.ingest import prompt_hash, response_hash
from storage.models import Choice, ResponseOrigin

BUNDLE_FORMAT = "dpo-studio-bundle"
BUNDLE_VERSION = 1
BUNDLE_SUFFIX = ".dpobundle"
SPLITS = ("train", "eval")


def _time(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def bundle_lines(bundle: AnnotatorBundle, exported_at: dt.datetime) -> list[dict]:
    """The bundle as the objects of its lines, header first."""
    lines: list[dict] = [{"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "annotator": bundle.annotator,
                          "exported_at": exported_at.isoformat(timespec="seconds"),
                          "pairs": len(bundle.pairs), "verdicts": len(bundle.verdicts)}]
    for pair in bundle.pairs:
        lines.append({"type": "pair", "pair": pair.key, "prompt": pair.prompt, "responses": list(pair.responses),
                      "source": pair.source, "split": pair.split, "origins": list(pair.origins),
                      "models": list(pair.models)})
    for verdict in bundle.verdicts:
        lines.append({"type": "verdict", "verdict": verdict_key(bundle.annotator, verdict), "pair": verdict.pair_key,
                      "choice": verdict.choice.value, "note": verdict.note,
                      "seconds_spent": round(verdict.seconds_spent, 3), "created_at": _time(verdict.created_at),
                      "retracted_at": _time(verdict.retracted_at), "client_id": verdict.client_id})
    return lines


def write_bundle(path: str | os.PathLike, bundle: AnnotatorBundle, exported_at: dt.datetime) -> None:
    """Write ``bundle`` to ``path`` through a temporary file, so a failure leaves no half file."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.partial")
    try:
        with open(temporary, "w", encoding="utf-8", newline="\n") as out:
            for line in bundle_lines(bundle, exported_at):
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


class _BundleReader(RowReader):
    """Checks a bundle's lines; the field checks are the preference files' own."""

    def __init__(self, path: Path):
        super().__init__(path, "bundle")
        self.annotator = ""
        self.pairs: dict[str, BundlePair] = {}
        self.verdicts: list[BundleVerdict] = []
        self._ids: set[str] = set()

    def header(self, line: int, row: Any) -> tuple[int, int]:
        self.line = line
        if not isinstance(row, dict) or row.get("format") != BUNDLE_FORMAT:
            raise self.fail(None, f"not a DPO Studio bundle (its first line has no \"format\": \"{BUNDLE_FORMAT}\")")
        version = row.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise self.fail("version", f"unknown bundle format version {version!r}")
        if version > BUNDLE_VERSION:
            raise self.fail("version", f"bundle format version {version} is newer than this DPO Studio reads "
                            f"(up to {BUNDLE_VERSION}); update DPO Studio to merge it")
        try:
            self.annotator = validate_annotator_name(self._text(self._get(row, "annotator"), "annotator"))
        except ValueError as exc:
            raise self.fail("annotator", str(exc)) from None
        return self._count(row, "pairs"), self._count(row, "verdicts")

    def _count(self, row: dict, name: str) -> int:
        value = self._get(row, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.fail(name, f"expected a count, got {value!r}")
        return value

    def _content(self, value: Any, field: str) -> str | list[dict]:
        if isinstance(value, str):
            return value
        return self._messages(value, field)

    def _time(self, value: Any, field: str, optional: bool = False) -> dt.datetime | None:
        if value is None and optional:
            return None
        try:
            parsed = dt.datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise self.fail(field, f"expected a time like 2025-05-01T09:58:12, got {value!r}") from None
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return parsed

    def line_of(self, line: int, row: Any) -> None:
        self.line = line
        if not isinstance(row, dict):
            raise self.fail(None, "expected an object with named fields")
        kind = row.get("type")
        if kind == "pair":
            self._pair(row)
        elif kind == "verdict":
            self._verdict(row)
        else:
            raise self.fail("type", f"expected 'pair' or 'verdict', got {kind!r}")

    def _pair(self, row: dict) -> None:
        prompt = self._content(self._get(row, "prompt"), "prompt")
        responses = self._get(row, "responses")
        if not isinstance(responses, list) or len(responses) != 2:
            raise self.fail("responses", "expected a list of 2 responses")
        first, second = (self._content(r, f"responses[{i}]") for i, r in enumerate(responses))
        first_key, second_key = response_hash(first), response_hash(second)
        if first_key == second_key:
            raise self.fail("responses[1]", "same as responses[0]")
        if first_key > second_key:
            raise self.fail("responses", "not in the order of their content hashes (the file was changed)")
        key = self._get(row, "pair")
        if key != pair_key(prompt_hash(prompt), first_key, second_key):
            raise self.fail("pair", "does not match the pair's content (the file was changed or damaged)")
        if key in self.pairs:
            raise self.fail("pair", "this pair is listed twice")
        source = row.get("source", "")
        if not isinstance(source, str):
            raise self.fail("source", f"expected a string, got {source!r}")
        split = row.get("split", "train")
        if split not in SPLITS:
            raise self.fail("split", f"expected train or eval, got {split!r}")
        origins = row.get("origins", ["imported", "imported"])
        known = [o.value for o in ResponseOrigin]
        if not isinstance(origins, list) or len(origins) != 2 or any(o not in known for o in origins):
            raise self.fail("origins", f"expected 2 of {', '.join(known)}")
        models = row.get("models", [None, None])
        if not isinstance(models, list) or len(models) != 2 or any(m is not None and not isinstance(m, str)
                                                                   for m in models):
            raise self.fail("models", "expected 2 model names (or null)")
        self.pairs[key] = BundlePair(key, prompt, (first, second), source, split, tuple(origins), tuple(models))

    def _verdict(self, row: dict) -> None:
        key = self._get(row, "pair")
        if key not in self.pairs:
            raise self.fail("pair", "names no pair listed before it")
        choice = self._get(row, "choice")
        if choice not in [c.value for c in Choice]:
            raise self.fail("choice", f"expected one of {', '.join(c.value for c in Choice)}, got {choice!r}")
        note = row.get("note", "")
        if not isinstance(note, str):
            raise self.fail("note", f"expected a string, got {note!r}")
        seconds = row.get("seconds_spent", 0.0)
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
            raise self.fail("seconds_spent", f"expected a number of seconds, got {seconds!r}")
        client_id = row.get("client_id")
        if client_id is not None and (not isinstance(client_id, str) or not 0 < len(client_id) <= CLIENT_ID_MAX):
            raise self.fail("client_id", f"expected an id of 1 to {CLIENT_ID_MAX} characters, got {client_id!r}")
        verdict = BundleVerdict(key, Choice(choice), self._time(self._get(row, "created_at"), "created_at"),
                                note, float(seconds), self._time(row.get("retracted_at"), "retracted_at", True),
                                client_id)
        identity = verdict_key(self.annotator, verdict)
        if self._get(row, "verdict") != identity:
            raise self.fail("verdict", "does not match the verdict (the file was changed or damaged)")
        if identity in self._ids:
            raise self.fail("verdict", "this verdict is listed twice")
        self._ids.add(identity)
        self.verdicts.append(verdict)


def read_bundle(path: str | os.PathLike, progress: Callable[[int, int], None] | None = None) -> AnnotatorBundle:
    """Read and check a whole bundle; raises ``FormatError`` naming the file, line and field."""
    path = Path(path)
    data = read_file_bytes(path)
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        raise FormatError(path, 0, None, "not a DPO Studio bundle (a bundle is JSON Lines, its header first)")
    reader = _BundleReader(path)
    expected: tuple[int, int] | None = None
    for line, row in read_jsonl(path, data, progress):
        if expected is None:
            expected = reader.header(line, row)
        else:
            reader.line_of(line, row)
    if expected is None:
        raise FormatError(path, 0, None, "the file is empty (not a DPO Studio bundle)")
    found = (len(reader.pairs), len(reader.verdicts))
    if found != expected:
        raise FormatError(path, 0, None, f"the bundle is incomplete or damaged: its header counts {expected[0]} pairs "
                          f"and {expected[1]} verdicts, the file holds {found[0]} and {found[1]}")
    return AnnotatorBundle(reader.annotator, list(reader.pairs.values()), reader.verdicts)
