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
from pathlib import Path


def preload_training_libraries(base_model: str = "", report=None) -> list[str]:
    """Import peft, the auto classes and the modelling code of ``base_model``'s architecture
    (when it is a local folder with a config.json); return what was imported."""
    names = ["peft", "transformers.models.auto.modeling_auto", "transformers.models.auto.tokenization_auto"]
    model_type = _model_type(base_model)
    if model_type:
        names.append(f"transformers.models.{model_type.replace('-', '_')}.modeling_{model_type.replace('-', '_')}")
    done = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - an unknown architecture is the loader's to report, not ours
            continue
        done.append(name)
    return done


def _model_type(base_model: str) -> str | None:
    try:
        config = json.loads((Path(base_model).expanduser() / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    model_type = config.get("model_type")
    return model_type if isinstance(model_type, str) and model_type.replace("_", "").replace("-", "").isalnum() else None
