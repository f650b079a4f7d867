"""The memory estimate shown before launch against the memory a training step really takes, on the CPU.

    python benchmarks/bench_memory.py [--case NAME ...] [--json]

Each case (a model shape of ``bench_shapes`` and the run's settings) runs in a fresh child process
that loads the model with the engine's own loader (``load_for_training``: LoRA attached, gradient
checkpointing as configured), computes the reference log-probs of its pairs (``compute_reference_logps``)
and then trains two steps on the batch of its longest pairs (``batch_objective``, backward, AdamW), as
the trainer does. Measured: the resident set after the imports (the runtime), after the load, and its
high-water mark during the reference pass and during the steps (Linux's ``VmHWM``, reset before each
phase through ``/proc/self/clear_refs``, so the load's own transients do not count and short peaks
between two samples are not missed). The peak is the larger of the two phases' high-water marks.

The estimate counts live memory (what is allocated at the peak). glibc's default heap keeps freed
blocks of up to 32 MiB for reuse, so a process's resident size stays above its live memory by
whatever the heap holds free; the child therefore runs with ``MALLOC_MMAP_THRESHOLD_=65536`` (every
block of 64 KiB or more mapped on its own and returned when freed), which makes the resident size
the live memory. ``--default-allocator`` measures under glibc's defaults too (reported beside).

The estimate is ``core.engine.memory_estimate.estimate_training_memory`` with the batch's real token
counts (``step_tokens_of``), nothing fitted to these runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.bench_shapes import SHAPES, Shape, make_model_dir, random_triples  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
MIB = 2**20


@dataclass(frozen=True)
class MemoryCase:
    name: str
    shape: Shape
    batch_size: int
    max_length: int
    packed: bool
    checkpointing: bool
    pairs: int = 8


CASES = {
    case.name: case for case in (
        MemoryCase("toy", SHAPES["toy"], batch_size=8, max_length=128, packed=True, checkpointing=False, pairs=16),
        MemoryCase("32k-unpacked", SHAPES["32k"], batch_size=4, max_length=512, packed=False, checkpointing=False),
        # Qwen2.5-0.5B's sizes in four layers, built as a Llama (no q/k/v bias): a Qwen2 folder reloads
        # its tokenizer as Qwen2Tokenizer, which loses the shape's word-level vocabulary.
        MemoryCase("152k-4layers-checkpointed", replace(SHAPES["qwen0.5b"], layers=4, architecture="llama"),
                   batch_size=2, max_length=512, packed=True, checkpointing=True, pairs=4),
    )
}


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
        handle.write("5")     # resets VmHWM to the current resident size (Linux 4.0+)


def can_measure() -> bool:
    """True on a Linux whose ``/proc`` lets a process reset its own peak resident size."""
    try:
        _reset_peak()
        return _status_kib("VmHWM") > 0
    except (OSError, RuntimeError, ValueError):
        return False


def _config(case: MemoryCase, model_dir: Path):
    from core.engine.training_config import TrainingConfig

    return TrainingConfig(base_model=str(model_dir), device="cpu", dtype="float32", batch_size=case.batch_size,
                          max_length=case.max_length, packed_pairs=case.packed,
                          gradient_checkpointing=case.checkpointing, reference_batch_size=16)


def child_measure(case: MemoryCase, model_dir: Path) -> dict:
    """In the child: load, reference pass, two steps; resident sizes in bytes."""
    import torch

    torch.set_num_threads(1)
    import peft  # noqa: F401  (the runtime: everything a run imports, before any model)
    import transformers  # noqa: F401

    from core.engine.batching import tokenize_examples
    from core.engine.logprobs import supports_packed_pairs
    from core.engine.batch_tokens import step_tokens_of
    from core.engine.memory_estimate import estimate_for_config, read_model_config
    from core.engine.modeling import load_for_training
    from core.engine.objective import batch_objective
    from core.engine.pair_packing import collate_pairs
    from core.engine.reference_cache import compute_reference_logps
    from storage.training_set import PreferenceExample

    runtime = _status_kib("VmRSS") * 1024
    config = _config(case, model_dir)
    loaded = load_for_training(config)
    loaded_rss = _status_kib("VmRSS") * 1024
    examples = [PreferenceExample(i, p, c, r, "train")
                for i, (p, c, r) in enumerate(random_triples(case.shape, case.pairs, seed=1))] \
        if case.shape.prompt_tokens is not None else _toy_examples(case.pairs)
    pairs, _ = tokenize_examples(loaded.tokenizer, examples, case.max_length)
    pad = loaded.tokenizer.pad_token_id
    packed = case.packed and supports_packed_pairs(loaded.model)
    longest = sorted(pairs, key=lambda p: -p.length)[:case.batch_size]

    _reset_peak()
    rows = compute_reference_logps(loaded.model, pairs, pad, config.reference_batch_size, loaded.device,
                                   packed_pairs=case.packed)
    reference_peak = _status_kib("VmHWM") * 1024
    table = {row["example_hash"]: (row["chosen_logp"], row["rejected_logp"]) for row in rows}

    model = loaded.model
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    _reset_peak()
    before_steps = _status_kib("VmRSS") * 1024
    for _ in range(2):
        batch = collate_pairs(longest, pad, packed)
        result = batch_objective(model, batch, table, config, loaded.device)
        result.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    step_peak = _status_kib("VmHWM") * 1024
    estimate = estimate_for_config(config, read_model_config(model_dir), "cpu",
                                   step_tokens_of(longest, packed, config.reference_batch_size, pairs))
    return {"case": case.name, "runtime": runtime, "loaded": loaded_rss, "before_steps": before_steps,
            "reference_peak": reference_peak, "step_peak": step_peak, "peak": max(reference_peak, step_peak),
            "packed": packed, "estimate": dataclasses.asdict(estimate), "estimate_total": estimate.total}


def _toy_examples(count: int) -> list:
    from storage.training_set import PreferenceExample
    from tests.tiny_models import CORPUS

    return [PreferenceExample(i, CORPUS[i % len(CORPUS)] + " Tell me more.", CORPUS[(i + 1) % len(CORPUS)],
                              CORPUS[(i + 2) % len(CORPUS)], "train") for i in range(count)]


def measure(case: MemoryCase, workdir: Path, timeout: float = 900, default_allocator: bool = False) -> dict:
    """Build the case's model folder (in its own process, once), then measure in a fresh one."""
    model_dir = workdir / f"model-{case.name}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    if not default_allocator:
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    for mode in ("make", "measure")[1 if (model_dir / "config.json").exists() else 0:]:
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", mode, case.name,
                               str(model_dir)], capture_output=True, text=True, timeout=timeout, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"{mode} {case.name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: list[dict]) -> str:
    lines = [f"{'case':<28} {'runtime':>8} {'loaded':>8} {'ref peak':>9} {'step peak':>10} "
             f"{'estimate':>9} {'est/meas':>9}"]
    for r in results:
        lines.append(f"{r['case']:<28} {r['runtime'] / MIB:>7.0f}M {r['loaded'] / MIB:>7.0f}M "
                     f"{r['reference_peak'] / MIB:>8.0f}M {r['step_peak'] / MIB:>9.0f}M "
                     f"{r['estimate_total'] / MIB:>8.0f}M {r['estimate_total'] / r['peak']:>9.2f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="default: every case")
    parser.add_argument("--json", action="store_true", help="print the measurements as JSON too")
    parser.add_argument("--default-allocator", action="store_true",
                        help="also measure under glibc's default heap (freed blocks kept: resident > live)")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "CASE", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, name, folder = args.child
        case = CASES[name]
        if mode == "make":
            make_model_dir(Path(folder), case.shape, seed=0)
        else:
            print(json.dumps(child_measure(case, Path(folder))))
        return 0
    if not can_measure():
        print("this system cannot reset a process's peak resident size (/proc/self/clear_refs): Linux only")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        names = args.case or list(CASES)
        results = [measure(CASES[name], Path(tmp)) for name in names]
        print(table(results))
        if args.default_allocator:
            print("\nglibc's default heap:")
            results += [measure(CASES[name], Path(tmp), default_allocator=True) for name in names]
            print(table(results[len(names):]))
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
