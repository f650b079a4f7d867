"""One base model in memory with the adapters of several runs loaded on it (the Chat tab's models).

peft keeps every loaded LoRA adapter beside the base weights, so the base and any number of
tuned models cost one copy of the base: the base answers inside ``disable_adapter()``, a run's
adapter after ``set_adapter(name)``. ``activation(key)`` returns that context for one forward
pass, which lets two answers take turns on the same weights token by token.
Load on a worker thread (it imports transformers and peft under ``library_lock``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, ContextManager, Sequence

from core.engine.chat_stream import ReplyDecoder
from core.engine.generation import SamplingSettings
from core.engine.library_preload import library_lock
from core.engine.modeling import (ModelLoadError, load_base_model, load_tokenizer, quiet_peft_wrap, select_device,
                                  select_dtype)

BASE_KEY = "base"


class ChatModels:
    """The base model ``base_model`` and the adapters loaded on it, by key (``"base"`` or a run id)."""

    def __init__(self, base_model: str, device: str = "auto", dtype: str = "auto"):
        self.base_model = base_model
        self._device, self._dtype = device, dtype
        self.model = None
        self.tokenizer = None
        self._adapter_names: dict[str, str] = {}   # run id -> peft adapter name
        self._adapter_dirs: dict[str, str] = {}

    @property
    def loaded_keys(self) -> list[str]:
        return ([BASE_KEY] if self.model is not None else []) + list(self._adapter_names)

    def ensure(self, adapters: dict[str, str | Path]) -> None:
        """Load the base (once) and each adapter (run id -> adapter folder) not loaded yet."""
        if self.model is None:
            device = select_device(self._device)
            self.tokenizer = load_tokenizer(self.base_model)
            model = load_base_model(self.base_model, device, select_dtype(device, self._dtype))
            model.config.pad_token_id = self.tokenizer.pad_token_id
            model.eval()
            self.model = model
        for key, folder in adapters.items():
            if key == BASE_KEY or key in self._adapter_names:
                continue
            self._load_adapter(key, Path(folder))

    def _load_adapter(self, key: str, folder: Path) -> None:
        if not (folder / "adapter_config.json").is_file():
            raise ModelLoadError(f"no adapter in {folder} (adapter_config.json is missing)")
        name = f"run{len(self._adapter_names) + 1}"     # peft names must be plain identifiers
        try:
            with library_lock(), quiet_peft_wrap():
                from peft import PeftModel

                if self._adapter_names:
                    self.model.load_adapter(str(folder), adapter_name=name)
                else:
                    self.model = PeftModel.from_pretrained(self.model, str(folder), adapter_name=name)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"cannot load the adapter in {folder} on {self.base_model}: {exc}") from exc
        self.model.eval()
        self._adapter_names[key] = name
        self._adapter_dirs[key] = str(folder)

    def activation(self, key: str) -> Callable[[], ContextManager]:
        """The context a forward pass of model ``key`` runs in."""
        if key == BASE_KEY:
            return self.model.disable_adapter if self._adapter_names else contextlib.nullcontext
        name = self._adapter_names.get(key)
        if name is None:
            raise KeyError(f"no adapter loaded for {key!r}")
        model = self.model

        @contextlib.contextmanager
        def use_adapter():
            if model.active_adapter != name:
                model.set_adapter(name)
            yield

        return use_adapter

    def decoder(self, key: str, messages: Sequence[dict], settings: SamplingSettings) -> ReplyDecoder:
        """A decoder of model ``key``'s answer to ``messages`` (loaded by ``ensure`` beforehand)."""
        return ReplyDecoder(self.model, self.tokenizer, messages, settings, activate=self.activation(key))
