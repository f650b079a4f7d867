"""Chat and compare: one conversation, two models answering it side by side, token by token.

``ChatSession`` is the conversation (plain data, no torch): the user's turns, the two slots
("left", "right") and which model each holds (``ModelChoice``: the base, or the base plus a
run's adapter), and every exchange answered so far. Each model answers the conversation as it
saw it: the user's turns and *its own* earlier answers (``messages_for``), never the other's —
unless the user picked one answer of the last exchange to continue from (``continue_with``):
then both see that answer as the turn's reply. A pair to label needs one prompt, so an exchange
becomes a pair (``labelling_batch``: every exchange not sent yet, each its own pair) only when
both models answered the same history: the first exchange, or one after such picks.

``ChatRunner.answer`` (on a worker thread) loads the base once with the slots' adapters on it
(``core.engine.chat_models``), decodes both answers in turns, one token each, and reports typed
events to a callback: ``ModelsLoading``, ``ChatDelta`` (new text of one slot) and ``AnswerDone``
(``ChatRunner.stream`` is the same as a generator of those events). The caller records the
returned ``Exchange`` in the session. Transcripts export as Markdown or JSONL.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Collection, Generator

from core.operations.chat_labelling import (LabellingBatch, LabellingPair, SentPair, SentPairs,  # noqa: F401
                                            send_exchanges_to_labelling, send_to_labelling)
from storage.settings import read_settings
from storage.workspace import Workspace

SLOTS = ("left", "right")
BASE_KEY = "base"
TRANSCRIPT_FORMATS = {".md": "markdown", ".markdown": "markdown", ".jsonl": "jsonl"}


@dataclass(frozen=True)
class ModelChoice:
    key: str                      # "base" or a run id
    label: str                    # "Base" or the run's name
    run_id: str | None
    adapter_dir: str | None


BASE_CHOICE = ModelChoice(BASE_KEY, "Base", None, None)


def chat_model_choices(ws: Workspace, base_model: str | None = None) -> list[ModelChoice]:
    """The base, then every run with a saved adapter (newest first); with ``base_model``, only
    the runs trained on it (an adapter loads on its own base only)."""
    from core.operations.runs import runs_with_adapter

    return [BASE_CHOICE] + [ModelChoice(run.id, run.name or run.id, run.id, str(folder))
                            for run, folder in runs_with_adapter(ws, base_model)]


def workspace_base_model(ws: Workspace) -> str | None:
    """The workspace's base model, else the newest run's (None: neither is known yet)."""
    from core.operations.runs import list_runs

    return read_settings(ws).base_model or next(
        (r.base_model for r in list_runs(ws, newest_first=True) if r.base_model), None)


@dataclass(frozen=True)
class ChatSetup:
    base_model: str | None        # the workspace's base model (None: not set yet)
    choices: tuple[ModelChoice, ...]


def chat_setup(ws: Workspace) -> ChatSetup:
    """What the Chat tab offers: the workspace's base model (else the newest run's) and the models
    to pick from."""
    base_model = workspace_base_model(ws)
    return ChatSetup(base_model, tuple(chat_model_choices(ws, base_model)) if base_model else ())


# -- the conversation -------------------------------------------------------------------------
@dataclass(frozen=True)
class ChatAnswer:
    model: ModelChoice
    text: str
    tokens: int
    seconds: float
    finished: bool                # the model ended its turn before the token limit
    stopped: bool                 # the user pressed Stop
    dropped_exchanges: int = 0    # earliest exchanges left out to fit the model's context

    @property
    def tokens_per_second(self) -> float:
        return rate(self.tokens, self.seconds)


def rate(tokens: int, seconds: float) -> float:
    return tokens / seconds if seconds > 0 else 0.0


@dataclass(frozen=True)
class Exchange:
    user: str
    answers: dict[str, ChatAnswer]            # slot -> answer
    settings: dict                            # SamplingSettings.as_dict() it was answered with
    at: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    continued_with: str | None = None         # the slot whose answer both models continue from


@dataclass(frozen=True)
class SlotRequest:
    model: ModelChoice
    messages: tuple[dict, ...]


@dataclass(frozen=True)
class TurnRequest:
    """What a worker needs to answer one user message: per slot, its model and its messages."""

    base_model: str
    user: str
    slots: dict[str, SlotRequest]


class ChatSession:
    def __init__(self, base_model: str, left: ModelChoice = BASE_CHOICE, right: ModelChoice | None = None):
        self.base_model = base_model
        self.models: dict[str, ModelChoice | None] = {"left": left, "right": right}
        self.exchanges: list[Exchange] = []

    def set_model(self, slot: str, choice: ModelChoice | None) -> None:
        """Put ``choice`` in ``slot`` (None leaves the slot empty). The slot keeps its history."""
        if slot not in SLOTS:
            raise ValueError(f"slot must be one of {SLOTS}, got {slot!r}")
        self.models[slot] = choice

    def active_slots(self) -> list[str]:
        return [slot for slot in SLOTS if self.models[slot] is not None]

    def messages_for(self, slot: str, user_text: str | None = None) -> list[dict]:
        """The conversation as ``slot``'s model sees it: the user's turns and its own answers (or
        the answer picked to continue from, where one was)."""
        messages: list[dict] = []
        for exchange in self.exchanges:
            answer = exchange.answers.get(exchange.continued_with or slot)
            if answer is None or not answer.text:
                continue                           # it did not answer that turn: the turn is not its history
            messages += [{"role": "user", "content": exchange.user}, {"role": "assistant", "content": answer.text}]
        if user_text is not None:
            messages.append({"role": "user", "content": user_text})
        return messages

    def request(self, user_text: str) -> TurnRequest:
        text = user_text.strip()
        if not text:
            raise ValueError("the message is empty")
        slots = self.active_slots()
        if not slots:
            raise ValueError("pick a model for at least one column")
        return TurnRequest(self.base_model, text,
                           {s: SlotRequest(self.models[s], tuple(self.messages_for(s, text))) for s in slots})

    def record(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)

    def new_conversation(self) -> None:
        self.exchanges.clear()

    def continue_refusal(self, slot: str) -> str | None:
        """Why the conversation cannot continue from ``slot``'s last answer (None: it can)."""
        if not self.exchanges:
            return "nothing to continue from yet"
        last = self.exchanges[-1]
        answers = [last.answers.get(s) for s in SLOTS]
        if any(a is None or not a.text for a in answers):
            return "both columns must have answered the last message"
        if answers[0].text == answers[1].text:
            return "the two answers are the same text: both already continue from it"
        if last.continued_with == slot:
            return "the conversation continues from this answer already"
        return None

    def continue_with(self, slot: str) -> None:
        """Both models continue from ``slot``'s answer to the last message (its answer becomes the
        other model's history too), so the next exchange can be a pair; ``ValueError`` saying why not.
        Only the last exchange: the later ones were answered from the history as it was."""
        reason = self.continue_refusal(slot)
        if reason is not None:
            raise ValueError(reason)
        self.exchanges[-1] = replace(self.exchanges[-1], continued_with=slot)

    def labelling_batch(self, already_sent: Collection[int] = ()) -> LabellingBatch:
        """Every exchange not in ``already_sent`` (indices) as its own pair, with why each other one cannot be."""
        pairs, refused = [], []
        for index in range(len(self.exchanges)):
            if index in already_sent:
                continue
            try:
                pairs.append((index, self.labelling_pair(index)))
            except ValueError as exc:
                refused.append((index, str(exc)))
        return LabellingBatch(tuple(pairs), tuple(refused))

    def labelling_pair(self, index: int = -1) -> LabellingPair:
        """Exchange ``index`` as a pair to judge; ``ValueError`` saying why it cannot be one. Both
        models must have answered the same conversation: the pair's prompt is that conversation."""
        if not self.exchanges:
            raise ValueError("nothing to send yet: the conversation is empty")
        number = index % len(self.exchanges)
        exchange = self.exchanges[number]
        answers = [exchange.answers.get(slot) for slot in SLOTS]
        if any(a is None or not a.text for a in answers):
            raise ValueError("both columns must have answered to make a pair")
        if answers[0].text == answers[1].text:
            raise ValueError("the two answers are the same text: there is nothing to choose between")
        earlier = ChatSession(self.base_model)
        earlier.exchanges = self.exchanges[:number]
        prompt = earlier.messages_for("left", exchange.user)
        if prompt != earlier.messages_for("right", exchange.user):
            raise ValueError("the two models answered different histories here (their earlier answers differ); "
                             "a pair needs one prompt: pick “Continue from this answer” in a column before "
                             "the next message, or start a new conversation")
        return LabellingPair(self.base_model, tuple(prompt), tuple(answers), exchange.settings)

    # -- transcripts ------------------------------------------------------------------------
    def to_markdown(self) -> str:
        lines = ["# Chat transcript", "", f"Base model: `{self.base_model}`", ""]
        for number, exchange in enumerate(self.exchanges, 1):
            lines += [f"## Turn {number}", "", f"**You:** {exchange.user}", ""]
            for slot in SLOTS:
                answer = exchange.answers.get(slot)
                if answer is not None:
                    note = " *(stopped)*" if answer.stopped else "" if answer.finished else " *(token limit)*"
                    lines += [f"**{answer.model.label}:** {answer.text}{note}", ""]
            picked = exchange.answers.get(exchange.continued_with or "")
            if picked is not None:
                lines += [f"*Both continued from {picked.model.label}'s answer.*", ""]
            lines += [f"<sub>{settings_text(exchange.settings)}</sub>", ""]
        return "\n".join(lines)

    def to_jsonl(self) -> str:
        rows = []
        for number, exchange in enumerate(self.exchanges, 1):
            answers = {slot: {**asdict(a.model), **{k: v for k, v in asdict(a).items() if k != "model"}}
                       for slot, a in exchange.answers.items()}
            rows.append(json.dumps({"turn": number, "at": exchange.at, "base_model": self.base_model,
                                    "user": exchange.user, "answers": answers, "settings": exchange.settings,
                                    "continued_with": exchange.continued_with},
                                   ensure_ascii=False))
        return "".join(row + "\n" for row in rows)


def settings_text(settings: dict) -> str:
    return (f"temperature {settings.get('temperature')} · top-p {settings.get('top_p')} · "
            f"max {settings.get('max_new_tokens')} tokens · seed {settings.get('seed')}")


def export_transcript(session: ChatSession, path: str | Path) -> Path:
    """Write the conversation to ``path``: Markdown (.md) or JSONL (.jsonl), by its suffix."""
    target = Path(path)
    kind = TRANSCRIPT_FORMATS.get(target.suffix.lower())
    if kind is None:
        raise ValueError(f"{target.name}: a transcript is written as .md or .jsonl, not {target.suffix or 'no suffix'!r}")
    if not session.exchanges:
        raise ValueError("the conversation is empty: nothing to export")
    text = session.to_markdown() if kind == "markdown" else session.to_jsonl()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


# -- answering --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelsLoading:
    keys: tuple[str, ...]         # models not in memory yet (the first answer pays for them)


@dataclass(frozen=True)
class ChatDelta:
    slot: str
    text: str                     # new text of the slot's answer (joined, the deltas are the answer)
    tokens: int = 0               # tokens of the answer so far
    tokens_per_second: float = 0.0


@dataclass(frozen=True)
class AnswerDone:
    slot: str
    answer: ChatAnswer


ChatEvent = ModelsLoading | ChatDelta | AnswerDone


class ChatRunner:
    """The models behind a chat, kept in memory between answers. Build it anywhere; its first
    ``answer`` (on a worker thread) imports torch and loads the base and the adapters."""

    def __init__(self, device: str = "auto", dtype: str = "auto"):
        self._device, self._dtype = device, dtype
        self._models = None

    def answer(self, request: TurnRequest, settings, on_event: Callable[[ChatEvent], None] | None = None,
               should_stop: Callable[[], bool] | None = None) -> Exchange:
        """Both slots' answers to ``request`` (``settings``: a ``core.engine.generation.SamplingSettings``),
        decoded in turns one token each, each event passed to ``on_event``; on stop, the answers so
        far (marked stopped)."""
        events = self.stream(request, settings, should_stop)
        while True:
            try:
                event = next(events)
            except StopIteration as done:
                return done.value
            if on_event is not None:
                on_event(event)

    def stream(self, request: TurnRequest, settings,
               should_stop: Callable[[], bool] | None = None) -> Generator[ChatEvent, None, Exchange]:
        """The generator behind ``answer``: yields the events, returns the ``Exchange``."""
        from core.engine.chat_models import ChatModels

        if self._models is None or self._models.base_model != request.base_model:
            self._models = ChatModels(request.base_model, self._device, self._dtype)
        models = self._models
        wanted = {r.model.key: r.model.adapter_dir for r in request.slots.values()}
        missing = tuple(k for k in wanted if k not in models.loaded_keys)
        if missing:
            yield ModelsLoading(missing)
        models.ensure({k: d for k, d in wanted.items() if k != BASE_KEY and d})
        decoders = {slot: models.decoder(r.model.key, r.messages, settings) for slot, r in request.slots.items()}
        answers: dict[str, ChatAnswer] = {}
        while len(answers) < len(decoders):
            stopping = should_stop is not None and should_stop()
            for slot, decoder in decoders.items():
                if slot in answers:
                    continue
                delta = decoder.stop() if stopping else decoder.step()
                if delta:
                    yield ChatDelta(slot, delta, decoder.tokens, rate(decoder.tokens, decoder.seconds))
                if decoder.done:
                    reply = decoder.result()
                    answers[slot] = ChatAnswer(request.slots[slot].model, reply.text, len(reply.token_ids),
                                               reply.seconds, reply.finished, reply.stopped, reply.dropped_exchanges)
                    yield AnswerDone(slot, answers[slot])
        return Exchange(request.user, {slot: answers[slot] for slot in request.slots}, settings.as_dict())
