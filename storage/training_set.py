"""Building the DPO training set from verdicts, with a merge policy and the stored split.

Each annotator's *current* verdict counts (storage.verdicts). Skips are not votes. Policies:

- ``majority``: the choice with more votes than any other wins (a plurality with no tie at
  the top); a winning ``a``/``b`` becomes an example, a winning ``tie``/``both_bad`` is
  dropped under that name, a draw at the top is dropped as ``no_majority``.
- ``unanimous``: every vote the same; ``a``/``b`` becomes an example, all ``tie`` or all
  ``both_bad`` is dropped under that name, anything else is ``not_unanimous``.
- ``all``: every ``a``/``b`` vote is its own example (a pair judged ``a`` by two people and
  ``b`` by one gives three examples); ``tie``/``both_bad`` votes are dropped one by one.

Pairs of blind A/B comparisons (``Pair.comparison_id``) are never examples: they are the
held-out judgement of two models, not training data.

An owner's resolution verdict overrides the policy for its pair. Pairs with no vote at all
are ``unlabelled``; pairs whose only votes are skips are ``skipped``. The train/eval split is
the pair's stored, content-derived ``Pair.split``, so it is the same on every build.

A built set keeps the current verdicts behind each example's pair (``verdict_ids``: what a run
records as the verdicts it trained on, without reading them again) and the ``SetMark`` of the
rows it was built from: ``training_set_mark`` (one cheap query) equal to a set's ``mark`` means
the same build would give the same set — verdict rows are only ever added or retracted, pairs
only added — so a training process prepared ahead (``core.operations.run_preparation``) can keep it.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from storage.models import Choice, Pair, Prompt, Response, Verdict, content_hash
from storage.verdicts import CurrentVerdict, current_verdicts
from storage.workspace import Workspace

#: The selection policies (how several verdicts on one pair merge), and how a screen names them:
#: the one list the CLI, the export dialog and the training config all use.
POLICY_LABELS = {"majority": "Majority of verdicts", "unanimous": "Only unanimous pairs",
                 "all": "Every a/b verdict is an example"}
POLICIES = tuple(POLICY_LABELS)
DROP_REASONS = ("tie", "both_bad", "skipped", "no_majority", "not_unanimous", "unlabelled")
#: Texts of more pairs than this are read in one pass over every pair (filtered here).
_SCAN_ABOVE = 2_000


@dataclass(frozen=True)
class PreferenceExample:
    pair_id: int
    prompt: str | list[dict]       # text, or chat messages (TRL conversational)
    chosen: str | list[dict]       # text, or [{"role": "assistant", "content": ...}]
    rejected: str | list[dict]
    split: str                     # "train" | "eval"

    @cached_property
    def example_hash(self) -> str:
        """The key of its texts in the token and reference caches (computed once per example)."""
        return example_key(self.prompt, self.chosen, self.rejected)


def _text_key(value: str | list[dict]) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)


def example_key(prompt: str | list[dict], chosen: str | list[dict], rejected: str | list[dict]) -> str:
    """An example's hash: the texts (chat messages as canonical JSON), order-sensitive."""
    return content_hash(_text_key(prompt), _text_key(chosen), _text_key(rejected))


@dataclass(frozen=True)
class SetMark:
    """What a training set was built from, in a few numbers (see the module's docstring)."""

    verdicts: int
    last_verdict_id: int
    retracted: int
    pairs: int
    last_pair_id: int
    compared_pairs: int


@dataclass
class TrainingSet:
    examples: list[PreferenceExample]
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> count (see DROP_REASONS)
    policy: str = "majority"
    #: pair id -> its current non-skip verdicts' ids, for the pairs with an example (None: not known)
    verdict_ids: dict[int, tuple[int, ...]] | None = None
    mark: SetMark | None = None          # the rows it was built from (None: not known)

    @property
    def train(self) -> list[PreferenceExample]:
        return [e for e in self.examples if e.split == "train"]

    @property
    def eval(self) -> list[PreferenceExample]:
        return [e for e in self.examples if e.split == "eval"]


def merge_votes(votes: list[Choice], policy: str) -> tuple[list[Choice], list[str]]:
    """Apply a merge policy to one pair's current non-resolution votes.

    Returns (winning choices, each an example: ``Choice.A`` or ``Choice.B``; drop reasons).
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown merge policy {policy!r}; expected one of {', '.join(POLICIES)}")
    if len(votes) == 1:   # most pairs: one vote, the same answer under every policy, without a tally
        vote = votes[0]
        if vote == Choice.SKIP:
            return [], ["skipped"]
        return ([vote], []) if vote in (Choice.A, Choice.B) else ([], [vote.value])
    counted = [v for v in votes if v != Choice.SKIP]
    if not counted:
        return [], ["skipped" if votes else "unlabelled"]
    if policy == "all":
        return ([v for v in counted if v in (Choice.A, Choice.B)],
                [v.value for v in counted if v not in (Choice.A, Choice.B)])
    tally = Counter(counted).most_common()
    if policy == "unanimous":
        if len(tally) > 1:
            return [], ["not_unanimous"]
        winner = tally[0][0]
    else:
        if len(tally) > 1 and tally[0][1] == tally[1][1]:
            return [], ["no_majority"]
        winner = tally[0][0]
    if winner in (Choice.A, Choice.B):
        return [winner], []
    return [], [winner.value]


def build_training_set(ws: Workspace, policy: str = "majority") -> TrainingSet:
    """Every example the verdicts support under ``policy``, ordered by pair id."""
    if policy not in POLICIES:
        raise ValueError(f"unknown merge policy {policy!r}; expected one of {', '.join(POLICIES)}")
    dropped: Counter[str] = Counter()
    examples: list[PreferenceExample] = []
    with ws.session() as session:
        mark = _mark(session)   # before the reads: a verdict added meanwhile makes the mark stale, never the set
        by_pair: dict[int, list[CurrentVerdict]] = defaultdict(list)
        compared = set(session.scalars(select(Pair.id).where(Pair.comparison_id.is_not(None))))
        for verdict in current_verdicts(session):
            if verdict.pair_id not in compared:
                by_pair[verdict.pair_id].append(verdict)
        winners: dict[int, list[Choice]] = {}
        for pair_id, verdicts in by_pair.items():
            resolutions = [v for v in verdicts if v.is_resolution]
            if resolutions:
                chosen, reasons = merge_votes([resolutions[-1].choice], "unanimous")
            else:
                chosen, reasons = merge_votes([v.choice for v in verdicts], policy)
            dropped.update(reasons)
            if chosen:
                winners[pair_id] = chosen
        dropped["unlabelled"] += session.scalar(select(func.count(Pair.id)).where(
            Pair.comparison_id.is_(None))) - len(by_pair)

        query = pair_texts_select()
        wanted = sorted(winners)
        connection = session.connection()   # Core rows, not the ORM's (a third of the time)
        if len(wanted) > _SCAN_ABOVE:   # most pairs: one pass over them all beats hundreds of IN lookups
            chunks = [connection.execution_options(yield_per=5_000).execute(query)]
        else:
            chunks = (connection.execute(query.where(Pair.id.in_(wanted[start:start + 500])))
                      for start in range(0, len(wanted), 500))
        for rows in chunks:
            for row in rows:
                if row[0] not in winners:
                    continue
                pair_id, split, prompt, a, b = pair_texts(row)
                for choice in winners[pair_id]:
                    chosen, rejected = (a, b) if choice == Choice.A else (b, a)
                    examples.append(PreferenceExample(pair_id, prompt, chosen, rejected, split))
    verdict_ids = {pair_id: tuple(v.verdict_id for v in by_pair[pair_id] if v.choice != Choice.SKIP)
                   for pair_id in winners}
    return TrainingSet(examples, {reason: dropped.get(reason, 0) for reason in DROP_REASONS}, policy,
                       verdict_ids, mark)


def training_set_mark(ws: Workspace) -> SetMark:
    """The ``SetMark`` of the workspace now: one query (counts and largest ids, no row read)."""
    with ws.session() as session:
        return _mark(session)


def _mark(session) -> SetMark:
    columns = [select(function).scalar_subquery() for function in (
        func.count(Verdict.id), func.max(Verdict.id), func.count(Verdict.retracted_at),
        func.count(Pair.id), func.max(Pair.id), func.count(Pair.comparison_id))]
    return SetMark(*(int(value or 0) for value in session.execute(select(*columns)).one()))


def pair_texts_select():
    """SELECT of each pair's id, split and texts, by pair id (rows for ``pair_texts``)."""
    response_a, response_b = aliased(Response), aliased(Response)
    return (select(Pair.id, Pair.split, Prompt.text, Prompt.messages_json,
                   response_a.text, response_a.messages_json, response_b.text, response_b.messages_json)
            .join(Prompt, Prompt.id == Pair.prompt_id)
            .join(response_a, response_a.id == Pair.response_a_id)
            .join(response_b, response_b.id == Pair.response_b_id)
            .order_by(Pair.id))


def pair_texts(row) -> tuple[int, str, str | list[dict], str | list[dict], str | list[dict]]:
    """(pair id, split, prompt, response a, response b) of a ``pair_texts_select`` row, in the
    shapes an example takes (chat messages when the prompt is a conversation)."""
    pair_id, split, p_text, p_msgs, a_text, a_msgs, b_text, b_msgs = row
    conversational = p_msgs is not None
    prompt = json.loads(p_msgs) if conversational else p_text
    return (pair_id, split, prompt, _completion(a_text, a_msgs, conversational),
            _completion(b_text, b_msgs, conversational))


def _completion(text: str, messages_json: str | None, conversational: bool) -> str | list[dict]:
    """A chat prompt gets message-list completions (TRL conversational); a text prompt gets text."""
    if not conversational:
        return text
    if messages_json is not None:
        return json.loads(messages_json)
    return [{"role": "assistant", "content": text}]
