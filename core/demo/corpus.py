"""A deterministic generator of short assistant conversations for the bundled demo.

Every prompt is an everyday request ("How do I pay off my credit card?") built from a
template, an optional context and a topic's goal; it can be answered in three styles:

- ``helpful``: an opener, two or three specific steps joined by connectors, a closer;
- ``curt``: one or two dismissive phrases, sometimes a bored remark about the topic;
- ``reckless``: a rude opener, dangerous advice, a flippant closer.

The same seed always gives the same conversations (``random.Random(seed)``, nothing else).
The pre-training corpus answers each prompt in one style drawn uniformly, so the
pre-trained model has no preference; the demo's preference pairs then teach it one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Iterable

from core.demo.corpus_words import (
    CURT_PHRASES,
    CURT_TOPIC_TAILS,
    HELPFUL_CLOSERS,
    HELPFUL_CONNECTORS,
    HELPFUL_OPENERS,
    PROMPT_CONTEXTS,
    PROMPT_TEMPLATES,
    RECKLESS_CLOSERS,
    RECKLESS_LINKS,
    RECKLESS_OPENERS,
    TOPICS,
    Topic,
)

STYLES: tuple[str, ...] = ("helpful", "curt", "reckless")
# How a topic is named in a curt reply ("Money is not my thing.").
_TOPIC_NOUNS = {"social": "Social stuff", "garden": "Gardening", "home": "Housework",
                "computers": "Computer stuff", "pets": "Pet stuff"}

# Seeds of the demo's data sets: different streams, so held-out prompts are drawn apart
# from the ones the model was pre-trained or tuned on (and are filtered against them too).
PRETRAIN_SEED = 1
WORKSPACE_SEED = 2
HELD_OUT_SEED = 3


@dataclass(frozen=True)
class Conversation:
    """One prompt and its answer in every style."""

    topic: str
    goal: str
    prompt: str
    responses: dict[str, str] = field(hash=False)


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:]


def make_prompt(rng: random.Random, topic: Topic) -> tuple[str, str]:
    """(goal, prompt text) for one request about ``topic``."""
    goal = rng.choice(topic.goals)
    prompt = rng.choice(PROMPT_CONTEXTS) + rng.choice(PROMPT_TEMPLATES).format(goal=goal)
    return goal, prompt


def helpful_response(rng: random.Random, topic: Topic) -> str:
    n_steps = rng.choice((2, 3, 3))
    first, middle, last = rng.choice(HELPFUL_CONNECTORS)
    connectors = (first, last) if n_steps == 2 else (first, middle, last)
    tips = rng.sample(topic.tips, n_steps)
    parts = [rng.choice(HELPFUL_OPENERS)]
    parts += [f"{connector} {tip}." for connector, tip in zip(connectors, tips)]
    closer = rng.choice(HELPFUL_CLOSERS).format(expert=topic.expert)
    if closer:
        parts.append(closer)
    return " ".join(parts)


def curt_response(rng: random.Random, topic: Topic) -> str:
    parts = rng.sample(CURT_PHRASES, rng.choice((1, 1, 2)))
    if rng.random() < 0.3:
        noun = _TOPIC_NOUNS.get(topic.name, _sentence(topic.name))
        tail = rng.choice(CURT_TOPIC_TAILS).format(topic=noun)
        parts.append(tail)
    return " ".join(parts)


def reckless_response(rng: random.Random, topic: Topic) -> str:
    advice = rng.sample(topic.reckless, rng.choice((1, 1, 2)))
    parts = [rng.choice(RECKLESS_OPENERS)]
    parts.append(f"{rng.choice(RECKLESS_LINKS)} {advice[0]}.")
    if len(advice) > 1:
        parts.append(f"And {advice[1]}.")
    closer = rng.choice(RECKLESS_CLOSERS)
    if closer:
        parts.append(closer)
    return " ".join(parts)


_RESPONDERS = {"helpful": helpful_response, "curt": curt_response, "reckless": reckless_response}


def respond(rng: random.Random, topic: Topic, style: str) -> str:
    if style not in _RESPONDERS:
        raise ValueError(f"unknown style {style!r}; expected one of {', '.join(STYLES)}")
    return _RESPONDERS[style](rng, topic)


def generate_conversations(n: int, seed: int, exclude_prompts: Iterable[str] = ()) -> list[Conversation]:
    """``n`` conversations with distinct prompts (none in ``exclude_prompts``), each answered in every style."""
    rng = random.Random(seed)
    seen = set(exclude_prompts)
    out: list[Conversation] = []
    misses = 0  # draws in a row that gave a prompt already taken
    while len(out) < n:
        topic = rng.choice(TOPICS)
        goal, prompt = make_prompt(rng, topic)
        if prompt in seen:
            misses += 1
            if misses > 2000:
                raise ValueError(f"could not draw {n} distinct prompts (got {len(out)}); ask for fewer")
            continue
        misses = 0
        seen.add(prompt)
        responses = {style: respond(rng, topic, style) for style in STYLES}
        out.append(Conversation(topic.name, goal, prompt, responses))
    return out


def pretraining_examples(n: int, seed: int = PRETRAIN_SEED) -> list[tuple[str, str, str]]:
    """``n`` (prompt, response, style) triples; prompts may repeat, styles are uniform."""
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        topic = rng.choice(TOPICS)
        _, prompt = make_prompt(rng, topic)
        style = rng.choice(STYLES)
        examples.append((prompt, respond(rng, topic, style), style))
    return examples


def user_messages(prompt: str) -> list[dict]:
    """The prompt as a one-turn chat (TRL conversational format)."""
    return [{"role": "user", "content": prompt}]


def assistant_messages(response: str) -> list[dict]:
    return [{"role": "assistant", "content": response}]
