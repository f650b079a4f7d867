"""Preloading the training libraries imports the model's own modelling code."""

from __future__ import annotations

import sys

from core.engine.library_preload import preload_training_libraries
from tests.tiny_models import make_tiny_model_dir


def test_preload_imports_peft_and_the_architecture_of_the_model(tmp_path):
    folder = make_tiny_model_dir(tmp_path / "tiny")
    done = preload_training_libraries(str(folder))
    assert "peft" in done and "transformers.models.llama.modeling_llama" in done
    assert "transformers.models.llama.modeling_llama" in sys.modules
    assert preload_training_libraries(str(tmp_path / "missing")) == done[:3]   # no folder: the libraries only
