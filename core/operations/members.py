"""Team members and their roles: list them, add one, change a role (the CLI's ``team`` commands,
and the Team tab's members table).

The rules (who may do what, who is acting, what "no owner named" means) are
``storage.members``'; on PostgreSQL adding a member also makes their database role, whose
one-time password ``add_member`` hands back to be shown once (it is stored nowhere).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from core.operations.changes import Changes
from storage.members import ROLE_NAMES, AddedMember, Member, Role, RoleError, add_member as store_member
from storage.members import list_members, me, member_location, set_role as store_role
from storage.workspace import Workspace

__all__ = ["ROLE_NAMES", "Member", "MemberAdded", "Role", "RoleError", "members", "add_member", "set_role",
           "connected_member", "roles_note", "member_location"]


@dataclass(frozen=True)
class MemberAdded:
    added: AddedMember
    changes: Changes


@contextmanager
def _workspace(workspace: Workspace | str | os.PathLike) -> Iterator[Workspace]:
    """The workspace given, or the one at a location (opened here, closed after)."""
    if isinstance(workspace, Workspace):
        yield workspace
        return
    with Workspace.open(workspace, create=False) as ws:
        yield ws


def members(workspace: Workspace | str | os.PathLike) -> list[Member]:
    with _workspace(workspace) as ws:
        return list_members(ws)


def connected_member(ws: Workspace) -> Member | None:
    """Who this connection is (PostgreSQL, a member's own database role): their name is the
    one to label under; None on SQLite and for the server's administrator."""
    return me(ws)


def add_member(workspace: Workspace | str | os.PathLike, name: str, role: Role | str,
               db_role: str | None = None, actor: str | None = None) -> MemberAdded:
    with _workspace(workspace) as ws:
        added = store_member(ws, name, role, db_role=db_role, actor=actor)
    return MemberAdded(added, Changes(annotators=True))


def set_role(workspace: Workspace | str | os.PathLike, name: str, role: Role | str,
             actor: str | None = None) -> tuple[Member, Changes]:
    with _workspace(workspace) as ws:
        member = store_role(ws, name, role, actor=actor)
    return member, Changes(annotators=True, settings=True)   # settings: the owners it reads


def roles_note(workspace: Workspace, listed: list[Member]) -> str | None:
    """A line to show beside the members when their roles are not what they seem: an open
    workspace (no owner named), or a SQLite file (roles advisory)."""
    notes = []
    if not any(m.assigned and m.role == Role.OWNER for m in listed):
        notes.append("no owner is named, so everyone without a role counts as an owner "
                     "(name one: team set-role WS NAME owner)")
    if not workspace.is_server:
        notes.append("on a SQLite workspace roles are advisory: anyone who can write the file can change it")
    return "; ".join(notes) or None
