"""The named model shapes of ``bench_vs_trl.py``, their data, and the FLOP count of a DPO step.

A shape fixes the architecture (vocabulary, hidden size, layers, heads, MLP width), the lengths of
the prompts and answers, the batch and the run length. ``toy`` is the harness's original run (the
tiny byte-level tokenizer's 320 tokens and its short English pairs); the others get a word-level
tokenizer whose vocabulary is exactly the shape's (``w4`` … ``w{V-1}`` plus four special tokens)
and pairs of random words, so the token ids span the whole vocabulary and the lengths are the
shape's, in tokens. Weights are random (``torch.manual_seed``), saved in float32.

FLOPs of one DPO step (``pair_flops``), counted on the work a step needs given cached reference
log-probs, the same figure for every engine (so a faster engine shows a higher share):

- linear layers of the frozen base: forward ``2·N_lin`` per token, backward ``2·N_lin`` more for the
  activation gradients (the base weights get no gradient), so ``4·N_lin`` per token, where ``N_lin`` is
  the q, k, v, o, gate, up and down projections' weights over all layers; every token of the pair
  counts once: the shared prompt (the common prefix of chosen and rejected) once, then both answers;
- attention scores and the weighted sum: ``4·d_attn`` per (query, key) pair forward, twice that
  backward (dQ, dK, dV, dP), i.e. ``12·d_attn·keys·layers``, keys counted causally within the packed
  pair (an answer sees the prompt and itself, not the other answer);
- LM head at the positions that predict an answer token only: ``2·V·H`` forward + ``2·V·H``
  backward (to the hidden state; the head is frozen) per answer token;
- LoRA on the seven projections: ``2·r·(in+out)`` forward and twice that backward per token.

The reference forward (TRL's default does it every step) and the optimizer are not counted.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

BOS, EOS, IM_START, UNK = "<|begin|>", "<|im_end|>", "<|im_start|>", "<unk>"
SPECIALS = (BOS, EOS, IM_START, UNK)


@dataclass(frozen=True)
class Shape:
    name: str
    architecture: str               # "llama" | "qwen2" (a Llama config with q/k/v/o biases, see make_model_dir)
    vocab: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    prompt_tokens: tuple[int, int] | None   # inclusive range; None: the toy's English pairs
    answer_tokens: tuple[int, int] | None
    batch: int
    steps: int
    pairs: int
    max_length: int
    tied_embeddings: bool = False
    note: str = ""

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


SHAPES = {
    "toy": Shape("toy", "llama", 320, 128, 4, 4, 2, 256, None, None, batch=8, steps=40, pairs=160,
                 max_length=128, note="tests/tiny_models.py, wider; the tiny BPE tokenizer's 320 tokens"),
    "32k": Shape("32k", "llama", 32_000, 512, 4, 8, 4, 1408, (100, 300), (50, 200), batch=4, steps=8,
                 pairs=32, max_length=512, note="Llama-like, random weights"),
    # Batch 8, the app's default; one step on the CPU (a TRL step there takes minutes; gpu_check sets its own)
    "qwen0.5b": Shape("qwen0.5b", "qwen2", 151_936, 896, 24, 14, 2, 4864, (100, 300), (50, 200), batch=8,
                      steps=1, pairs=8, max_length=512, tied_embeddings=True,
                      note="Qwen2.5-0.5B's sizes (tied embeddings) as a Llama config with attention biases, "
                           "random weights"),
}


def word_tokenizer(vocab: int):
    """A word-level ``PreTrainedTokenizerFast`` of exactly ``vocab`` tokens: the four specials, then
    ``w4`` … ``w{vocab-1}``; plain text gets a BOS like Llama's, EOS ends an answer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    table = {token: i for i, token in enumerate(SPECIALS)}
    table.update({f"w{i}": i for i in range(len(SPECIALS), vocab)})
    tokenizer = Tokenizer(models.WordLevel(table, unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    tokenizer.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B",
                                                             special_tokens=[(BOS, 0)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, unk_token=UNK,
                                   additional_special_tokens=[IM_START])


def make_model_dir(path: Path, shape: Shape, seed: int = 0) -> Path:
    """Write a randomly initialised model of ``shape`` and its tokenizer (a Hugging Face folder)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if shape.prompt_tokens is None:
        from tests.tiny_models import make_tiny_model_dir

        return make_tiny_model_dir(path, hidden_size=shape.hidden, layers=shape.layers, seed=seed)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = word_tokenizer(shape.vocab)
    common = dict(vocab_size=shape.vocab, hidden_size=shape.hidden, intermediate_size=shape.intermediate,
                  num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
                  num_key_value_heads=shape.kv_heads, max_position_embeddings=max(1024, shape.max_length),
                  tie_word_embeddings=shape.tied_embeddings, bos_token_id=tokenizer.bos_token_id,
                  eos_token_id=tokenizer.eos_token_id)
    # Qwen2 is Llama with biases on q, k and v. A ``qwen2`` config cannot be used here: transformers 5's
    # AutoTokenizer forces Qwen2's own byte-level BPE on it, which drops the shape's word vocabulary
    # (every word becomes nothing). Llama's ``attention_bias`` adds those biases (and o_proj's: 896 more
    # parameters a layer), so the compute and memory are Qwen2's.
    config = LlamaConfig(attention_bias=shape.architecture == "qwen2", rms_norm_eps=1e-6, **common)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def random_triples(shape: Shape, n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """``n`` (prompt, chosen, rejected) texts of random words with the shape's lengths in tokens;
    chosen answers draw from the lower half of the vocabulary, rejected ones from the upper half
    (a preference the adapter can learn)."""
    rng = random.Random(seed)
    low, mid, high = len(SPECIALS), (len(SPECIALS) + shape.vocab) // 2, shape.vocab

    def words(count: int, begin: int, end: int) -> str:
        return "".join(f" w{rng.randrange(begin, end)}" for _ in range(count))

    triples = []
    for _ in range(n):
        prompt = words(rng.randint(*shape.prompt_tokens), low, high)
        chosen = words(rng.randint(*shape.answer_tokens), low, mid)
        rejected = words(rng.randint(*shape.answer_tokens), mid, high)
        triples.append((prompt, chosen, rejected))
    return triples


def fill_workspace(ws, shape: Shape, n: int, seed: int = 0):
    """Import ``n`` labelled pairs of the shape (chosen first) into a workspace."""
    if shape.prompt_tokens is None:
        from tests.tiny_models import fill_workspace as fill_toy

        return fill_toy(ws, n)
    from storage.ingest import ImportRecord, import_records

    records = [ImportRecord(prompt=p, responses=[c, r], chosen=0, line=i + 1)
               for i, (p, c, r) in enumerate(random_triples(shape, n, seed))]
    return import_records(ws, records, f"shape-{shape.name}.jsonl")


def pair_flops(shape: Shape, prefix: int, chosen_rest: int, rejected_rest: int, answer_tokens: int,
               lora_r: int) -> float:
    """FLOPs of forward + backward for one packed pair (see the module docstring): ``prefix`` tokens
    shared, then ``chosen_rest`` and ``rejected_rest``; the head runs at ``answer_tokens`` positions."""
    h, kv = shape.hidden, shape.kv_heads * shape.head_dim
    attn_out = shape.heads * shape.head_dim
    projections = [(h, attn_out), (h, kv), (h, kv), (attn_out, h),
                   (h, shape.intermediate), (h, shape.intermediate), (shape.intermediate, h)]
    linear_params = sum(i * o for i, o in projections) * shape.layers
    lora_per_token = sum(6 * lora_r * (i + o) for i, o in projections) * shape.layers
    tokens = prefix + chosen_rest + rejected_rest
    keys = prefix * (prefix + 1) / 2 + sum(n * prefix + n * (n + 1) / 2 for n in (chosen_rest, rejected_rest))
    return (4 * linear_params * tokens + lora_per_token * tokens
            + 12 * attn_out * keys * shape.layers + 4 * shape.vocab * h * answer_tokens)


def mean_step_flops(model_dir: Path, workspace_dir: Path, shape: Shape, batch: int, max_length: int,
                    lora_r: int) -> tuple[float, float]:
    """(FLOPs of an average step of ``batch`` pairs, mean packed tokens per pair) over the workspace's
    training pairs, tokenised as the engine tokenises them."""
    from transformers import AutoTokenizer

    from core.engine.batching import common_prefix_length, tokenize_examples
    from storage.training_set import build_training_set
    from storage.workspace import Workspace

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with Workspace.open(workspace_dir) as ws:
        examples = build_training_set(ws).examples
    pairs, _ = tokenize_examples(tokenizer, examples, max_length)
    flops, tokens = [], []
    for p in pairs:
        prefix = common_prefix_length(p.chosen_ids, p.rejected_ids)
        answers = (len(p.chosen_ids) - p.chosen_start) + (len(p.rejected_ids) - p.rejected_start)
        rest = (len(p.chosen_ids) - prefix, len(p.rejected_ids) - prefix)
        flops.append(pair_flops(shape, prefix, *rest, answers, lora_r))
        tokens.append(prefix + sum(rest))
    return batch * sum(flops) / len(flops), sum(tokens) / len(tokens)


def matmul_flops_per_second(rows: int, inner: int, cols: int, seconds: float = 1.0) -> float:
    """The best FLOP/s of ``torch.matmul`` on float32 (rows, inner) @ (inner, cols) over a few
    ``seconds``-long rounds, at the current torch thread count."""
    import time

    import torch

    a, b = torch.randn(rows, inner), torch.randn(inner, cols)
    a @ b  # warm-up
    best = 0.0
    for _ in range(3):
        count, began = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - began) < seconds / 3:
            torch.matmul(a, b)
            count += 1
        best = max(best, 2 * rows * inner * cols * count / elapsed)
    return best
