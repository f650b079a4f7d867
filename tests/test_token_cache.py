"""The tokenised pairs cached in the workspace (storage.token_cache, core.engine.token_cache):
a second tokenisation of the same pairs reads them, any change of tokenizer, length, truncation
or text misses, and the pairs are exactly the uncached ones. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from core.engine import batching
from core.engine.batching import tokenize_examples
from core.engine.modeling import tokenization_fingerprint
from core.engine.token_cache import tokenize_with_cache
from core.engine.trainer import TrainingObserver, train
from core.engine.training_config import TrainingConfig
from core.engine.training_control import StepMetrics
from storage.models import Response
from storage.token_cache import CachedTokens, decode_ids, encode_ids, load_tokenized, store_tokenized
from storage.training_set import build_training_set
from tests.tiny_models import fill_workspace, make_tiny_model_dir, make_tokenizer

pytestmark = pytest.mark.both_backends


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def count_tokenisations(monkeypatch):
    """How many examples ``batching.tokenize_triple`` tokenised since the fixture began."""
    calls = []
    real = batching.tokenize_triple

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(batching, "tokenize_triple", counting)
    return calls


def cached(ws, tokenizer, examples, max_length=64, mode="keep_start", key_tokenizer=None):
    key = tokenization_fingerprint(key_tokenizer or tokenizer, max_length, mode)
    return tokenize_with_cache(ws, tokenizer, examples, max_length, mode, key)


def test_ids_round_trip_beyond_16_bits() -> None:
    ids = (0, 1, 255, 65_535, 65_536, 151_935, 2**31 - 1)
    assert decode_ids(encode_ids(ids)) == ids
    assert len(encode_ids(ids)) == 4 * len(ids)


def test_second_tokenisation_reads_the_cache_and_matches_uncached(workspace, tokenizer, count_tokenisations) -> None:
    fill_workspace(workspace, 24)
    examples = build_training_set(workspace).examples
    # max_length 25 drops the pairs whose prompt fills it (no completion left): drops are cached too
    expected = tokenize_examples(tokenizer, examples, 25, "keep_start")
    assert expected[1] and expected[0]
    count_tokenisations.clear()

    first = cached(workspace, tokenizer, examples, 25, "keep_start")
    assert len(count_tokenisations) == len(examples) and first[2] == len(examples)
    assert (first[0], first[1]) == expected

    count_tokenisations.clear()
    second = cached(workspace, tokenizer, examples, 25, "keep_start")
    assert count_tokenisations == [] and second[2] == 0
    assert (second[0], second[1]) == expected

    # and with no truncation at all, on every pair
    full = cached(workspace, tokenizer, examples, 512)
    assert (full[0], full[1]) == tokenize_examples(tokenizer, examples, 512, "keep_start")


def test_a_changed_length_truncation_tokenizer_or_text_misses(workspace, tokenizer, count_tokenisations) -> None:
    fill_workspace(workspace, 12)
    examples = build_training_set(workspace).examples
    cached(workspace, tokenizer, examples, 64, "keep_start")
    n = len(examples)
    assert cached(workspace, tokenizer, examples, 64, "keep_start")[2] == 0
    assert cached(workspace, tokenizer, examples, 32, "keep_start")[2] == n        # max_length
    assert cached(workspace, tokenizer, examples, 64, "keep_end")[2] == n          # truncation
    other = make_tokenizer(vocab_size=300)
    result = cached(workspace, other, examples, 64, "keep_start")                   # tokenizer
    assert result[2] == n and (result[0], result[1]) == tokenize_examples(other, examples, 64, "keep_start")

    # an edited answer is a new example: only it is tokenised again
    with workspace.writing() as session:
        response = session.get(Response, 1)
        response.text = response.text + " Edited."
    edited = build_training_set(workspace).examples
    count_tokenisations.clear()
    result = cached(workspace, tokenizer, edited, 64, "keep_start")
    assert result[2] == 1 and len(count_tokenisations) == 1
    assert (result[0], result[1]) == tokenize_examples(tokenizer, edited, 64, "keep_start")


def test_storing_twice_keeps_one_row_and_lookups_by_chunk_and_scan_agree(workspace) -> None:
    tokens = {f"{i:032x}": CachedTokens((1, 2, i), 1, (1, 3), 1) for i in range(2_100)}
    tokens["dropped".ljust(32, "0")] = CachedTokens((), 0, (), 0, batching.DROP_EMPTY)
    store_tokenized(workspace, "key", tokens)
    store_tokenized(workspace, "key", dict(list(tokens.items())[:10]))   # already there: kept
    assert load_tokenized(workspace, "key", tokens) == tokens              # more than 2,000: one scan
    few = list(tokens)[-5:] + ["f" * 32]
    assert load_tokenized(workspace, "key", few) == {h: tokens[h] for h in few[:-1]}
    assert load_tokenized(workspace, "other key", few) == {}


class _FirstStep(TrainingObserver):
    def __init__(self):
        self.loss = None

    def on_event(self, event):
        if isinstance(event, StepMetrics) and event.split.value == "train" and self.loss is None:
            self.loss = event.metrics["loss"]


@pytest.mark.slow
def test_a_run_on_cached_tokens_takes_the_same_first_step(workspace, model_dir, count_tokenisations) -> None:
    fill_workspace(workspace, 24)
    config = TrainingConfig(base_model=str(model_dir), max_steps=1, batch_size=4, eval_split="none",
                            checkpoint_interval=0, seed=3)
    fresh, again = _FirstStep(), _FirstStep()
    train(workspace, config, fresh)
    tokenised = len(count_tokenisations)
    assert tokenised >= 24
    train(workspace, config, again)
    assert len(count_tokenisations) == tokenised        # the second run tokenised nothing
    assert again.loss == fresh.loss and fresh.loss is not None


def test_reference_values_of_many_examples_are_read_in_one_pass(workspace) -> None:
    from storage.reference_logps import load_reference_logps, store_reference_logps

    rows = [{"example_hash": f"{i:032x}", "chosen_logp": -i / 7, "rejected_logp": -i / 5, "chosen_tokens": 2,
             "rejected_tokens": 3} for i in range(2_100)]
    store_reference_logps(workspace, "model", "tokens", rows)
    wanted = [row["example_hash"] for row in rows[50:]] + ["e" * 32]
    found = load_reference_logps(workspace, "model", "tokens", wanted)   # more than 2,000: one scan
    assert found == {row["example_hash"]: (row["chosen_logp"], row["rejected_logp"]) for row in rows[50:]}
    assert load_reference_logps(workspace, "model", "tokens", wanted[:3]) == {h: found[h] for h in wanted[:3]}


def test_a_large_training_set_read_in_one_pass_equals_the_one_read_by_chunks(workspace, monkeypatch) -> None:
    import storage.training_set as training_set

    fill_workspace(workspace, 2_100)   # more than 2,000 labelled pairs: the texts in one pass
    one_pass = build_training_set(workspace)
    monkeypatch.setattr(training_set, "_SCAN_ABOVE", 10**9)
    by_chunks = build_training_set(workspace)
    assert len(one_pass.examples) == 2_100 and one_pass.examples == by_chunks.examples
    assert one_pass.dropped == by_chunks.dropped

    # and a run's trained verdicts, read in one pass and inserted in one executemany
    import storage.rounds as rounds
    from storage.runs import create_run

    pair_ids = [e.pair_id for e in one_pass.examples][:2_050]
    for run_id, read_all_above in (("one-pass", 2_000), ("by-chunks", 10**9)):
        monkeypatch.setattr(rounds, "_READ_ALL_ABOVE", read_all_above)
        create_run(workspace, run_id, name=run_id, config_json="{}", base_model="m", run_dir="/tmp/x", total_steps=1)
        assert rounds.record_round_start(workspace, run_id, None, None, pair_ids) == 2_050
    assert rounds.trained_verdict_ids(workspace, "one-pass") == rounds.trained_verdict_ids(workspace, "by-chunks")
