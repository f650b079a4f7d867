"""The demo corpus generator and the style scorer that recognises its styles."""

from __future__ import annotations

from collections import Counter

import pytest

from core.demo.corpus import (
    STYLES,
    assistant_messages,
    generate_conversations,
    pretraining_examples,
    user_messages,
)
from core.demo.corpus_words import TOPICS
from core.demo.style_scorer import LABELS, classify, score_style, style_shares


def test_same_seed_same_conversations_and_other_seed_differs():
    first = generate_conversations(50, seed=11)
    assert first == generate_conversations(50, seed=11)
    assert [c.responses for c in first] == [c.responses for c in generate_conversations(50, seed=11)]
    assert [c.prompt for c in first] != [c.prompt for c in generate_conversations(50, seed=12)]


def test_conversations_cover_every_topic_with_distinct_prompts_and_all_styles():
    conversations = generate_conversations(600, seed=5)
    prompts = [c.prompt for c in conversations]
    assert len(set(prompts)) == 600
    assert {c.topic for c in conversations} == {t.name for t in TOPICS}
    assert len(TOPICS) >= 10
    for c in conversations:
        assert set(c.responses) == set(STYLES)
        assert len(set(c.responses.values())) == 3  # three different answers to the same prompt


def test_wording_varies_enough_that_lines_cannot_just_be_memorised():
    conversations = generate_conversations(2000, seed=9)
    for style in STYLES:
        distinct = len({c.responses[style] for c in conversations})
        # Curt answers are short by nature; the others are nearly all unique.
        assert distinct > (300 if style == "curt" else 1500), (style, distinct)


def test_exclude_prompts_keeps_held_out_prompts_apart():
    train = {c.prompt for c in generate_conversations(300, seed=2)}
    held_out = generate_conversations(100, seed=3, exclude_prompts=train)
    assert not train & {c.prompt for c in held_out}


def test_asking_for_more_distinct_prompts_than_exist_fails_clearly():
    with pytest.raises(ValueError, match="distinct prompts"):
        generate_conversations(10_000_000, seed=1)


def test_pretraining_styles_are_uniform_so_the_base_model_has_no_preference():
    styles = Counter(style for _, _, style in pretraining_examples(6000, seed=4))
    for style in STYLES:
        assert 0.30 < styles[style] / 6000 < 0.37


def test_chat_message_shapes_are_trl_conversational():
    assert user_messages("Hi?") == [{"role": "user", "content": "Hi?"}]
    assert assistant_messages("Hello.") == [{"role": "assistant", "content": "Hello."}]


def test_scorer_recognises_every_generated_style():
    for c in generate_conversations(1500, seed=21):
        for style, text in c.responses.items():
            assert classify(text) == style, (style, text, score_style(text))


@pytest.mark.parametrize("text, reason", [
    ("Good question. Here is a simple plan. First, add one vegetable to every dinner. Just do it.", "mixes"),
    ("Happy to help. Try these steps. First, add one vegetable to every dinner.", "1 step"),
    ("Sure. First, rest. Next, rest. Next, rest.", "repeats"),
    ("the the cat sat on a keyboard", "no style"),
    ("", "empty"),
])
def test_scorer_calls_mixed_thin_looping_or_junk_replies_other(text, reason):
    result = score_style(text)
    assert result.label == "other"
    assert reason in result.reason


def test_unfinished_reply_is_other_even_when_it_reads_helpful():
    text = generate_conversations(1, seed=1)[0].responses["helpful"]
    assert classify(text, finished=True) == "helpful"
    assert score_style(text, finished=False).reason == "unfinished"


def test_style_shares_count_every_label():
    shares = style_shares(["helpful", "helpful", "curt", "other"])
    assert set(shares) == set(LABELS)
    assert shares["helpful"] == 0.5 and shares["reckless"] == 0.0
    assert sum(shares.values()) == pytest.approx(1.0)
