"""Blind A/B samples for the tests and screenshots: a workspace with held-out prompts and two
runs, a comparison stored from hand-written answers, and a run with a real adapter of the demo model.

The adapter's LoRA B matrices are drawn at random instead of trained (seconds instead of minutes), so
the adapter really changes the model's answers; it is saved and loaded like a trained one.
"""

from __future__ import annotations

from pathlib import Path

from core.engine.bundled_models import DEMO_MODEL
from storage import comparisons as store
from storage.comparisons import ComparedAnswers, ModelSide
from storage.ingest import ImportRecord, import_records
from storage.models import Generation, Pair, RunStatus
from storage.runs import create_run, update_run
from storage.workspace import Workspace

BASE = ModelSide("bundled:demo_model", None, "base")


def blind_workspace(tmp_path, prompts: int = 12) -> Workspace:
    """Labelled preference pairs, half of them held out (eval), and two runs to compare."""
    ws = Workspace.open(tmp_path / "ws")
    import_records(ws, [ImportRecord(f"Question {i}?", [f"good answer {i}", f"bad answer {i}"], chosen=0, line=i + 1,
                                     split="eval" if i % 2 else "train") for i in range(prompts)], source="seed.jsonl")
    for run_id in ("r1", "r2"):
        create_run(ws, run_id, name=f"round {run_id[1]}", config_json="{}", base_model=BASE.base_model,
                   run_dir=str(tmp_path / run_id), total_steps=1)
        adapter = tmp_path / run_id / "adapter"
        adapter.mkdir(parents=True)
        (adapter / "adapter_config.json").write_text("{}")   # listed as saved; never loaded by these tests
        update_run(ws, run_id, status=RunStatus.COMPLETED, adapter_path=str(adapter))
    return ws


def store_sample(ws, count: int = 10, side_b: ModelSide = ModelSide("bundled:demo_model", "r1", "round 1")):
    prompts = store.held_out_prompts(ws, count)
    answers = [ComparedAnswers(p, f"answer of A to {p}", f"answer of B to {p}") for p in prompts]
    return store.store_comparison(ws, "round 1 vs base", BASE, side_b, {"seed": 1}, {"seed": 7920}, answers)


def model_of_left(ws, pair_id: int) -> str:
    """Which model's answer the pair shows on the left, read from the stored rows."""
    with ws.session() as session:
        pair = session.get(Pair, pair_id)
        left = pair.response_b if pair.display_swapped else pair.response_a
        return session.get(Generation, left.generation_id).label


def add_perturbed_adapter_run(ws: Workspace, run_dir: Path, run_id: str, name: str, scale: float = 0.3,
                              seed: int = 0) -> Path:
    """Save a random LoRA adapter of the demo model in ``run_dir/adapter`` and record a completed run."""
    import torch
    from peft import LoraConfig, get_peft_model

    from core.engine.modeling import load_base_model, quiet_peft_wrap

    model = load_base_model(DEMO_MODEL, torch.device("cpu"), torch.float32)
    torch.manual_seed(seed)   # the LoRA A matrices' initialisation: the same adapter every time
    with quiet_peft_wrap():
        peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name_, parameter in peft_model.named_parameters():
            if "lora_B" in name_:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)
    adapter = Path(run_dir) / "adapter"
    peft_model.save_pretrained(str(adapter))
    create_run(ws, run_id, name=name, config_json="{}", base_model=DEMO_MODEL, run_dir=str(run_dir), total_steps=1)
    update_run(ws, run_id, status=RunStatus.COMPLETED, adapter_path=str(adapter))
    return adapter
