"""What a write changed, so each screen redraws only what the change touches.

Every operation that writes returns (or reports) a ``Changes``; the GUI's main window passes
it to every view's ``on_changes(changes)``, and a view redraws the parts it shows of what
changed — never "just in case" when it is shown (Anki's ``OpChanges``). Plain Python, no Qt.

    changes = Changes(verdicts=True, pair_ids=frozenset({42}))
    if changes.verdicts: reload the counts
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class Changes:
    verdicts: bool = False      # verdicts added, changed or retracted (queue, counts, agreement)
    pairs: bool = False         # pairs, prompts or responses added (an import, a generation)
    annotators: bool = False    # an annotator created or renamed
    settings: bool = False      # workspace settings (overlap, guidelines, base model, presets…)
    runs: bool = False          # a training run created, progressed or ended
    pair_ids: frozenset[int] = field(default_factory=frozenset)   # the pairs touched, when known

    def __or__(self, other: "Changes") -> "Changes":
        return Changes(**{f.name: (getattr(self, f.name) | getattr(other, f.name)) for f in fields(self)})

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))


NOTHING = Changes()
