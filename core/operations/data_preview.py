"""The Train form's data preview: how many pairs a run would train on and hold out, and an even
sample of the examples for counting what ``max_length`` would cut. The form runs ``preview`` in
a child process (``core.operations.child_call``): at 100,000 pairs building the training set is
seconds of Python, which on a thread of the window's process held its UI thread. The sample
(at most ``launch_checks.PREVIEW_SAMPLE`` examples) comes back with the counts, and the form
tokenises it on a worker of its own process, where the tokenizer's library is already loaded."""

from __future__ import annotations

from dataclasses import dataclass

from core.engine.training_config import TrainingConfig
from core.operations.launch_checks import PREVIEW_SAMPLE, DataPreview, TokenPreview, even_sample, preview_data


@dataclass(frozen=True)
class PreviewResult:
    data: DataPreview | None
    tokens: "TokenPreview | None" = None
    error: str | None = None          # the training set could not be built
    token_error: str | None = None    # the too-long pairs could not be counted


@dataclass(frozen=True)
class DataPart:
    result: PreviewResult     # the counts (or why they could not be made)
    sample: list              # an even sample of the examples, for the too-long count
    total: int                # examples in all


def preview(location: str, runs_dir: str | None, config: TrainingConfig, sample: int = PREVIEW_SAMPLE) -> DataPart:
    """The counts of ``config``'s training set on the workspace at ``location`` (opens it and
    reads the database), and an even sample of at most ``sample`` of its examples."""
    from core.operations.error_log import one_line
    from storage.training_set import build_training_set
    from storage.workspace import Workspace

    try:
        with Workspace.open(location, create=False, runs_dir=runs_dir) as ws:
            training_set = build_training_set(ws, config.selection_policy)
            data = preview_data(ws, config, training_set)
    except Exception as exc:  # noqa: BLE001 - shown in the form, in one line
        return DataPart(PreviewResult(None, error=one_line(exc, location)), [], 0)
    examples = training_set.examples
    return DataPart(PreviewResult(data), even_sample(examples, sample), len(examples))
