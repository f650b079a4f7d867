"""The likely run, prepared inside a training process started before Start.

A training process the window starts ahead (``core.operations.training_child.prepare_training_process``)
spends the time the user reads the Train tab on what every run over the workspace's settings
needs before its first step, on a thread of low priority: the training libraries (torch, the
trainer, peft and the model's code), the training set of the current verdicts, the cached tokens
of its examples for the settings' tokenisation key, and their cached reference log-probs. Then it
waits for the request (``core.operations.training_process``).

What is reused at Start is only what still holds, so a run trains on exactly the current verdicts
and settings:

- the training set, when ``storage.training_set.training_set_mark`` (one query) still equals the
  set's mark and the policy asked for is the one it was built with; else the launch checks build it;
- the tokens and reference values, when the run's own keys (from its tokenizer, length, truncation,
  model and dtype) equal those they were read under (``core.engine.prepared_inputs``); both caches
  are keyed by content, so a value read earlier is still right; an example they lack is read or made.

Nothing here writes to the database; the workspace is closed when preparing ends, so the waiting
process holds no connection, lock or transaction. The model itself is not loaded ahead: it would
hold GPU memory for a run that may never start.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from core.engine.prepared_inputs import PreparedInputs
from core.operations.error_log import scrubbed
from storage.training_set import TrainingSet, training_set_mark
from storage.workspace import Workspace

#: How much lower than the process the preparing thread runs (Linux nice levels).
NICE_STEP = 10


@dataclass
class PreparedRun:
    location: str
    runs_dir: str | None
    training_set: TrainingSet | None = None
    inputs: PreparedInputs = field(default_factory=PreparedInputs)
    seconds: float = 0.0
    problem: str | None = None      # why preparing stopped short (the run then does the rest)

    def current_set(self, ws: Workspace) -> TrainingSet | None:
        """The prepared training set while it is still that of the workspace's verdicts, else None."""
        if self.training_set is None or self.training_set.mark is None:
            return None
        return self.training_set if training_set_mark(ws) == self.training_set.mark else None

    def summary(self) -> dict[str, Any]:
        """What the process tells its parent once prepared (``training_child.PreparedSummary``)."""
        return {"pairs": len(self.training_set.examples) if self.training_set else 0,
                "tokens": len(self.inputs.tokens), "reference": len(self.inputs.reference),
                "seconds": round(self.seconds, 3), "problem": self.problem}


class Preparation:
    """``prepare_run`` on a thread of its own; ``finish()`` (the request has come) hurries it: the
    step under way completes, the ones after it are left to the run."""

    def __init__(self, location: str, runs_dir: str | None, values: dict[str, Any] | None, on_done=None):
        self.prepared = PreparedRun(location, runs_dir)
        self._hurry = threading.Event()
        self._on_done = on_done
        self._thread = threading.Thread(target=self._work, args=(values,), name="prepare", daemon=True)
        self._thread.start()

    def _work(self, values: dict[str, Any] | None) -> None:
        lower_this_thread()
        # Millions of objects are made and kept: a collection every few thousand would cost a
        # second or two over 100,000 pairs, and find nothing to free.
        gc.disable()
        try:
            prepare_run(self.prepared, values, self._hurry.is_set)
        finally:
            gc.freeze()   # what it made stays out of the collector's way for the run
            gc.enable()
        if self._on_done is not None and not self._hurry.is_set():
            self._on_done(self.prepared)

    def finish(self, location: str, runs_dir: str | None) -> PreparedRun | None:
        """Wait for the step under way; the prepared run when it is for this workspace, else None."""
        self._hurry.set()
        self._thread.join()
        if (location, runs_dir) != (self.prepared.location, self.prepared.runs_dir):
            return None
        return self.prepared


def lower_this_thread() -> None:
    """Lower the calling thread's priority: on Linux each thread has its own nice value, so the
    run's thread keeps the process's (an unprivileged process could never raise it back)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + NICE_STEP))
    except OSError:
        pass


def prepare_run(prepared: PreparedRun, values: dict[str, Any] | None, hurried=lambda: False) -> PreparedRun:
    """Fill ``prepared`` for the workspace's settings (``values``: the form's, else the saved
    ones), step by step until ``hurried()``; a step that fails ends it (the run redoes it, and
    reports its problem if it is one)."""
    started = time.perf_counter()
    try:
        ws = Workspace.open(prepared.location, create=False, runs_dir=prepared.runs_dir)
    except Exception as exc:  # noqa: BLE001 - the run opens it again and says why it cannot
        prepared.problem = scrubbed(f"cannot open the workspace: {exc}", prepared.location)
        return prepared
    try:
        config = _likely_config(ws, values)
        from core.engine.library_preload import preload_training_libraries

        preload_training_libraries(config.base_model)   # peft and the model's code: seconds
        import core.engine.trainer  # noqa: F401 - torch and the loop
        if hurried():
            return prepared
        from storage.training_set import build_training_set

        prepared.training_set = build_training_set(ws, config.selection_policy)
        if hurried():
            return prepared
        _read_caches(ws, config, prepared)
    except Exception as exc:  # noqa: BLE001 - only a head start: the run meets the same problem and reports it
        prepared.problem = scrubbed(f"{type(exc).__name__}: {exc}", prepared.location)   # a URL's password masked
    finally:
        ws.close()   # no connection kept while it waits
        prepared.seconds = time.perf_counter() - started
    return prepared


def _likely_config(ws: Workspace, values: dict[str, Any] | None):
    from core.operations.launch_checks import config_problems
    from core.operations.training import default_training_config

    if values is not None:
        config, _problems = config_problems(values)
        if config is not None:
            return config
    return default_training_config(ws)


def _read_caches(ws: Workspace, config, prepared: PreparedRun) -> None:
    """The examples' cached tokens under the settings' tokenisation key, then (when the model key
    can be known without touching a GPU) their cached reference values."""
    from core.engine.modeling import load_tokenizer, tokenization_fingerprint
    from storage.token_cache import load_tokenized

    from core.engine.token_cache import tokenize_with_cache

    tokenizer = load_tokenizer(config.base_model, config.trust_remote_code)
    token_key = tokenization_fingerprint(tokenizer, config.max_length, config.truncation_mode)
    examples = prepared.training_set.examples
    hashes = [example.example_hash for example in examples]   # kept on the examples for the run
    prepared.inputs.tokens, prepared.inputs.token_key = load_tokenized(ws, token_key, hashes), token_key
    if all(digest in prepared.inputs.tokens for digest in hashes):   # no tokenising here, only reading
        kept, dropped, _none = tokenize_with_cache(ws, tokenizer, examples, config.max_length, config.truncation_mode,
                                                   token_key, store=False, known=prepared.inputs.tokens)
        prepared.inputs.tokenized = (list(examples), (kept, dropped))
    model_key = _model_key(ws, config)
    if model_key is not None:
        from storage.reference_logps import load_reference_logps

        prepared.inputs.reference = load_reference_logps(ws, model_key, token_key, hashes)
        prepared.inputs.model_key = model_key


def _model_key(ws: Workspace, config) -> str | None:
    """The reference cache's model key the run will use, when it is known without a GPU: on the
    CPU, or with float32 / float16 (``auto`` or bfloat16 on a GPU ask the GPU, whose memory a
    process that may never train should not take)."""
    from core.engine.modeling import model_fingerprint, select_device, select_dtype
    from core.engine.quantization import QUANTIZATION_TAG
    from core.engine.run_start import reference_key, resolve_start

    device = select_device(config.device)
    if device.type != "cpu" and config.dtype in ("auto", "bfloat16"):
        return None
    start, config = resolve_start(ws, config)
    quantization = QUANTIZATION_TAG if config.load_in_4bit else ""
    return reference_key(model_fingerprint(config.base_model, select_dtype(device, config.dtype), quantization), start)
