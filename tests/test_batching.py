"""Tokenisation, masking, truncation and batching on real (tiny, trained) BPE tokenizers."""

from __future__ import annotations


import pytest

from core.engine.batching import (DROP_TRUNCATED, batch_order, collate, tokenize_examples, tokenize_triple, truncate)
from tests.tiny_models import BOS, EOS, make_tokenizer
from tests.tiny_models import example as Example


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


@pytest.fixture(scope="module")
def no_bos_tokenizer():
    return make_tokenizer(add_bos=False)


def ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text=text, add_special_tokens=False)["input_ids"]


def test_plain_text_is_bos_prompt_completion_eos(tokenizer) -> None:
    prompt_ids, chosen_ids, rejected_ids = tokenize_triple(tokenizer, "Question: tea?", " Boil water.", " No.")
    assert prompt_ids[0] == tokenizer.bos_token_id
    assert tokenizer.decode(prompt_ids, skip_special_tokens=True) == "Question: tea?"
    assert chosen_ids[-1] == tokenizer.eos_token_id and rejected_ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(chosen_ids) == " Boil water." + EOS
    assert tokenizer.decode(rejected_ids) == " No." + EOS


def test_eos_is_never_doubled(tokenizer) -> None:
    _, chosen_ids, _ = tokenize_triple(tokenizer, "Q?", " Yes." + EOS, " No.")
    assert chosen_ids.count(tokenizer.eos_token_id) == 1


def test_tokenizer_without_bos(no_bos_tokenizer) -> None:
    prompt_ids, chosen_ids, _ = tokenize_triple(no_bos_tokenizer, "Question: tea?", " Boil water.", " No.")
    assert prompt_ids == ids(no_bos_tokenizer, "Question: tea?")
    assert BOS not in no_bos_tokenizer.decode(prompt_ids + chosen_ids)


def test_completion_starts_where_tokens_diverge(tokenizer) -> None:
    # "the sky" + " is blue": whatever merges happen at the boundary, prompt + completion
    # re-assemble to exactly the tokenisation of the whole text.
    prompt_ids, chosen_ids, _ = tokenize_triple(tokenizer, "The sk", "y is blue.", "y is red.")
    assert prompt_ids + chosen_ids == tokenizer(text="The sky is blue." + EOS)["input_ids"]


def test_chat_prompt_uses_template_with_generation_prompt(tokenizer) -> None:
    prompt = [{"role": "user", "content": "How do I make tea?"}]
    prompt_ids, chosen_ids, _ = tokenize_triple(tokenizer, prompt, [{"role": "assistant", "content": "Boil water."}],
                                                [{"role": "assistant", "content": "No."}])
    assert tokenizer.decode(prompt_ids) == "<|im_start|>user\nHow do I make tea?<|im_end|>\n<|im_start|>assistant\n"
    assert tokenizer.decode(chosen_ids) == "Boil water.<|im_end|>\n"
    # A plain-string completion under a chat prompt is treated as one assistant message.
    _, same_ids, _ = tokenize_triple(tokenizer, prompt, "Boil water.", "No.")
    assert same_ids == chosen_ids


def test_truncation_policies() -> None:
    prompt, completion = [1, 2, 3, 4], [5, 6, 7]
    assert truncate(prompt, completion, 5, "keep_start") == ((1, 2, 3, 4, 5), 4)
    assert truncate(prompt, completion, 5, "keep_end") == ((3, 4, 5, 6, 7), 2)
    assert truncate(prompt, completion, 2, "keep_end") == ((6, 7), 0)
    assert truncate(prompt, completion, 4, "keep_start") == ((1, 2, 3, 4), 4)  # no completion left
    assert truncate(prompt, completion, 99, "keep_start") == ((1, 2, 3, 4, 5, 6, 7), 4)


def test_pairs_without_completion_tokens_are_dropped_and_counted(tokenizer) -> None:
    long_prompt = "Please explain how a bicycle works, step by step. " * 4
    examples = [Example(1, "Q?", " Yes.", " No."), Example(2, long_prompt, " Yes.", " No."),
                Example(3, "Tea?", " Sure.", " No way.")]
    width = len(tokenizer(text=long_prompt)["input_ids"])
    kept, dropped = tokenize_examples(tokenizer, examples, max_length=width, truncation_mode="keep_start")
    assert [p.pair_id for p in kept] == [1, 3]
    assert dropped == {DROP_TRUNCATED: 1}
    kept_end, dropped_end = tokenize_examples(tokenizer, examples, max_length=width, truncation_mode="keep_end")
    assert len(kept_end) == 3 and not dropped_end
    assert all(len(p.chosen_ids) <= width for p in kept_end)


def test_collate_masks_prompt_and_padding(tokenizer) -> None:
    examples = [Example(1, "Q?", " Yes, gladly.", " No."), Example(2, "A longer question?", " Sure.", " Never!")]
    pairs, _ = tokenize_examples(tokenizer, examples, max_length=64)
    batch = collate(pairs, tokenizer.pad_token_id or 0)
    assert batch.input_ids.shape[0] == 4 and batch.loss_mask.shape[1] == batch.input_ids.shape[1] - 1
    for row, (seq, start) in enumerate([(p.chosen_ids, p.chosen_start) for p in pairs]
                                       + [(p.rejected_ids, p.rejected_start) for p in pairs]):
        assert batch.attention_mask[row].sum() == len(seq)
        # the mask marks exactly the positions predicting completion tokens
        predicted = [int(batch.input_ids[row, t + 1]) for t in range(batch.loss_mask.shape[1])
                     if batch.loss_mask[row, t]]
        assert predicted == list(seq[start:])
    assert batch.completion_tokens().tolist() == ([p.chosen_tokens for p in pairs]
                                                  + [p.rejected_tokens for p in pairs])


def test_batch_order_is_deterministic_and_groups_lengths() -> None:
    lengths = [(i * 37) % 101 for i in range(400)]
    first = batch_order(lengths, 8, seed=3, epoch=0)
    assert first == batch_order(lengths, 8, seed=3, epoch=0)
    assert first != batch_order(lengths, 8, seed=3, epoch=1)
    assert sorted(i for b in first for i in b) == list(range(400))

    def padding(batches) -> int:
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)

    ungrouped = batch_order(lengths, 8, seed=3, epoch=0, group_by_length=False)
    assert padding(first) < padding(ungrouped) / 5
