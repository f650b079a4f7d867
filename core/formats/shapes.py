"""The row shapes DPO Studio reads, checked field by field and turned into ``ImportRecord``s.

- ``standard`` (TRL standard): ``prompt``, ``chosen``, ``rejected`` strings.
- ``conversational`` (TRL conversational): ``prompt`` a list of ``{"role", "content"}``
  messages, ``chosen``/``rejected`` the assistant messages that follow (a ``chosen`` that
  repeats the prompt's turns first is accepted and the repeat dropped).
- ``implicit`` (TRL implicit prompt): only ``chosen``/``rejected``; the prompt is what they
  share. Anthropic-HH transcripts (``\\n\\nHuman: ...\\n\\nAssistant: ...``) become chat
  messages: the prompt is every turn before the last Assistant turn, the completion that
  turn (turn texts stripped), exactly as TRL's own hh-rlhf conversion does. Other strings
  split at the last whitespace inside their common prefix (the completion keeps the
  space); message lists split after their common leading messages.
- ``ultrafeedback`` (HuggingFaceH4/ultrafeedback_binarized): ``prompt`` text, ``chosen`` /
  ``rejected`` whole conversations that begin with the user turn; the prompt is the turns they
  share (a chat prompt, as trl-lib's copy of the same data gives).
- ``openai`` (OpenAI preference fine-tuning JSONL): ``input.messages``, ``preferred_output``
  and ``non_preferred_output`` (assistant messages); a ``developer`` turn is a system turn.
- ``candidates``: ``prompt`` (text or messages) and ``responses``, a list of 2 or more
  texts (or assistant message lists), or numbered columns ``response_1``, ``response_2``, ...;
  unlabelled, they become every pair to annotate.
- ``argilla`` and ``labelstudio``: exports of those annotation tools (``core.formats.tool_exports``).

Any shape may have a ``split`` field ("train", or "eval"; "test"/"validation" mean eval), as
our own exports do: it fixes a new pair's split, so an export re-imports into the same
split; without it the split is drawn from the pair's content hashes. Numbers a labelled row
carries about its pair (fields named like ``score_chosen``, ``rating``) are kept as the pair's
metadata (``ImportRecord.metadata``). Messages keep only ``role`` and ``content``; roles are
system, user, assistant or tool. Other fields are ignored.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from core.formats.errors import FormatError, Place
from storage.ingest import ImportRecord

FORMATS = ("standard", "conversational", "implicit", "ultrafeedback", "openai", "candidates", "argilla",
           "labelstudio")
ALIASES = {"trl": "standard", "conversation": "conversational", "unlabelled": "candidates",
           "label-studio": "labelstudio", "label_studio": "labelstudio"}
ROLES = ("system", "user", "assistant", "tool")
HH_TURN = re.compile(r"\n\n(Human|Assistant):[ \t]?")
SPLIT_NAMES = {"train": "train", "eval": "eval", "test": "eval", "validation": "eval"}
RESPONSE_COLUMN = re.compile(r"response_?(\d+)$")
_SCORE_FIELD = re.compile(r"(score|rating)", re.IGNORECASE)


def canonical_format(name: str, path: Path) -> str:
    name = ALIASES.get(name, name)
    if name not in FORMATS:
        raise FormatError(path, 0, None, f"unknown format {name!r}; expected auto, "
                          f"{', '.join(FORMATS)} (or trl for standard)")
    return name


def type_name(value: Any) -> str:
    return {str: "a string", list: "a list", dict: "an object", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def numbered_responses(row: dict) -> list:
    """The values of ``response_1``, ``response_2``, ... columns in number order (empty cells left out)."""
    numbered = []
    for key, value in row.items():
        match = RESPONSE_COLUMN.match(key)
        if match and value is not None and value != "" and not (isinstance(value, str) and not value.strip()):
            numbered.append((int(match.group(1)), value))
    return [value for _, value in sorted(numbered, key=lambda item: item[0])]


class RowReader:
    """Checks rows of one file in one shape; every error names the file, line (or item) and field."""

    def __init__(self, path: Path, shape: str, from_csv: bool = False):
        self.path, self.shape, self.from_csv = path, shape, from_csv
        self.line = 0
        self.place = Place()

    def fail(self, field: str | None, message: str) -> FormatError:
        place = self.place
        return FormatError(place.source or self.path, self.line, field, message, item=place.item, unit=place.unit)

    def records(self, place: Place, row: Any) -> list[ImportRecord]:
        """The records of one row: one, or for a ranking of several responses (Argilla) one per pair."""
        self.place, self.line = place, place.line
        if not isinstance(row, dict):
            raise self.fail(None, f"expected an object with named fields, got {type_name(row)}")
        if self.from_csv:
            row = self._decode_csv_cells(row)
        if self.shape in ("argilla", "labelstudio"):
            from core.formats.tool_exports import TOOL_READERS

            records = TOOL_READERS[self.shape](self, row)
        else:
            records = [getattr(self, f"_{self.shape}")(row)]
            if records[0].chosen is not None:
                records[0].metadata = self._scores(row)
        split = self._split(row.get("split"))
        for record in records:
            record.split = split
            record.line = place.line or place.item
        return records

    def _scores(self, row: dict) -> dict | None:
        """Numbers the row gives about its pair (score_chosen, rating, ...), kept with its label."""
        found = {key: value for key, value in row.items() if _SCORE_FIELD.search(key)
                 and isinstance(value, (int, float)) and not isinstance(value, bool)}
        return found or None

    def _split(self, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or value.strip().lower() not in SPLIT_NAMES:
            raise self.fail("split", f"expected one of {', '.join(SPLIT_NAMES)}, got {value!r}")
        return SPLIT_NAMES[value.strip().lower()]

    # -- field checks ------------------------------------------------------------------
    def _get(self, row: dict, name: str) -> Any:
        if name not in row:
            raise self.fail(name, "missing")
        return row[name]

    def _text(self, value: Any, field: str) -> str:
        if not isinstance(value, str):
            raise self.fail(field, f"expected a string, got {type_name(value)}")
        if not value.strip():
            raise self.fail(field, "empty")
        return value

    def _messages(self, value: Any, field: str) -> list[dict]:
        if not isinstance(value, list):
            raise self.fail(field, f"expected a list of {{\"role\", \"content\"}} messages, got {type_name(value)}")
        if not value:
            raise self.fail(field, "empty (no messages)")
        messages = []
        for i, message in enumerate(value):
            where = f"{field}[{i}]"
            if not isinstance(message, dict):
                raise self.fail(where, f"expected a {{\"role\", \"content\"}} message, got {type_name(message)}")
            role = message.get("role")
            if role not in ROLES:
                raise self.fail(f"{where}.role", f"expected one of {', '.join(ROLES)}, got {role!r}"
                                if "role" in message else "missing")
            if "content" not in message:
                raise self.fail(f"{where}.content", "missing")
            messages.append({"role": role, "content": self._text(message["content"], f"{where}.content")})
        return messages

    def _text_or_messages(self, value: Any, field: str) -> str | list[dict]:
        return self._messages(value, field) if isinstance(value, list) else self._text(value, field)

    def _assistant_turns(self, messages: list[dict], field: str) -> list[dict]:
        if messages[0]["role"] != "assistant":
            raise self.fail(f"{field}[0].role", f"a completion starts with an assistant turn, got "
                            f"{messages[0]['role']!r}")
        return messages

    def _different(self, chosen: Any, rejected: Any) -> None:
        if chosen == rejected:
            raise self.fail("rejected", "same as 'chosen' (a pair needs two different responses)")

    # -- shapes ------------------------------------------------------------------------
    def _standard(self, row: dict) -> ImportRecord:
        prompt = self._text(self._get(row, "prompt"), "prompt")
        chosen = self._text(self._get(row, "chosen"), "chosen")
        rejected = self._text(self._get(row, "rejected"), "rejected")
        self._different(chosen, rejected)
        return ImportRecord(prompt, [chosen, rejected], 0, self.line)

    def _conversational(self, row: dict) -> ImportRecord:
        prompt = self._messages(self._get(row, "prompt"), "prompt")
        completions = []
        for name in ("chosen", "rejected"):
            messages = self._messages(self._get(row, name), name)
            if len(messages) > len(prompt) and messages[:len(prompt)] == prompt:
                messages = messages[len(prompt):]  # a full conversation: keep what follows the prompt
            completions.append(self._assistant_turns(messages, name))
        self._different(*completions)
        return ImportRecord(prompt, completions, 0, self.line)

    def _implicit(self, row: dict) -> ImportRecord:
        chosen, rejected = self._get(row, "chosen"), self._get(row, "rejected")
        if isinstance(chosen, list) or isinstance(rejected, list):
            chosen, rejected = self._messages(chosen, "chosen"), self._messages(rejected, "rejected")
            self._different(chosen, rejected)
            return self._split_messages(chosen, rejected)
        chosen, rejected = self._text(chosen, "chosen"), self._text(rejected, "rejected")
        self._different(chosen, rejected)
        if HH_TURN.search(chosen) and HH_TURN.search(rejected):
            return self._split_messages(self._hh_turns(chosen, "chosen"), self._hh_turns(rejected, "rejected"),
                                        transcript=True)
        shared = 0
        for x, y in zip(chosen, rejected):
            if x != y:
                break
            shared += 1
        cut = max(chosen.rfind(" ", 0, shared + 1), chosen.rfind("\n", 0, shared + 1))
        cut = cut if cut > 0 else 0
        if not chosen[:cut].strip():
            raise self.fail("chosen", "shares no leading words with 'rejected' to take as the prompt "
                            "(give a 'prompt' field)")
        if not chosen[cut:].strip() or not rejected[cut:].strip():
            field = "chosen" if not chosen[cut:].strip() else "rejected"
            raise self.fail(field, "nothing left after the shared prompt")
        return ImportRecord(chosen[:cut], [chosen[cut:], rejected[cut:]], 0, self.line)

    def _hh_turns(self, transcript: str, field: str) -> list[dict]:
        parts = HH_TURN.split(transcript)
        if parts[0].strip():
            raise self.fail(field, "text before the first '\\n\\nHuman:' turn")
        return [{"role": "user" if speaker == "Human" else "assistant", "content": content.strip()}
                for speaker, content in zip(parts[1::2], parts[2::2])]

    def _split_messages(self, chosen: list[dict], rejected: list[dict], transcript: bool = False) -> ImportRecord:
        if transcript:
            # Prompt: every turn before the last Assistant turn (of each; they must agree).
            for name, turns in (("chosen", chosen), ("rejected", rejected)):
                if turns[-1]["role"] != "assistant":
                    raise self.fail(name, "the transcript does not end with an Assistant turn")
                if not turns[-1]["content"]:
                    raise self.fail(name, "the last Assistant turn is empty")
                if len(turns) < 2:
                    raise self.fail(name, "no Human turn before the last Assistant turn")
            if chosen[:-1] != rejected[:-1]:
                raise self.fail("rejected", "its turns before the last Assistant turn differ from 'chosen'")
            return ImportRecord(chosen[:-1], [chosen[-1:], rejected[-1:]], 0, self.line)
        shared = 0
        while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
            shared += 1
        if shared == 0:
            raise self.fail("chosen", "shares no leading messages with 'rejected' to take as the prompt")
        for name, turns in (("chosen", chosen), ("rejected", rejected)):
            if len(turns) == shared:
                raise self.fail(name, "nothing left after the shared prompt messages")
        return ImportRecord(chosen[:shared], [self._assistant_turns(chosen[shared:], "chosen"),
                                               self._assistant_turns(rejected[shared:], "rejected")], 0, self.line)

    def _ultrafeedback(self, row: dict) -> ImportRecord:
        prompt = self._text(self._get(row, "prompt"), "prompt")
        chosen = self._messages(self._get(row, "chosen"), "chosen")
        rejected = self._messages(self._get(row, "rejected"), "rejected")
        self._different(chosen, rejected)
        if chosen[0]["role"] == "assistant" and rejected[0]["role"] == "assistant":
            return ImportRecord([{"role": "user", "content": prompt}], [chosen, rejected], 0, self.line)
        return self._split_messages(chosen, rejected)

    def _openai(self, row: dict) -> ImportRecord:
        given = self._get(row, "input")
        if not isinstance(given, dict):
            raise self.fail("input", f"expected an object with \"messages\", got {type_name(given)}")
        if "messages" not in given:
            raise self.fail("input.messages", "missing")
        prompt = self._messages(_openai_messages(given["messages"]), "input.messages")
        completions = []
        for name in ("preferred_output", "non_preferred_output"):
            completions.append(self._assistant_turns(self._messages(_openai_messages(self._get(row, name)), name),
                                                     name))
        if completions[0] == completions[1]:
            raise self.fail("non_preferred_output", "same as 'preferred_output' (a pair needs two different responses)")
        return ImportRecord(prompt, completions, 0, self.line)

    def _candidates(self, row: dict) -> ImportRecord:
        prompt = self._text_or_messages(self._get(row, "prompt"), "prompt")
        responses = row["responses"] if "responses" in row else numbered_responses(row) or self._get(row, "responses")
        if not isinstance(responses, list):
            raise self.fail("responses", f"expected a list of responses, got {type_name(responses)}")
        if len(responses) < 2:
            raise self.fail("responses", f"needs at least 2 responses, got {len(responses)}")
        return ImportRecord(prompt, self.distinct_responses(responses, "responses"), None, self.line)

    def distinct_responses(self, responses: list, field: str, names: list[str] | None = None) -> list:
        """Each response checked (text, or assistant messages) and different from the others."""
        checked = []
        for i, response in enumerate(responses):
            where = names[i] if names else f"{field}[{i}]"
            value = self._text_or_messages(response, where)
            if isinstance(value, list):
                self._assistant_turns(value, where)
            if value in checked:
                first = names[checked.index(value)] if names else f"{field}[{checked.index(value)}]"
                raise self.fail(where, f"same as {first}")
            checked.append(value)
        return checked

    # -- CSV ---------------------------------------------------------------------------
    def _decode_csv_cells(self, row: dict[str, str]) -> dict[str, Any]:
        """CSV cells are strings: a cell holding a JSON list becomes that list (messages, or
        the responses list); a score cell holding a number becomes that number."""
        decoded: dict[str, Any] = {}
        for key, value in row.items():
            if key in ("prompt", "chosen", "rejected", "responses") and value.lstrip().startswith("["):
                try:
                    parsed = json.loads(value)
                except json.JSONDecodeError as exc:
                    if key == "responses":
                        raise self.fail(key, f"invalid JSON list: {exc.msg} (column {exc.colno})") from None
                    parsed = value
                if isinstance(parsed, list) and (key == "responses" or all(isinstance(m, dict) for m in parsed)):
                    value = parsed
            elif _SCORE_FIELD.search(key):
                try:
                    value = float(value)
                except ValueError:
                    pass
            decoded[key] = value
        return decoded


def _openai_messages(value: Any) -> Any:
    """OpenAI's messages as ours: a ``developer`` turn is a system turn; content given as parts
    (``[{"type": "text", "text": ...}]``) is their text joined."""
    if not isinstance(value, list):
        return value
    messages = []
    for message in value:
        if isinstance(message, dict):
            message = dict(message)
            if message.get("role") == "developer":
                message["role"] = "system"
            content = message.get("content")
            if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
                message["content"] = "".join(str(p.get("text", "")) for p in content)
        messages.append(message)
    return messages
