"""The team commands: ``team add``, ``team list``, ``team set-role`` (no torch, so they start fast).

Argument parsing and printing only: the work is ``core.operations.members``.
Exit codes: 0 done, 2 refused (bad input, not allowed, the workspace unusable; one line on
stderr, nothing written).
"""

from __future__ import annotations

import argparse
import json

TEAM_HELP = """\
Members have a role: owner (everything: settings, disputes, members, imports, training),
annotator (labels: their own verdicts) or viewer (reads only). Until an owner is named,
everyone without a role counts as an owner.

On a PostgreSQL workspace each member connects as their own database role and the database
enforces the role itself (grants and row-level security). `team add` creates that role with a
random password, shown once and stored nowhere: hand it to the member, who connects with
  python main.py --workspace postgresql://ROLE@HOST/DATABASE   (password: PGPASSWORD or ~/.pgpass)
Adding members there needs a connection that may create roles (the workspace's creator with
CREATEROLE, or the server's administrator). On a SQLite workspace roles are advisory: anyone
who can write the file can change it.

  python main.py team add WS ada --role annotator
  python main.py team list WS
  python main.py team set-role WS ada owner"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from storage.members import ROLE_NAMES

    team = subparsers.add_parser("team", help="a workspace's members and their roles",
                                 description=TEAM_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = team.add_subparsers(dest="team_command", metavar="ACTION", required=True)

    p = actions.add_parser("add", help="add a member (PostgreSQL: and their database role)")
    p.add_argument("workspace", help="an existing workspace folder or database URL")
    p.add_argument("name", help="the member's name (the name they label under)")
    p.add_argument("--role", choices=ROLE_NAMES, default="annotator", help="default: annotator")
    p.add_argument("--db-user", help="PostgreSQL: the database role to connect as (default: made from the name)")
    p.set_defaults(func=run_team_add)

    p = actions.add_parser("list", help="the members, their roles and database roles")
    p.add_argument("workspace", help="an existing workspace folder or database URL")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run_team_list)

    p = actions.add_parser("set-role", help="change a member's role")
    p.add_argument("workspace", help="an existing workspace folder or database URL")
    p.add_argument("name", help="the member")
    p.add_argument("role", choices=ROLE_NAMES)
    p.set_defaults(func=run_team_set_role)


def _refusals():
    from storage.workspace import SchemaTooNewError, WorkspaceError

    # RoleError and PermissionDeniedError are WorkspaceErrors; LookupError: no such member.
    return (WorkspaceError, SchemaTooNewError, ValueError, LookupError)


def run_team_add(args: argparse.Namespace) -> int:
    from core.cli.data_commands import _refused
    from core.operations.members import add_member, member_location
    from storage.workspace import display_location

    try:
        result = add_member(args.workspace, args.name, args.role, db_role=args.db_user)
    except _refusals() as exc:
        return _refused(exc)
    member, added = result.added.member, result.added
    print(f"{member.name} is now a{'n' if member.role.value[0] in 'aeiou' else ''} {member.role.value} "
          f"of {display_location(args.workspace)}")
    if added.password is not None:
        print(f"created the database role {member.db_role}; its one-time password (shown only now, stored "
              f"nowhere):\n  {added.password}")
        print(f"{member.name} connects with: python main.py --workspace "
              f"{member_location(args.workspace, member.db_role)}  (the password in PGPASSWORD or ~/.pgpass)")
    elif member.db_role is not None:
        print(f"the database role {member.db_role} existed already: its password is unchanged")
    return 0


def run_team_list(args: argparse.Namespace) -> int:
    from core.cli.data_commands import _refused
    from core.operations.members import members, roles_note
    from storage.workspace import Workspace

    try:
        with Workspace.open(args.workspace, create=False) as ws:
            listed = members(ws)
            note = roles_note(ws, listed)
            shown = ws.display_location
    except _refusals() as exc:
        return _refused(exc)
    if args.json:
        print(json.dumps({"workspace": shown, "members": [m.to_dict() for m in listed], "note": note}, indent=2))
        return 0
    print(f"{shown}: {len(listed)} member{'' if len(listed) == 1 else 's'}")
    for m in listed:
        role = m.role.value if m.assigned else f"{m.role.value} (no role given)"
        print(f"  {m.name:<24} {role:<26} {m.db_role or ''}".rstrip())
    if note:
        print(f"note: {note}")
    return 0


def run_team_set_role(args: argparse.Namespace) -> int:
    from core.cli.data_commands import _refused
    from core.operations.members import set_role

    try:
        member, _changes = set_role(args.workspace, args.name, args.role)
    except _refusals() as exc:
        return _refused(exc)
    print(f"{member.name} is now a{'n' if member.role.value[0] in 'aeiou' else ''} {member.role.value}")
    return 0
