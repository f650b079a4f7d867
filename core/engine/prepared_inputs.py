"""What a training process prepared ahead of its run (``core.operations.run_preparation``), as
the trainer takes it: the cached tokens read for one tokenisation key (and, when every example's
were cached, the tokenised pairs made of them), and the cached reference log-probs read for one
(model key, tokenisation key).

Both caches are keyed by content (``core.engine.token_cache``, ``core.engine.reference_cache``),
so rows read earlier stay right however long the process waited: the run uses them when its own
keys equal the prepared ones, reads only the examples they lack, and ignores them otherwise.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from storage.reference_logps import ReferenceTable
from storage.token_cache import CachedTokens


@dataclass
class PreparedInputs:
    token_key: str | None = None
    tokens: dict[str, CachedTokens] = field(default_factory=dict)     # example hash -> tokens
    model_key: str | None = None
    reference: ReferenceTable = field(default_factory=dict)            # under (model_key, token_key)
    #: (the examples, ``tokenize_examples``' result for them) when every one's tokens were cached
    tokenized: tuple[Sequence[Any], tuple[list, Counter]] | None = None

    def tokens_for(self, token_key: str) -> dict[str, CachedTokens] | None:
        """The prepared tokens when they were read under ``token_key``, else None."""
        return self.tokens if self.token_key is not None and token_key == self.token_key else None

    def tokenized_for(self, token_key: str, examples: Sequence[Any]) -> tuple[list, Counter] | None:
        """The kept pairs and dropped counts of ``examples``, when they are the very examples
        prepared (same objects, same order) under ``token_key``; else None."""
        if self.tokenized is None or self.tokens_for(token_key) is None:
            return None
        prepared, (kept, dropped) = self.tokenized
        if len(prepared) != len(examples) or any(a is not b for a, b in zip(prepared, examples)):
            return None
        return list(kept), Counter(dropped)

    def reference_for(self, model_key: str, token_key: str) -> ReferenceTable | None:
        """The prepared reference values when read under these keys, else None."""
        if self.model_key is None or (model_key, token_key) != (self.model_key, self.token_key):
            return None
        return self.reference


def prepared_reference(prepared: PreparedInputs | None, model_key: str, token_key: str) -> ReferenceTable | None:
    return None if prepared is None else prepared.reference_for(model_key, token_key)
