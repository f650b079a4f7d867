"""The pair browser's filtered, paged listing."""

from __future__ import annotations

import pytest

from storage.annotation_queue import AnnotationQueue
from storage.ingest import ImportRecord, import_records
from storage.models import Choice
from storage.pair_browser import count_pairs, list_pairs, sources
from storage.team import resolve
from storage.workspace import Workspace

# Every test here runs on SQLite and on PostgreSQL (tests/backends.py).
pytestmark = pytest.mark.both_backends


@pytest.fixture
def browsed(workspace: Workspace):
    unlabelled = import_records(workspace, [ImportRecord(f"Question {i}: 50% off?", [f"yes {i}", f"no {i}"])
                                            for i in range(6)], "cands.jsonl").pair_ids
    labelled = import_records(workspace, [ImportRecord("Name a fruit", ["apple", "rock"], chosen=0)],
                              "labels.jsonl").pair_ids
    ann, ben = AnnotationQueue(workspace, "ann", overlap=3), AnnotationQueue(workspace, "ben", overlap=3)
    ann.record(unlabelled[0], Choice.A)
    ben.record(unlabelled[0], Choice.B)      # disputed
    ann.record(unlabelled[1], Choice.TIE)
    ben.record(unlabelled[2], Choice.SKIP)
    ann.record(unlabelled[3], Choice.A)
    ann.record(unlabelled[3], Choice.B)      # changed mind: not a dispute with herself
    return workspace, unlabelled, labelled


def test_status_filters(browsed) -> None:
    ws, u, labelled = browsed
    ids = lambda **kw: [row.pair_id for row in list_pairs(ws, **kw)]  # noqa: E731
    assert ids() == u + labelled
    assert ids(status_filter="unlabelled") == [u[4], u[5]]
    assert ids(status_filter="mine", annotator="ann") == [u[0], u[1], u[3]]
    assert ids(status_filter="disputed") == [u[0]]
    assert ids(status_filter="tie") == [u[1]]
    assert ids(status_filter="skipped") == [u[2]] and ids(status_filter="skipped", annotator="ann") == []
    for status in ("all", "unlabelled", "disputed", "tie", "skipped"):
        assert count_pairs(ws, status_filter=status) == len(ids(status_filter=status))
    resolve(ws, u[0], "owner", Choice.A)
    assert ids(status_filter="disputed") == [u[0]]  # still shown as disputed, now with its resolution
    assert list_pairs(ws, status_filter="disputed")[0].verdicts["owner"] == "a (resolution)"


def test_source_search_paging_and_rows(browsed) -> None:
    ws, u, labelled = browsed
    assert sources(ws) == ["cands.jsonl", "labels.jsonl"]
    assert [r.pair_id for r in list_pairs(ws, source="labels.jsonl")] == labelled
    assert [r.pair_id for r in list_pairs(ws, search="ROCK")] == labelled        # in a response, any case
    assert count_pairs(ws, search="50%") == 6 and count_pairs(ws, search="5_%") == 0  # LIKE wildcards escaped
    assert [r.pair_id for r in list_pairs(ws, offset=2, limit=3)] == u[2:5]
    row = list_pairs(ws, limit=1)[0]
    assert row.prompt_preview == "Question 0: 50% off?" and row.source == "cands.jsonl"
    assert row.verdict_summary == "ann: a, ben: b" and row.split in ("train", "eval")


def test_bad_filters_are_refused(browsed) -> None:
    ws, _, _ = browsed
    with pytest.raises(ValueError, match="unknown status filter 'done'"):
        list_pairs(ws, status_filter="done")
    with pytest.raises(ValueError, match="needs an annotator"):
        count_pairs(ws, status_filter="mine")
