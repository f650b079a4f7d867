"""Reading every supported shape in every container, and refusing malformed files with
the file, line and field named."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from core.formats import FormatError, read_preference_file

USER_HI = [{"role": "user", "content": "Hi"}]
HELLO = [{"role": "assistant", "content": "Hello!"}]
GO_AWAY = [{"role": "assistant", "content": "Go away."}]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def as_tuples(parsed) -> list[tuple]:
    return [(r.prompt, r.responses, r.chosen, r.line) for r in parsed.records]


# -- valid files: each shape ------------------------------------------------------------------

def test_standard_rows_in_jsonl_json_and_csv(tmp_path: Path) -> None:
    rows = [{"prompt": "2+2?", "chosen": "4", "rejected": "5", "id": 7},
            {"prompt": "Capital, France?", "chosen": "Paris\nfor sure", "rejected": "Lyon"}]
    expected = [("2+2?", ["4", "5"], 0), ("Capital, France?", ["Paris\nfor sure", "Lyon"], 0)]
    jsonl = read_preference_file(write_jsonl(tmp_path / "a.jsonl", rows))
    (tmp_path / "a.json").write_text(json.dumps(rows, indent=2))
    as_json = read_preference_file(tmp_path / "a.json")
    as_csv = read_preference_file(write_csv(tmp_path / "a.csv", [{k: r[k] for k in ("prompt", "chosen", "rejected")}
                                                                 for r in rows]))
    for parsed, container in ((jsonl, "jsonl"), (as_json, "json"), (as_csv, "csv")):
        assert parsed.format == "standard" and parsed.container == container and parsed.detected
        assert [t[:3] for t in as_tuples(parsed)] == expected
    assert [r.line for r in jsonl.records] == [1, 2]
    assert [r.line for r in as_json.records] == [2, 8]     # where each object starts
    assert [r.line for r in as_csv.records] == [2, 3]       # the header is line 1


def test_conversational_rows_and_full_conversation_completions(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [
        {"prompt": USER_HI, "chosen": HELLO, "rejected": GO_AWAY},
        {"prompt": USER_HI, "chosen": USER_HI + HELLO, "rejected": USER_HI + GO_AWAY},  # repeats the prompt
    ])
    parsed = read_preference_file(path)
    assert parsed.format == "conversational"
    assert [t[:3] for t in as_tuples(parsed)] == [(USER_HI, [HELLO, GO_AWAY], 0)] * 2


def test_conversational_cells_in_csv(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", [{"prompt": json.dumps(USER_HI), "chosen": json.dumps(HELLO),
                                            "rejected": json.dumps(GO_AWAY)}])
    parsed = read_preference_file(path, format="conversational")
    assert not parsed.detected and as_tuples(parsed) == [(USER_HI, [HELLO, GO_AWAY], 0, 2)]


def test_implicit_prompt_from_anthropic_hh_transcripts(tmp_path: Path) -> None:
    shared = "\n\nHuman: What is 2+2?\n\nAssistant: 4.\n\nHuman: And 3+3?"
    path = write_jsonl(tmp_path / "hh.jsonl", [{"chosen": shared + "\n\nAssistant: 6.",
                                                "rejected": shared + "\n\nAssistant: No idea. "}])
    parsed = read_preference_file(path)
    assert parsed.format == "implicit"
    prompt = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4."},
              {"role": "user", "content": "And 3+3?"}]
    assert as_tuples(parsed) == [(prompt, [[{"role": "assistant", "content": "6."}],
                                           [{"role": "assistant", "content": "No idea."}]], 0, 1)]


def test_implicit_prompt_from_plain_strings_and_message_lists(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "i.jsonl", [
        {"chosen": "The sky is blue.", "rejected": "The sky is green."},
        {"chosen": "The sky is blue.", "rejected": "The sky is black."},   # differs mid-word: cut at the space
        {"chosen": USER_HI + HELLO, "rejected": USER_HI + GO_AWAY},
    ])
    records = read_preference_file(path).records
    assert (records[0].prompt, records[0].responses) == ("The sky is", [" blue.", " green."])
    assert (records[1].prompt, records[1].responses) == ("The sky is", [" blue.", " black."])
    assert (records[2].prompt, records[2].responses) == (USER_HI, [HELLO, GO_AWAY])


def test_candidates_in_jsonl_and_csv_columns(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "u.jsonl", [{"prompt": "Name a colour", "responses": ["red", "blue", "green"]},
                                              {"prompt": USER_HI, "responses": [HELLO, GO_AWAY]}])
    parsed = read_preference_file(path)
    assert parsed.format == "candidates"
    assert as_tuples(parsed) == [("Name a colour", ["red", "blue", "green"], None, 1),
                                 (USER_HI, [HELLO, GO_AWAY], None, 2)]
    columns = write_csv(tmp_path / "u.csv", [{"prompt": "p", "response_1": "x", "response_2": "y", "response_3": ""}])
    as_list = write_csv(tmp_path / "l.csv", [{"prompt": "p", "responses": json.dumps(["x", "y"])}])
    assert read_preference_file(columns).records[0].responses == ["x", "y"]
    assert read_preference_file(as_list).records[0].responses == ["x", "y"]


def test_utf8_bom_blank_lines_and_non_ascii_text(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_bytes("\ufeff".encode() + b'{"prompt": "caf\xc3\xa9?", "chosen": "\xe2\x98\x95", "rejected": "no"}\n\n')
    assert as_tuples(read_preference_file(path)) == [("café?", ["☕", "no"], 0, 1)]


# -- malformed files ---------------------------------------------------------------------------

GOOD = {"prompt": "p", "chosen": "a", "rejected": "b"}


@pytest.mark.parametrize("bad_row, fmt, line, field, message", [
    ({"prompt": "p", "chosen": "a"}, "auto", 2, "rejected", "missing"),
    ({"prompt": "p", "chosen": "  ", "rejected": "b"}, "auto", 2, "chosen", "empty"),
    ({"prompt": "p", "chosen": 3, "rejected": "b"}, "auto", 2, "chosen", "expected a string, got a number"),
    ({"prompt": "p", "chosen": "same", "rejected": "same"}, "auto", 2, "rejected", "same as 'chosen'"),
    (["p", "a", "b"], "auto", 2, None, "expected an object"),
    ({"prompt": USER_HI, "chosen": HELLO, "rejected": [{"role": "bot", "content": "x"}]}, "conversational", 2,
     "rejected[0].role", "expected one of system, user, assistant, tool, got 'bot'"),
    ({"prompt": USER_HI, "chosen": HELLO, "rejected": [{"role": "assistant"}]}, "conversational", 2,
     "rejected[0].content", "missing"),
    ({"prompt": USER_HI, "chosen": USER_HI, "rejected": HELLO}, "conversational", 2, "chosen[0].role",
     "starts with an assistant turn"),
    ({"prompt": "p", "chosen": HELLO, "rejected": GO_AWAY}, "conversational", 2, "prompt", "expected a list"),
    ({"prompt": "p", "responses": ["only one"]}, "candidates", 2, "responses", "needs at least 2 responses, got 1"),
    ({"prompt": "p", "responses": "a, b"}, "candidates", 2, "responses", "expected a list"),
    ({"prompt": "p", "responses": ["x", "y", "x"]}, "candidates", 2, "responses[2]", "same as responses[0]"),
    ({"prompt": "p", "responses": ["x", ""]}, "candidates", 2, "responses[1]", "empty"),
    ({"chosen": "Yes.", "rejected": "No."}, "implicit", 2, "chosen", "shares no leading words"),
    ({"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: c\n\nAssistant: d"}, "implicit", 2,
     "rejected", "turns before the last Assistant turn differ"),
    ({"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: a\n\nAssistant:"}, "implicit", 2,
     "rejected", "last Assistant turn is empty"),
])
def test_bad_row_is_reported_with_line_and_field(tmp_path: Path, bad_row, fmt, line, field, message) -> None:
    first = {"standard": GOOD, "auto": GOOD, "conversational": {"prompt": USER_HI, "chosen": HELLO, "rejected": GO_AWAY},
             "candidates": {"prompt": "p", "responses": ["a", "b"]},
             "implicit": {"chosen": "The sky is blue.", "rejected": "The sky is red."}}[fmt]
    path = write_jsonl(tmp_path / "bad.jsonl", [first, bad_row])
    with pytest.raises(FormatError) as caught:
        read_preference_file(path, format=fmt)
    error = caught.value
    assert (error.path, error.line, error.field) == (path, line, field)
    assert message in error.message
    expected_start = f"{path}:{line}: " + (f"field '{field}': " if field else "")
    assert str(error).startswith(expected_start)


def test_a_row_of_another_shape_than_the_first_is_refused(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "mixed.jsonl", [GOOD, {"prompt": "p", "responses": ["a", "b"]}])
    with pytest.raises(FormatError, match=r"mixed.jsonl:2: field 'chosen': missing"):
        read_preference_file(path)


@pytest.mark.parametrize("name, content, line, message", [
    ("broken.jsonl", b'{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "p",\n', 2, "invalid JSON"),
    ("bytes.jsonl", b'{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "caf\xe9"}\n', 2,
     "not UTF-8 text: byte 0xe9 at column 16"),
    ("empty.jsonl", b"", 0, "the file is empty"),
    ("blank.jsonl", b"\n  \n", 0, "the file is empty"),
    ("empty.json", b"[]", 0, "the file is empty"),
    ("empty.csv", b"prompt,chosen,rejected\n", 0, "the file is empty"),
    ("object.json", b'{"prompt": "p"}', 1, "expected a JSON array"),
    ("broken.json", b'[\n {"prompt": "p", "chosen": "a", "rejected": "b"},\n {"prompt": }\n]', 3, "invalid JSON"),
    ("trailing.json", b'[{"prompt": "p", "chosen": "a", "rejected": "b"}] x', 1, "extra data"),
    ("bytes.csv", b"prompt,chosen,rejected\np,a,b\np,\xff,b\n", 3, "not UTF-8"),
    ("ragged.csv", b"prompt,chosen,rejected\np,a,b,extra\n", 2, "more cells than the header"),
    ("unknown.jsonl", b'{"question": "q", "answer": "a"}\n', 1, "cannot tell the format"),
    ("data.xlsx", b"PK", 0, "unknown file type '.xlsx'"),
    ("data.parquet", b"PAR1", 0, "not a readable Parquet file"),
])
def test_malformed_files_are_refused_with_the_line(tmp_path: Path, name, content, line, message) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(FormatError) as caught:
        read_preference_file(path)
    assert caught.value.line == line and message in caught.value.message
    if caught.value.item:   # an item of a JSON array is named with its line
        assert str(caught.value).startswith(f"{path}: item {caught.value.item} (line {line}): ")
    else:
        assert str(caught.value).startswith(f"{path}:{line}: " if line else f"{path}: ")


def test_missing_file_and_unknown_format_name(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="no such file"):
        read_preference_file(tmp_path / "nope.jsonl")
    path = write_jsonl(tmp_path / "ok.jsonl", [GOOD])
    with pytest.raises(FormatError, match="unknown format 'kto'"):
        read_preference_file(path, format="kto")
    assert read_preference_file(path, format="trl").format == "standard"


def test_a_split_field_is_read_and_checked(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "s.jsonl", [dict(GOOD, split="test"), dict(GOOD, prompt="q", split="train"),
                                              dict(GOOD, prompt="r")])
    assert [r.split for r in read_preference_file(path).records] == ["eval", "train", None]
    bad = write_jsonl(tmp_path / "bad.jsonl", [dict(GOOD, split="holdout")])
    with pytest.raises(FormatError, match=r"bad.jsonl:1: field 'split': expected one of train, eval"):
        read_preference_file(bad)
