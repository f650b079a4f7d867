"""DPO Studio's engine vs Hugging Face TRL's DPOTrainer, same model, pairs and settings.

    python benchmarks/bench_vs_trl.py [--shape toy|32k|qwen0.5b] [--steps N] [--batch-size N] [--layers N]

Builds the model of a named shape (``benchmarks/bench_shapes.py``: the toy Llama of
tests/tiny_models.py, a 32k-vocabulary Llama-like model, a Qwen2.5-0.5B-shaped model; random
weights) and N preference pairs of the shape's lengths, then trains a LoRA adapter with each
engine, each in its own process (so peak memory is measured per engine):

- ``studio``: ``core.engine.trainer.train`` (cached reference log-probs, each pair packed into one
  sequence with its shared prompt computed once, LM head only on completion positions,
  length-grouped batches);
- ``trl``: ``trl.DPOTrainer`` with a reference forward every step (TRL's defaults, which include
  ``gradient_checkpointing=True``: DPOConfig's default);
- ``trl+precompute``: ``trl.DPOTrainer`` with ``precompute_ref_log_probs=True``;
- ``studio-unpacked`` (only when named in ``--engines``): the engine with ``packed_pairs=false``
  (chosen and rejected as two padded rows), to see what packing buys;
- ``studio-checkpointed`` (only when named): the engine with ``gradient_checkpointing=true``;
- ``trl+precompute-no-checkpointing`` (only when named): TRL+precompute with
  ``gradient_checkpointing=False``, the like-for-like of ``studio`` (whose default is off), as
  ``trl+precompute`` is of ``studio-checkpointed``.

Same β, learning rate and schedule, batch size, max_length, LoRA rank/alpha/targets, seed;
float32, no dropout. Prints steps per second of the training loop, end-to-end seconds
(model load, tokenisation and reference pass included), peak memory and the loss curve of
each, side by side (peak memory also above the loaded model: the process's peak resident size
minus its resident size once the model is loaded and its weights read once, i.e. the step's own
memory), and each engine's achieved FLOP/s (the step's FLOPs as counted in
``bench_shapes.py`` times steps/s) as a share of what a plain float32 ``torch.matmul`` of the
shape's MLP size reaches on this machine at the same thread count, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.bench_shapes import SHAPES, Shape, fill_workspace, make_model_dir, mean_step_flops  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")

ENGINES = ("studio", "trl", "trl+precompute")
OPTIONAL_ENGINES = ("studio-unpacked", "studio-checkpointed", "trl+precompute-no-checkpointing")


def peak_memory_mib() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


def loaded_memory_mib(model) -> float:
    """Memory once ``model`` is loaded: its weights read once first (safetensors weights are mapped
    from the file and count as resident only once touched, which every engine's first forward does)."""
    import torch

    with torch.no_grad():
        for parameter in model.parameters():
            parameter.sum()
    if torch.cuda.is_available():
        return torch.cuda.memory_allocated() / 2**20
    return _resident_mib(os.getpid())


def _resident_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:")) / 2**10


def resolve_shape(args) -> Shape:
    """The named shape with the command line's overrides; fills the run's unset arguments from it."""
    shape = SHAPES[args.shape]
    shape = replace(shape, hidden=args.hidden or shape.hidden, layers=args.layers or shape.layers)
    for name in ("steps", "pairs", "max_length"):
        if getattr(args, name) is None:
            setattr(args, name, getattr(shape, name))
    if args.batch_size is None:
        args.batch_size = shape.batch
    return shape


def prepare(workdir: Path, shape: Shape, args) -> None:
    from storage.workspace import Workspace

    make_model_dir(workdir / "model", shape, seed=args.seed)
    with Workspace.open(workdir / "ws") as ws:
        fill_workspace(ws, shape, args.pairs, seed=args.seed)


def run_studio(workdir: Path, args, packed: bool = True, checkpointed: bool = False) -> dict:
    from core.engine import trainer
    from core.engine.trainer import TrainingObserver, train
    from core.engine.training_config import TrainingConfig
    from storage.workspace import Workspace

    losses: list[float] = []
    marks: dict[str, float] = {}
    load = trainer.load_start_model

    def measured_load(*args, **kwargs):
        loaded = load(*args, **kwargs)
        marks["loaded_mib"] = loaded_memory_mib(loaded.model)
        return loaded

    trainer.load_start_model = measured_load     # the trainer's own loader, measured when it returns

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
                            packed_pairs=packed, gradient_checkpointing=checkpointed)
    started = time.perf_counter()
    with Workspace.open(workdir / "run-ws") as ws:
        train(ws, config, Timer())
    ended = time.perf_counter()
    return {"losses": losses, "loop_seconds": marks["loop_end"] - marks["loop_start"],
            "total_seconds": ended - started, "loaded_mib": marks["loaded_mib"]}


def run_trl(workdir: Path, args, precompute: bool, checkpointing: bool | None = None) -> dict:
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
    marks: dict[str, float] = {"loaded_mib": loaded_memory_mib(model)}

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
                         dataloader_num_workers=0, disable_tqdm=True,
                         **({} if checkpointing is None else {"gradient_checkpointing": checkpointing}))
    lora = LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r, lora_dropout=0.0, target_modules="all-linear",
                      task_type="CAUSAL_LM")
    trainer = DPOTrainer(model=model, args=dpo_args, train_dataset=data, processing_class=tokenizer,
                         peft_config=lora, callbacks=[Timer()])
    trainer.train()
    ended = time.perf_counter()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {"losses": losses, "loop_seconds": marks["loop_end"] - marks["loop_start"],
            "total_seconds": ended - started, "loaded_mib": marks["loaded_mib"]}


def child(engine: str, workdir: Path, args) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if engine == "matmul":
        from benchmarks.bench_shapes import matmul_flops_per_second

        rows, inner, cols = (int(v) for v in args.matmul.split("x"))
        print("RESULT " + json.dumps({"flops_per_second": matmul_flops_per_second(rows, inner, cols)}))
        return
    if engine.startswith("studio"):
        result = run_studio(workdir, args, packed=engine != "studio-unpacked",
                            checkpointed=engine == "studio-checkpointed")
    else:
        result = run_trl(workdir, args, precompute=engine.startswith("trl+precompute"),
                         checkpointing=False if engine.endswith("-no-checkpointing") else None)
    result["peak_memory_mib"] = peak_memory_mib()
    print("RESULT " + json.dumps(result))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="toy",
                        help="named model and data shape (benchmarks/bench_shapes.py); the options below "
                             "left unset come from it")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--pairs", type=int)
    parser.add_argument("--hidden", type=int, help="override the shape's hidden size")
    parser.add_argument("--layers", type=int, help="override the shape's number of layers")
    parser.add_argument("--max-length", type=int)
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
    parser.add_argument("--memory-limit-gib", type=float, default=0,
                        help="stop an engine whose resident size passes this (it is reported as over it, "
                             "so its peak is at least that); 0: no limit")
    parser.add_argument("--child", choices=ENGINES + OPTIONAL_ENGINES + ("matmul",), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--matmul", help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = resolve_shape(args)
    if args.child:
        child(args.child, Path(args.workdir), args)
        return 0
    unknown = [e for e in args.engines.split(",") if e not in ENGINES + OPTIONAL_ENGINES]
    if unknown:
        parser.error(f"--engines: unknown {', '.join(unknown)} (known: {', '.join(ENGINES + OPTIONAL_ENGINES)})")

    workdir = Path(tempfile.mkdtemp(prefix="dpo-bench-"))
    loads = [os.getloadavg()]
    try:
        prepare(workdir, shape, args)
        step_flops, pair_tokens = mean_step_flops(workdir / "model", workdir / "ws", shape, args.batch_size,
                                                  args.max_length, args.lora_r)
        passthrough = [f"--shape={args.shape}", f"--steps={args.steps}", f"--batch-size={args.batch_size}",
                       f"--pairs={args.pairs}", f"--hidden={shape.hidden}", f"--layers={shape.layers}",
                       f"--max-length={args.max_length}", f"--lr={args.lr}", f"--beta={args.beta}",
                       f"--lora-r={args.lora_r}", f"--seed={args.seed}", f"--threads={args.threads}",
                       *(["--cpu"] if args.cpu else [])]
        # The matmul reference: the MLP's up projection on about a step's tokens, same dtype and threads.
        matmul = f"{min(2048, int(pair_tokens * args.batch_size))}x{shape.hidden}x{shape.intermediate}"
        results: dict[str, dict] = {}
        peak_flops = 0.0
        for _ in range(args.repeat):
            for engine in ["matmul", *args.engines.split(","), "matmul"]:
                # A fresh workspace copy per run: the studio run must not find a warm reference cache.
                shutil.rmtree(workdir / "run-ws", ignore_errors=True)
                shutil.copytree(workdir / "ws", workdir / "run-ws")
                command = [sys.executable, __file__, "--child", engine, "--workdir", str(workdir),
                           f"--matmul={matmul}", *passthrough]
                returncode, stdout, stderr, over = run_child(command, args.memory_limit_gib * 1024)
                lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
                if over:
                    result = {"over_limit_mib": over}
                elif returncode != 0 or not lines:
                    print(f"{engine} failed:\n{stderr[-3000:]}", file=sys.stderr)
                    return 1
                else:
                    result = json.loads(lines[-1][len("RESULT "):])
                loads.append(os.getloadavg())
                # Each engine's figures as it finishes, so a long run that is cut short keeps them.
                print(f"finished {engine}: " + json.dumps({k: v for k, v in result.items() if k != "losses"}),
                      flush=True)
                if engine == "matmul":
                    peak_flops = max(peak_flops, result["flops_per_second"])
                elif engine not in results or result.get("loop_seconds", math.inf) < results[engine].get(
                        "loop_seconds", math.inf):
                    results[engine] = result
        report(results, args, shape, step_flops, pair_tokens, peak_flops, matmul, loads)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def run_child(command: list[str], limit_mib: float) -> tuple[int, str, str, float]:
    """Run an engine's process; with ``limit_mib``, stop it once its resident size passes that (the
    last value: what it had reached). (return code, stdout, stderr, resident MiB when stopped or 0)."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    while True:
        try:
            stdout, stderr = proc.communicate(timeout=0.2)
            return proc.returncode, stdout, stderr, 0.0
        except subprocess.TimeoutExpired:
            try:
                resident = _resident_mib(proc.pid)
            except (OSError, StopIteration):
                continue
            if limit_mib and resident > limit_mib:
                proc.kill()
                stdout, stderr = proc.communicate()
                return proc.returncode, stdout, stderr, resident


def report(results: dict, args, shape: Shape, step_flops: float, pair_tokens: float, peak_flops: float,
           matmul: str, loads: list) -> None:
    import torch
    import transformers
    import trl

    device = "cuda" if torch.cuda.is_available() and not args.cpu else "cpu"
    threads = args.threads or torch.get_num_threads()
    print(f"shape {shape.name}: {shape.architecture} vocab {shape.vocab}, hidden {shape.hidden}, {shape.layers} "
          f"layers, {shape.heads} heads / {shape.kv_heads} kv, MLP {shape.intermediate}"
          f"{', tied embeddings' if shape.tied_embeddings else ''} ({shape.note})")
    changed = [f"{field} {getattr(SHAPES[shape.name], field)} -> {getattr(shape, field)}"
               for field in ("hidden", "layers") if getattr(shape, field) != getattr(SHAPES[shape.name], field)]
    if changed:
        print(f"  CHANGED from the named shape: {', '.join(changed)} (set on the command line)")
    lengths = ("the toy's English pairs" if shape.prompt_tokens is None else
               f"prompts {shape.prompt_tokens[0]}-{shape.prompt_tokens[1]} tokens, answers "
               f"{shape.answer_tokens[0]}-{shape.answer_tokens[1]}")
    print(f"data: {args.pairs} pairs, {lengths}, {pair_tokens:.0f} tokens per packed pair on average; "
          f"{args.steps} steps of batch {args.batch_size}; max_length {args.max_length}; LoRA r {args.lora_r} "
          f"all-linear; beta {args.beta}; lr {args.lr}; {device}, float32, {threads} torch threads; "
          f"best of {args.repeat}; torch {torch.__version__}, transformers {transformers.__version__}, "
          f"trl {trl.__version__}")
    print(f"load average (1 min) during the run: {min(x[0] for x in loads):.1f}-{max(x[0] for x in loads):.1f} "
          f"on {os.cpu_count()} cores")
    print(f"step FLOPs (bench_shapes.pair_flops, the same for every engine): {step_flops / 1e9:.2f} GFLOP; "
          f"matmul peak ({matmul} float32, {threads} threads, best in this run): {peak_flops / 1e9:.1f} GFLOP/s")
    print(f"{'engine':<20} {'steps/s':>8} {'loop s':>8} {'total s':>8} {'peak MiB':>9} {'above load':>10} "
          f"{'GFLOP/s':>8} {'% matmul':>8} {'first loss':>10} {'final loss':>10} {'mean last 5':>11}")
    for engine, r in results.items():
        if "over_limit_mib" in r:
            print(f"{engine:<20} stopped when its resident size passed the limit ({r['over_limit_mib']:.0f} MiB > "
                  f"{args.memory_limit_gib:g} GiB): peak at least that")
            continue
        losses = r["losses"]
        rate = args.steps / r["loop_seconds"]
        print(f"{engine:<20} {rate:>8.3f} {r['loop_seconds']:>8.2f} {r['total_seconds']:>8.2f} "
              f"{r['peak_memory_mib']:>9.0f} {r['peak_memory_mib'] - r['loaded_mib']:>10.0f} "
              f"{rate * step_flops / 1e9:>8.2f} "
              f"{100 * rate * step_flops / peak_flops:>7.1f}% {losses[0]:>10.4f} {losses[-1]:>10.4f} "
              f"{sum(losses[-5:]) / len(losses[-5:]):>11.4f}")
    for name, base in results.items():
        if not name.startswith("studio") or "over_limit_mib" in base:
            continue
        for engine, r in results.items():
            if engine.startswith("studio"):
                continue
            if "over_limit_mib" in r:
                print(f"{name} / {engine}: at most {base['peak_memory_mib'] / r['over_limit_mib']:.2f}x the peak "
                      f"memory ({engine} passed {r['over_limit_mib']:.0f} MiB before it was stopped)")
                continue
            print(f"{name} / {engine}: {r['loop_seconds'] / base['loop_seconds']:.2f}x steps per second, "
                  f"{base['peak_memory_mib'] / r['peak_memory_mib']:.2f}x the peak memory "
                  f"({(base['peak_memory_mib'] - base['loaded_mib']) / (r['peak_memory_mib'] - r['loaded_mib']):.2f}x "
                  f"above the loaded model), {r['total_seconds'] / base['total_seconds']:.2f}x less end-to-end time")
    print("loss curve (every 5th step):")
    for engine, r in results.items():
        if "losses" in r:
            print(f"  {engine:<20} " + " ".join(f"{v:.3f}" for v in r["losses"][::5]))


if __name__ == "__main__":
    sys.exit(main())
