"""A run with a real adapter of the demo model, for the blind A/B tests and screenshots.

The LoRA's B matrices are drawn at random instead of trained (seconds instead of minutes), so
the adapter really changes the model's answers; it is saved and loaded like a trained one.
"""

from __future__ import annotations

from pathlib import Path

from core.engine.bundled_models import DEMO_MODEL
from storage.models import RunStatus
from storage.runs import create_run, update_run
from storage.workspace import Workspace


def add_perturbed_adapter_run(ws: Workspace, run_dir: Path, run_id: str, name: str, scale: float = 0.3,
                              seed: int = 0) -> Path:
    """Save a random LoRA adapter of the demo model in ``run_dir/adapter`` and record a completed run."""
    import torch
    from peft import LoraConfig, get_peft_model

    from core.engine.modeling import load_base_model, quiet_peft_wrap

    model = load_base_model(DEMO_MODEL, torch.device("cpu"), torch.float32)
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
