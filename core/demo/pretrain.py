"""Build the bundled demo model from nothing: corpus -> tokenizer -> pre-trained small Llama.

``build_demo_model(out_dir)`` is what ``python main.py build-demo-model`` runs. With the
default ``BuildSettings`` it takes about ten minutes on two CPU cores and writes a
transformers model folder (config, ``model.safetensors``, tokenizer with chat template,
generation config, ``MODEL_CARD.md``) that loads with ``AutoModelForCausalLM`` /
``AutoTokenizer.from_pretrained``. Same settings, same machine -> same weights: every
random draw is seeded and the thread count is fixed.

The pre-training corpus answers each prompt in a style drawn uniformly, so the model
learns to answer helpfully, curtly or recklessly at about equal rates: it has no
preference yet. That is what the demo's DPO run then teaches it.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from core.demo.corpus import HELD_OUT_SEED, generate_conversations, pretraining_examples
from core.demo.style_scorer import classify, style_shares
from core.demo.tokenizer_build import render_chat, train_tokenizer


@dataclass
class BuildSettings:
    examples: int = 80_000          # pre-training conversations (one styled reply each)
    steps: int = 800
    batch_size: int = 64
    learning_rate: float = 3e-3
    warmup_steps: int = 60
    weight_decay: float = 0.1
    seed: int = 0
    threads: int = 1               # one thread: the same bits on any run, and no spin-waiting on a busy CPU
    vocab_size: int = 2048
    hidden_size: int = 192
    intermediate_size: int = 512
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    context: int = 256
    check_prompts: int = 96         # held-out prompts sampled at the end to report style shares

    @classmethod
    def quick(cls) -> "BuildSettings":
        """A shortened build (seconds) for tests: same pipeline, tiny corpus, model and run."""
        return cls(examples=600, steps=12, batch_size=16, warmup_steps=2, vocab_size=400, hidden_size=32,
                   intermediate_size=64, layers=2, heads=2, kv_heads=1, check_prompts=8)


@dataclass
class BuildReport:
    out_dir: str
    settings: dict
    parameters: int
    seconds: float
    first_loss: float
    final_loss: float                              # mean of the last 50 steps
    style_shares: dict[str, float] = field(default_factory=dict)


def _llama_config(s: BuildSettings, tokenizer):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=s.hidden_size, intermediate_size=s.intermediate_size,
        num_hidden_layers=s.layers, num_attention_heads=s.heads, num_key_value_heads=s.kv_heads,
        max_position_embeddings=s.context, rms_norm_eps=1e-5, rope_theta=10_000.0,
        tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)


def _batches(token_lists: list[list[int]], batch_size: int, steps: int, seed: int):
    """``steps`` batches of similar-length sequences (less padding), in a seeded order."""
    rng = random.Random(seed)
    order = sorted(range(len(token_lists)), key=lambda i: (len(token_lists[i]), i))
    chunks = [order[i:i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]
    produced = 0
    while produced < steps:
        rng.shuffle(chunks)
        for chunk in chunks:
            if produced == steps:
                return
            produced += 1
            yield [token_lists[i] for i in chunk]


def _collate(batch: list[list[int]], pad_id: int):
    import torch

    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)      # (B, T)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for i, ids in enumerate(batch):
        input_ids[i, :len(ids)] = torch.tensor(ids)
        attention[i, :len(ids)] = 1
    labels = input_ids.masked_fill(attention == 0, -100)  # padding does not count towards the loss
    return input_ids, attention, labels


def _lr_at(step: int, s: BuildSettings) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < s.warmup_steps:
        return s.learning_rate * (step + 1) / s.warmup_steps
    progress = (step - s.warmup_steps) / max(1, s.steps - s.warmup_steps)
    return s.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def held_out_prompts(n: int, exclude: set[str] = frozenset()) -> list[str]:
    return [c.prompt for c in generate_conversations(n, HELD_OUT_SEED, exclude_prompts=exclude)]


def build_demo_model(out_dir: str | Path, settings: BuildSettings | None = None,
                     log: Callable[[str], None] = print) -> BuildReport:
    """Generate the corpus, train the tokenizer, pre-train the model, save it all to ``out_dir``."""
    import torch
    from transformers import GenerationConfig, LlamaForCausalLM

    from core.demo.sampling import sample_replies

    s = settings or BuildSettings()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(s.threads)
    try:
        examples = pretraining_examples(s.examples)
        tokenizer = train_tokenizer((f"{p}\n{r}" for p, r, _ in examples), s.vocab_size)
        token_lists = [tokenizer(render_chat(tokenizer, p, r), add_special_tokens=False)["input_ids"][:s.context]
                       for p, r, _ in examples]
        log(f"corpus: {len(examples)} conversations, {sum(map(len, token_lists))} tokens, "
            f"vocabulary {len(tokenizer)}")

        torch.manual_seed(s.seed)
        model = LlamaForCausalLM(_llama_config(s, tokenizer))
        n_params = sum(p.numel() for p in model.parameters())
        log(f"model: Llama, {s.layers} layers, hidden {s.hidden_size}, {n_params:,} parameters")
        decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": s.weight_decay},
                                       {"params": no_decay, "weight_decay": 0.0}],
                                      lr=s.learning_rate, betas=(0.9, 0.95))
        model.train()
        losses: list[float] = []
        for step, batch in enumerate(_batches(token_lists, s.batch_size, s.steps, s.seed)):
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, s)
            input_ids, attention, labels = _collate(batch, tokenizer.pad_token_id)
            loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            if step % 100 == 0 or step == s.steps - 1:
                log(f"step {step + 1}/{s.steps}  loss {loss.item():.3f}  "
                    f"({time.monotonic() - started:.0f} s)")

        model.eval()
        model.generation_config = GenerationConfig(
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
            max_new_tokens=96)
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)

        # The pre-training corpus covers most of the prompt space; what matters for the demo
        # is that evaluation prompts are not in the preference pairs (see demo_eval).
        prompts = held_out_prompts(s.check_prompts)
        samples = sample_replies(model, tokenizer, prompts, seed=s.seed)
        shares = style_shares(classify(x.reply, x.finished) for x in samples)
        log("styles sampled on held-out prompts: "
            + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()))
    finally:
        torch.set_num_threads(previous_threads)

    tail = losses[-50:]
    report = BuildReport(str(out), asdict(s), n_params, round(time.monotonic() - started, 1),
                         losses[0], sum(tail) / len(tail), shares)
    (out / "build_report.json").write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
    (out / "MODEL_CARD.md").write_text(model_card(report), encoding="utf-8")
    log(f"saved to {out} in {report.seconds:.0f} s")
    return report


def model_card(report: BuildReport) -> str:
    s = report.settings
    shares = ", ".join(f"{k} {v:.0%}" for k, v in report.style_shares.items())
    return f"""# DPO Studio demo model

A small Llama-style causal language model made by this project for its offline demo. It
was pre-trained from random weights on a corpus the project writes itself
(`core/demo/corpus.py`): short assistant conversations on everyday topics, each answered
in one of three styles drawn uniformly — helpful and specific, curt, or reckless and rude.
So it answers in all three styles and does not yet prefer the helpful one; the demo's
preference pairs and a DPO run teach it that.

Not a general-purpose model: it only knows the demo corpus. No text or weights come from elsewhere.

## How it was built

    python main.py build-demo-model            # rebuilds this folder from nothing

- tokenizer: byte-level BPE (`tokenizers`), {s['vocab_size']} tokens, chat template
  `<|bos|><|user|>\\n...<|end|><|assistant|>\\n...<|end|>`
- model: `LlamaForCausalLM`, {s['layers']} layers, hidden {s['hidden_size']}, MLP {s['intermediate_size']},
  {s['heads']} heads ({s['kv_heads']} key/value), context {s['context']}, tied embeddings,
  {report.parameters:,} parameters, float32
- pre-training: {s['examples']:,} conversations, {s['steps']} steps of {s['batch_size']}, AdamW lr {s['learning_rate']}
  (warm-up {s['warmup_steps']}, cosine to 10%), seed {s['seed']}, CPU threads: {s['threads']}
- loss: {report.first_loss:.2f} at the start, {report.final_loss:.3f} at the end (mean of the last 50 steps)
- build time: {report.seconds:.0f} s wall-clock on the machine that built it

## Styles it samples before any DPO

On {s['check_prompts']} held-out prompts, temperature 1, classified by `core/demo/style_scorer.py`:
{shares}.
"""
