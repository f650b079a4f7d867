"""The Train form's data preview: how many pairs a run would train on and hold out, and what
``max_length`` would cut. The form runs ``checked_preview`` in its helper process
(``core.operations.child_call.HelperProcess``): at 100,000 pairs building the training set is
seconds of Python, and the too-long count needs the tokenizer's library; in a thread of the
window's process either held its UI thread. The too-long count tokenises an even sample (at most
``launch_checks.PREVIEW_SAMPLE`` examples) and scales the counts to the whole set."""

from __future__ import annotations

import dataclasses
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


def checked_preview(location: str, runs_dir: str | None, config: TrainingConfig, with_tokens: bool) -> PreviewResult:
    """``preview``'s counts and, ``with_tokens``, the too-long count of its sample (loads the
    tokenizer of ``config.base_model``: run it in a helper process)."""
    from core.operations.launch_checks import token_preview

    part = preview(location, runs_dir, config)
    if not (with_tokens and part.sample) or part.result.data is None:
        return part.result
    try:
        tokens = token_preview(config, part.sample, of=part.total)
    except Exception as exc:  # noqa: BLE001 - the counts stand; the too-long count says why it is missing
        return dataclasses.replace(part.result, token_error=str(exc) or type(exc).__name__)
    return dataclasses.replace(part.result, tokens=tokens)
