"""Settings a resumed run may change, and the ones it may not.

A resumed run reproduces its original settings; only the ones that do not change what the
checkpoint means may differ: the run's length, the intervals, and the learning rate (the way
out of a diverged run). ``apply_resume_changes`` refuses every other one by name.
"""

from __future__ import annotations

from core.engine.training_config import ALIASES, ConfigError, TrainingConfig, parse_assignments

RESUME_CHANGEABLE = ("max_steps", "num_epochs", "eval_interval", "checkpoint_interval", "keep_checkpoints",
                     "learning_rate")


def apply_resume_changes(config: TrainingConfig, assignments: list[str] | dict | None
                         ) -> tuple[TrainingConfig, list[str]]:
    """``config`` with the ``--set`` assignments applied, and one ``"name: old -> new"`` per
    setting that changed. ``ConfigError`` for a setting that cannot change on resume."""
    values = assignments if isinstance(assignments, dict) else parse_assignments(assignments)
    if not values:
        return config, []
    refused = [key for key in values if ALIASES.get(key, key) not in RESUME_CHANGEABLE]
    if refused:
        raise ConfigError(refused[0], "cannot change when resuming a run (only "
                          + ", ".join(RESUME_CHANGEABLE) + " can); start a new run instead", "--set")
    before = config.to_dict()
    merged = {**before, **{ALIASES.get(k, k): v for k, v in values.items()}}
    changed_config, problems = TrainingConfig.parse(merged, source="--set")
    if problems:
        raise ConfigError.of(problems)
    after = changed_config.to_dict()
    changes = [f"{name}: {before[name]} -> {after[name]}" for name in RESUME_CHANGEABLE if before[name] != after[name]]
    return changed_config, changes
