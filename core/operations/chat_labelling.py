"""Chat exchanges sent to labelling: each exchange both models answered from the same history
becomes one unlabelled pair, each answer tagged with its own generation (``storage.chat_pairs``).

``ChatSession.labelling_pair`` / ``labelling_batch`` (``core.operations.chat``) say which exchanges
can be pairs and why the others cannot; the functions here store them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from core.operations.changes import Changes
from core.operations.wording import plural
from storage.chat_pairs import ChatPairAnswer, store_chat_pair
from storage.workspace import Workspace

if TYPE_CHECKING:
    from core.operations.chat import ChatAnswer


@dataclass(frozen=True)
class LabellingPair:
    base_model: str
    prompt: tuple[dict, ...]                  # the conversation both models answered
    answers: tuple[ChatAnswer, ChatAnswer]    # left, right
    settings: dict


@dataclass(frozen=True)
class LabellingBatch:
    pairs: tuple[tuple[int, LabellingPair], ...]   # (exchange index, its pair), oldest first
    refused: tuple[tuple[int, str], ...]           # (exchange index, why it cannot be a pair)

    def refusal_text(self) -> str:
        """The exchanges left out, for a status line ("" when none), one reason once:
        "exchanges 2, 3: the two models answered different histories …"."""
        by_reason: dict[str, list[int]] = {}
        for index, reason in self.refused:
            by_reason.setdefault(reason, []).append(index + 1)
        return "; ".join(f"exchange{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}: {reason}"
                         for reason, numbers in by_reason.items())


@dataclass(frozen=True)
class SentPair:
    pair_id: int
    added: bool                   # False: the workspace already had this pair
    changes: Changes


def send_to_labelling(ws: Workspace, pair: LabellingPair) -> SentPair:
    """Store the exchange as an unlabelled pair (each answer tagged with its model's generation)."""
    written = store_chat_pair(ws, list(pair.prompt),
                              [ChatPairAnswer(a.text, pair.base_model, a.model.run_id, a.model.label)
                               for a in pair.answers], pair.settings)
    return SentPair(written.pair_id, written.pair_added, Changes(pairs=True, pair_ids=frozenset({written.pair_id})))


@dataclass(frozen=True)
class SentPairs:
    sent: tuple[SentPair, ...]    # one per pair sent, in order
    changes: Changes

    @property
    def added_ids(self) -> list[int]:
        return [one.pair_id for one in self.sent if one.added]

    def describe(self) -> str:
        """e.g. "2 pairs in the annotation queue (#41, #42); 1 pair the workspace had already."."""
        added = self.added_ids
        known = len(self.sent) - len(added)
        ids = ", ".join(f"#{pair_id}" for pair_id in added)
        parts = [f"{plural(len(added), 'pair')} in the annotation queue ({ids})"] if added else []
        if known:
            parts.append(f"{plural(known, 'pair')} the workspace had already")
        return ("; ".join(parts) or "no pair sent") + "."


def send_exchanges_to_labelling(ws: Workspace, pairs: Sequence[LabellingPair]) -> SentPairs:
    """``send_to_labelling`` for each pair (a conversation's exchanges, each its own pair), oldest first."""
    sent = tuple(send_to_labelling(ws, pair) for pair in pairs)
    changes = Changes()
    for one in sent:
        changes |= one.changes
    return SentPairs(sent, changes)
