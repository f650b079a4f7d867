"""Members and their roles: owner, annotator, viewer — and the one rule of who may do what.

- an **owner** does everything: changes the settings (overlap, lease time, guidelines, …),
  resolves disputes, adds members and changes roles, imports, trains, deletes runs;
- an **annotator** labels: records and retracts their own verdicts, holds leases for themselves;
- a **viewer** reads and writes nothing.

A person's role is ``annotators.role``. Someone who was never given one (they started
labelling under a name, or the workspace predates roles) counts as an **owner while the
workspace names no owner** — a workspace of one person, or an old one whose ``owners`` setting
was empty, keeps working as before, where anyone could do anything — and as an **annotator
once an owner is named** (``team add … --role owner``, ``team set-role``, or the ``owners``
setting, which is now read from and written to the roles).

Who is acting:
- PostgreSQL, connected as a member's own database role (``annotators.db_role``): that member,
  whatever name a caller passes (acting in another's name is refused). The database enforces
  the same rules itself (storage.pg_access); these checks only say no first, in words.
- otherwise (SQLite, or PostgreSQL as the server's administrator): the person named by the
  caller (the name they label under); no name means the workspace's holder, an owner. On a
  SQLite file the roles are advisory: whoever has the file can change anything in it.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass

from sqlalchemy import exists, literal_column, or_, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from storage import pg_access
from storage.locations import display_location
from storage.models import Annotator, MemberRole, Setting, utcnow
from storage.workspace import PermissionDeniedError, Workspace

Role = MemberRole
ROLE_NAMES = tuple(role.value for role in Role)


class Action(enum.Enum):
    """Something only some roles may do; the value completes "may not …"."""

    LABEL = "label pairs"
    RESOLVE = "resolve disputes"
    CHANGE_SETTINGS = "change the workspace's settings"
    MANAGE_MEMBERS = "add members or change their roles"
    DELETE_RUNS = "delete runs"


PERMITTED: dict[Role, frozenset[Action]] = {
    Role.OWNER: frozenset(Action),
    Role.ANNOTATOR: frozenset({Action.LABEL}),
    Role.VIEWER: frozenset(),
}


class RoleError(PermissionDeniedError):
    """The acting member's role does not allow what was asked; nothing was written."""


@dataclass(frozen=True)
class Member:
    name: str
    role: Role                  # the role in effect (see the module's docstring)
    assigned: bool              # False: never given one (owner while none is named, else annotator)
    db_role: str | None         # PostgreSQL: the database role they connect as

    def to_dict(self) -> dict:
        return {"name": self.name, "role": self.role.value, "assigned": self.assigned, "db_role": self.db_role}


@dataclass(frozen=True)
class Actor:
    name: str | None            # None: the workspace's holder, or the server's administrator
    role: Role
    connected: bool             # acting through their own database role (PostgreSQL)

    def may(self, action: Action) -> bool:
        return action in PERMITTED[self.role]


def effective_role(stored: Role | str | None, owner_named: bool) -> Role:
    if stored is not None:
        return Role(stored)
    return Role.ANNOTATOR if owner_named else Role.OWNER


def _owner_named(session: Session) -> bool:
    return bool(session.scalar(select(exists().where(Annotator.role == Role.OWNER))))


def owner_names(session: Session) -> tuple[str, ...]:
    """The people given the owner role (empty: no owner named, the workspace is open), in the
    order the ``owners`` setting last named them, then by name."""
    names = session.scalars(select(Annotator.name).where(Annotator.role == Role.OWNER)).all()
    order_json = session.scalar(select(Setting.value_json).where(Setting.key == "owners"))
    order = {name: i for i, name in enumerate(json.loads(order_json) if order_json else [])}
    return tuple(sorted(names, key=lambda name: (order.get(name, len(order)), name)))


def _current_user():
    return literal_column("current_user")


def connected_member(session: Session) -> Member | None:
    """PostgreSQL: the member whose database role this connection is; None on SQLite and for
    a role that is no member's (an administrator)."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    row = session.execute(select(Annotator.name, Annotator.role, Annotator.db_role)
                          .where(Annotator.db_role == _current_user())).first()
    if row is None:
        return None
    return Member(row.name, effective_role(row.role, True), row.role is not None, row.db_role)


def acting(session: Session, name: str | None) -> Actor:
    """Who is acting when a caller says ``name`` (see the module's docstring); raises
    ``RoleError`` when a member's connection acts in someone else's name.

    One statement in the usual case (it runs before every verdict): the connection's member
    and the named person's row, with whether any owner is named."""
    name = name.strip() if name else None
    server = session.get_bind().dialect.name == "postgresql"
    wanted = []
    if server:
        wanted.append(Annotator.db_role == _current_user())
    if name is not None:
        wanted.append(Annotator.name == name)
    rows = []
    if wanted:
        owner_named = exists().where(Annotator.role == Role.OWNER).correlate(None).label("owner_named")
        rows = session.execute(select(Annotator.name, Annotator.role, Annotator.db_role,
                                      (Annotator.db_role == _current_user() if server else literal_column("0"))
                                      .label("connected"), owner_named)
                               .where(or_(*wanted))).all()
    mine = next((row for row in rows if row.connected), None)
    if mine is not None:
        if name is not None and name != mine.name:
            raise RoleError(f"connected as {mine.name} (database role {mine.db_role}): cannot act as {name!r}")
        return Actor(mine.name, effective_role(mine.role, True), True)
    if name is None:
        return Actor(None, Role.OWNER, False)
    named = next((row for row in rows if row.name == name), None)
    if named is None:   # not yet a member: what they will be on their first verdict
        return Actor(name, effective_role(None, _owner_named(session)), False)
    return Actor(name, effective_role(named.role, bool(named.owner_named)), False)


def check(session: Session, action: Action, name: str | None = None) -> Actor:
    """The acting person (``acting``) if their role allows ``action``; else ``RoleError``."""
    actor = acting(session, name)
    if not actor.may(action):
        owners = owner_names(session)
        ask = f"; the workspace's owners ({', '.join(owners)}) may" if owners else ""
        raise RoleError(f"{actor.name!r} may not {action.value}: they are a{'n' if actor.role == Role.ANNOTATOR else ''} "
                        f"{actor.role.value}{ask}")
    return actor


# -- members ---------------------------------------------------------------------------------
def list_members(ws: Workspace) -> list[Member]:
    """Every person (pseudo-annotators of labelled imports left out), owners first, then by name."""
    with ws.session() as session:
        owner_named = _owner_named(session)
        rows = session.execute(select(Annotator.name, Annotator.role, Annotator.db_role)
                               .where(Annotator.is_pseudo.is_(False))).all()
    members = [Member(name, effective_role(role, owner_named), role is not None, db_role) for name, role, db_role in rows]
    order = {role: i for i, role in enumerate(Role)}
    return sorted(members, key=lambda m: (order[m.role], m.name.lower()))


def me(ws: Workspace) -> Member | None:
    """The member this connection belongs to (PostgreSQL, a member's own role); else None."""
    with ws.session() as session:
        return connected_member(session)


@dataclass(frozen=True)
class AddedMember:
    member: Member
    #: PostgreSQL: the new database role's one-time password (shown once, stored nowhere);
    #: None when the role existed already or on SQLite.
    password: str | None
    login_created: bool


def default_db_role(name: str) -> str:
    """A database role name for a member's name: lower case letters, digits and underscores."""
    stem = re.sub(r"[^a-z0-9_]+", "_", name.strip().lower()).strip("_") or "member"
    return (stem if stem[0].isalpha() else f"m_{stem}")[:63]


def member_location(location: str, db_role: str) -> str:
    """The URL a member opens the workspace with: ``location`` as ``db_role``, no password, as shown."""
    return display_location(make_url(location).set(username=db_role, password=None)
                            .render_as_string(hide_password=True))


def _member_row(session: Session, name: str):
    return session.execute(select(Annotator.id, Annotator.is_pseudo, Annotator.db_role)
                           .where(Annotator.name == name)).first()


def add_member(ws: Workspace, name: str, role: Role | str, db_role: str | None = None,
               actor: str | None = None) -> AddedMember:
    """Add a person with ``role`` (or give an existing person that role). On PostgreSQL also
    their database role (``db_role``, default from the name): created with a random password
    when it does not exist, and put in this workspace's group of ``role`` (storage.pg_access).
    Needs an owner; on PostgreSQL a connection that may create roles (``PermissionDeniedError``)."""
    role, name = Role(role), name.strip()
    if not name:
        raise ValueError("a member needs a non-empty name")
    server = ws.engine.dialect.name == "postgresql"
    if db_role is not None and not server:
        raise ValueError("a database role is for a PostgreSQL workspace; a SQLite workspace has none")
    with ws.writing() as session:
        check(session, Action.MANAGE_MEMBERS, actor)
        row = _member_row(session, name)
        if row is not None and row.is_pseudo:
            raise ValueError(f"{name!r} names the labels of an imported file, not a person")
        password, created = None, False
        if server:
            db_role = db_role or (row.db_role if row is not None else None) or default_db_role(name)
            taken = session.scalar(select(Annotator.name).where(Annotator.db_role == db_role, Annotator.name != name))
            if taken is not None:
                raise ValueError(f"the database role {db_role} already belongs to the member {taken!r}")
            conn = session.connection()
            if not pg_access.groups_exist(conn):    # the first member: the groups and their grants
                pg_access.ensure_groups(conn)
            if not pg_access.role_exists(conn, db_role):
                password, created = pg_access.create_login(conn, db_role), True
            pg_access.put_in_group(conn, db_role, role)
        if row is None:
            session.add(Annotator(name=name, is_pseudo=False, created_at=utcnow(), role=role, db_role=db_role))
        else:
            session.execute(update(Annotator).where(Annotator.id == row.id).values(role=role, db_role=db_role))
    return AddedMember(Member(name, role, True, db_role), password, created)


def set_role(ws: Workspace, name: str, role: Role | str, actor: str | None = None) -> Member:
    """Give the member ``name`` the role ``role`` (on PostgreSQL their database role moves to that
    group in the same transaction). The last owner cannot step down: name another one first."""
    role, name = Role(role), name.strip()
    with ws.writing() as session:
        check(session, Action.MANAGE_MEMBERS, actor)
        row = _member_row(session, name)
        if row is None or row.is_pseudo:
            raise LookupError(f"no member called {name!r}")
        if role != Role.OWNER and owner_names(session) == (name,):
            raise RoleError(f"{name} is the workspace's only owner: make someone else an owner first")
        session.execute(update(Annotator).where(Annotator.id == row.id).values(role=role))
        if row.db_role is not None:
            pg_access.put_in_group(session.connection(), row.db_role, role)
    return Member(name, role, True, row.db_role)


def set_owners(session: Session, names: tuple[str, ...]) -> None:
    """The ``owners`` setting written as roles: ``names`` become owners (people created when
    new); other owners become annotators, or — when ``names`` is empty — have no role again
    (the workspace is open once more). Inside the caller's transaction, its check done."""
    names = tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
    for name, db_role in session.execute(select(Annotator.name, Annotator.db_role)
                                         .where(Annotator.role == Role.OWNER, Annotator.name.not_in(names))).all():
        # A member with a login keeps a role the database knows (its group); others may have none.
        demoted = Role.ANNOTATOR if names or db_role is not None else None
        session.execute(update(Annotator).where(Annotator.name == name).values(role=demoted))
        if db_role is not None:
            pg_access.put_in_group(session.connection(), db_role, Role.ANNOTATOR)
    for name in names:
        row = _member_row(session, name)
        if row is None:
            session.add(Annotator(name=name, is_pseudo=False, created_at=utcnow(), role=Role.OWNER))
        else:
            session.execute(update(Annotator).where(Annotator.id == row.id).values(role=Role.OWNER))
            if row.db_role is not None:
                pg_access.put_in_group(session.connection(), row.db_role, Role.OWNER)
    session.flush()
