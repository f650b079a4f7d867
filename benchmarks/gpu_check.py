"""One prepared script for a machine with a CUDA GPU: the engine at real shapes in bf16, against TRL.

    python benchmarks/gpu_check.py [--shapes toy,32k,qwen0.5b] [--steps N] [--skip-trl] [--out report.json]

Installs nothing: it first prints which of the packages it uses are missing (bitsandbytes is the
"gpu" extra: ``pip install -e ".[gpu]"``) and skips what needs them. Then, each run in its own
process so peak memory is its own:

- per shape of ``benchmarks/bench_shapes.py``: the engine (``core.engine.trainer.train``, bf16,
  packed pairs, cached reference log-probs) and TRL's ``DPOTrainer`` with ``precompute_ref_log_probs``
  in bf16: steps/s of the training loop, peak GPU memory (allocator peak), the memory estimate shown
  before launch (``core.engine.memory_estimate`` as the form shows it: every sequence ``max_length``
  long, so above a peak of shorter pairs; ``benchmarks/bench_memory.py`` checks it with the real
  lengths on the CPU) beside it, and MFU: the step's FLOPs
  (``bench_shapes.mean_step_flops``) × steps/s over the card's bf16 dense peak (``KNOWN_BF16_PEAKS``
  by device name, else a measured bf16 matmul, which is printed either way);
- the QLoRA path (``load_in_4bit``) on the 32k shape: steps/s, peak memory, estimate;
- with two GPUs or more: ``main.py train --processes 2`` on the 32k shape.

Prints one JSON object (also written to ``--out``) and a table. Without a CUDA device it says so
and exits with status 2 after listing what is missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PACKAGES = ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "bitsandbytes")
# Dense bf16 tensor throughput from the vendors' spec sheets, FLOP/s, by a part of torch.cuda.get_device_name()
# (the longest that matches wins: "NVIDIA H100 80GB HBM3" is the SXM part).
KNOWN_BF16_PEAKS = {"H200": 989e12, "H100 80GB HBM3": 989e12, "H100 NVL": 835e12, "H100 PCIe": 756e12, "H100": 989e12,
                    "A100": 312e12, "L40S": 362e12, "L40": 181e12, "L4": 121e12, "A10G": 70e12, "A10": 125e12,
                    "RTX 6000 Ada": 364e12, "RTX 4090": 165e12, "RTX 3090": 71e12, "A6000": 155e12}
DEFAULT_SHAPES = ("toy", "32k", "qwen0.5b")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from benchmarks.bench_shapes import SHAPES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(DEFAULT_SHAPES),
                        help=f"comma-separated, of {', '.join(sorted(SHAPES))}")
    parser.add_argument("--steps", type=int, default=20, help="training steps per run (default 20)")
    parser.add_argument("--skip-trl", action="store_true", help="the engine only")
    parser.add_argument("--out", help="also write the JSON report here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.shape_names = [name.strip() for name in args.shapes.split(",") if name.strip()]
    unknown = [name for name in args.shape_names if name not in SHAPES]
    if unknown or not args.shape_names:
        parser.error(f"--shapes: unknown {', '.join(unknown) or '(none given)'} (known: {', '.join(sorted(SHAPES))})")
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    return args


def missing_packages() -> list[str]:
    return [name for name in PACKAGES if importlib.util.find_spec(name) is None]


def card_peak(name: str) -> tuple[float | None, str]:
    """(bf16 dense peak FLOP/s, which table entry) for a device name; (None, "") when unknown."""
    for key in sorted(KNOWN_BF16_PEAKS, key=len, reverse=True):
        if key.lower() in name.lower():
            return KNOWN_BF16_PEAKS[key], key
    return None, ""


def measured_matmul_peak(size: int = 8192, seconds: float = 2.0) -> float:
    import torch

    a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    a @ b
    torch.cuda.synchronize()
    count, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        a @ b
        count += 1
    torch.cuda.synchronize()
    return 2 * size**3 * count / (time.perf_counter() - began)


# -- children: one run each, in its own process -------------------------------------------------
def child(kind: str, workdir: Path, shape_name: str, steps: int) -> dict:
    import torch

    from benchmarks.bench_shapes import SHAPES
    from core.engine.memory_estimate import estimate_for_config, read_model_config
    from core.engine.training_config import TrainingConfig

    shape = SHAPES[shape_name]
    torch.cuda.reset_peak_memory_stats()
    config = TrainingConfig(base_model=str(workdir / "model"), max_steps=steps, batch_size=shape.batch,
                            max_length=shape.max_length, learning_rate=5e-4, lora_r=8, lora_alpha=16,
                            eval_split="none", eval_interval=0, checkpoint_interval=0, device="cuda",
                            dtype="bfloat16", load_in_4bit=kind == "qlora")
    if kind == "trl+precompute":
        result = _run_trl(workdir, config)
    else:
        result = _run_engine(workdir, config)
    result["peak_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    result["peak_reserved_mib"] = torch.cuda.max_memory_reserved() / 2**20
    result["estimate_mib"] = estimate_for_config(config, read_model_config(workdir / "model"), "cuda").total / 2**20
    result["steps_per_second"] = steps / result["loop_seconds"]
    return result


def _run_engine(workdir: Path, config) -> dict:
    from core.engine.trainer import TrainingObserver, train
    from storage.workspace import Workspace

    marks: dict[str, float] = {}

    class Timer(TrainingObserver):
        def on_start(self, run_info):
            marks["start"] = time.perf_counter()

        def on_finish(self, status, error):
            marks["end"] = time.perf_counter()
            marks["error"] = error

    with Workspace.open(workdir / "ws") as ws:
        train(ws, config, Timer())
    if marks.get("error"):
        raise RuntimeError(marks["error"])
    return {"loop_seconds": marks["end"] - marks["start"]}


def _run_trl(workdir: Path, config) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    from storage.training_set import build_training_set
    from storage.workspace import Workspace

    with Workspace.open(workdir / "ws") as ws:
        examples = build_training_set(ws).examples
    data = Dataset.from_list([{"prompt": e.prompt, "chosen": e.chosen, "rejected": e.rejected} for e in examples])
    marks: dict[str, float] = {}

    class Timer(TrainerCallback):
        def on_train_begin(self, *_, **__):
            marks["start"] = time.perf_counter()

        def on_train_end(self, *_, **__):
            marks["end"] = time.perf_counter()

    model = AutoModelForCausalLM.from_pretrained(config.base_model, dtype=torch.bfloat16).to("cuda")
    dpo_args = DPOConfig(output_dir=str(workdir / "trl"), max_steps=config.max_steps, bf16=True,
                         per_device_train_batch_size=config.batch_size, learning_rate=config.learning_rate,
                         max_length=config.max_length, save_strategy="no", report_to=[], logging_steps=1,
                         precompute_ref_log_probs=True, dataloader_num_workers=0, disable_tqdm=True)
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.0, target_modules="all-linear",
                      task_type="CAUSAL_LM")
    DPOTrainer(model=model, args=dpo_args, train_dataset=data, processing_class=AutoTokenizer.from_pretrained(
        config.base_model), peft_config=lora, callbacks=[Timer()]).train()
    return {"loop_seconds": marks["end"] - marks["start"]}


# -- the parent --------------------------------------------------------------------------------
def _spawn(kind: str, workdir: Path, shape_name: str, steps: int, timeout: float = 400) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", f"{kind}:{shape_name}", "--workdir", str(workdir),
                           f"--steps={steps}"], capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1][:300]}
    return json.loads(lines[-1][len("RESULT "):])


def _prepare(workdir: Path, shape_name: str) -> float:
    """The shape's model and pairs; returns the FLOPs of an average step."""
    from benchmarks.bench_shapes import SHAPES, fill_workspace, make_model_dir, mean_step_flops
    from storage.workspace import Workspace

    shape = SHAPES[shape_name]
    make_model_dir(workdir / "model", shape)
    with Workspace.open(workdir / "ws") as ws:
        fill_workspace(ws, shape, max(shape.pairs, 4 * shape.batch))
    return mean_step_flops(workdir / "model", workdir / "ws", shape, shape.batch, shape.max_length, 8)[0]


def run(args: argparse.Namespace) -> dict:
    import torch

    name = torch.cuda.get_device_name()
    spec_peak, entry = card_peak(name)
    report: dict = {"device": name, "gpus": torch.cuda.device_count(), "missing": missing_packages(),
                    "matmul_bf16_flops": measured_matmul_peak(), "spec_bf16_flops": spec_peak, "spec_entry": entry,
                    "runs": []}
    peak = spec_peak or report["matmul_bf16_flops"]
    kinds = ["engine"] + ([] if args.skip_trl or "trl" in report["missing"] else ["trl+precompute"])
    for shape_name in args.shape_names:
        workdir = Path(tempfile.mkdtemp(prefix=f"gpu-check-{shape_name}-"))
        try:
            step_flops = _prepare(workdir, shape_name)
            shape_kinds = kinds + (["qlora"] if shape_name == "32k" and "bitsandbytes" not in report["missing"] else [])
            for kind in shape_kinds:
                result = {"shape": shape_name, "kind": kind, **_spawn(kind, workdir, shape_name, args.steps)}
                if "steps_per_second" in result:
                    result["mfu"] = step_flops * result["steps_per_second"] / peak
                report["runs"].append(result)
                print(json.dumps(result), flush=True)
            if shape_name == "32k" and report["gpus"] >= 2:
                report["ddp"] = _ddp(workdir, args.steps)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return report


def _ddp(workdir: Path, steps: int) -> dict:
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "main.py", "train", str(workdir / "ws"), "--processes", "2", "--quiet",
                           "--set", f"base_model={workdir / 'model'}", "--set", f"max_steps={steps}",
                           "--set", "eval_split=none", "--set", "device=cuda"],
                          capture_output=True, text=True, cwd=ROOT, timeout=400)
    return {"returncode": done.returncode, "seconds": time.perf_counter() - began,
            "last_line": (done.stdout.strip().splitlines() or done.stderr.strip().splitlines() or [""])[-1][:300]}


def table(report: dict) -> str:
    spec = report["spec_bf16_flops"]
    lines = [f"{report['device']}: bf16 matmul {report['matmul_bf16_flops'] / 1e12:.0f} TFLOP/s measured, "
             f"spec sheet {f'{spec / 1e12:.0f} TFLOP/s' if spec else 'unknown (MFU against the measured matmul)'}",
             f"{'shape':<10} {'run':<15} {'steps/s':>8} {'peak MiB':>9} {'estimate':>9} {'MFU':>6}"]
    for r in report["runs"]:
        if "error" in r:
            lines.append(f"{r['shape']:<10} {r['kind']:<15} failed: {r['error']}")
            continue
        lines.append(f"{r['shape']:<10} {r['kind']:<15} {r['steps_per_second']:>8.2f} {r['peak_allocated_mib']:>9.0f} "
                     f"{r['estimate_mib']:>9.0f} {100 * r['mfu']:>5.1f}%")
    if "ddp" in report:
        lines.append(f"2-process DDP (32k): exit {report['ddp']['returncode']} in {report['ddp']['seconds']:.0f} s: "
                     f"{report['ddp']['last_line']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        kind, shape_name = args.child.split(":")
        print("RESULT " + json.dumps(child(kind, Path(args.workdir), shape_name, args.steps)))
        return 0
    missing = missing_packages()
    if missing:
        print(f"missing: {', '.join(missing)} (bitsandbytes is the \"gpu\" extra: pip install -e \".[gpu]\"); "
              "what needs them is skipped")
    cuda = "torch" not in missing and _cuda_available()
    if not cuda:
        print(json.dumps({"cuda": False, "missing": missing}))
        print("no CUDA device: this script measures a GPU; nothing was run")
        return 2
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    report = run(args)
    print(json.dumps(report, indent=1))
    print(table(report))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    sys.exit(main())
