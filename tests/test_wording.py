"""Counted nouns: one spelling of "1 turn" / "2 turns" everywhere (core.operations.wording.plural)."""

from core.operations.wording import plural


def test_one_is_singular_every_other_count_plural():
    assert plural(1, "turn") == "1 turn"
    assert plural(0, "turn") == "0 turns"
    assert plural(2, "annotator") == "2 annotators"
    assert plural(1200, "pair") == "1,200 pairs"
    assert plural(1200, "pair", grouped=False) == "1200 pairs"
    assert plural(1, "query", "queries") == "1 query" and plural(3, "query", "queries") == "3 queries"


def test_a_one_turn_conversation_says_1_turn(qtbot):
    from gui.annotate.response_panel import PromptPanel

    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.show_prompt("Hi", [{"role": "user", "content": "Hi"}], raw=False)
    assert panel.chips["turns"].text() == "1 turn"
    panel.show_prompt("Hi", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], raw=False)
    assert panel.chips["turns"].text() == "2 turns"
