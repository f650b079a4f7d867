"""Content keys of prompts and responses, and finding the stored one a text or chat form names.

A prompt or response is keyed by a hash of its content: plain text and chat messages never
share a key. Yet the same prompt travels in both forms — our TRL-standard export flattens a chat
prompt to its text rendering ("System: ...\\n\\nUser: ..."), the conversational and OpenAI
exports turn a text prompt into one user turn — so an import that should find what is already
stored (``match_forms``) also looks for the other forms:

- a text prompt ``X`` is the chat prompt ``[user: X]``, or a chat prompt whose text rendering is ``X``;
- a chat prompt is the text prompt of its rendering, and ``[user: X]`` is the text prompt ``X``;
- a text response ``Y`` is the chat response ``[assistant: Y]``, or a chat response whose text is ``Y``;
- a chat response is the text response of its text (``completion_text``).

The key a match resolves to is the stored one's, so splits drawn from keys stay as they were.
"""

from __future__ import annotations

import json
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Prompt, Response, content_hash

Text = str | list[dict]

ROLE_LABELS = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}


def canonical_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def render_messages(messages: list[dict]) -> str:
    """A readable plain-text rendering of chat turns ("User: ...", blank line between turns)."""
    return "\n\n".join(f"{ROLE_LABELS.get(m['role'], str(m['role']).title())}: {m['content']}"
                       for m in messages)


def completion_text(messages: list[dict]) -> str:
    """The text of a conversational completion (normally one assistant turn)."""
    if len(messages) == 1:
        return messages[0]["content"]
    return render_messages(messages)


def prompt_hash(prompt: Text) -> str:
    """Content key of a prompt; a text prompt and a chat prompt never share one."""
    return content_hash("text", prompt) if isinstance(prompt, str) else content_hash("chat", canonical_json(prompt))


def response_hash(response: Text) -> str:
    return content_hash("text", response) if isinstance(response, str) else content_hash(
        "chat", canonical_json(response))


def prompt_alternatives(prompt: Text) -> list[str]:
    """Keys of the other forms of the same prompt (see the module's rules)."""
    if isinstance(prompt, str):
        return [prompt_hash([{"role": "user", "content": prompt}])]
    keys = [prompt_hash(render_messages(prompt))]
    if len(prompt) == 1 and prompt[0]["role"] == "user":
        keys.append(prompt_hash(prompt[0]["content"]))
    return keys


def response_alternatives(response: Text) -> list[str]:
    if isinstance(response, str):
        return [response_hash([{"role": "assistant", "content": response}])]
    return [response_hash(completion_text(response))]


def _chunks(values: list, size: int = 500):
    for start in range(0, len(values), size):
        yield values[start:start + size]


def match_prompts(session: Session, prompts: dict[str, Text], match_forms: bool) -> tuple[dict[str, str], dict[str, int]]:
    """For incoming prompts (key -> content): (incoming key -> the stored prompt's key, stored key -> id)."""
    ids: dict[str, int] = {}
    wanted = list(prompts)
    for chunk in _chunks(wanted):
        ids.update(session.execute(select(Prompt.hash, Prompt.id).where(Prompt.hash.in_(chunk))).all())
    found = {key: key for key in wanted if key in ids}
    if not match_forms or len(found) == len(wanted):
        return found, ids
    alternatives = {key: prompt_alternatives(prompts[key]) for key in wanted if key not in found}
    others = sorted({alt for alts in alternatives.values() for alt in alts})
    for chunk in _chunks(others):
        ids.update(session.execute(select(Prompt.hash, Prompt.id).where(Prompt.hash.in_(chunk))).all())
    for key, alts in alternatives.items():
        hit = next((alt for alt in alts if alt in ids), None)
        if hit is not None:
            found[key] = hit
    # A text prompt that is the rendering of a stored chat prompt of several turns.
    texts = {prompts[key]: key for key in alternatives if key not in found and isinstance(prompts[key], str)}
    if texts:
        rendered = select(Prompt.hash, Prompt.id, Prompt.text).where(Prompt.messages_json.is_not(None))
        for stored_key, prompt_id, text in session.execute(rendered.execution_options(yield_per=5000)):
            if text in texts:
                found[texts.pop(text)] = stored_key
                ids[stored_key] = prompt_id
    return found, ids


def stored_responses(session: Session, prompt_ids: Iterable[int],
                     match_forms: bool) -> dict[tuple[int, str], tuple[int, str]]:
    """(prompt id, key) -> (response id, stored key) of every response of ``prompt_ids``; with
    ``match_forms`` also under the text key of chat responses of several turns."""
    known: dict[tuple[int, str], tuple[int, str]] = {}
    for chunk in _chunks(list(prompt_ids)):
        query = select(Response.prompt_id, Response.hash, Response.id).where(Response.prompt_id.in_(chunk))
        for pid, key, rid in session.execute(query):
            known[(pid, key)] = (rid, key)
        if match_forms:
            # completion_text of several turns is their rendering, which starts with the first role.
            several = query.add_columns(Response.text).where(Response.messages_json.is_not(None),
                                                             Response.text.like("Assistant: %"))
            for pid, key, rid, text in session.execute(several):
                known.setdefault((pid, response_hash(text)), (rid, key))
    return known


def find_response(known: dict[tuple[int, str], tuple[int, str]], prompt_id: int, key: str, response: Text,
                  match_forms: bool) -> tuple[int, str] | None:
    hit = known.get((prompt_id, key))
    if hit is not None or not match_forms:
        return hit
    return next((known[(prompt_id, alt)] for alt in response_alternatives(response) if (prompt_id, alt) in known),
                None)
