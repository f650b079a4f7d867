"""Tokenised pairs cached in the workspace (``storage.token_cache``), like the reference
log-probs: a second run over the same pairs with the same tokenisation reads its token ids
instead of tokenising 100,000 pairs again.

Cache key: ``tokenization_key`` (``modeling.tokenization_fingerprint``: tokenizer, chat
template, max_length, truncation mode) and each example's ``example_hash`` (its texts; the
same hash the reference cache uses). A different tokenizer, length or truncation, or an edited
text misses the cache and is tokenised afresh. The result is exactly ``tokenize_examples``'s:
the kept pairs in input order and the dropped ones counted by reason. ``known``: tokens already
read under the same key (a training process prepared ahead, ``core.engine.prepared_inputs``);
only the examples they lack are looked up.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Callable, Sequence

from core.engine import batching
from core.engine.batching import TokenizedPair, hash_of
from storage.token_cache import CachedTokens, load_tokenized, store_tokenized
from storage.workspace import Workspace

if TYPE_CHECKING:
    from core.engine.prepared_inputs import PreparedInputs

#: Progress is reported about this many times over the examples to tokenise.
_PROGRESS_STEPS = 50


def _tokenize_one(tokenizer, example: Any, max_length: int, truncation_mode: str) -> CachedTokens:
    kept, dropped = batching.tokenize_examples(tokenizer, [example], max_length, truncation_mode)
    if not kept:
        return CachedTokens((), 0, (), 0, next(iter(dropped)))
    pair = kept[0]
    return CachedTokens(pair.chosen_ids, pair.chosen_start, pair.rejected_ids, pair.rejected_start)


def tokenize_with_cache(ws: Workspace, tokenizer, examples: Sequence[Any], max_length: int, truncation_mode: str,
                        tokenization_key: str, progress: Callable[[int, int], None] | None = None,
                        store: bool = True, known: dict[str, CachedTokens] | None = None,
                        ) -> tuple[list[TokenizedPair], Counter, int]:
    """``batching.tokenize_examples`` through the workspace's cache: the examples found under
    ``tokenization_key`` (in ``known``, else read) are used, only the others tokenised
    (``progress(done, total)`` over those) and, with ``store``, added to the cache.

    Returns (the kept pairs in input order, dropped pairs by reason, examples tokenised now).
    """
    hashes = [hash_of(e) for e in examples]
    cached = dict(known) if known else {}
    cached.update(load_tokenized(ws, tokenization_key, [h for h in hashes if h not in cached]))
    missing: dict[str, Any] = {}
    for digest, example in zip(hashes, examples):
        if digest not in cached and digest not in missing:
            missing[digest] = example
    fresh: dict[str, CachedTokens] = {}
    every = max(1, len(missing) // _PROGRESS_STEPS)
    for done, (digest, example) in enumerate(missing.items(), 1):
        fresh[digest] = _tokenize_one(tokenizer, example, max_length, truncation_mode)
        if progress is not None and (done % every == 0 or done == len(missing)):
            progress(done, len(missing))
    if store:
        store_tokenized(ws, tokenization_key, fresh)
    cached.update(fresh)
    kept: list[TokenizedPair] = []
    dropped: Counter = Counter()
    for digest, example in zip(hashes, examples):
        tokens = cached[digest]
        if tokens.dropped is not None:
            dropped[tokens.dropped] += 1
            continue
        kept.append(TokenizedPair(example.pair_id, digest, tokens.chosen_ids, tokens.chosen_start,
                                  tokens.rejected_ids, tokens.rejected_start, getattr(example, "split", "train")))
    return kept, dropped, len(missing)


def cached_tokenizer(ws: Workspace, tokenization_key: str, progress: Callable[[int, int], None] | None = None,
                     store: bool = True, prepared: "PreparedInputs | None" = None,
                     ) -> Callable[..., tuple[list[TokenizedPair], Counter]]:
    """``tokenize_with_cache`` with ``batching.tokenize_examples``'s signature and result, for
    ``run_start.tokenize_run_data``; ``prepared``: what a training process read before Start
    (``core.engine.prepared_inputs``), used where its key and examples are the run's."""
    def tokenize(tokenizer, examples: Sequence[Any], max_length: int,
                 truncation_mode: str = "keep_start") -> tuple[list[TokenizedPair], Counter]:
        ready = prepared.tokenized_for(tokenization_key, examples) if prepared is not None else None
        if ready is not None:
            return ready
        known = prepared.tokens_for(tokenization_key) if prepared is not None else None
        kept, dropped, _tokenized = tokenize_with_cache(ws, tokenizer, examples, max_length, truncation_mode,
                                                        tokenization_key, progress, store, known)
        return kept, dropped

    return tokenize
