"""One prepared run of the engine on a CUDA GPU: device/dtype selection, bf16 training, memory.

    python benchmarks/cuda_check.py [--steps 200] [--out report.json]

Creates the demo workspace in a temporary folder, then trains the demo's default settings
three times: device/dtype ``auto`` (expected: cuda + bfloat16), ``cuda`` + ``float32``, and
``cuda`` + ``bfloat16`` with ``packed_pairs=false``. For each it prints the device and dtype
the engine picked, steps per second, peak GPU memory (allocator peak and reserved), the
first and last train metrics and the final eval metrics, so what was seen on a GPU can be
written into BENCHMARKS.md. Needs a CUDA GPU; refuses to run without one.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEYS = ("loss", "rewards/margins", "rewards/accuracies", "logps/chosen", "prob/chosen", "prob/rejected",
        "grad_norm", "tokens_per_second", "likelihood_displacement")


def run_once(ws, base_config: dict, overrides: dict) -> dict:
    import torch

    from core.engine.modeling import memory_report
    from core.engine.trainer import TrainingObserver, train
    from core.engine.training_config import TrainingConfig

    class Recorder(TrainingObserver):
        def __init__(self) -> None:
            self.info = None
            self.steps: list[tuple[int, dict]] = []
            self.evals: list[tuple[int, dict]] = []
            self.first_step_at: float | None = None

        def on_start(self, run_info) -> None:
            self.info = run_info

        def on_step(self, step, metrics) -> None:
            if self.first_step_at is None:
                self.first_step_at = time.perf_counter()
            self.steps.append((step, dict(metrics)))

        def on_eval(self, step, metrics) -> None:
            self.evals.append((step, dict(metrics)))

    torch.cuda.reset_peak_memory_stats()
    config = TrainingConfig.from_dict({**base_config, **overrides})
    recorder = Recorder()
    started = time.perf_counter()
    run_id = train(ws, config, recorder)
    ended = time.perf_counter()
    torch.cuda.synchronize()
    loop_s = ended - (recorder.first_step_at or started)
    steps = len(recorder.steps)
    pick = lambda metrics: {k: round(metrics[k], 5) for k in KEYS if k in metrics}  # noqa: E731
    return {
        "overrides": overrides, "run_id": run_id,
        "device": recorder.info.device, "dtype": recorder.info.dtype,
        "steps": steps, "end_to_end_s": round(ended - started, 2),
        "steps_per_s": round((steps - 1) / loop_s, 2) if steps > 1 and loop_s > 0 else None,
        "memory": {k: round(v, 1) for k, v in memory_report(torch.device("cuda")).items()},
        "first_step": pick(recorder.steps[0][1]), "last_step": pick(recorder.steps[-1][1]),
        "final_eval": pick(recorder.evals[-1][1]) if recorder.evals else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--out", help="also write the report as JSON here")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("no CUDA GPU here; nothing to check", file=sys.stderr)
        return 2
    from core.demo.demo_workspace import create_demo_workspace
    from storage.settings import read_settings
    from storage.workspace import Workspace

    report = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "bf16_supported": torch.cuda.is_bf16_supported(), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = create_demo_workspace(Path(tmp) / "demo")
        with Workspace.open(folder) as ws:
            base = dict(read_settings(ws).training_config)
            base.update(max_steps=args.steps, checkpoint_interval=0)
            for overrides in ({"device": "auto", "dtype": "auto"},
                              {"device": "cuda", "dtype": "float32"},
                              {"device": "cuda", "dtype": "bfloat16", "packed_pairs": False}):
                result = run_once(ws, base, overrides)
                report["runs"].append(result)
                print(json.dumps(result), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
