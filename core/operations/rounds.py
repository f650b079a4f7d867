"""The rounds of the loop: train, generate from the trained model, judge, train the next round.

``round_chain`` reads the chain that ends at a run (the newest by default), first round first:
each round's run, how it started, how many verdicts it trained on, how many pairs its model
generated and how many of them are judged, the run trained on them (the next round), and its
win rate against the previous round (the base model for round 1) from the blind A/B comparisons
between the two (``core.operations.blind.round_win_rate``; None when never compared).

``next_round`` turns the chain into a plan: generate candidates from the latest round's model,
label them, then train the next round from that round's adapter (the DPO paper's setting: the
reference is the model the pairs were sampled from) or from the base on all verdicts
(``core.engine.run_start`` says what each means). ``NextRound.training_values`` are the
settings the Train tab's form (or ``main.py train --set``) starts that run with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from core.engine.config_fields import START_CHOICES
from core.operations.blind import round_win_rate
from core.operations.win_rate import WinRate
from core.operations.wording import plural
from storage.rounds import GeneratedPairs, RunLineage, generated_pairs, run_lineages
from storage.settings import read_settings
from storage.workspace import Workspace

#: How a next round can start (``TrainingConfig.start_from``: labels from its choices) and what each means.
START_LABELS = dict(START_CHOICES)
START_EXPLANATIONS = {
    "adapter": "The DPO paper's setting: the reference is the model the new pairs were sampled from; "
               "trains on the pairs that round's model generated.",
    "base": "A fresh adapter on every verdict so far, measured against the base model.",
}
PAPER_SETTING = "adapter"
FINISHED = ("completed", "stopped")


class NextStep(str, Enum):
    TRAIN_FIRST = "train_first"   # no run yet: train round 1 on the workspace's verdicts
    WAIT = "wait"                 # the latest run is still training (or has no adapter)
    GENERATE = "generate"         # its model has written no candidates yet
    LABEL = "label"               # candidates written, none judged yet
    TRAIN = "train"               # judged candidates: the next round can train


@dataclass(frozen=True)
class Round:
    number: int                   # 1 = the first run of the chain
    run_id: str
    name: str
    status: str
    start_from: str | None        # how this round's run started (None: a first round)
    trained_verdicts: int         # the verdicts its run trained on
    generated: int                # pairs its model generated
    judged: int                   # of those, pairs with a verdict
    next_run_id: str | None = None     # the run trained on them (the next round's)
    win_rate: WinRate | None = None    # against the previous round (round 1: the base model)
    has_adapter: bool = False

    @property
    def finished(self) -> bool:
        return self.status in FINISHED and self.has_adapter


@dataclass(frozen=True)
class RoundChain:
    base_model: str
    base_generated: GeneratedPairs              # candidates the base model alone wrote
    rounds: list[Round] = field(default_factory=list)
    other_runs: int = 0                          # runs that are not on this chain

    @property
    def latest(self) -> Round | None:
        return self.rounds[-1] if self.rounds else None


@dataclass(frozen=True)
class NextRound:
    step: NextStep
    parent: Round | None                         # the round whose model writes the next pairs
    text: str                                    # what to do now, in a sentence or two

    @property
    def number(self) -> int:
        return (self.parent.number if self.parent else 0) + 1

    def training_values(self, start_from: str = PAPER_SETTING) -> dict[str, str]:
        """The settings that start the next round's run (empty for a first round)."""
        if self.parent is None:
            return {"start_from_run": "", "run_name": "round 1"}
        if start_from not in START_LABELS:
            raise ValueError(f"start_from must be one of {', '.join(START_LABELS)}, not {start_from!r}")
        return {"start_from_run": self.parent.run_id, "start_from": start_from, "run_name": f"round {self.number}"}


def _chain(lineages: list[RunLineage], leaf_run_id: str | None) -> list[RunLineage]:
    by_id = {run.run_id: run for run in lineages}
    leaf = by_id.get(leaf_run_id) if leaf_run_id else (lineages[-1] if lineages else None)
    chain: list[RunLineage] = []
    while leaf is not None and leaf not in chain:     # a parent named twice cannot loop
        chain.append(leaf)
        leaf = by_id.get(leaf.parent_run_id) if leaf.parent_run_id else None
    return chain[::-1]


def round_chain(ws: Workspace, leaf_run_id: str | None = None) -> RoundChain:
    """The chain of rounds ending at ``leaf_run_id`` (default: the newest run), oldest first."""
    lineages = run_lineages(ws)
    chain = _chain(lineages, leaf_run_id)
    rounds: list[Round] = []
    for index, run in enumerate(chain):
        written = generated_pairs(ws, run.run_id)
        previous = chain[index - 1].run_id if index else None
        rounds.append(Round(
            number=index + 1, run_id=run.run_id, name=run.name or run.run_id, status=run.status,
            start_from=run.start_from, trained_verdicts=run.trained_verdicts, generated=written.generated,
            judged=written.judged, next_run_id=chain[index + 1].run_id if index + 1 < len(chain) else None,
            win_rate=round_win_rate(ws, run.run_id, previous), has_adapter=bool(run.adapter_path)))
    return RoundChain(read_settings(ws).base_model or "", generated_pairs(ws, None), rounds,
                      len(lineages) - len(chain))


def next_round(chain: RoundChain, number: int | None = None) -> NextRound:
    """What to do next after round ``number`` (default: the latest round of the chain)."""
    latest = chain.rounds[number - 1] if number and 0 < number <= len(chain.rounds) else chain.latest
    if latest is None:
        return NextRound(NextStep.TRAIN_FIRST, None, "No round yet: train round 1 on the workspace's verdicts.")
    if not latest.finished:
        return NextRound(NextStep.WAIT, latest, f"Round {latest.number} ({latest.name}) is {latest.status}; "
                                                "once it has finished, its model can write the next candidates.")
    if latest.generated == 0:
        return NextRound(NextStep.GENERATE, latest, f"Generate candidates from round {latest.number}'s model, "
                                                    "then label them.")
    if latest.judged == 0:
        return NextRound(NextStep.LABEL, latest, f"Round {latest.number}'s model wrote "
                                                 f"{plural(latest.generated, 'pair')}; label them in Annotate.")
    left = latest.generated - latest.judged
    more = f" ({left} still to label)" if left else ""
    return NextRound(NextStep.TRAIN, latest, f"{plural(latest.judged, 'judged pair')} from round "
                                             f"{latest.number}'s model{more}: train round {latest.number + 1}.")
