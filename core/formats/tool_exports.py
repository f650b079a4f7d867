"""Rows exported by annotation tools: Argilla and Label Studio.

**Argilla** (2.x ``records.to_list()`` / ``to_json``: ``{"id", "fields": {...}, "responses":
{question: [{"value", "user_id", "status"}]}, ...}``; 2.x ``to_datasets()`` / ``to_hub``, flat:
the fields as columns plus ``question.responses`` / ``question.responses.status``; 1.x
FeedbackDataset on the Hub: a column per question holding ``{"user_id": [...], "value": [...],
"status": [...]}``). The prompt is the field named prompt, instruction, question, input, query or
text; the responses are the numbered fields (``response1``, ``response-2``, ``generation_1``,
``answer2``, ...). The label is the first submitted answer of a ranking question (a list of
response names, best first, or of ``{"value", "rank"}``), else of a label question naming a
response, else the rating questions of each response (``response1-rating``, ``rating_2``,
higher is better; the ratings are kept as the pairs' metadata). With more than two responses a
ranking makes one labelled pair for every two responses it orders; responses it ranks equal, and
a record nobody answered, become pairs to label.

**Label Studio** (JSON export: ``[{"id", "data": {...}, "annotations": [{"result": [{"type":
"pairwise", "value": {"selected": "left"}, ...}], "was_cancelled": false}]}]``). The prompt is the
data field named as above, the two responses are the numbered data fields (``answer1``/``answer2``,
``text1``/``text2``) — left is the first, as in Label Studio's pairwise template, unless the result
names them (``"to_name": "answer1,answer2"``). The first annotation that was not cancelled and
chose a side is the label; a task without one becomes a pair to label.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from storage.ingest import ImportRecord

if TYPE_CHECKING:
    from core.formats.shapes import RowReader

PROMPT_FIELDS = ("prompt", "instruction", "question", "input", "query", "text")
RESPONSE_FIELD = re.compile(r"^(response|generation|completion|answer|output|text|txt)s?[-_ ]?(\d+)$", re.IGNORECASE)
_NUMBER = re.compile(r"(\d+)")
_META_KEYS = {"id", "_server_id", "status", "inserted_at", "updated_at", "external_id", "metadata", "vectors"}


def _prompt_field(reader: RowReader, fields: dict, where: str) -> tuple[str, Any]:
    for name in PROMPT_FIELDS:
        if name in fields and fields[name] not in (None, ""):
            return name, reader._text_or_messages(fields[name], f"{where}{name}")
    raise reader.fail(where.rstrip(".") or None, f"no prompt field (one of {', '.join(PROMPT_FIELDS)}) among "
                      f"{sorted(fields)}")


def _response_fields(fields: dict) -> list[str]:
    numbered = [(int(m.group(2)), name) for name in fields if (m := RESPONSE_FIELD.match(name))
                and fields[name] not in (None, "")]
    return [name for _, name in sorted(numbered)]


def _pair_records(reader: RowReader, prompt: Any, responses: list, ranks: dict[int, float] | None,
                  metadata: dict | None) -> list[ImportRecord]:
    """Labelled records for every two responses ``ranks`` orders (lower rank is better); the
    rest as pairs to label. No ranks: one record of candidates."""
    if not ranks:
        return [ImportRecord(prompt, responses, None, reader.line)]
    records = []
    for i in range(len(responses)):
        for j in range(i + 1, len(responses)):
            if i in ranks and j in ranks and ranks[i] != ranks[j]:
                better, worse = (i, j) if ranks[i] < ranks[j] else (j, i)
                records.append(ImportRecord(prompt, [responses[better], responses[worse]], 0, reader.line,
                                            metadata=metadata))
            else:
                records.append(ImportRecord(prompt, [responses[i], responses[j]], None, reader.line))
    return records


def _index_of(name: Any, names: list[str]) -> int | None:
    """Which response a label names: its field name, or its number ("2", "Response 2")."""
    if not isinstance(name, (str, int)) or isinstance(name, bool):
        return None
    text = str(name).strip()
    if text in names:
        return names.index(text)
    number = _NUMBER.search(text)
    if number:
        for i, field in enumerate(names):
            if _NUMBER.search(field).group(1) == number.group(1):
                return i
    return None


# -- Argilla -----------------------------------------------------------------------------------

def _argilla_parts(row: dict) -> tuple[dict, dict[str, list[tuple[Any, str | None]]]]:
    """(fields, question -> [(value, status), ...]) of any of Argilla's export layouts."""
    if isinstance(row.get("fields"), dict) and isinstance(row.get("responses"), dict):
        answers = {q: [(a.get("value"), a.get("status")) for a in given if isinstance(a, dict)]
                   for q, given in row["responses"].items() if isinstance(given, list)}
        return row["fields"], answers
    fields, answers = {}, {}
    for key, value in row.items():
        if key.endswith(".responses") and isinstance(value, list):
            statuses = row.get(f"{key}.status") or [None] * len(value)
            answers[key[:-len(".responses")]] = list(zip(value, statuses))
        elif isinstance(value, dict) and {"value", "status"} <= set(value) and isinstance(value["value"], list):
            answers[key] = list(zip(value["value"], value["status"] or [None] * len(value["value"])))
        elif "." not in key and key not in _META_KEYS and not key.endswith(("-suggestion", "-suggestion-metadata")):
            fields[key] = value
    return fields, answers


def _submitted(answers: list[tuple[Any, str | None]]) -> Any:
    for value, status in answers:
        if value is not None and status in (None, "submitted"):
            return value
    return None


def _ranking(value: Any, names: list[str]) -> dict[int, float] | None:
    if not isinstance(value, list) or not value:
        return None
    ranks: dict[int, float] = {}
    for position, entry in enumerate(value, start=1):
        if isinstance(entry, dict):
            index, rank = _index_of(entry.get("value"), names), entry.get("rank", position)
        else:
            index, rank = _index_of(entry, names), position
        if index is None or not isinstance(rank, (int, float)):
            return None
        ranks[index] = float(rank)
    return ranks


def argilla_records(reader: RowReader, row: dict) -> list[ImportRecord]:
    fields, answers = _argilla_parts(row)
    where = "fields." if "fields" in row and isinstance(row["fields"], dict) else ""
    _, prompt = _prompt_field(reader, fields, where)
    names = _response_fields(fields)
    if len(names) < 2:
        raise reader.fail(where.rstrip(".") or None, f"needs 2 or more numbered response fields (response1, "
                          f"response2, ...), found {names or 'none'} among {sorted(fields)}")
    responses = reader.distinct_responses([fields[n] for n in names], "responses", [f"{where}{n}" for n in names])
    given = {q: _submitted(a) for q, a in answers.items()}
    given = {q: v for q, v in given.items() if v is not None}
    ratings = {q: v for q, v in given.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for value in given.values():
        ranks = _ranking(value, names)
        if ranks:
            return _pair_records(reader, prompt, responses, ranks, ratings or None)
    for value in given.values():
        index = _index_of(value, names) if isinstance(value, str) else None
        if index is not None:
            ranks = {i: (1.0 if i == index else 2.0) for i in range(len(names))}
            return _pair_records(reader, prompt, responses, ranks, ratings or None)
    ranks = {}
    for question, rating in ratings.items():
        index = next((i for i, n in enumerate(names) if n.lower() in question.lower()), None)
        if index is None:
            index = _index_of(question, names)
        if index is not None:
            ranks[index] = -float(rating)   # a higher rating ranks first
    return _pair_records(reader, prompt, responses, ranks or None, ratings or None)


# -- Label Studio --------------------------------------------------------------------------------

def _pairwise_choice(annotations: Any) -> tuple[str, list[str] | None] | None:
    """("left" or "right", the compared names if the result gives them) of the first usable annotation."""
    if not isinstance(annotations, list):
        return None
    for annotation in annotations:
        if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
            continue
        for result in annotation.get("result") or []:
            if not isinstance(result, dict) or result.get("type") != "pairwise":
                continue
            selected = (result.get("value") or {}).get("selected")
            if selected in ("left", "right"):
                to_name = result.get("to_name")
                names = to_name.split(",") if isinstance(to_name, str) and "," in to_name else None
                return selected, names
    return None


def labelstudio_records(reader: RowReader, row: dict) -> list[ImportRecord]:
    data = row["data"]
    _, prompt = _prompt_field(reader, data, "data.")
    choice = _pairwise_choice(row.get("annotations", row.get("completions")))
    names = choice[1] if choice and choice[1] and all(n in data for n in choice[1]) else None
    if names is None:
        names = [n for n in _response_fields(data)]
    if len(names) != 2:
        raise reader.fail("data", f"needs the two compared responses as numbered fields (answer1, answer2), "
                          f"found {names or 'none'} among {sorted(data)}")
    left, right = reader.distinct_responses([data[n] for n in names], "data", [f"data.{n}" for n in names])
    if choice is None:
        return [ImportRecord(prompt, [left, right], None, reader.line)]
    chosen, rejected = (left, right) if choice[0] == "left" else (right, left)
    return [ImportRecord(prompt, [chosen, rejected], 0, reader.line)]


TOOL_READERS = {"argilla": argilla_records, "labelstudio": labelstudio_records}
