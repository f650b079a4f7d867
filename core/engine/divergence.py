"""Which checkpoint of a diverging run is still good.

A checkpoint is good when its weights are all finite, its step's gradient norm was not
already exploding (above ``SPIKE_FACTOR`` x the running median of the steps before), and the
step after it (computed from its weights) had a finite loss. When training fails on a
non-finite value, ``DivergenceWatch.last_good`` names the newest good checkpoint and
``set_aside`` moves the later ones out of resume's way.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

SPIKE_FACTOR = 10.0
MIN_HISTORY = 3


def weights_are_finite(checkpoint: Path) -> bool:
    import torch
    from safetensors.torch import load_file

    try:
        weights = load_file(str(Path(checkpoint) / "adapter_model.safetensors"))
    except Exception:  # noqa: BLE001 - an unreadable checkpoint is not a good one
        return False
    return all(bool(torch.isfinite(t).all()) for t in weights.values())


class DivergenceWatch:
    """Fed each step's gradient norm and each checkpoint; knows which checkpoints are suspect."""

    def __init__(self) -> None:
        self.grad_norms: list[float] = []
        self.suspect_steps: set[int] = set()
        self.saved: dict[int, Path] = {}

    def step(self, step: int, grad_norm: float) -> None:
        history = self.grad_norms[-50:]
        if len(history) >= MIN_HISTORY and grad_norm > SPIKE_FACTOR * max(statistics.median(history), 1e-12):
            self.suspect_steps.add(step)
        if not math.isfinite(grad_norm):
            self.suspect_steps.add(step)
        self.grad_norms.append(grad_norm)

    def checkpoint(self, step: int, path: Path) -> None:
        self.saved[step] = Path(path)

    def last_good(self, failed_step: int, existing: list[Path]) -> Path | None:
        """The newest checkpoint still on disk that is good, given a failure at ``failed_step``
        (1-based: the loss of that step, computed from the weights after the step before, was
        not finite, so the checkpoint of the step before is not good)."""
        first_suspect = min(self.suspect_steps, default=None)
        for path in reversed(existing):
            step = int(path.name.split("-")[1])
            if step >= failed_step - 1:
                continue
            if first_suspect is not None and step >= first_suspect:
                continue
            if weights_are_finite(path):
                return path
        return None

    def advice(self, run_dir: Path, run_id: str, failed_step: int, learning_rate: float) -> str:
        """The failure message's end: the newest good checkpoint (the later ones set aside, so
        that resume starts from it) and the setting to lower."""
        from core.engine.checkpoints import list_checkpoints

        existing = list_checkpoints(run_dir)
        good = self.last_good(failed_step, existing)
        set_aside(existing, good)
        if good is None:
            return (f"; no good checkpoint was kept. Lower learning_rate (now {learning_rate:g}) or beta, "
                    "or check the data, and start a new run.")
        return (f"; the last good checkpoint is {good.name}. Lower learning_rate (or beta), or check the data: "
                f"--resume {run_id} --set learning_rate={learning_rate / 10:g} continues from it.")


def set_aside(existing: list[Path], good: Path | None) -> list[Path]:
    """Rename the checkpoints newer than ``good`` to ``diverged-step-N`` (kept for a look, never
    picked by resume); return their new paths."""
    keep_step = int(good.name.split("-")[1]) if good is not None else -1
    moved = []
    for path in existing:
        if int(path.name.split("-")[1]) > keep_step:
            target = path.with_name(f"diverged-{path.name}")
            if target.exists():
                import shutil

                shutil.rmtree(target, ignore_errors=True)
            path.rename(target)
            moved.append(target)
    return moved
