"""The LM head in chunks (core.engine.logprobs) gives the full head's log-probs and gradients, and
the peak memory of a training step does not grow with the vocabulary beyond the weights themselves."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from core.engine import logprobs
from core.engine.batching import Batch, collate, tokenize_examples
from core.engine.logprobs import completion_token_logps, sequence_logps
from core.engine.pair_packing import collate_packed
from tests.test_pair_packing import examples, lora_model
from tests.tiny_models import make_tiny_model_dir

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("chunked") / "model", hidden_size=64, layers=2)


def full_head_token_logps(model, batch) -> torch.Tensor:
    """The reference: the model's own full (2B, T, V) logits and log-softmax, autograd all the way."""
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False).logits
    token_logps = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(
        -1, batch.input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return token_logps * batch.loss_mask


def loss_and_gradients(model, token_logps_fn, batch):
    model.zero_grad(set_to_none=True)
    token_logps = token_logps_fn(model, batch)
    chosen, rejected = sequence_logps(token_logps)
    torch.nn.functional.logsigmoid(0.1 * (chosen - rejected)).mean().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return token_logps.detach()[batch.loss_mask.bool()], grads


@pytest.mark.parametrize("layout", ["batch", "packed"])
def test_chunked_head_equals_full_logits(model_dir, layout, monkeypatch) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = lora_model(model_dir, "sdpa")
    pairs, _ = tokenize_examples(tokenizer, examples(False), 512)
    unpacked = collate(pairs, tokenizer.eos_token_id)
    batch = unpacked if layout == "batch" else collate_packed(pairs, tokenizer.eos_token_id)
    vocab = model.get_output_embeddings().weight.shape[0]
    monkeypatch.setattr(logprobs, "LOGITS_CHUNK_ELEMENTS", 3 * vocab)                 # 3 rows a chunk
    monkeypatch.setattr(logprobs, "HEAD_CHUNK_MIN_ROWS", 1)
    assert int(batch.loss_mask.sum()) > 30                                          # really many chunks

    expected, expected_grads = loss_and_gradients(model, full_head_token_logps, unpacked)
    got, got_grads = loss_and_gradients(model, completion_token_logps, batch)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert expected_grads.keys() == got_grads.keys() and len(got_grads) > 10
    for name in expected_grads:
        torch.testing.assert_close(got_grads[name], expected_grads[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("trainable_head", [False, True], ids=["frozen-head", "trainable-head"])
def test_chunked_head_gradient_to_hidden(trainable_head, monkeypatch) -> None:
    """The gradient reaching the hidden states (and the head's own, when it trains) matches autograd."""
    torch.manual_seed(0)
    head = torch.nn.Linear(16, 50, bias=True)
    head.requires_grad_(trainable_head)
    hidden = torch.randn(23, 16, requires_grad=True)
    labels = torch.randint(0, 50, (23,))
    weights = torch.randn(23)
    monkeypatch.setattr(logprobs, "LOGITS_CHUNK_ELEMENTS", 4 * 50)                  # 6 chunks of 4 rows
    monkeypatch.setattr(logprobs, "HEAD_CHUNK_MIN_ROWS", 1)

    expected = torch.log_softmax(head(hidden), dim=-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    (expected * weights).sum().backward()
    expected_grads = [hidden.grad.clone()] + [p.grad.clone() for p in head.parameters() if p.requires_grad]
    hidden.grad = None
    head.zero_grad(set_to_none=True)
    got = logprobs._selected_logps(head, hidden, labels)
    (got * weights).sum().backward()
    got_grads = [hidden.grad] + [p.grad for p in head.parameters() if p.requires_grad]
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert len(got_grads) == (3 if trainable_head else 1)
    for g, e in zip(got_grads, expected_grads):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)


def test_fused_head_keeps_its_numbers_at_large_logits(monkeypatch) -> None:
    """The in-place softmax (max-shifted, as torch.logsumexp) stays exact when logits reach hundreds."""
    torch.manual_seed(0)
    head = torch.nn.Linear(16, 300, bias=True).requires_grad_(False)
    head.weight.mul_(60.0)                                                         # logits of +-200
    hidden = torch.randn(40, 16, requires_grad=True)
    labels = torch.randint(0, 300, (40,))
    monkeypatch.setattr(logprobs, "LOGITS_CHUNK_ELEMENTS", 7 * 300)
    monkeypatch.setattr(logprobs, "HEAD_CHUNK_MIN_ROWS", 1)
    logits = head(hidden)
    assert float(logits.detach().abs().max()) > 100
    expected = torch.log_softmax(logits, dim=-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    (expected.sum()).backward()
    expected_grad, hidden.grad = hidden.grad.clone(), None
    got = logprobs._selected_logps(head, hidden, labels)
    got.sum().backward()
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-4)
    torch.testing.assert_close(hidden.grad, expected_grad, rtol=1e-5, atol=1e-4)


def test_the_engine_and_the_estimate_share_one_chunk_rule() -> None:
    """32 MiB of float32 logits a chunk, never under 256 rows; the memory estimate sizes the same chunk."""
    from core.engine import memory_estimate
    from core.engine.head_chunks import head_chunk_rows

    assert head_chunk_rows(32_000) == 262 and head_chunk_rows(320) == 26_214
    assert head_chunk_rows(151_936) == 256                                       # the floor: 148 MiB
    shape = memory_estimate.ModelShape(hidden=896, layers=2, intermediate=4864, vocab=151_936, heads=14,
                                       kv_heads=2, tied_embeddings=True, gated_mlp=True)
    assert memory_estimate._head_chunk(shape, 10_000, 4) == 256 * 151_936 * 4
    assert memory_estimate._head_chunk(shape, 100, 4) == 100 * 151_936 * 4     # fewer positions: one chunk
    assert memory_estimate._head_chunk(shape, 10_000, 2) == 256 * 151_936 * 6  # bf16 logits beside


@pytest.mark.slow   # trains or spawns a process: over 5 s on a busy machine
def test_gradient_checkpointing_with_lora_and_packed_pairs(model_dir) -> None:
    """The engine's checkpointing (modeling.attach_lora: ``use_reentrant=False``) recomputes each
    decoder layer in the backward and gives the same gradients, packed or not."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    pairs, _ = tokenize_examples(tokenizer, examples(False), 512)
    for batch in (collate(pairs, tokenizer.eos_token_id), collate_packed(pairs, tokenizer.eos_token_id)):
        model = lora_model(model_dir, "sdpa")
        model.train()
        layer_calls = []
        model.get_base_model().model.layers[0].mlp.register_forward_pre_hook(lambda *_: layer_calls.append(1))
        _, plain = loss_and_gradients(model, completion_token_logps, batch)
        assert len(layer_calls) == 1
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        _, checkpointed = loss_and_gradients(model, completion_token_logps, batch)
        assert len(layer_calls) == 3                                              # forward + recompute
        assert plain.keys() == checkpointed.keys() and plain
        for name in plain:
            torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-5, atol=1e-7, msg=name)


def tiny_transformed_head_model(family: str):
    """A tiny random model whose logits are not plain ``lm_head(hidden)``, with a LoRA adapter."""
    from peft import LoraConfig, get_peft_model
    from transformers import CohereConfig, CohereForCausalLM, Gemma2Config, Gemma2ForCausalLM, GraniteConfig
    from transformers import GraniteForCausalLM

    from core.engine.modeling import quiet_peft_wrap
    from tests.tiny_models import randomise_lora

    sizes = dict(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                 num_key_value_heads=1, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    config_class, model_class, extra = {
        "gemma2": (Gemma2Config, Gemma2ForCausalLM, dict(final_logit_softcapping=2.0, head_dim=16)),
        "cohere": (CohereConfig, CohereForCausalLM, dict(logit_scale=0.25)),
        "granite": (GraniteConfig, GraniteForCausalLM, dict(logits_scaling=3.0)),
    }[family]
    torch.manual_seed(0)
    base = model_class(config_class(**sizes, **extra)).float()
    with quiet_peft_wrap():
        model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    return randomise_lora(model, seed=1, scale=0.2)


@pytest.mark.parametrize("family", ["gemma2", "cohere", "granite"])
def test_known_logit_transforms_run_the_head_in_chunks(family, monkeypatch) -> None:
    """Soft-capped and scaled heads take the chunked head (not the full logits) and keep its numbers."""
    model = tiny_transformed_head_model(family)
    torch.manual_seed(1)
    ids = torch.randint(3, 97, (4, 12))
    loss_mask = torch.zeros(4, 11, dtype=torch.long)
    loss_mask[:, 4:] = 1
    batch = Batch([0, 1], ["a", "b"], ids, torch.ones_like(ids), loss_mask)
    monkeypatch.setattr(logprobs, "LOGITS_CHUNK_ELEMENTS", 5 * 97)                   # 6 chunks of 5 rows
    monkeypatch.setattr(logprobs, "HEAD_CHUNK_MIN_ROWS", 1)
    chunked_calls = []
    selected = logprobs._selected_logps
    monkeypatch.setattr(logprobs, "_selected_logps", lambda *a: chunked_calls.append(a) or selected(*a))

    expected, expected_grads = loss_and_gradients(model, full_head_token_logps, batch)
    got, got_grads = loss_and_gradients(model, completion_token_logps, batch)
    assert len(chunked_calls) == 1 and chunked_calls[0][3] is not None          # the transform went along
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert expected_grads.keys() == got_grads.keys() and got_grads
    for name in expected_grads:
        torch.testing.assert_close(got_grads[name], expected_grads[name], rtol=1e-4, atol=1e-6, msg=name)


STEP_PEAK = textwrap.dedent("""
    import json, resource, sys
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM
    from core.engine import logprobs
    from core.engine.batching import Batch
    from core.engine.modeling import quiet_peft_wrap

    vocab, chunk_elements = int(sys.argv[1]), int(sys.argv[2])
    logprobs.LOGITS_CHUNK_ELEMENTS, logprobs.HEAD_CHUNK_MIN_ROWS = chunk_elements, 1
    torch.set_num_threads(1)
    def rss_mib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=False)
    with quiet_peft_wrap():
        model = get_peft_model(LlamaForCausalLM(config), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    rows, width, answer = 16, 200, 160          # 16 x 160 = 2560 completion positions
    ids = torch.randint(0, vocab, (rows, width))
    mask = torch.zeros(rows, width - 1, dtype=torch.long)
    mask[:, width - 1 - answer:] = 1
    def step(n):
        batch = Batch(list(range(n // 2)), [""] * (n // 2), ids[:n], torch.ones_like(ids[:n]), mask[:n])
        logprobs.completion_token_logps(model, batch).sum().backward()
        model.zero_grad(set_to_none=True)
    step(2)                                     # warm-up: lazy allocations, thread pools
    before = rss_mib()
    step(rows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    weights = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    print("RESULT " + json.dumps({"before": before, "peak": peak, "weights": weights}))
""")


def step_peak(vocab: int, chunk_elements: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", STEP_PEAK, str(vocab), str(chunk_elements)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-2000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.mark.slow
def test_step_peak_memory_does_not_grow_with_the_vocabulary() -> None:
    """Each run in its own process (peak RSS is per process). The weights are allocated before
    ``before``; the step's own growth (peak - before) must stay the same at 8k and 64k tokens, while
    the baseline — the same step with the whole (2560, V) logits in one chunk — grows by hundreds of MiB."""
    small, large = step_peak(8_192, 1 << 21), step_peak(65_536, 1 << 21)
    unchunked = step_peak(65_536, 1 << 40)
    growth_small, growth_large = small["peak"] - small["before"], large["peak"] - large["before"]
    growth_unchunked = unchunked["peak"] - unchunked["before"]
    full_logits_mib = 2560 * 65_536 * 4 / 2**20                                  # 640 MiB
    # The baseline shows the measurement can see the logits: at least a full fp32 copy of them; and
    # no more than that one copy (the softmax is made in place: torch.logsumexp alone would add two).
    assert growth_unchunked > full_logits_mib, (small, large, unchunked)
    assert growth_unchunked < 1.5 * full_logits_mib, (small, large, unchunked)
    # Chunked: beyond the weights (already in ``before``), the step grows by under a tenth of that.
    assert growth_large - growth_small < 0.1 * full_logits_mib, (small, large, unchunked)
    weights_growth = large["weights"] - small["weights"]                        # 14 MiB of embeddings + head
    assert weights_growth > 6
    # The whole process's peak grows by the weights and not much more.
    assert large["peak"] - small["peak"] < weights_growth + 0.1 * full_logits_mib, (small, large)
