"""The workspace's settings as one typed object.

Settings live in the ``settings`` table as JSON values, one row per field; this module is
the only place that names those keys. Read them with ``read_settings(ws)``, change some with
``update_settings(ws, overlap=2)`` (one committed transaction; unknown fields and wrong
types are refused with ``SettingsError`` naming the field).

Only an owner changes them (``update_settings(ws, actor=NAME, …)``; storage.members says who
is acting and raises ``RoleError``; on PostgreSQL the database refuses a non-owner too).
Since schema v5 ``owners`` reads and writes the members' owner roles (storage.members); its
row only keeps the order the owners were named in.

``SETTINGS_VERSION`` is stored beside them (key ``settings_version``) so a later version can
convert old values; a workspace whose settings are newer than this code is read as far as the
fields this code knows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.members import Action, check, owner_names, set_owners
from storage.models import Setting
from storage.pair_scores import QUEUE_ORDERS
from storage.splits import DEFAULT_EVAL_FRACTION
from storage.workspace import Workspace

SETTINGS_VERSION = 1
VERSION_KEY = "settings_version"
DEFAULT_OVERLAP = 1
DEFAULT_LEASE_MINUTES = 10.0


class SettingsError(ValueError):
    """A setting with a value it cannot take; the message names the setting."""


@dataclass(frozen=True)
class WorkspaceSettings:
    #: How many distinct annotators judge each pair.
    overlap: int = DEFAULT_OVERLAP
    #: The base model new runs start from ("bundled:demo_model", a folder, a hub id); None: the form's default.
    base_model: str | None = None
    #: The training settings new runs start from (``TrainingConfig.to_dict()`` keys); empty: the defaults.
    training_config: dict[str, Any] = field(default_factory=dict)
    #: Named training presets: name -> training settings.
    training_presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Labelling guidelines (Markdown); None: the built-in guidelines.
    guidelines: str | None = None
    #: The members with the owner role (storage.members); empty: none named, anyone may.
    owners: tuple[str, ...] = ()
    #: How long a pair on someone's screen stays reserved for them (team labelling).
    lease_minutes: float = DEFAULT_LEASE_MINUTES
    #: What the demo workspace was made with (None for any other workspace).
    demo: dict[str, Any] | None = None
    #: Share of newly imported pairs drawn into the held-out "eval" split.
    eval_fraction: float = DEFAULT_EVAL_FRACTION
    #: Which open pair the queue serves first (storage.pair_scores.QUEUE_ORDERS); "uncertain" and
    #: "disagree" rank by the scores of the run ``queue_order_run``.
    queue_order: str = "default"
    queue_order_run: str | None = None

    def problems(self) -> list[str]:
        found = []
        if not isinstance(self.overlap, int) or isinstance(self.overlap, bool) or self.overlap < 1:
            found.append(f"setting 'overlap': must be a whole number of at least 1, got {self.overlap!r}")
        if not isinstance(self.lease_minutes, (int, float)) or self.lease_minutes <= 0:
            found.append(f"setting 'lease_minutes': must be a positive number of minutes, got {self.lease_minutes!r}")
        if self.base_model is not None and not isinstance(self.base_model, str):
            found.append(f"setting 'base_model': must be text, got {self.base_model!r}")
        if not isinstance(self.training_config, dict):
            found.append(f"setting 'training_config': must be a table of settings, got {self.training_config!r}")
        if not isinstance(self.training_presets, dict):
            found.append(f"setting 'training_presets': must be a table of presets, got {self.training_presets!r}")
        if (not isinstance(self.eval_fraction, (int, float)) or isinstance(self.eval_fraction, bool)
                or not 0 <= self.eval_fraction < 1):
            found.append(f"setting 'eval_fraction': must be a share from 0 up to (not including) 1, "
                         f"got {self.eval_fraction!r}")
        if self.queue_order not in QUEUE_ORDERS:
            found.append(f"setting 'queue_order': must be one of {', '.join(QUEUE_ORDERS)}, got {self.queue_order!r}")
        if self.queue_order_run is not None and not isinstance(self.queue_order_run, str):
            found.append(f"setting 'queue_order_run': must be a run id, got {self.queue_order_run!r}")
        return found


FIELD_NAMES = tuple(f.name for f in fields(WorkspaceSettings))
_STORED_FIELDS = tuple(name for name in FIELD_NAMES if name != "owners")   # owners: the members' roles


def _coerce(name: str, value: Any) -> Any:
    if name == "owners":
        return tuple(str(v) for v in (value or ()))
    if name in ("training_config", "training_presets"):
        return dict(value or {})
    return value


def read_settings(ws: Workspace) -> WorkspaceSettings:
    """Every setting of the workspace (defaults for those never set)."""
    with ws.session() as s:
        return settings_in(s)


def settings_in(session: Session) -> WorkspaceSettings:
    """``read_settings`` inside the caller's transaction (for storage code that must read the
    settings and the rows they govern consistently)."""
    stored = {row.key: row.value for row in session.scalars(select(Setting).where(Setting.key.in_(_STORED_FIELDS)))}
    return WorkspaceSettings(owners=owner_names(session), **{k: _coerce(k, v) for k, v in stored.items()})


def update_settings(ws: Workspace, actor: str | None = None, **changes: Any) -> WorkspaceSettings:
    """Change the named settings in one transaction; returns the settings as now stored.

    ``actor``: who asks (the name they label under; None: the workspace's holder, or on
    PostgreSQL whoever this connection is): anyone but an owner is refused (``RoleError``)."""
    unknown = sorted(set(changes) - set(FIELD_NAMES))
    if unknown:
        raise SettingsError(f"unknown workspace setting {unknown[0]!r}; known: {', '.join(FIELD_NAMES)}")
    changes = {k: _coerce(k, v) for k, v in changes.items()}
    problems = replace(WorkspaceSettings(), **changes).problems()
    if problems:
        raise SettingsError(problems[0])
    stored_values = asdict(replace(WorkspaceSettings(), **changes))
    with ws.writing() as s:
        check(s, Action.CHANGE_SETTINGS, actor)
        if "owners" in changes:
            set_owners(s, changes["owners"])
        for key in changes:
            value = stored_values[key]
            s.merge(Setting(key=key, value_json=json.dumps(list(value) if isinstance(value, tuple) else value)))
        s.merge(Setting(key=VERSION_KEY, value_json=json.dumps(SETTINGS_VERSION)))
    return read_settings(ws)
