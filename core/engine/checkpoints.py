"""Self-describing checkpoints: ``<run>/checkpoints/step-N/`` holds the adapter (peft
safetensors, loadable on its own), the optimizer and scheduler state, every RNG state and
``trainer_state.json`` (step, metrics at that step). A checkpoint is written to a temporary
folder and renamed into place, so a crash mid-write never leaves a half checkpoint that
resume would pick up.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path
from typing import Any, Callable

import torch

STATE_FILE = "trainer_state.json"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def checkpoints_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "torch": torch.random.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    torch.random.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, step: int, model, optimizer, scheduler, state: dict[str, Any],
                    keep: int = 0, last_good: Callable[[list[Path]], Path | None] | None = None) -> Path:
    """Write ``checkpoints/step-<step>`` and prune all but the newest ``keep`` (0 = keep all).
    ``last_good(checkpoints)`` names the newest good one (``core.engine.divergence``); pruning
    never deletes it, so a run that diverges later can still be resumed from it."""
    root = checkpoints_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step}"
    partial = root / f".step-{step}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    model.save_pretrained(partial, safe_serialization=True)
    torch.save(optimizer.state_dict(), partial / "optimizer.pt")
    torch.save(scheduler.state_dict(), partial / "scheduler.pt")
    torch.save(rng_state(), partial / "rng_state.pt")
    (partial / STATE_FILE).write_text(json.dumps({"step": step, **state}, indent=2), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    if keep > 0:
        prune_checkpoints(run_dir, keep, last_good)
    return final


def prune_checkpoints(run_dir: Path, keep: int, last_good: Callable[[list[Path]], Path | None] | None = None) -> None:
    """Delete all but the newest ``keep`` checkpoints and the newest good one."""
    existing = list_checkpoints(run_dir)
    old = existing[:-keep]
    if not old:
        return
    good = last_good(existing) if last_good is not None else None
    for path in old:
        if path != good:
            shutil.rmtree(path, ignore_errors=True)


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = checkpoints_dir(run_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and (child / STATE_FILE).exists():
            found.append((int(match.group(1)), child))
    return [path for _, path in sorted(found)]


def latest_checkpoint(run_dir: Path) -> Path | None:
    checkpoints = list_checkpoints(run_dir)
    return checkpoints[-1] if checkpoints else None


def load_checkpoint(path: Path, model, optimizer, scheduler, learning_rate: float | None = None) -> dict[str, Any]:
    """Restore adapter weights, optimizer, scheduler and RNG from ``path``; return its state dict.
    ``learning_rate``: the peak learning rate from here on (a resumed run may lower it); the
    schedule's position is kept."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    device = next(model.parameters()).device
    weights = load_file(str(path / "adapter_model.safetensors"), device=str(device))
    result = set_peft_model_state_dict(model, weights)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise RuntimeError(f"checkpoint {path} does not fit this model (unexpected keys, e.g. {unexpected[0]})")
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location=device, weights_only=True))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    if learning_rate is not None and any(base != learning_rate for base in scheduler.base_lrs):
        scheduler.base_lrs = [learning_rate for _ in scheduler.base_lrs]
        for group, factor in zip(optimizer.param_groups, scheduler.lr_lambdas):
            group["initial_lr"] = learning_rate
            group["lr"] = learning_rate * factor(scheduler.last_epoch)
        scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
    set_rng_state(torch.load(path / "rng_state.pt", weights_only=False))
    return json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
