"""The Chat tab (gui/chat/chat_view.py) under pytest-qt: a real workspace, a real tiny Llama as its
base model and a real LoRA adapter as a run's; messages typed and sent with Enter, both columns
streamed, Stop, New conversation, export. The conftest fails a test that leaves a thread running."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from gui.chat.chat_inputs import SamplingBar
from gui.common.workers import running_workers
from storage.models import RunStatus
from storage.runs import create_run, update_run
from storage.settings import update_settings
from tests.gui_db import db, settle  # noqa: F401  (fixture)
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)
from tests.test_chat import tiny  # noqa: F401  (fixture: tiny model + adapter)

ANSWER_TIMEOUT_MS = 120_000


@pytest.fixture
def chat_workspace(workspace, tiny):  # noqa: F811
    model_dir, adapter_dir = tiny
    update_settings(workspace, base_model=model_dir)
    create_run(workspace, "r1", name="round-1", config_json="{}", base_model=model_dir,
               run_dir=str(workspace.runs_dir / "r1"), total_steps=10)
    update_run(workspace, "r1", adapter_path=adapter_dir, status=RunStatus.COMPLETED)
    return workspace


@pytest.fixture
def view(qtbot, db, chat_workspace):  # noqa: F811
    from gui.chat.chat_view import ChatView

    chat = ChatView(chat_workspace, db, "ada")
    db.views.append(chat)
    qtbot.addWidget(chat)
    chat.resize(1300, 820)
    chat.show()
    settle(db)
    chat.sampling.temperature.setValue(0.0)
    chat.sampling.max_new_tokens.setValue(12)
    yield chat
    chat.stop()
    qtbot.waitUntil(lambda: not chat.answering, timeout=ANSWER_TIMEOUT_MS)


def chat_threads():
    return [t for t in running_workers() if t.objectName() == "worker:answer_turn"]


def type_and_send(qtbot, view, text: str) -> None:
    view.message_box.setFocus()
    qtbot.keyClicks(view.message_box, text)
    qtbot.keyClick(view.message_box, Qt.Key.Key_Return)


def answers(view, slot: str) -> list[str]:
    return [b.text for b in view.columns[slot].transcript.bubbles if b.role == "assistant"]


def test_the_chat_view_imports_no_ml_library():
    """The UI thread never imports torch: the view's module and everything it imports stay free of it."""
    code = ("import sys; import gui.chat.chat_view; "
            "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1], env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_bar_starts_at_the_sampling_defaults(qtbot):
    from core.engine.generation import SamplingSettings

    bar = SamplingBar()
    qtbot.addWidget(bar)
    defaults = {k: v for k, v in dataclasses.asdict(SamplingSettings()).items() if k != "n"}
    assert bar.values() == defaults and SamplingSettings(**bar.values()) == SamplingSettings()


def test_a_message_sent_with_enter_fills_both_columns(qtbot, view):
    assert view.columns["left"].picker.currentText() == "Base"
    assert view.columns["right"].picker.currentText() == "round-1"
    assert view.columns["right"].detail.text() == "adapter of run r1"

    qtbot.keyClicks(view.message_box, "first line")
    qtbot.keyClick(view.message_box, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    assert "\n" in view.message_box.toPlainText() and not view.answering     # Shift+Enter: a new line
    view.message_box.clear()

    type_and_send(qtbot, view, "Question 3: how do I bake bread?")
    assert view.answering and view.message_box.toPlainText() == ""
    assert not view.send_button.isEnabled() and view.stop_button.isEnabled()
    qtbot.waitUntil(lambda: not view.answering, timeout=ANSWER_TIMEOUT_MS)

    exchange = view.session.exchanges[0]
    for slot in ("left", "right"):
        bubbles = view.columns[slot].transcript.bubbles
        assert [b.role for b in bubbles] == ["user", "assistant"]
        assert bubbles[0].text == "Question 3: how do I bake bread?"
        assert bubbles[1].text == exchange.answers[slot].text != ""
        assert "tokens" in bubbles[1].meta_label.text() and "tok/s" in view.columns[slot].speed.text()
    assert exchange.answers["right"].model.run_id == "r1"
    assert answers(view, "left") != answers(view, "right")
    assert view.send_button.isEnabled() and not view.stop_button.isEnabled()

    assert view.label_button.isEnabled()
    with qtbot.waitSignal(view.changes_made, timeout=10_000) as sent:
        view.label_button.click()
    settle(view.db)
    assert sent.args[0].pairs and len(sent.args[0].pair_ids) == 1
    assert "annotation queue" in view.status.text() and not view.label_button.isEnabled()

    type_and_send(qtbot, view, "And how do I plant a tree?")
    qtbot.waitUntil(lambda: not view.answering, timeout=ANSWER_TIMEOUT_MS)
    assert len(view.session.exchanges) == 2 and len(answers(view, "left")) == 2
    assert not view.label_button.isEnabled() and "different histories" in view.label_button.toolTip()
    qtbot.waitUntil(lambda: not chat_threads(), timeout=10_000)


def test_stop_new_conversation_and_export(qtbot, view, tmp_path):
    view.sampling.max_new_tokens.setValue(400)     # greedy: neither reaches its end within a few tokens
    type_and_send(qtbot, view, "Question 5: how do I save money?")
    qtbot.waitUntil(lambda: bool(view.columns["left"].speed.text()), timeout=ANSWER_TIMEOUT_MS)
    type_and_send(qtbot, view, "too soon")             # Enter while answering: nothing sent, nothing lost
    assert view.message_box.toPlainText() == "too soon" and "Still answering" in view.status.text()
    view.stop_button.click()
    qtbot.waitUntil(lambda: not view.answering, timeout=ANSWER_TIMEOUT_MS)
    exchange = view.session.exchanges[0]
    assert all(a.stopped for a in exchange.answers.values())
    assert all(a.tokens < 400 for a in exchange.answers.values())
    assert "stopped" in view.columns["right"].transcript.bubbles[1].meta_label.text()

    written = view.export_to(tmp_path / "chat.jsonl")
    assert written is not None and "Question 5" in written.read_text(encoding="utf-8")
    assert view.export_to(tmp_path / "chat.txt") is None and ".md or .jsonl" in view.status.text()

    view.new_button.click()
    assert view.session.exchanges == []
    assert all(not c.transcript.bubbles for c in view.columns.values())
    assert not view.new_button.isEnabled()
    qtbot.waitUntil(lambda: not chat_threads(), timeout=10_000)


def test_a_column_switched_off_does_not_answer(qtbot, view):
    right = view.columns["right"]
    right.picker.setCurrentIndex(right.picker.findData("off"))
    assert view.session.models["right"] is None
    type_and_send(qtbot, view, "Question 1: how do I fix a bike?")
    qtbot.waitUntil(lambda: not view.answering, timeout=ANSWER_TIMEOUT_MS)
    assert set(view.session.exchanges[0].answers) == {"left"}
    assert not right.transcript.bubbles and len(view.columns["left"].transcript.bubbles) == 2


def test_closing_the_window_mid_answer_stops_it(qtbot, chat_workspace, isolated_settings):  # noqa: F811
    from gui.main_window import MainWindow

    window = MainWindow(chat_workspace, "ada")
    qtbot.addWidget(window)
    window.show()
    page = next(p for p in window.loop_pages if p.tab.title == "Chat")
    window.tabs.setCurrentWidget(page)
    chat = page.view
    settle(window.db)
    assert chat.columns["right"].picker.currentText() == "round-1"
    chat.sampling.temperature.setValue(0.0)
    chat.sampling.max_new_tokens.setValue(400)
    type_and_send(qtbot, chat, "Question 2: how do I plant a tree?")
    qtbot.waitUntil(lambda: bool(chat.columns["right"].speed.text()), timeout=ANSWER_TIMEOUT_MS)
    window.close()
    assert not chat_threads()
    exchange = chat.session.exchanges[0]
    assert all(a.stopped and a.tokens < 400 for a in exchange.answers.values())


def test_a_model_that_cannot_load_is_said_in_the_column_not_raised(qtbot, db, workspace, tmp_path):  # noqa: F811
    from gui.chat.chat_view import ChatView

    update_settings(workspace, base_model=str(tmp_path / "no-such-model"))
    chat = ChatView(workspace, db, "ada")
    db.views.append(chat)
    qtbot.addWidget(chat)
    settle(db)
    assert chat.columns["right"].picker.currentData() == "off"          # no run yet: the right column is off
    assert "No trained run yet" in chat.columns["right"].transcript.empty_label.text()
    type_and_send(qtbot, chat, "Hello?")
    qtbot.waitUntil(lambda: not chat.answering, timeout=ANSWER_TIMEOUT_MS)
    bubble = chat.columns["left"].transcript.bubbles[-1]
    assert "No answer" in bubble.meta_label.text() and "no-such-model" in bubble.meta_label.text()
    assert chat.status.text().startswith("Could not answer") and chat.session.exchanges == []
    assert chat.send_button.isEnabled()


def test_continuing_from_an_answer_lets_later_exchanges_go_to_labelling(qtbot, view):
    right = view.columns["right"]
    assert not right.continue_button.isEnabled()
    type_and_send(qtbot, view, "Question 3: how do I bake bread?")
    qtbot.waitUntil(lambda: not view.answering, timeout=ANSWER_TIMEOUT_MS)
    assert right.continue_button.isEnabled() and view.columns["left"].continue_button.isEnabled()
    qtbot.mouseClick(right.continue_button, Qt.MouseButton.LeftButton)
    assert not right.continue_button.isEnabled() and "already" in right.continue_button.toolTip()
    assert all(column.transcript.bubbles[-1].role == "note" for column in view.columns.values())
    assert "Both models continue from round-1's answer" in view.status.text()

    type_and_send(qtbot, view, "And how do I plant a tree?")
    qtbot.waitUntil(lambda: not view.answering, timeout=ANSWER_TIMEOUT_MS)
    first_answer = view.session.exchanges[0].answers["right"].text
    assert view.session.messages_for("left")[1]["content"] == first_answer    # the left model saw round-1's answer
    assert view.label_button.isEnabled() and view.label_button.text() == "Send 2 to labelling"
    with qtbot.waitSignal(view.changes_made, timeout=10_000) as sent:
        view.label_button.click()
    settle(view.db)
    assert len(sent.args[0].pair_ids) == 2 and "2 pairs in the annotation queue" in view.status.text()
    assert not view.label_button.isEnabled() and "already" in view.label_button.toolTip()
    qtbot.waitUntil(lambda: not chat_threads(), timeout=10_000)
