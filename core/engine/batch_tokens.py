"""The real token counts of a run's largest batch, which size the memory estimate (``StepTokens``).

``step_tokens_of`` counts a batch of tokenised pairs as the engine lays it out (packed: one row per
pair, the shared prefix once; unpacked: two rows, each padded to the longest); ``longest_batch_tokens``
does it for the longest pairs of the form's token preview once cut to ``max_length``. Called where
the pairs are already tokenised (torch loaded); ``core.engine.memory_estimate`` stays import-light.
"""

from __future__ import annotations

from typing import Sequence

from core.engine.memory_estimate import StepTokens


def step_tokens_of(batch: Sequence, packed: bool, reference_batch_size: int | None = None,
                   all_pairs: Sequence | None = None) -> tuple[StepTokens, StepTokens | None]:
    """(the training step's, the reference pass's) ``StepTokens`` of real ``TokenizedPair``s: the
    step's for ``batch`` (its longest batch), the reference pass's for the ``reference_batch_size``
    longest of ``all_pairs``."""
    from core.engine.batching import common_prefix_length   # the caller has the pairs: torch is loaded

    def tokens(pairs: Sequence) -> StepTokens:
        head = sum(len(p.chosen_ids) - max(p.chosen_start, 1) + len(p.rejected_ids) - max(p.rejected_start, 1)
                   for p in pairs)
        if packed:
            width = max(len(p.chosen_ids) + len(p.rejected_ids) - common_prefix_length(p.chosen_ids, p.rejected_ids)
                        for p in pairs)         # the rejected part after the shared prefix follows the chosen
            return StepTokens(len(pairs), width, head, True)
        return StepTokens(2 * len(pairs), max(max(len(p.chosen_ids), len(p.rejected_ids)) for p in pairs),
                          head, False)

    reference = None
    if reference_batch_size and all_pairs:
        longest = sorted(all_pairs, key=lambda p: -p.length)[:reference_batch_size]
        reference = tokens(longest)
    return tokens(batch), reference


def longest_batch_tokens(pairs: Sequence, config) -> tuple[StepTokens, StepTokens | None] | None:
    """``step_tokens_of`` the longest of ``pairs`` (``TokenizedPair``s tokenised uncut, as the form's
    preview has them) once cut to ``config.max_length`` as the engine cuts them: the largest batch
    of a run with length grouping. None when no pair is left."""
    import dataclasses

    from core.engine.batching import truncate   # the caller has tokenised: torch is loaded

    cut = []
    for pair in sorted(pairs, key=lambda p: -p.length)[:max(config.batch_size, config.reference_batch_size)]:
        sides = [truncate(ids[:start], ids[start:], config.max_length, config.truncation_mode)
                 for ids, start in ((pair.chosen_ids, pair.chosen_start), (pair.rejected_ids, pair.rejected_start))]
        if all(start < len(ids) for ids, start in sides):
            (chosen, chosen_start), (rejected, rejected_start) = sides
            cut.append(dataclasses.replace(pair, chosen_ids=chosen, chosen_start=chosen_start, rejected_ids=rejected,
                                           rejected_start=rejected_start))
    if not cut:
        return None
    return step_tokens_of(cut[:config.batch_size], config.packed_pairs, config.reference_batch_size, cut)


def tokens_key(config) -> tuple:
    """The settings ``longest_batch_tokens`` depends on, to tell whether counts are still this config's."""
    return (config.base_model, config.batch_size, config.max_length, config.truncation_mode, config.packed_pairs,
            config.reference_batch_size)
