"""The demo model's tokenizer: byte-level BPE trained on the demo corpus, with a chat template.

Byte-level, so any text round-trips (no unknown token). The chat template renders

    <|bos|><|user|>\\n{prompt}<|end|><|assistant|>\\n{reply}<|end|>

and ``add_generation_prompt`` ends the prompt with ``<|assistant|>\\n``. ``<|end|>`` is the
end-of-sequence token, so a completion ends exactly at the end of the reply, and the
newline after a role tag is its own token, so tokenising prompt + reply gives the
prompt's tokens followed by the reply's (what DPO's prompt masking relies on).
"""

from __future__ import annotations

from typing import Iterable

BOS, EOS, PAD = "<|bos|>", "<|end|>", "<|pad|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = [PAD, BOS, EOS, *ROLE_TOKENS]

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2048):
    """A ``PreTrainedTokenizerFast`` (byte-level BPE of ``vocab_size`` tokens, specials included)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    backend.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=BOS, eos_token=EOS, pad_token=PAD,
        additional_special_tokens=list(ROLE_TOKENS), model_max_length=256,
        clean_up_tokenization_spaces=False)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def render_chat(tokenizer, prompt: str, reply: str | None = None) -> str:
    """The chat-template text of one exchange (with the generation prompt when ``reply`` is None)."""
    messages = [{"role": "user", "content": prompt}]
    if reply is None:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    messages.append({"role": "assistant", "content": reply})
    return tokenizer.apply_chat_template(messages, tokenize=False)
