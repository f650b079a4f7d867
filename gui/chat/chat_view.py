"""The Chat tab: one conversation, two models answering side by side, streamed as they decode.

The rules live in ``core.operations.chat`` (``ChatSession``: who sees which history; ``ChatRunner``:
one base in memory with the adapters on it, the decoding). This view renders them: a column per
slot (a model picker, tokens/s, a ``ChatTranscript``), the sampling bar, the message box, Stop,
New conversation and Export. The models to pick come from the ``DatabaseWorker``
(``chat_setup``); each answer decodes on a ``Worker`` (``gui.chat.chat_worker.answer_turn``)
whose coalesced events are applied here, on the UI thread, a few times a second.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from core.operations.chat import (SLOTS, AnswerDone, ChatAnswer, ChatDelta, ChatRunner, ChatSession, ChatSetup,
                                  Exchange, ModelChoice, ModelsLoading, SentPairs, chat_setup, export_transcript,
                                  send_exchanges_to_labelling)
from gui.chat.chat_inputs import MessageBox, SamplingBar
from gui.chat.chat_worker import answer_turn
from gui.chat.chat_column import OFF, ChatColumn
from gui.common.theme import named_label
from gui.common.workers import Worker, start_worker

class ChatView(QWidget):
    changes_made = Signal(object)
    status_message = Signal(str)

    def __init__(self, workspace, db, annotator_name: str | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = workspace
        self.db = db
        self.annotator_name = annotator_name
        self.runner = ChatRunner()
        self.session: ChatSession | None = None
        self.choices: dict[str, ModelChoice] = {}
        self.answering = False
        self._stop = threading.Event()
        self._worker: Worker | None = None
        self._setup_stale = False
        self._sent: set[int] = set()         # exchanges (by index) sent to labelling, or being sent
        self._build()
        self._load_setup()

    # -- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.setSpacing(10)
        top = QHBoxLayout()
        titles = QVBoxLayout()
        titles.setSpacing(2)
        titles.addWidget(named_label("Chat and compare", "heading"))
        titles.addWidget(named_label("One conversation, two models. Each answers with its own earlier replies, "
                                     "unless you continue from one answer.", "subheading"))
        top.addLayout(titles, 1)
        self.new_button = QPushButton("New conversation")
        self.new_button.setToolTip("Forget the conversation; both models start afresh.")
        self.new_button.clicked.connect(self.new_conversation)
        top.addWidget(self.new_button, 0, Qt.AlignmentFlag.AlignBottom)
        self.label_button = QPushButton("Send to labelling")
        self.label_button.setToolTip("Each exchange not sent yet becomes a pair in the annotation queue.")
        self.label_button.clicked.connect(self.send_to_labelling)
        top.addWidget(self.label_button, 0, Qt.AlignmentFlag.AlignBottom)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save the conversation as Markdown (.md) or JSON Lines (.jsonl).")
        self.export_button.clicked.connect(self._ask_export)
        top.addWidget(self.export_button, 0, Qt.AlignmentFlag.AlignBottom)
        layout.addLayout(top)

        self.sampling = SamplingBar()
        bar = QHBoxLayout()
        bar.addWidget(self.sampling)
        bar.addStretch(1)
        layout.addLayout(bar)

        columns = QHBoxLayout()
        columns.setSpacing(12)
        self.columns = {slot: ChatColumn(slot) for slot in SLOTS}
        for column in self.columns.values():
            column.picker.currentIndexChanged.connect(lambda _i, c=column: self._pick(c))
            column.continue_button.clicked.connect(lambda _checked=False, c=column: self.continue_from(c.slot))
            columns.addWidget(column, 1)
        layout.addLayout(columns, 1)

        composer = QHBoxLayout()
        composer.setSpacing(8)
        self.message_box = MessageBox()
        self.message_box.send_requested.connect(self.send)
        composer.addWidget(self.message_box, 1)
        buttons = QVBoxLayout()
        buttons.setSpacing(6)
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("primary")
        self.send_button.clicked.connect(lambda: self.send(self.message_box.toPlainText()))
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("End both answers here (Esc).")
        self.stop_button.clicked.connect(self.stop)
        for button in (self.send_button, self.stop_button):
            button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)
            button.setMinimumWidth(96)
            buttons.addWidget(button)
        composer.addLayout(buttons)
        layout.addLayout(composer)
        self.status = QLabel("Loading the models of this workspace…")
        self.status.setObjectName("muted")
        layout.addWidget(self.status)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, activated=self.stop)
        self._update_buttons()

    # -- models -----------------------------------------------------------------------------------
    def _load_setup(self) -> None:
        self.db.submit(chat_setup, self.workspace, on_done=self._show_setup,
                       on_failed=lambda exc: self._say(f"Could not read the workspace's runs: {exc}"))

    def _show_setup(self, setup: ChatSetup) -> None:
        self.choices = {c.key: c for c in setup.choices}
        if not setup.base_model:
            self.session = None
            self._say("This workspace has no base model yet: pick one in the Train tab to chat with it.")
            self._update_buttons()
            return
        if self.session is None or self.session.base_model != setup.base_model:
            self.session = ChatSession(setup.base_model, None, None)
            for column in self.columns.values():
                column.transcript.clear()
        runs = [c for c in setup.choices if c.run_id is not None]
        defaults = {"left": "base", "right": runs[0].key if runs else OFF}
        for slot, column in self.columns.items():
            previous = column.picker.currentData() if column.picker.count() else defaults[slot]
            column.picker.blockSignals(True)
            column.picker.clear()
            for choice in setup.choices:
                column.picker.addItem(choice.label, choice.key)
            column.picker.addItem("Off (no answer)", OFF)
            index = column.picker.findData(previous if previous in self.choices or previous == OFF else defaults[slot])
            column.picker.setCurrentIndex(max(0, index))
            column.picker.blockSignals(False)
            self._pick(column, announce=False)
        if not runs:
            self.columns["right"].transcript.set_empty_text(
                "No trained run yet. Train one in the Train tab, then pick it here to compare it with the base.")
        self._say(f"Base model {setup.base_model}; {len(runs)} run{'s' if len(runs) != 1 else ''} with an adapter.")
        self._update_buttons()

    def _pick(self, column: ChatColumn, announce: bool = True) -> None:
        if self.session is None:
            return
        choice = self.choices.get(column.choice_key())
        previous = self.session.models[column.slot]
        self.session.set_model(column.slot, choice)
        column.detail.setText("" if choice is None else
                              "base model" if choice.run_id is None else f"adapter of run {choice.run_id}")
        if choice is None and not column.transcript.bubbles:
            column.transcript.set_empty_text("This column is off: pick a model above to have it answer.")
        elif choice is not None and not column.transcript.bubbles:
            column.transcript.set_empty_text(f"Ask something below: {choice.label} answers here.")
        if announce and column.transcript.bubbles and previous != choice:
            column.transcript.add_note(f"From here on: {choice.label if choice else 'off'}")
        self._update_buttons()

    # -- sending and streaming --------------------------------------------------------------------
    def send(self, text: str) -> None:
        if self.answering:
            self._say("Still answering: wait for both answers, or press Stop (Esc). Your message stays in the box.")
            return
        if self.session is None:
            return
        try:
            request = self.session.request(text)
        except ValueError as exc:
            self._say(str(exc).capitalize() + ".")
            return
        self.message_box.clear()
        for slot, column in self.columns.items():
            if slot in request.slots:
                column.transcript.add_user(request.user)
                column.pending = column.transcript.start_answer()
        self._stop.clear()
        self.answering = True
        self._update_buttons()
        self._say("Answering…")
        worker = Worker(answer_turn, self.runner, request, self.sampling.values(), self._stop, loads_torch=True)
        worker.progress.connect(self._apply_events)
        worker.finished.connect(self._answered)
        worker.failed.connect(self._failed)
        self._worker = worker
        start_worker(worker)

    def stop(self) -> None:
        if self.answering:
            self._stop.set()
            self._say("Stopping…")

    def _apply_events(self, events: list) -> None:
        texts: dict[str, list[str]] = {}
        for event in events:
            if isinstance(event, ModelsLoading):
                self._say("Loading the models (the first answer only)…")
            elif isinstance(event, ChatDelta):
                texts.setdefault(event.slot, []).append(event.text)
                self.columns[event.slot].show_speed(event.tokens, event.tokens_per_second)
            elif isinstance(event, AnswerDone):
                self._flush(texts)
                self._finish_answer(event.slot, event.answer)
        self._flush(texts)

    def _flush(self, texts: dict[str, list[str]]) -> None:
        for slot, parts in texts.items():
            bubble = self.columns[slot].pending
            if bubble is not None:
                bubble.append("".join(parts))
        texts.clear()

    def _finish_answer(self, slot: str, answer: ChatAnswer) -> None:
        column = self.columns[slot]
        if column.pending is None:
            return
        column.pending.set_text(answer.text)
        ending = ("stopped" if answer.stopped else "" if answer.finished else "token limit")
        parts = [f"{answer.tokens} tokens", f"{answer.tokens_per_second:.0f} tok/s"] + ([ending] if ending else [])
        if answer.dropped_exchanges:
            parts.append(f"{answer.dropped_exchanges} earliest exchange(s) left out to fit the context")
        column.pending.set_meta(" · ".join(parts))
        column.show_speed(answer.tokens, answer.tokens_per_second)
        column.pending = None

    def _answered(self, exchange: Exchange) -> None:
        for slot, answer in exchange.answers.items():
            self._finish_answer(slot, answer)
        if self.session is not None:
            self.session.record(exchange)
        self._end_answering("Stopped." if any(a.stopped for a in exchange.answers.values()) else "")

    def _failed(self, message: str) -> None:
        for column in self.columns.values():
            if column.pending is not None:
                column.pending.set_text("")
                column.pending.set_meta(f"No answer: {message}", bad=True)
                column.pending = None
        self._end_answering(f"Could not answer: {message}")

    def _end_answering(self, message: str) -> None:
        self.answering = False
        self._worker = None
        self._update_buttons()
        if self._setup_stale:
            self._setup_stale = False
            self._load_setup()
        turns = len(self.session.exchanges) if self.session else 0
        self._say(message or f"{turns} exchange{'s' if turns != 1 else ''} in this conversation.")
        self.message_box.setFocus()

    # -- conversation -----------------------------------------------------------------------------
    def new_conversation(self) -> None:
        if self.answering or self.session is None:
            return
        self.session.new_conversation()
        self._sent.clear()
        for column in self.columns.values():
            column.transcript.clear()
            column.speed.setVisible(False)
            self._pick(column, announce=False)
        self._say("New conversation.")

    def continue_from(self, slot: str) -> None:
        """Both models continue from ``slot``'s last answer, so the next exchange can be a pair."""
        if self.session is None or self.answering:
            return
        try:
            self.session.continue_with(slot)
        except ValueError as exc:
            self._say(str(exc).capitalize() + ".")
            return
        label = self.session.exchanges[-1].answers[slot].model.label
        for column in self.columns.values():
            column.transcript.add_note(f"Both continue from {label}'s answer")
        self._update_buttons()
        self._say(f"Both models continue from {label}'s answer: the next exchange can become a pair to label.")

    def send_to_labelling(self) -> None:
        """Every exchange not sent yet that can be a pair goes to the annotation queue, each its own pair."""
        if self.session is None or self.answering:
            return
        batch = self.session.labelling_batch(self._sent)
        if not batch.pairs:
            self._say(self._labelling_refusal() or "Nothing to send.")
            return
        indices = [index for index, _pair in batch.pairs]
        self._sent.update(indices)
        self._update_buttons()
        self.db.submit(send_exchanges_to_labelling, self.workspace, [pair for _index, pair in batch.pairs],
                       on_done=lambda sent: self._sent_to_labelling(sent, batch.refusal_text()),
                       on_failed=lambda exc: self._not_sent(indices, exc))

    def _sent_to_labelling(self, sent: SentPairs, left_out: str) -> None:
        self.changes_made.emit(sent.changes)
        self._say(sent.describe() + (f" Left out: {left_out}." if left_out else ""))

    def _not_sent(self, indices: list[int], exc: BaseException) -> None:
        self._sent.difference_update(indices)
        self._update_buttons()
        self._say(f"Could not store the pairs: {exc}")

    def export_to(self, path: str | Path) -> Path | None:
        if self.session is None:
            return None
        try:
            written = export_transcript(self.session, path)
        except (ValueError, OSError) as exc:
            self._say(f"Could not export: {exc}")
            return None
        self._say(f"Conversation saved to {written}")
        return written

    def _ask_export(self) -> None:
        try:
            start = str(self.workspace.exports_dir / "chat.md")
        except OSError:
            start = "chat.md"
        path, _ = QFileDialog.getSaveFileName(self, "Export the conversation", start,
                                              "Markdown (*.md);;JSON Lines (*.jsonl)")
        if path:
            self.export_to(path)

    # -- the main window's hooks ------------------------------------------------------------------
    def on_changes(self, changes) -> None:
        if changes.runs or changes.settings:
            if self.answering:
                self._setup_stale = True      # reread when this answer is done (pickers are locked meanwhile)
            else:
                self._load_setup()

    def set_annotator(self, name: str | None) -> None:
        self.annotator_name = name

    def stop_timers(self) -> None:
        self._stop.set()          # an answer in flight ends at its next token

    def confirm_close(self) -> bool:
        self._stop.set()
        return True

    def refresh_theme(self) -> None:
        for column in self.columns.values():
            column.refresh_theme()

    def _update_buttons(self) -> None:
        ready = self.session is not None and bool(self.session.active_slots())
        self.send_button.setEnabled(ready and not self.answering)
        self.stop_button.setEnabled(self.answering)
        has_turns = bool(self.session and self.session.exchanges)
        self.new_button.setEnabled(has_turns and not self.answering)
        self.export_button.setEnabled(has_turns and not self.answering)
        reason = self._labelling_refusal()
        self.label_button.setEnabled(reason is None and not self.answering)
        ready_pairs = len(self.session.labelling_batch(self._sent).pairs) if reason is None else 0
        self.label_button.setText(f"Send {ready_pairs} to labelling" if ready_pairs > 1 else "Send to labelling")
        self.label_button.setToolTip(reason or "Each exchange not sent yet becomes a pair in the annotation queue "
                                     "(each answer tagged with the model that wrote it).")
        for column in self.columns.values():
            column.picker.setEnabled(not self.answering)
            refusal = self.session.continue_refusal(column.slot) if self.session else "No conversation yet."
            column.continue_button.setEnabled(refusal is None and not self.answering)
            column.continue_button.setToolTip(
                (refusal[:1].upper() + refusal[1:] + ".") if refusal else
                "Both models take this answer as the reply to your last message, so the next exchange "
                "answers one conversation and can become a pair to label.")

    def _labelling_refusal(self) -> str | None:
        """Why no exchange can be sent now (None: some can): the newest exchange's reason."""
        if self.session is None:
            return "No conversation yet."
        batch = self.session.labelling_batch(self._sent)
        if batch.pairs:
            return None
        if not batch.refused:
            return ("Every exchange is in the annotation queue already." if self.session.exchanges
                    else "Nothing to send yet: the conversation is empty.")
        reason = batch.refused[-1][1]
        return reason[:1].upper() + reason[1:] + "."

    def _say(self, text: str) -> None:
        self.status.setText(text)
        self.status_message.emit(text)

