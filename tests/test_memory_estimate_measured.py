"""The memory estimate against measured peaks of real training steps on the CPU, three shapes.

Each case of ``benchmarks/bench_memory.py`` (the toy Llama; a 32k-vocabulary Llama with unpacked
pairs; Qwen2.5-0.5B's sizes and 152k vocabulary in four layers, packed, with gradient
checkpointing) loads, computes its reference log-probs and trains two steps in a child process;
the peak resident size there must be within ±20% of ``estimate_for_config`` with the batch's real
token counts. The estimate's terms come from the model of memory in ``core.engine.memory_estimate``,
not from these runs.
"""

from __future__ import annotations

import pytest

from benchmarks.bench_memory import CASES, can_measure, measure, table
from core.engine import logprobs, memory_estimate


def test_the_estimate_uses_the_engine_chunk_size() -> None:
    assert memory_estimate.LOGITS_CHUNK_ELEMENTS == logprobs.LOGITS_CHUNK_ELEMENTS


@pytest.mark.slow
@pytest.mark.skipif(not can_measure(), reason="needs Linux's /proc/self/clear_refs to reset the peak resident size")
def test_estimate_within_20_percent_of_measured_peaks_on_three_shapes(tmp_path) -> None:
    results = [measure(case, tmp_path) for case in CASES.values()]
    print(table(results))
    assert len(results) == 3
    for result in results:
        ratio = result["estimate_total"] / result["peak"]
        assert 0.8 <= ratio <= 1.2, (result["case"], ratio, table(results))
    by_case = {r["case"]: r for r in results}
    # Not a runtime-sized figure passing by itself: the larger shapes train hundreds of MiB above it.
    for name in ("32k-unpacked", "152k-4layers-checkpointed"):
        assert by_case[name]["peak"] - by_case[name]["runtime"] > 0.5 * by_case[name]["runtime"]
    assert not by_case["32k-unpacked"]["packed"] and by_case["152k-4layers-checkpointed"]["packed"]
