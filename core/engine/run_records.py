"""A run's own records: its id, the run folder's ``config.json``, and the ``runs`` row made
from a ``TrainingConfig`` with its round (parent, start, the verdicts it trains on: ``storage.rounds``). The rows themselves are storage's (``storage.runs``: the run,
its status and owner; ``storage.metrics``: its metrics).
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from core.engine.training_config import TrainingConfig
from storage import rounds, runs
from storage.workspace import Workspace

if TYPE_CHECKING:
    from core.engine.run_start import StartPoint

CONFIG_FILE = "config.json"


def new_run_id() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def library_versions() -> dict[str, str]:
    import peft
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "peft": peft.__version__}


def write_run_config(run_dir: Path, config: TrainingConfig, extra: dict[str, Any]) -> Path:
    """``config.json``: the resolved config, library versions and the data/model fingerprints."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / CONFIG_FILE
    payload = {"config": config.to_dict(), "versions": library_versions(), **extra}
    path.write_text(json.dumps(payload, indent=2, sort_keys=True), encoding="utf-8")
    return path


def read_run_config(run_dir: Path) -> TrainingConfig:
    data = json.loads((Path(run_dir) / CONFIG_FILE).read_text(encoding="utf-8"))
    return TrainingConfig.from_dict(data["config"], source=str(Path(run_dir) / CONFIG_FILE))


def create_run(ws: Workspace, run_id: str, config: TrainingConfig, run_dir: Path, total_steps: int,
               start: "StartPoint | None" = None, train_pairs: Sequence[Any] = (),
               verdict_ids: dict[int, tuple[int, ...]] | None = None) -> None:
    """The run's row, running in (and owned by) this process, with its round: the parent run and
    how it started, and the verdicts of its training pairs (``pair_id``): those its training set
    was built from (``verdict_ids``, ``TrainingSet.verdict_ids``), else the current ones now."""
    runs.create_run(ws, run_id, name=config.run_name or run_id, config_json=config.to_json(),
                    base_model=config.base_model, run_dir=str(run_dir), total_steps=total_steps)
    pair_ids = {p.pair_id for p in train_pairs}
    trained = None if verdict_ids is None else [v for pair_id in pair_ids for v in verdict_ids.get(pair_id, ())]
    rounds.record_round_start(ws, run_id, start.parent_run_id if start else None,
                              start.start_from if start else None, pair_ids, trained)
