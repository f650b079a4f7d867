"""A chat exchange sent to labelling: the two models' answers to the same conversation become one
pair to judge, each answer a generated response tagged with its own generation (its model, its
run's adapter, the sampling settings) — in one transaction.

The pair goes through ``storage.ingest.import_records`` like any candidate pair (prompt and
responses deduplicated by content, split and sides drawn from the hashes). An answer the prompt
already has as a response stays that response, with its own origin; new ones are tagged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import select, update

from storage.content_keys import Text, response_hash
from storage.ingest import ImportRecord, import_records
from storage.models import Generation, Pair, Response, ResponseOrigin, utcnow
from storage.workspace import Workspace

SOURCE = "chat"      # the pair's source chip: it does not say which model wrote which side


@dataclass(frozen=True)
class ChatPairAnswer:
    text: str
    base_model: str
    run_id: str | None            # None: the base model
    label: str                    # "Base" or the run's name


@dataclass(frozen=True)
class ChatPairWrite:
    pair_id: int
    pair_added: bool              # False: the workspace had this pair already
    generation_ids: tuple[int, int]


def store_chat_pair(ws: Workspace, prompt: Text, answers: Sequence[ChatPairAnswer], settings: dict) -> ChatPairWrite:
    """Store the two ``answers`` to ``prompt`` as one unlabelled pair, each with its generation."""
    if len(answers) != 2 or answers[0].text == answers[1].text:
        raise ValueError("a pair needs two different answers")
    with ws.writing() as session:
        generations = [Generation(base_model=a.base_model, run_id=a.run_id, label=a.label,
                                  settings_json=json.dumps(settings, sort_keys=True), created_at=utcnow())
                       for a in answers]
        session.add_all(generations)
        session.flush()
        summary = import_records(ws, [ImportRecord(prompt, [a.text for a in answers], line=1)], SOURCE,
                                 origin=ResponseOrigin.GENERATED, session=session)
        prompt_id = session.scalar(select(Pair.prompt_id).where(Pair.id == summary.pair_ids[0]))
        for answer, generation in zip(answers, generations):
            session.execute(update(Response)
                            .where(Response.prompt_id == prompt_id, Response.hash == response_hash(answer.text),
                                   Response.origin == ResponseOrigin.GENERATED, Response.generation_id.is_(None))
                            .values(generation_id=generation.id, model_name=answer.label))
        return ChatPairWrite(summary.pair_ids[0], summary.pairs_added > 0, (generations[0].id, generations[1].id))
