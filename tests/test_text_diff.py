"""core.operations.text_diff: word-level differences as character spans."""

from core.operations.text_diff import tokenize, word_diff


def _words(text: str, spans) -> list[str]:
    return [text[a:b] for a, b in spans]


def test_identical_texts_have_no_difference():
    diff = word_diff("The same answer.", "The  same\nanswer.")
    assert diff.identical


def test_replaced_word_is_marked_on_both_sides():
    left = "Diversify, research, only invest what you can afford to lose"
    right = "Diversify, research, invest everything you can afford to lose"
    diff = word_diff(left, right)
    assert _words(left, diff.removed) == ["only", "what"]
    assert _words(right, diff.inserted) == ["everything"]


def test_insertion_only_marks_right_side():
    diff = word_diff("use a list", "use a sorted list")
    assert diff.removed == []
    assert _words("use a sorted list", diff.inserted) == ["sorted"]


def test_spans_index_the_original_text_with_newlines_and_code():
    left = "```python\nx = 1\n```\nDone."
    right = "```python\nx = 2\n```\nDone."
    diff = word_diff(left, right)
    assert _words(left, diff.removed) == ["1"]
    assert _words(right, diff.inserted) == ["2"]


def test_common_words_are_not_junked_on_long_texts():
    # With difflib's autojunk, "the" (over 1% of 300+ tokens) would be junk and the
    # whole text reported as changed; only the one real change must show.
    base = " ".join(f"the cat number {i} sat on the mat" for i in range(60))
    changed = base.replace("mat", "rug", 1)
    diff = word_diff(base, changed)
    assert _words(base, diff.removed) == ["mat"]
    assert _words(changed, diff.inserted) == ["rug"]


def test_too_long_texts_are_not_diffed():
    assert word_diff("a " * 50, "b " * 50, max_tokens=10).identical


def test_tokenize_keeps_spans():
    assert tokenize(" ab  c") == [("ab", (1, 3)), ("c", (5, 6))]
