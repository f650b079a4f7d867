"""Chat and compare (core/operations/chat.py, core/engine/chat_stream.py, core/engine/chat_models.py):
streamed answers from a real tiny Llama and a real LoRA adapter loaded on the same base."""

from __future__ import annotations

import json

import pytest

from core.operations.chat import (BASE_CHOICE, AnswerDone, ChatAnswer, ChatDelta, ChatRunner, ChatSession, Exchange,
                                  ModelChoice, ModelsLoading, chat_model_choices, export_transcript, send_to_labelling)
from tests.tiny_models import make_tiny_model_dir, randomise_lora

QUESTION = "Question 3: how do I bake bread?"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(model folder, adapter folder): a tiny Llama and a LoRA adapter of it with random B weights."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from core.engine.modeling import quiet_peft_wrap

    import torch

    root = tmp_path_factory.mktemp("chat-models")
    model_dir = make_tiny_model_dir(root / "tiny")
    torch.manual_seed(0)               # LoRA's A matrices: the same adapter every run
    with quiet_peft_wrap():
        peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir),
                                    LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"))
    randomise_lora(peft_model, seed=3, scale=0.2)
    adapter_dir = root / "adapter"
    peft_model.save_pretrained(adapter_dir)
    return str(model_dir), str(adapter_dir)


@pytest.fixture(scope="module")
def runner():
    import torch

    # One sequence of a tiny model: one thread decodes fastest, and spinning threads of a busy
    # machine's other processes would otherwise slow each step tenfold.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield ChatRunner(device="cpu", dtype="float32")
    torch.set_num_threads(previous)


def settings(**values):
    from core.engine.generation import SamplingSettings

    return SamplingSettings(**{"temperature": 0.0, "max_new_tokens": 24, **values})


def tuned(adapter_dir: str) -> ModelChoice:
    return ModelChoice("run-1", "round-1", "run-1", adapter_dir)


def answer(runner, session, text, sampling, should_stop=None):
    events = []
    exchange = runner.answer(session.request(text), sampling, on_event=events.append, should_stop=should_stop)
    return exchange, events


def streamed(events, slot) -> str:
    return "".join(e.text for e in events if isinstance(e, ChatDelta) and e.slot == slot)


def greedy_reply(model_dir, adapter_dir, messages, max_new_tokens=24) -> str:
    """The same answer, not streamed: core.engine.generation on a separately loaded model."""
    from core.engine.generation import generate_replies, load_generator

    model, tokenizer = load_generator(model_dir, adapter_dir, device="cpu", dtype="float32")
    return generate_replies(model, tokenizer, [messages], settings(max_new_tokens=max_new_tokens))[0].text


def test_both_slots_stream_exactly_the_non_streamed_greedy_replies(tiny, runner):
    model_dir, adapter_dir = tiny
    session = ChatSession(model_dir, BASE_CHOICE, tuned(adapter_dir))
    exchange, events = answer(runner, session, QUESTION, settings())

    assert isinstance(events[0], ModelsLoading)
    base, adapted = exchange.answers["left"], exchange.answers["right"]
    assert base.tokens > 0 and adapted.tokens > 0
    for slot, answer_ in exchange.answers.items():
        assert streamed(events, slot) == answer_.text
        assert sum(1 for e in events if isinstance(e, ChatDelta) and e.slot == slot) > 1   # token by token
        assert [e.slot for e in events if isinstance(e, AnswerDone)].count(slot) == 1
    messages = [{"role": "user", "content": QUESTION}]
    assert base.text == greedy_reply(model_dir, None, messages)
    assert adapted.text == greedy_reply(model_dir, adapter_dir, messages)
    assert base.text != adapted.text            # the adapter really answers, the base really without it
    # Deltas of the two models came interleaved, not one answer after the other.
    slots = [e.slot for e in events if isinstance(e, ChatDelta)]
    assert slots.index("right") < len(slots) - 1 - slots[::-1].index("left")


def test_each_model_answers_with_its_own_history(tiny, runner):
    model_dir, adapter_dir = tiny
    session = ChatSession(model_dir, BASE_CHOICE, tuned(adapter_dir))
    first, _ = answer(runner, session, QUESTION, settings())
    session.record(first)
    second, events = answer(runner, session, "And how do I plant a tree?", settings())

    left_history = session.messages_for("left", "And how do I plant a tree?")
    right_history = session.messages_for("right", "And how do I plant a tree?")
    assert [m["role"] for m in left_history] == ["user", "assistant", "user"]
    assert left_history[1]["content"] == first.answers["left"].text
    assert right_history[1]["content"] == first.answers["right"].text
    assert second.answers["left"].text == greedy_reply(model_dir, None, left_history)
    assert second.answers["right"].text == greedy_reply(model_dir, adapter_dir, right_history)
    assert streamed(events, "right") == second.answers["right"].text
    # Loaded once: the second answer loads nothing.
    assert not any(isinstance(e, ModelsLoading) for e in events)


def test_stop_ends_both_answers_with_what_was_said_so_far(tiny, runner):
    model_dir, adapter_dir = tiny
    session = ChatSession(model_dir, BASE_CHOICE, tuned(adapter_dir))
    seen = []

    def stop_after_three_deltas():
        return len(seen) >= 3

    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, ChatDelta):
            seen.append(event)

    exchange = runner.answer(session.request(QUESTION), settings(max_new_tokens=64), on_event=on_event,
                             should_stop=stop_after_three_deltas)
    for slot in ("left", "right"):
        answer_ = exchange.answers[slot]
        assert answer_.stopped and not answer_.finished
        assert answer_.tokens < 64
        assert streamed(events, slot) == answer_.text
    session.record(exchange)
    assert len(session.exchanges) == 1


def test_the_same_seed_gives_the_same_answer(tiny, runner):
    model_dir, adapter_dir = tiny
    session = ChatSession(model_dir, BASE_CHOICE, tuned(adapter_dir))
    sampled = settings(temperature=1.0, top_p=0.9, seed=7)
    one, _ = answer(runner, session, QUESTION, sampled)
    two, _ = answer(runner, session, QUESTION, sampled)
    assert {s: a.text for s, a in one.answers.items()} == {s: a.text for s, a in two.answers.items()}
    others = [answer(runner, session, QUESTION, settings(temperature=1.0, top_p=0.9, seed=s))[0] for s in (8, 9)]
    assert any(o.answers["left"].text != one.answers["left"].text for o in others)


def test_a_single_slot_and_a_new_conversation(tiny, runner):
    model_dir, _ = tiny
    session = ChatSession(model_dir, BASE_CHOICE, None)
    stream = runner.stream(session.request(QUESTION), settings(max_new_tokens=8))   # the generator form
    events = []
    with pytest.raises(StopIteration) as done:
        while True:
            events.append(next(stream))
    exchange = done.value.value
    assert streamed(events, "left") == exchange.answers["left"].text
    assert set(exchange.answers) == {"left"}
    assert all(e.slot == "left" for e in events if isinstance(e, ChatDelta))
    session.record(exchange)
    session.new_conversation()
    assert session.exchanges == [] and session.messages_for("left") == []
    with pytest.raises(ValueError, match="empty"):
        session.request("   ")
    session.set_model("left", None)
    with pytest.raises(ValueError, match="at least one column"):
        session.request("hello")


def test_a_long_conversation_drops_its_earliest_exchanges_to_fit_the_context(tiny):
    from core.engine.chat_stream import ChatContextError, fit_prompt
    from core.engine.modeling import load_tokenizer

    tokenizer = load_tokenizer(tiny[0])
    turns = []
    for i in range(6):
        turns += [{"role": "user", "content": f"Question {i}: how do I make tea?"},
                  {"role": "assistant", "content": "Sure, here is a short and friendly answer. " * 3}]
    turns.append({"role": "user", "content": "And bread?"})
    whole = fit_prompt(tokenizer, turns, 32, None)
    fitted = fit_prompt(tokenizer, turns, 32, len(whole.token_ids) - 10)
    assert fitted.dropped_exchanges >= 1
    assert len(fitted.token_ids) + fitted.max_new_tokens <= len(whole.token_ids) - 10
    assert tokenizer.decode(list(fitted.token_ids)).rstrip().endswith("assistant")   # still ends ready to answer
    with pytest.raises(ChatContextError, match="shorten it"):
        fit_prompt(tokenizer, [{"role": "user", "content": "tea " * 200}], 32, 64)


def test_streamed_text_never_splits_a_character(tiny):
    from core.engine.chat_stream import IncrementalText
    from core.engine.modeling import load_tokenizer

    tokenizer = load_tokenizer(tiny[0])
    text = "Café crème — naïve 🎉 résumé ✓ 東京"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) > len(text.split())          # multi-byte characters span several tokens
    stream = IncrementalText(tokenizer)
    deltas = [stream.update(ids[:n]) for n in range(1, len(ids) + 1)]
    last, final = stream.finish(ids)
    assert "".join(deltas) + last == final == text
    assert not any("\ufffd" in d for d in deltas)


def test_transcripts_export_as_markdown_and_jsonl(tiny, runner, tmp_path):
    model_dir, adapter_dir = tiny
    session = ChatSession(model_dir, BASE_CHOICE, tuned(adapter_dir))
    with pytest.raises(ValueError, match="empty"):
        export_transcript(session, tmp_path / "chat.md")
    for text in (QUESTION, "Thanks!"):
        session.record(answer(runner, session, text, settings(max_new_tokens=8))[0])

    markdown = export_transcript(session, tmp_path / "chat.md").read_text(encoding="utf-8")
    assert "## Turn 2" in markdown and f"**You:** {QUESTION}" in markdown
    assert f"**round-1:** {session.exchanges[0].answers['right'].text}" in markdown
    rows = [json.loads(line) for line in (export_transcript(session, tmp_path / "chat.jsonl")
                                          .read_text(encoding="utf-8").splitlines())]
    assert [r["user"] for r in rows] == [QUESTION, "Thanks!"]
    assert rows[0]["answers"]["right"]["run_id"] == "run-1"
    assert rows[1]["answers"]["left"]["text"] == session.exchanges[1].answers["left"].text
    assert rows[0]["settings"]["temperature"] == 0.0
    with pytest.raises(ValueError, match=r"\.md or \.jsonl"):
        export_transcript(session, tmp_path / "chat.txt")


def test_model_choices_list_the_base_and_runs_with_an_adapter(workspace, tiny):
    from storage.runs import create_run, update_run

    model_dir, adapter_dir = tiny
    create_run(workspace, "r-with", name="round-1", config_json="{}", base_model=model_dir,
               run_dir=str(workspace.runs_dir / "r-with"), total_steps=10)
    update_run(workspace, "r-with", adapter_path=adapter_dir)
    create_run(workspace, "r-without", name="unfinished", config_json="{}", base_model=model_dir,
               run_dir=str(workspace.runs_dir / "r-without"), total_steps=10)
    choices = chat_model_choices(workspace)
    assert [c.key for c in choices] == ["base", "r-with"]
    assert choices[1].label == "round-1" and choices[1].adapter_dir == adapter_dir


def said(model: ModelChoice, text: str) -> ChatAnswer:
    return ChatAnswer(model, text, tokens=len(text.split()), seconds=0.1, finished=True, stopped=False)


@pytest.mark.both_backends
def test_an_exchange_sent_to_labelling_becomes_a_pair_with_each_answer_tagged(workspace):
    from sqlalchemy import select

    from storage.models import Generation, Pair, Response, ResponseOrigin
    from storage.runs import create_run

    create_run(workspace, "r1", name="round-1", config_json="{}", base_model="bundled:demo_model",
               run_dir=str(workspace.runs_dir / "r1"), total_steps=10)
    round_1 = ModelChoice("r1", "round-1", "r1", "/nowhere")
    session = ChatSession("bundled:demo_model", BASE_CHOICE, round_1)
    values = {"temperature": 0.7, "top_p": 0.95, "max_new_tokens": 64, "seed": 3, "n": 1}
    session.record(Exchange("How do I cook rice?", {"left": said(BASE_CHOICE, "Who cares."),
                                                    "right": said(round_1, "Rinse it, then simmer it covered.")}, values))
    session.record(Exchange("Thanks! And pasta?", {"left": said(BASE_CHOICE, "Boil it."),
                                                   "right": said(round_1, "Salt the water, then boil it.")}, values))

    pair = session.labelling_pair(0)
    assert pair.prompt == ({"role": "user", "content": "How do I cook rice?"},)
    sent = send_to_labelling(workspace, pair)
    assert sent.added and sent.changes.pairs and sent.changes.pair_ids == {sent.pair_id}
    with workspace.session() as s:
        stored = s.get(Pair, sent.pair_id)
        assert stored.comparison_id is None and stored.source == "chat"
        responses = {r.text: r for r in s.scalars(select(Response).where(
            Response.id.in_([stored.response_a_id, stored.response_b_id])))}
        assert set(responses) == {"Who cares.", "Rinse it, then simmer it covered."}
        assert all(r.origin == ResponseOrigin.GENERATED for r in responses.values())
        base_gen = s.get(Generation, responses["Who cares."].generation_id)
        tuned_gen = s.get(Generation, responses["Rinse it, then simmer it covered."].generation_id)
        assert (base_gen.run_id, tuned_gen.run_id) == (None, "r1")
        assert responses["Rinse it, then simmer it covered."].model_name == "round-1"
        assert json.loads(tuned_gen.settings_json)["seed"] == 3
    assert not send_to_labelling(workspace, pair).added          # the same pair is not stored twice

    with pytest.raises(ValueError, match="different histories"):
        session.labelling_pair(1)       # each model saw its own first answer: no common prompt
    session.record(Exchange("Hi", {"left": said(BASE_CHOICE, "Hello."), "right": said(round_1, "Hello.")}, values))
    with pytest.raises(ValueError, match="same text"):
        session.labelling_pair()
    with pytest.raises(ValueError, match="empty"):
        ChatSession("bundled:demo_model").labelling_pair()


def test_continuing_from_one_answer_makes_every_exchange_a_pair(workspace):
    from core.operations.chat import send_exchanges_to_labelling

    round_1 = ModelChoice("r1", "round-1", None, None)     # a second base slot: no run row needed
    session = ChatSession("bundled:demo_model", BASE_CHOICE, round_1)
    values = {"temperature": 0.7, "top_p": 0.95, "max_new_tokens": 64, "seed": 3, "n": 1}

    def exchange(user, left, right):
        session.record(Exchange(user, {"left": said(BASE_CHOICE, left), "right": said(round_1, right)}, values))

    assert session.continue_refusal("left") == "nothing to continue from yet"
    exchange("How do I cook rice?", "Who cares.", "Rinse it, then simmer it.")
    exchange("And pasta?", "Boil it.", "Salt the water.")
    exchange("And couscous?", "Pour water on it.", "Steam it.")
    batch = session.labelling_batch()          # each model kept its own answers: only the first is a pair
    assert [index for index, _pair in batch.pairs] == [0] and [i for i, _r in batch.refused] == [1, 2]
    assert batch.refusal_text().startswith("exchanges 2, 3: the two models answered different histories")

    session.new_conversation()
    exchange("How do I cook rice?", "Who cares.", "Rinse it, then simmer it.")
    session.continue_with("right")             # both continue from round-1's answer
    with pytest.raises(ValueError, match="continues from this answer already"):
        session.continue_with("right")
    request = session.request("And pasta?")
    assert request.slots["left"].messages == request.slots["right"].messages
    assert request.slots["left"].messages[1] == {"role": "assistant", "content": "Rinse it, then simmer it."}
    exchange("And pasta?", "Boil it.", "Salt the water.")
    session.continue_with("left")
    exchange("And couscous?", "Pour water on it.", "Steam it.")
    batch = session.labelling_batch(already_sent={0})
    assert [index for index, _pair in batch.pairs] == [1, 2] and not batch.refused
    assert [m["content"] for m in batch.pairs[1][1].prompt] == [
        "How do I cook rice?", "Rinse it, then simmer it.", "And pasta?", "Boil it.", "And couscous?"]
    assert '"continued_with": "right"' in session.to_jsonl()
    assert "Both continued from round-1's answer" in session.to_markdown()

    sent = send_exchanges_to_labelling(workspace, [pair for _i, pair in session.labelling_batch().pairs])
    assert len(sent.added_ids) == 3 and sent.changes.pairs and sent.changes.pair_ids == set(sent.added_ids)
    assert sent.describe() == "3 pairs in the annotation queue ({}).".format(", ".join(f"#{i}" for i in sent.added_ids))
    again = send_exchanges_to_labelling(workspace, [batch.pairs[0][1]])
    assert again.added_ids == [] and again.describe() == "1 pair the workspace had already."
    exchange("Hi", "Hello.", "Hello.")
    assert "same text" in session.continue_refusal("left")
