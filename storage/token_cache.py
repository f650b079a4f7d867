"""The ``tokenized_examples`` table: each example's token ids, cached per (tokenisation,
example) like the reference log-probs, so a second run over 100,000 pairs reads its tokens
instead of tokenising them again.

Key: ``tokenization_key`` (the tokenizer, ``max_length`` and the truncation mode: see
``core.engine.modeling.tokenization_fingerprint``) and ``example_hash`` (the texts). The ids
are stored after truncation as one little-endian int32 BLOB per sequence (4 bytes a token,
one row per example, so 100,000 examples are 100,000 rows read in one pass). An example
tokenisation drops is stored too, with its reason and no ids, so it is not tokenised again.
"""

from __future__ import annotations

import sys
from array import array
from dataclasses import dataclass
from typing import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from storage.models import TokenizedExample
from storage.workspace import Workspace

_QUERY_CHUNK = 500        # stay below SQLite's bound-parameter limit
_INSERT_CHUNK = 2_000     # rows per INSERT statement (8 values each)
#: Asking for more examples than this reads the key's whole slice of the table in one pass
#: (filtered here) rather than hundreds of ``IN (...)`` lookups.
_SCAN_ABOVE = 2_000
_ROWS_PER_FETCH = 5_000
_SWAP = sys.byteorder != "little"


@dataclass(frozen=True)
class CachedTokens:
    """One example's sequences after truncation (or why tokenisation dropped it)."""

    chosen_ids: tuple[int, ...]
    chosen_start: int
    rejected_ids: tuple[int, ...]
    rejected_start: int
    dropped: str | None = None


def encode_ids(ids: Sequence[int]) -> bytes:
    """Token ids as little-endian int32 bytes."""
    values = array("i", ids)
    if _SWAP:
        values.byteswap()
    return values.tobytes()


def decode_ids(blob: bytes) -> tuple[int, ...]:
    values = array("i")
    values.frombytes(blob)
    if _SWAP:
        values.byteswap()
    return tuple(values)


def _columns():
    return (TokenizedExample.example_hash, TokenizedExample.chosen_ids, TokenizedExample.chosen_start,
            TokenizedExample.rejected_ids, TokenizedExample.rejected_start, TokenizedExample.dropped)


def load_tokenized(ws: Workspace, tokenization_key: str, example_hashes: Iterable[str]) -> dict[str, CachedTokens]:
    """The cached tokens among ``example_hashes`` (those never stored are absent)."""
    wanted = set(example_hashes)
    found: dict[str, CachedTokens] = {}
    if not wanted:
        return found
    query = select(*_columns()).where(TokenizedExample.tokenization_key == tokenization_key)
    with ws.session() as session:
        # Core rows, not the ORM's: 100,000 rows of plain columns read in a third of the time.
        connection = session.connection()
        if len(wanted) > _SCAN_ABOVE:
            chunks = [connection.execution_options(yield_per=_ROWS_PER_FETCH).execute(query)]
        else:
            unique = sorted(wanted)
            chunks = (connection.execute(query.where(TokenizedExample.example_hash.in_(unique[begin:begin + _QUERY_CHUNK])))
                      for begin in range(0, len(unique), _QUERY_CHUNK))
        for rows in chunks:
            for example_hash, chosen, chosen_start, rejected, rejected_start, dropped in rows:
                if example_hash in wanted:
                    found[example_hash] = CachedTokens(decode_ids(chosen), chosen_start, decode_ids(rejected),
                                                       rejected_start, dropped)
    return found


def store_tokenized(ws: Workspace, tokenization_key: str, tokens: dict[str, CachedTokens]) -> None:
    """Insert newly tokenised examples (example hash -> tokens); a row another process stored
    meanwhile is kept (same key, same tokens)."""
    if not tokens:
        return
    values = [{"tokenization_key": tokenization_key, "example_hash": example_hash,
               "chosen_ids": encode_ids(t.chosen_ids), "chosen_start": t.chosen_start,
               "rejected_ids": encode_ids(t.rejected_ids), "rejected_start": t.rejected_start,
               "dropped": t.dropped} for example_hash, t in tokens.items()]
    dialect = ws.engine.dialect.name
    with ws.writing() as session:
        if dialect in ("sqlite", "postgresql"):
            insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
            # executemany of one statement: no bound-parameter limit, one prepared statement
            statement = insert(TokenizedExample).on_conflict_do_nothing()
            for begin in range(0, len(values), _INSERT_CHUNK):
                session.execute(statement, values[begin:begin + _INSERT_CHUNK])
        else:
            session.add_all(TokenizedExample(**v) for v in values)
