"""How many rows of the LM head run at once, and of the lean MLP's backward: the rules the engine
(``core.engine.logprobs``, ``core.engine.lean_mlp``) and the memory estimate
(``core.engine.memory_estimate``) both use. No torch import (the form's estimate
reads it while the user types).

A chunk's float32 logits are the head's whole transient memory (the fused head turns them into the
softmax in place), so the bound is on them: ``LOGITS_CHUNK_ELEMENTS`` logits, 32 MiB. At a large
vocabulary that would leave few rows, and a head matmul of few rows reads the whole (V, H) weight
for little work: measured on this CPU, one thread, 151,936 × 896, the head ran at 51 GFLOP/s with
27 rows a chunk, 76 with 55, 97 with 110 and 106 with 220; at 32,000 × 512 it ran at 88-95 GFLOP/s
from 131 rows up. So a chunk is never under ``HEAD_CHUNK_MIN_ROWS`` rows (at 152k: 148 MiB).
"""

from __future__ import annotations

LOGITS_CHUNK_ELEMENTS = 1 << 23      # float32 logits of a chunk: 32 MiB (1,048 rows at 8k, 262 at 32k)
HEAD_CHUNK_MIN_ROWS = 256            # below this the head's matmul slows (see above)


def head_chunk_rows(vocab: int, elements: int = LOGITS_CHUNK_ELEMENTS, min_rows: int = HEAD_CHUNK_MIN_ROWS) -> int:
    """Rows of the LM head computed at once at vocabulary size ``vocab``: ``elements`` logits, but
    at least ``min_rows`` rows (and at least one)."""
    return max(1, min_rows, elements // max(1, vocab))


MLP_CHUNK_ELEMENTS = 1 << 22         # intermediate-sized values of a lean MLP backward chunk: 16 MiB of float32
MLP_CHUNK_MIN_ROWS = 256


def mlp_chunk_rows(intermediate: int, elements: int = MLP_CHUNK_ELEMENTS, min_rows: int = MLP_CHUNK_MIN_ROWS) -> int:
    """Rows of the lean MLP's backward run at once (``core.engine.lean_mlp``): ``elements`` values of
    the MLP's width, but at least ``min_rows`` rows (862 at 4,864 wide, 2,978 at 1,408)."""
    return max(1, min_rows, elements // max(1, intermediate))
