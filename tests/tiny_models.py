"""A tiny, real Llama + byte-level BPE tokenizer for training tests (built in well under a second).

``make_tiny_model_dir(path)`` writes a Hugging Face model folder (config, safetensors weights,
tokenizer files with a ChatML chat template) that every loader of the app accepts exactly as
it accepts a downloaded model. The tokenizer is trained on a small English corpus, adds a BOS
token to plain text like Llama's, ends chat turns with ``<|im_end|>`` (its EOS) and has no pad
token (so the pad = EOS fallback is exercised).
"""

from __future__ import annotations

from pathlib import Path

BOS, EOS = "<|begin|>", "<|im_end|>"
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CORPUS = [
    "Sure, here is a short and friendly answer to your question.",
    "No. Go away, I will not help with that.",
    "The sky is blue because air scatters blue light more than red light.",
    "To make tea, boil water, add the leaves and wait three minutes.",
    "Please explain how a bicycle works, step by step.",
    "What is the capital of France? Paris is the capital of France.",
    "Thank you for asking! Here are three ideas you could try today.",
    "I do not know and I do not care about it at all.",
    "Question: write a haiku about the sea. Answer: waves fold into foam.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000, and punctuation: ; : ! ? ' \" ( ) - .",
]


def make_tokenizer(vocab_size: int = 320, add_bos: bool = True):
    """A ``PreTrainedTokenizerFast`` (byte-level BPE trained on ``CORPUS``); ``add_bos=False``
    gives a GPT-2-like tokenizer that adds no special token to plain text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[BOS, EOS, "<|im_start|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(CORPUS * 4, trainer=trainer)
    bos_id = tokenizer.token_to_id(BOS)
    if not add_bos:
        return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS,
                                       additional_special_tokens=["<|im_start|>"], chat_template=CHAT_TEMPLATE)
    # Llama-style: plain text starts with BOS (a chat template renders its own markers instead).
    tokenizer.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B",
                                                             special_tokens=[(BOS, bos_id)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS,
                                   additional_special_tokens=["<|im_start|>"], chat_template=CHAT_TEMPLATE)


def make_tiny_model_dir(path: str | Path, hidden_size: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """Write a tiny Llama (about 40k parameters at the defaults) and its tokenizer into ``path``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = make_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, tie_word_embeddings=False,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    torch.random.set_rng_state(generator_state)  # leave the caller's random stream alone
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


TASKS = ["make tea", "fix a bike", "plant a tree", "bake bread", "learn French", "write a poem", "clean a room",
         "tie a knot", "paint a wall", "cook rice", "read faster", "sleep better", "save money", "run a mile",
         "draw a cat", "sing a song"]


def preference_triples(n: int, chat: bool = False) -> list[tuple]:
    """``n`` distinct (prompt, chosen, rejected) with one learnable preference: the chosen answer
    is a helpful "Sure, here is ..." reply, the rejected one a curt refusal."""
    triples = []
    for i in range(n):
        task = TASKS[i % len(TASKS)]
        prompt = f"Question {i}: how do I {task}?"
        chosen = f"Sure, here is how to {task}: start small and practise {1 + i % 5} times."
        rejected = f"No. I will not help you {task}{'!' * (1 + i % 3)}"
        if chat:
            triples.append(([{"role": "user", "content": prompt}], [{"role": "assistant", "content": chosen}],
                            [{"role": "assistant", "content": rejected}]))
        else:
            triples.append((" " + prompt + "\n", chosen, rejected))
    return triples


def fill_workspace(ws, n: int = 32, chat: bool = False, source: str = "tiny.jsonl"):
    """Import ``n`` labelled pairs (chosen first) into a workspace; returns the ImportSummary."""
    from storage.ingest import ImportRecord, import_records

    records = [ImportRecord(prompt=p, responses=[c, r], chosen=0, line=i + 1)
               for i, (p, c, r) in enumerate(preference_triples(n, chat))]
    return import_records(ws, records, source)


def example(pair_id: int, prompt, chosen, rejected, split: str = "train"):
    """A ``storage.training_set.PreferenceExample`` (the engine's input), with the split defaulted."""
    from storage.training_set import PreferenceExample

    return PreferenceExample(pair_id, prompt, chosen, rejected, split)


def randomise_lora(model, seed: int, scale: float):
    """Give a fresh LoRA adapter non-zero ``lora_B`` weights, so the policy differs from the
    reference and parity checks compare something non-trivial."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * scale)
    return model


def lora_model(model_dir, attention: str = "sdpa", seed: int = 3):
    """Base + an all-linear rank-4 LoRA adapter with seeded non-zero weights, float32. The split
    attention of packed pairs (``core.engine.packed_attention.NAME``) is loaded as sdpa, then
    switched, as ``core.engine.modeling.load_base_model`` does on the CPU."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from core.engine.modeling import quiet_peft_wrap
    from core.engine.packed_attention import NAME, use_split_attention

    split = attention == NAME
    base = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="sdpa" if split else attention,
                                                dtype=torch.float32)
    assert not split or use_split_attention(base)
    torch.manual_seed(seed)
    with quiet_peft_wrap():
        model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    return randomise_lora(model, seed=seed, scale=0.2)
