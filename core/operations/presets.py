"""Named training presets: a ``TrainingConfig`` saved under a name, to load into the form later.

Presets live in the workspace (``WorkspaceSettings.training_presets``: name -> settings dict,
read and written through ``storage.settings``), so a team store shares them; a preset can
also be written to / read from a TOML file, the same format ``python main.py train --config``
reads.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from core.engine.training_config import ALIASES, ConfigError, TrainingConfig, read_toml_settings
from storage.settings import read_settings, update_settings
from storage.workspace import Workspace

# Settings that describe where/what a run is, not how it trains: a preset leaves them alone.
NOT_IN_PRESET = ("base_model", "run_name")


class PresetError(ValueError):
    pass


def preset_values(config: TrainingConfig) -> dict:
    """The part of a config a preset keeps (everything but the model and the run's name)."""
    return {k: v for k, v in config.to_dict().items() if k not in NOT_IN_PRESET}


def list_presets(ws: Workspace) -> list[str]:
    return sorted(read_settings(ws).training_presets)


def save_preset(ws: Workspace, name: str, config: TrainingConfig) -> None:
    """Store (or replace) ``name``; the config is validated first so a preset always loads."""
    name = name.strip()
    if not name:
        raise PresetError("a preset needs a name")
    values = preset_values(config.validate())
    presets = read_settings(ws).training_presets
    presets[name] = values
    update_settings(ws, training_presets=presets)


def load_preset(ws: Workspace, name: str, base: TrainingConfig | None = None) -> TrainingConfig:
    """``base`` (its model and run name kept) with the preset's settings applied."""
    presets = read_settings(ws).training_presets
    if name not in presets:
        raise PresetError(f"no preset named {name!r} (saved: {', '.join(sorted(presets)) or 'none'})")
    config = TrainingConfig.from_dict(base.to_dict() if base else {})
    for key, value in presets[name].items():
        config._set(key, value, f"preset {name!r}")
    return config


def delete_preset(ws: Workspace, name: str) -> None:
    presets = read_settings(ws).training_presets
    presets.pop(name, None)
    update_settings(ws, training_presets=presets)


def write_preset_toml(path: str | Path, config: TrainingConfig) -> Path:
    """A flat TOML file of the preset's settings (readable by ``TrainingConfig.from_toml``)."""
    lines = ["# DPO Studio training preset", ""]
    for key, value in preset_values(config).items():
        lines.append(f"{key} = {_toml_value(key, value)}")
    path = Path(path)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_preset_toml(path: str | Path, base: TrainingConfig | None = None) -> TrainingConfig:
    """``base`` (its model and run name kept) with the file's settings applied; a bad key or
    value raises ``ConfigError`` naming the file and the setting."""
    config = TrainingConfig.from_dict(base.to_dict() if base else {})
    for key, value in read_toml_settings(path).items():
        if ALIASES.get(key, key) not in NOT_IN_PRESET:
            config._set(key, value, str(path))
    return config


def _toml_value(key: str, value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(key, f"cannot save a non-finite value ({value}) in a preset")
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))   # a JSON string is a valid TOML basic string
