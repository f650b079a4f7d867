"""Regenerate ``chat.png``: the Chat tab with a real two-turn conversation.

    QT_QPA_PLATFORM=offscreen python docs/screenshots/make_chat_screenshot.py [WORKSPACE]

Without WORKSPACE it makes the demo workspace in a temporary folder and trains a short demo run
(120 steps, a few minutes on a CPU) so the right column has a real adapter; with WORKSPACE (a demo
workspace with a run) it uses that. The base demo model answers on the left, the run's adapter on
the right, both sampled at the same settings and seed. After the first answer both continue from
the run's answer ("Continue from this answer"), so both exchanges can go to labelling.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
OUT = Path(__file__).resolve().parent

MESSAGES = ("Quick question. I want to keep slugs off my lettuce. Where do I start?",
            "I am a student. What would you suggest if I want to cook rice without it going sticky?")


def demo_workspace_with_a_run() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="chat-shot-")) / "demo"
    for args in (["demo", str(folder)], ["train", str(folder), "--set", "max_steps=120", "--set", "run_name=round-1",
                                         "--quiet"]):
        subprocess.run([sys.executable, str(ROOT / "main.py"), *args], check=True)
    return folder


def main() -> int:
    from PySide6.QtWidgets import QApplication

    from gui.chat.chat_view import ChatView
    from gui.common.db_worker import DatabaseWorker
    from gui.common.theme import apply_theme
    from gui.common.workers import wait_for_all_workers
    from storage.workspace import Workspace

    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else demo_workspace_with_a_run()
    app = QApplication.instance() or QApplication([])
    apply_theme("light", app)
    ws = Workspace.open(folder, create=False)
    db = DatabaseWorker()
    view = ChatView(ws, db, "ada")
    view.resize(1300, 820)
    view.show()

    def wait(condition, seconds=600.0):
        deadline = time.monotonic() + seconds
        while not condition() and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.01)
        if not condition():
            raise SystemExit("timed out waiting for the chat view")

    wait(lambda: view.session is not None and view.send_button.isEnabled())
    view.sampling.temperature.setValue(0.7)
    view.sampling.seed.setValue(3)
    for number, message in enumerate(MESSAGES):
        view.message_box.setPlainText(message)
        view.send(message)
        wait(lambda: not view.answering)
        if number == 0:
            view.continue_from("right")
    view.message_box.setPlainText("Thanks! And how do I fix a weak wifi signal?")
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    view.grab().save(str(OUT / "chat.png"))
    print(f"saved {OUT / 'chat.png'}")
    db.close()
    wait_for_all_workers()
    ws.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
