"""The ``reference_logps`` table: reference-model log-probs cached per (base model,
tokenisation, example), so each example's reference pass runs once per workspace.

Key: ``model_key`` fingerprints the base model, ``tokenization_key`` the tokenizer and the
truncation settings, ``example_hash`` the texts (see ``core.engine.reference_cache``, which
computes the values).
"""

from __future__ import annotations

from typing import Sequence

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from storage.models import ReferenceLogp
from storage.workspace import Workspace

# (chosen_logp, rejected_logp) per example hash
ReferenceTable = dict[str, tuple[float, float]]
_QUERY_CHUNK = 500   # stay below SQLite's bound-parameter limit
_SCAN_ABOVE = 2_000  # more examples than this: read the keys' rows in one pass, filtered here


def load_reference_logps(ws: Workspace, model_key: str, tokenization_key: str,
                         example_hashes: Sequence[str]) -> ReferenceTable:
    """The cached values among ``example_hashes`` (those never stored are absent)."""
    found: ReferenceTable = {}
    wanted = set(example_hashes)
    unique = sorted(wanted)
    query = (select(ReferenceLogp.example_hash, ReferenceLogp.chosen_logp, ReferenceLogp.rejected_logp)
             .where(ReferenceLogp.model_key == model_key, ReferenceLogp.tokenization_key == tokenization_key))
    with ws.session() as session:
        if len(unique) > _SCAN_ABOVE:   # 100,000 examples: the keys' rows in one pass, not 200 lookups
            chunks = [session.execute(query.execution_options(yield_per=5_000))]
        else:
            chunks = (session.execute(query.where(ReferenceLogp.example_hash.in_(unique[begin:begin + _QUERY_CHUNK])))
                      for begin in range(0, len(unique), _QUERY_CHUNK))
        for rows in chunks:
            for example_hash, chosen, rejected in rows:
                if example_hash in wanted:
                    found[example_hash] = (chosen, rejected)
    return found


def store_reference_logps(ws: Workspace, model_key: str, tokenization_key: str, rows: list[dict]) -> None:
    """Insert computed values (dicts with ``example_hash``, ``chosen_logp``, ``rejected_logp``,
    ``chosen_tokens``, ``rejected_tokens``); a row another process stored meanwhile is kept
    (same key, same value)."""
    if not rows:
        return
    values = [{"model_key": model_key, "tokenization_key": tokenization_key, **row} for row in rows]
    dialect = ws.engine.dialect.name
    with ws.writing() as session:
        if dialect in ("sqlite", "postgresql"):
            insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
            for begin in range(0, len(values), _QUERY_CHUNK):
                session.execute(insert(ReferenceLogp).values(values[begin:begin + _QUERY_CHUNK])
                                .on_conflict_do_nothing())
        else:
            session.add_all(ReferenceLogp(**v) for v in values)
