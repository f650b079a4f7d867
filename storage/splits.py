"""Deterministic per-pair draws: the train/eval split and which side a pair is shown on.

Both come from the pair's content hashes, so the same pair gets the same split and the
same layout in every workspace and on every machine, and no random state is stored.
"""

from __future__ import annotations

import hashlib

DEFAULT_EVAL_FRACTION = 0.1


def unit_draw(salt: str, *hashes: str) -> float:
    """A number in [0, 1) drawn from the salt and the hashes (uniform over them): the one
    hash-to-fraction draw, shared by the pairs' split and side and the trainer's eval hold-out."""
    digest = hashlib.sha256((salt + "\x00" + "\x00".join(hashes)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_for(prompt_hash: str, a_hash: str, b_hash: str,
              eval_fraction: float = DEFAULT_EVAL_FRACTION) -> str:
    return "eval" if unit_draw("split", prompt_hash, a_hash, b_hash) < eval_fraction else "train"


def display_swapped_for(prompt_hash: str, a_hash: str, b_hash: str) -> bool:
    return unit_draw("side", prompt_hash, a_hash, b_hash) < 0.5
