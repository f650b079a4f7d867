"""Regenerate ``memory_advice.png``: the Train tab with a run that will not fit, and what to change.

    QT_QPA_PLATFORM=offscreen python docs/screenshots/make_memory_advice_screenshot.py

What a user with a 24 GB card and an 8B model sees: a workspace of labelled pairs, a model folder
whose ``config.json`` has Llama-3-8B's sizes (the estimate reads only that; the tokenizer is the
tiny test model's, so the preview counts real lengths), the device set to CUDA and the card's
memory given to the form as an RTX 4090 with 23 GiB free. Batch size 24 will not fit; the summary
lists each change that alone would (``core.engine.memory_advice``).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
OUT = Path(__file__).resolve().parent
LLAMA_3_8B = {"hidden_size": 4096, "num_hidden_layers": 32, "intermediate_size": 14336, "vocab_size": 128256,
              "num_attention_heads": 32, "num_key_value_heads": 8, "tie_word_embeddings": False}


def main() -> int:

    from core.engine.memory_estimate import DeviceMemory
    from tests.tiny_models import make_tiny_model_dir

    folder = Path(tempfile.mkdtemp(prefix="memory-shot-"))
    model = make_tiny_model_dir(folder / "llama-3-8b-sized", hidden_size=256, layers=4)
    config = json.loads((model / "config.json").read_text())
    config.update(LLAMA_3_8B)
    (model / "config.json").write_text(json.dumps(config))
    from train_view_window import train_view_window   # this folder's helper (the script's folder is on sys.path)

    app, ws, db, view, wait, close = train_view_window(folder)

    form = view.form
    form.set_device_memory(DeviceMemory("cuda", "NVIDIA GeForce RTX 4090", 24 * 2**30, 23 * 2**30), "cuda")
    for key, value in {"base_model": str(model), "device": "cuda", "batch_size": 24, "max_length": 1024}.items():
        form.set_value(key, value)
    form.refresh()
    wait(lambda: "fit in max length" in form.preview_label.text() and form.memory_fits is not None)
    for _ in range(50):
        app.processEvents()
        time.sleep(0.02)
    print(form.memory_label.text())
    view.grab().save(str(OUT / "memory_advice.png"))
    close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
