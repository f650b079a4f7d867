"""core.engine.lean_mlp: the gated MLP's lean backward gives the same log-probs and LoRA gradients
as the module's own forward (packed and unpacked, with and without LoRA on ``down``, with gradient
checkpointing), keeps two intermediate-sized values a position and layer fewer for the backward,
and leaves every case it does not cover to the module's own forward."""

from __future__ import annotations

import pytest
import torch

from core.engine.batching import collate, tokenize_examples
from core.engine.lean_mlp import use_lean_mlps
from core.engine.logprobs import completion_token_logps
from core.engine.pair_packing import collate_packed
from tests.test_chunked_head import loss_and_gradients
from tests.test_pair_packing import examples, lora_model
from tests.tiny_models import make_tiny_model_dir

LAYERS, HIDDEN = 2, 64


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("lean") / "model", hidden_size=HIDDEN, layers=LAYERS)


@pytest.fixture(scope="module")
def batches(model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    pairs, _ = tokenize_examples(tokenizer, examples(False), 512)
    return {"batch": collate(pairs, tokenizer.eos_token_id), "packed": collate_packed(pairs, tokenizer.eos_token_id)}


def model_with(model_dir, targets: str = "all-linear", checkpointing: bool = False):
    model = lora_model(model_dir, "sdpa")
    if targets != "all-linear":     # LoRA on the attention only: down stays a plain frozen Linear
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM

        from core.engine.modeling import quiet_peft_wrap
        from tests.tiny_models import randomise_lora

        base = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="sdpa", dtype=torch.float32)
        torch.manual_seed(3)
        with quiet_peft_wrap():
            model = randomise_lora(get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=targets.split(","),
                                                                   task_type="CAUSAL_LM")), seed=3, scale=0.2)
    if checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.train()
    return model


def intermediate(model) -> int:
    return model.get_base_model().config.intermediate_size


@pytest.mark.parametrize("layout", ["batch", "packed"])
@pytest.mark.parametrize("targets", ["all-linear", "q_proj,v_proj", "gate_proj,down_proj"])
@pytest.mark.parametrize("chunked", [False, True])
def test_lean_mlp_gives_the_same_log_probs_and_gradients(model_dir, batches, layout, targets, chunked,
                                                          monkeypatch) -> None:
    from core.engine import lean_mlp

    batch = batches[layout]
    if chunked:                                    # 7 rows a chunk of the backward: many chunks, a ragged last one
        monkeypatch.setattr(lean_mlp, "MIN_CHUNK_ROWS", 1)
        monkeypatch.setattr(lean_mlp, "CHUNK_ELEMENTS", 7 * intermediate(model_with(model_dir)))
        assert batch.input_ids.numel() > 10 * 7 and batch.input_ids.numel() % 7
    stock_logps, stock_grads = loss_and_gradients(model_with(model_dir, targets), completion_token_logps, batch)
    lean = model_with(model_dir, targets)
    assert use_lean_mlps(lean) == LAYERS
    lean_logps, lean_grads = loss_and_gradients(lean, completion_token_logps, batch)
    assert torch.equal(lean_logps, stock_logps)                     # the forward is the same computation
    assert stock_grads.keys() == lean_grads.keys() and any("mlp.down_proj" in n for n in lean_grads) == (
        "down_proj" in targets or targets == "all-linear")
    for name, grad in stock_grads.items():
        torch.testing.assert_close(lean_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_lean_mlp_with_gradient_checkpointing(model_dir, batches) -> None:
    batch = batches["packed"]
    _, stock = loss_and_gradients(model_with(model_dir), completion_token_logps, batch)
    lean = model_with(model_dir, checkpointing=True)
    use_lean_mlps(lean)
    _, grads = loss_and_gradients(lean, completion_token_logps, batch)
    for name, grad in stock.items():
        torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def saved_bytes(model, batch) -> int:
    """Bytes autograd keeps for the backward during one forward (each storage counted once)."""
    seen: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        completion_token_logps(model, batch).sum()
    return sum(seen.values())


def test_lean_mlp_keeps_two_intermediate_values_a_position_fewer(model_dir, batches) -> None:
    batch = batches["batch"]
    stock, lean = model_with(model_dir), model_with(model_dir)
    use_lean_mlps(lean)
    saved = saved_bytes(stock, batch) - saved_bytes(lean, batch)
    positions = batch.input_ids.numel()
    assert saved == 2 * intermediate(stock) * positions * LAYERS * 4     # float32: silu(gate) and the product


def with_down_dropout(model):
    for name, module in model.named_modules():
        if name.endswith("mlp.down_proj"):
            module.lora_dropout["default"] = torch.nn.Dropout(0.5)
    return model


def test_cases_it_does_not_cover_run_the_modules_own_forward(model_dir, batches) -> None:
    batch = batches["batch"]
    model, stock = model_with(model_dir), model_with(model_dir)
    use_lean_mlps(model)
    assert use_lean_mlps(model) == 0                                    # once only
    with torch.no_grad():                                               # no gradient: nothing to keep
        assert torch.equal(completion_token_logps(model, batch), completion_token_logps(stock, batch))
        with model.disable_adapter(), stock.disable_adapter():          # the reference pass
            assert torch.equal(completion_token_logps(model, batch), completion_token_logps(stock, batch))
    with_down_dropout(model), with_down_dropout(stock)                  # dropout on down's LoRA: the stock path
    assert saved_bytes(model, batch) == saved_bytes(stock, batch)


def test_the_estimate_knows_which_families_run_lean() -> None:
    """memory_estimate's torch-free list is the families whose MLP has the gated form in this
    transformers (their forward's source), and the estimate counts their MLP as lean."""
    import importlib
    import inspect

    from core.engine.lean_mlp import GATED_FORM
    from core.engine.memory_estimate import GATED_MODEL_TYPES, LEAN_MLP_MODEL_TYPES, ModelShape

    def gated_form(model_type: str) -> bool:
        module = importlib.import_module(f"transformers.models.{model_type}.modeling_{model_type}")
        mlps = [cls for name, cls in vars(module).items() if inspect.isclass(cls) and name.endswith("MLP")]
        return any(GATED_FORM.replace(" ", "") in inspect.getsource(cls.forward).replace(" ", "") for cls in mlps)

    assert set(LEAN_MLP_MODEL_TYPES) <= set(GATED_MODEL_TYPES)
    assert all(gated_form(model_type) for model_type in LEAN_MLP_MODEL_TYPES)
    config = {"model_type": "qwen2", "hidden_act": "silu", "hidden_size": 64, "num_hidden_layers": 2,
              "intermediate_size": 128, "vocab_size": 320, "num_attention_heads": 4}
    assert ModelShape.from_config(config).lean_mlp
    assert not ModelShape.from_config({**config, "model_type": "gemma", "hidden_act": "gelu_pytorch_tanh"}).lean_mlp


@pytest.mark.parametrize("layout", ["batch", "packed"])
def test_cpu_attention_without_repeated_keys_gives_the_same_values_and_keeps_less(model_dir, batches, layout,
                                                                                  monkeypatch) -> None:
    """load_base_model on the CPU turns on transformers' GQA path of SDPA, also with the padding or
    pair mask: the same log-probs and gradients, and the keys and values kept unrepeated."""
    import os

    from core.engine.modeling import load_base_model

    batch = batches[layout]
    monkeypatch.delenv("TRANSFORMERS_SDPA_FORCE_GQA", raising=False)
    config = model_with(model_dir).get_base_model().config
    groups = config.num_attention_heads // config.num_key_value_heads
    assert groups > 1
    repeated_logps, repeated = loss_and_gradients(model_with(model_dir), completion_token_logps, batch)
    repeated_saved = saved_bytes(model_with(model_dir), batch)
    load_base_model(str(model_dir), torch.device("cpu"), torch.float32)
    assert os.environ["TRANSFORMERS_SDPA_FORCE_GQA"] == "1"
    grouped_logps, grouped = loss_and_gradients(model_with(model_dir), completion_token_logps, batch)
    torch.testing.assert_close(grouped_logps, repeated_logps, rtol=1e-5, atol=1e-6)
    for name, grad in repeated.items():
        torch.testing.assert_close(grouped[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    head_dim = config.hidden_size // config.num_attention_heads
    fewer = 2 * (groups - 1) * config.num_key_value_heads * head_dim * batch.input_ids.numel() * LAYERS * 4
    assert repeated_saved - saved_bytes(model_with(model_dir), batch) == fewer
