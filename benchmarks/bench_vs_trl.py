"""DPO Studio's engine vs Hugging Face TRL's DPOTrainer, same model, pairs and settings.

    python benchmarks/bench_vs_trl.py [--steps 40] [--batch-size 8] [--hidden 128] [--layers 4]

Builds a small Llama (tests/tiny_models.py, wider) and N preference pairs, then trains a LoRA
adapter three times, each in its own process (so peak memory is measured per engine):

- ``studio``: ``core.engine.trainer.train`` (cached reference log-probs, each pair packed into one
  sequence with its shared prompt computed once, LM head only on completion positions,
  length-grouped batches);
- ``trl``: ``trl.DPOTrainer`` with a reference forward every step;
- ``trl+precompute``: ``trl.DPOTrainer`` with ``precompute_ref_log_probs=True``;
- ``studio-unpacked`` (only when named in ``--engines``): the engine with ``packed_pairs=false``
  (chosen and rejected as two padded rows), to see what packing buys.

Same β, learning rate and schedule, batch size, max_length, LoRA rank/alpha/targets, seed;
float32, no dropout. Prints steps per second of the training loop, end-to-end seconds
(model load, tokenisation and reference pass included), peak memory and the loss curve of
each, side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")

ENGINES = ("studio", "trl", "trl+precompute")
OPTIONAL_ENGINES = ("studio-unpacked",)


def peak_memory_mib() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


def prepare(workdir: Path, args) -> None:
    from storage.workspace import Workspace
    from tests.tiny_models import fill_workspace, make_tiny_model_dir

    make_tiny_model_dir(workdir / "model", hidden_size=args.hidden, layers=args.layers)
    with Workspace.open(workdir / "ws") as ws:
        fill_workspace(ws, args.pairs)


def run_studio(workdir: Path, args, packed: bool = True) -> dict:
    from core.engine.trainer import TrainingObserver, train
    from core.engine.training_config import TrainingConfig
    from storage.workspace import Workspace

    losses: list[float] = []
    marks: dict[str, float] = {}

    class Timer(TrainingObserver):
        def on_start(self, run_info):
            marks["loop_start"] = time.perf_counter()

        def on_step(self, step, metrics):
            losses.append(metrics["loss"])

        def on_finish(self, status, error):
            marks["loop_end"] = time.perf_counter()

    config = TrainingConfig(base_model=str(workdir / "model"), max_steps=args.steps, batch_size=args.batch_size,
                            learning_rate=args.lr, beta=args.beta, max_length=args.max_length, lora_r=args.lora_r,
                            lora_alpha=2 * args.lora_r, eval_split="none", eval_interval=0,
                            checkpoint_interval=0, seed=args.seed, device="cpu" if args.cpu else "auto",
                            packed_pairs=packed)
    started = time.perf_counter()
    with Workspace.open(workdir / "run-ws") as ws:
        train(ws, config, Timer())
    ended = time.perf_counter()
    return {"losses": losses, "loop_seconds": marks["loop_end"] - marks["loop_start"],
            "total_seconds": ended - started}


def run_trl(workdir: Path, args, precompute: bool) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    from storage.training_set import build_training_set
    from storage.workspace import Workspace

    started = time.perf_counter()
    with Workspace.open(workdir / "ws") as ws:
        examples = build_training_set(ws).examples
    data = Dataset.from_list([{"prompt": e.prompt, "chosen": e.chosen, "rejected": e.rejected} for e in examples])
    tokenizer = AutoTokenizer.from_pretrained(workdir / "model")
    model = AutoModelForCausalLM.from_pretrained(workdir / "model", dtype=torch.float32)
    marks: dict[str, float] = {}

    class Timer(TrainerCallback):
        def on_train_begin(self, *_, **__):
            marks["loop_start"] = time.perf_counter()

        def on_train_end(self, *_, **__):
            marks["loop_end"] = time.perf_counter()

    dpo_args = DPOConfig(output_dir=str(workdir / f"trl-{precompute}"), max_steps=args.steps,
                         per_device_train_batch_size=args.batch_size, learning_rate=args.lr, beta=args.beta,
                         max_length=args.max_length, lr_scheduler_type="linear", warmup_steps=0,
                         logging_steps=1, save_strategy="no", report_to=[], bf16=False,
                         use_cpu=bool(args.cpu), seed=args.seed, precompute_ref_log_probs=precompute,
                         dataloader_num_workers=0, disable_tqdm=True)
    lora = LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r, lora_dropout=0.0, target_modules="all-linear",
                      task_type="CAUSAL_LM")
    trainer = DPOTrainer(model=model, args=dpo_args, train_dataset=data, processing_class=tokenizer,
                         peft_config=lora, callbacks=[Timer()])
    trainer.train()
    ended = time.perf_counter()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {"losses": losses, "loop_seconds": marks["loop_end"] - marks["loop_start"],
            "total_seconds": ended - started}


def child(engine: str, workdir: Path, args) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if engine.startswith("studio"):
        result = run_studio(workdir, args, packed=engine == "studio")
    else:
        result = run_trl(workdir, args, precompute=engine == "trl+precompute")
    result["peak_memory_mib"] = peak_memory_mib()
    print("RESULT " + json.dumps(result))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=160)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--lora-r", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpu", action="store_true", help="force the CPU even when a GPU is present")
    parser.add_argument("--engines", default=",".join(ENGINES),
                        help=f"comma-separated, of {', '.join(ENGINES + OPTIONAL_ENGINES)}")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per engine (0 = torch's default)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the engines round-robin this many times and keep each one's fastest run "
                             "(on a shared machine, background load otherwise decides the ranking)")
    parser.add_argument("--child", choices=ENGINES + OPTIONAL_ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.workdir), args)
        return 0
    unknown = [e for e in args.engines.split(",") if e not in ENGINES + OPTIONAL_ENGINES]
    if unknown:
        parser.error(f"--engines: unknown {', '.join(unknown)} (known: {', '.join(ENGINES + OPTIONAL_ENGINES)})")

    workdir = Path(tempfile.mkdtemp(prefix="dpo-bench-"))
    try:
        prepare(workdir, args)
        passthrough = [f"--steps={args.steps}", f"--batch-size={args.batch_size}", f"--pairs={args.pairs}",
                       f"--hidden={args.hidden}", f"--layers={args.layers}", f"--max-length={args.max_length}",
                       f"--lr={args.lr}", f"--beta={args.beta}", f"--lora-r={args.lora_r}", f"--seed={args.seed}",
                       f"--threads={args.threads}", *(["--cpu"] if args.cpu else [])]
        results: dict[str, dict] = {}
        for _ in range(args.repeat):
            for engine in args.engines.split(","):
                # A fresh workspace copy per run: the studio run must not find a warm reference cache.
                shutil.rmtree(workdir / "run-ws", ignore_errors=True)
                shutil.copytree(workdir / "ws", workdir / "run-ws")
                proc = subprocess.run([sys.executable, __file__, "--child", engine, "--workdir", str(workdir),
                                       *passthrough], capture_output=True, text=True, cwd=ROOT)
                lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
                if proc.returncode != 0 or not lines:
                    print(f"{engine} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
                    return 1
                result = json.loads(lines[-1][len("RESULT "):])
                if engine not in results or result["loop_seconds"] < results[engine]["loop_seconds"]:
                    results[engine] = result
        report(results, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def report(results: dict, args) -> None:
    import torch
    import transformers
    import trl

    device = "cuda" if torch.cuda.is_available() and not args.cpu else "cpu"
    print(f"model: Llama hidden {args.hidden}, {args.layers} layers; {args.pairs} pairs; {args.steps} steps of "
          f"batch {args.batch_size}; max_length {args.max_length}; LoRA r {args.lora_r} all-linear; "
          f"beta {args.beta}; lr {args.lr}; {device}, float32, "
          f"{args.threads or torch.get_num_threads()} torch threads; best of {args.repeat}; "
          f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}")
    print(f"{'engine':<16} {'steps/s':>8} {'loop s':>8} {'total s':>8} {'peak MiB':>9} {'first loss':>10} "
          f"{'final loss':>10} {'mean last 5':>11}")
    for engine, r in results.items():
        losses = r["losses"]
        print(f"{engine:<16} {args.steps / r['loop_seconds']:>8.2f} {r['loop_seconds']:>8.2f} "
              f"{r['total_seconds']:>8.2f} {r['peak_memory_mib']:>9.0f} {losses[0]:>10.4f} {losses[-1]:>10.4f} "
              f"{sum(losses[-5:]) / len(losses[-5:]):>11.4f}")
    if "studio" in results:
        base = args.steps / results["studio"]["loop_seconds"]
        for engine, r in results.items():
            if engine != "studio":
                print(f"studio / {engine}: {base / (args.steps / r['loop_seconds']):.2f}x steps per second, "
                      f"{r['total_seconds'] / results['studio']['total_seconds']:.2f}x less end-to-end time")
    print("loss curve (every 5th step):")
    for engine, r in results.items():
        print(f"  {engine:<16} " + " ".join(f"{v:.3f}" for v in r["losses"][::5]))


if __name__ == "__main__":
    sys.exit(main())
