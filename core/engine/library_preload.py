"""Importing the training libraries ahead of time, off the UI thread.

The first import of peft and of a model's transformers code takes seconds and, in long
stretches of it, holds the GIL (C-extension initialisation, compiling generated code), which
stalled the window by 300-500 ms when it happened inside the first training run. The GUI calls
``preload_training_libraries`` from a worker when the Train tab opens, while the user is still
reading the form, so that starting a run no longer pays for it.
"""

from __future__ import annotations

import importlib
import json
import threading
from pathlib import Path

# transformers resolves its lazy modules on first attribute access, and that is not
# thread-safe: a training run loading its tokenizer while this preload was still importing
# transformers raised "ImportError: cannot import name 'AutoTokenizer'". Every first import
# of the training libraries, and every model or tokenizer load (which imports an
# architecture's modules lazily), holds this one lock.
_LIBRARY_LOCK = threading.RLock()


def library_lock() -> threading.RLock:
    """The lock around importing transformers/peft and loading models (see above)."""
    return _LIBRARY_LOCK


def preload_training_libraries(base_model: str = "", report=None) -> list[str]:
    """Import peft, the auto classes and the modelling code of ``base_model``'s architecture
    (when it is a local folder with a config.json); return what was imported."""
    names = ["peft", "transformers.models.auto.modeling_auto", "transformers.models.auto.tokenization_auto"]
    model_type = _model_type(base_model)
    if model_type:
        names.append(f"transformers.models.{model_type.replace('-', '_')}.modeling_{model_type.replace('-', '_')}")
    done = []
    with _LIBRARY_LOCK:
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - an unknown architecture is the loader's to report, not ours
                continue
            done.append(name)
        if model_type and _wrap_miniature(model_type):
            done.append(f"LoRA on a miniature {model_type}")
    return done


def _wrap_miniature(model_type: str) -> bool:
    """Attach LoRA to a miniature model of the same architecture: peft imports its tuner
    modules lazily and fills abc subclass caches on first use (another ~0.4 s of held GIL)."""
    try:
        from peft import LoraConfig, get_peft_model
        from transformers import AutoConfig, AutoModelForCausalLM

        config = AutoConfig.for_model(model_type, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=1, vocab_size=64)
        model = AutoModelForCausalLM.from_config(config)
        from core.engine.modeling import quiet_peft_wrap

        with quiet_peft_wrap():
            get_peft_model(model, LoraConfig(r=1, target_modules="all-linear", task_type="CAUSAL_LM"))
    except Exception:  # noqa: BLE001 - only a warm-up: the real load reports real problems
        return False
    return True


def _model_type(base_model: str) -> str | None:
    from core.operations.launch_checks import inspect_model

    folder = inspect_model(base_model).folder
    try:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return None
    model_type = config.get("model_type")
    return model_type if isinstance(model_type, str) and model_type.replace("_", "").replace("-", "").isalnum() else None
