"""The real token counts that size the memory estimate: the engine's layouts, and the form's preview."""

from __future__ import annotations

import pytest

from core.engine.batch_tokens import longest_batch_tokens, step_tokens_of, tokens_key
from core.engine.batching import TokenizedPair, collate
from core.engine.memory_estimate import estimate_for_config, read_model_config
from core.engine.pair_packing import collate_packed
from core.engine.training_config import TrainingConfig
from core.operations.launch_checks import token_preview
from storage.training_set import build_training_set
from tests.qt_settings import isolated_settings  # noqa: F401  (fixture)
from tests.tiny_models import fill_workspace, make_tiny_model_dir
from tests.train_view_helpers import configure, make_train_view, pairs_workspace, tiny_model  # noqa: F401


def pair(pair_id: int, prompt: int, chosen: int, rejected: int) -> TokenizedPair:
    shared = tuple(range(1, prompt + 1))
    return TokenizedPair(pair_id=pair_id, example_hash=str(pair_id),
                         chosen_ids=shared + tuple(range(100, 100 + chosen)), chosen_start=prompt,
                         rejected_ids=shared + tuple(range(200, 200 + rejected)), rejected_start=prompt)


def test_counts_match_the_batches_the_engine_builds() -> None:
    pairs = [pair(1, 30, 10, 20), pair(2, 5, 40, 3)]
    packed, _ = step_tokens_of(pairs, packed=True)
    batch = collate_packed(pairs, pad_token_id=0)
    assert (packed.rows, packed.width) == tuple(batch.input_ids.shape) == (2, 60)
    assert packed.head_positions == len(batch.labels) == 10 + 20 + 40 + 3
    unpacked, reference = step_tokens_of(pairs, packed=False, reference_batch_size=1, all_pairs=pairs)
    rows = collate(pairs, pad_token_id=0)
    assert (unpacked.rows, unpacked.width) == tuple(rows.input_ids.shape) == (4, 50)
    assert unpacked.head_positions == int(rows.loss_mask.sum())
    assert (reference.rows, reference.width) == (2, 50)       # the single longest pair, as two rows


@pytest.mark.slow   # trains or spawns a process: over 5 s on a busy machine
def test_the_preview_counts_the_real_lengths_and_the_estimate_uses_them(tmp_path, workspace) -> None:
    model_dir = make_tiny_model_dir(tmp_path / "model")
    fill_workspace(workspace, 24)
    config = TrainingConfig(base_model=str(model_dir), batch_size=4, max_length=512)
    preview = token_preview(config, build_training_set(workspace).examples)
    assert preview.tokens_key == tokens_key(config)
    step, reference = preview.step_tokens
    assert step.rows == 4 and step.packed and 0 < step.width <= preview.longest * 2
    assert reference.rows == 16
    model = read_model_config(model_dir)
    real = estimate_for_config(config, model, "cpu", preview.step_tokens)
    worst = estimate_for_config(config, model, "cpu")
    assert real.activations < worst.activations / 10        # short demo-like pairs, max length 512
    cut = longest_batch_tokens([pair(1, 30, 10, 20)], TrainingConfig(base_model="x", max_length=32, batch_size=1))
    assert cut[0].width <= 2 * 32


def test_the_train_form_shows_the_estimate_of_the_real_lengths(qtbot, make_train_view, pairs_workspace,
                                                                tiny_model, isolated_settings) -> None:
    from core.engine.memory_estimate import format_bytes

    view = make_train_view(pairs_workspace)
    configure(view, tiny_model, device="cpu", max_length=4096, batch_size=8)
    view.form.refresh()
    qtbot.waitUntil(lambda: "fit in max length" in view.form.preview_label.text(), timeout=30_000)
    qtbot.waitUntil(lambda: view.form.memory_fits is not None, timeout=20_000)
    config = view.form.config()
    tokens = view.form.summary._tokens.step_tokens
    real = estimate_for_config(config, read_model_config(tiny_model), "cpu", tokens)
    worst = estimate_for_config(config, read_model_config(tiny_model), "cpu")
    assert f"needs about {format_bytes(real.total)} of" in view.form.memory_label.text()
    assert real.total < worst.total / 2
