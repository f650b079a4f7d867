"""A password is never shown: a scripted session of CLI commands, each its own process, on a
PostgreSQL workspace whose URL holds a member's real password (the server checks it) — and on
one given the password through PGPASSWORD — and a command with a wrong password; every byte
they print (stdout and stderr) and every file they write (the data folder, exports, runs, and
the server's own log with every statement logged) is searched for the password."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.pg_server import DATA_ENV, url_for
from tests.test_roles_postgres import _drop_roles

ROOT = Path(__file__).resolve().parents[1]


def cli(args: list[str], home: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items()
           # runs of a URL workspace go to the default folder, under home; no password but the test's
           if key not in ("PGPASSWORD", "DPO_STUDIO_RUNS_DIR")}
    env.update({"HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "PYTHONPATH": str(ROOT),
                "PGPASSFILE": str(home / "no-pgpass"), **(extra_env or {})})
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], cwd=home, env=env,
                          capture_output=True, text=True, timeout=180)


def files_text(folder: Path) -> str:
    return "\n".join(path.read_bytes().decode("utf-8", "replace") for path in folder.rglob("*") if path.is_file())


@pytest.mark.slow   # a dozen CLI processes against a server
def test_no_output_and_no_file_of_a_session_holds_the_password(fresh_postgres_url: str, tmp_path: Path) -> None:
    database = make_url(fresh_postgres_url).database
    admin = url_for(database)
    home = tmp_path / "home"
    home.mkdir()
    admin_engine = create_engine(make_url(admin).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:   # the server logs every statement sent to this database
        conn.execute(text(f'ALTER DATABASE "{database}" SET log_statement = \'all\''))
    admin_engine.dispose()
    owner_role = f"{database}_olga"
    added = cli(["team", "add", admin, "olga", "--role", "owner", "--db-user", owner_role], home)
    assert added.returncode == 0, added.stderr
    password = added.stdout.split("stored nowhere):\n", 1)[1].split()[0]
    try:
        url = make_url(admin).set(username=owner_role, password=password).render_as_string(hide_password=False)
        query_url = make_url(admin).set(username=owner_role, query={"password": password}).render_as_string(
            hide_password=False)
        bare_url = make_url(admin).set(username=owner_role).render_as_string(hide_password=False)
        wrong_url = make_url(admin).set(username=owner_role, password=password[::-1]).render_as_string(
            hide_password=False)
        data = home / "pairs.jsonl"
        data.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"}) + "\n"
                                for i in range(6)))
        session = [["import", url, str(data)], ["stats", url], ["stats", url, "--json"],
                   ["export", url, str(home / "out.jsonl")], ["export", query_url, str(home / "out2.jsonl")],
                   ["runs", url], ["runs", url, "--json"], ["check", url], ["check", url, "--json"],
                   ["team", "list", url], ["team", "list", url, "--json"],
                   ["team", "add", url, "ann"]]    # refused: olga may not create roles (one line)
        results = [cli(args, home) for args in session]
        results.append(cli(["stats", bare_url], home, {"PGPASSWORD": password}))
        results.append(cli(["stats", wrong_url], home))
        results.append(cli(["check", wrong_url], home))
        codes = [r.returncode for r in results]
        assert codes == [0] * 11 + [2, 0, 2, 2], [(r.args[2:4], r.returncode, r.stderr[-300:]) for r in results]
        assert "password authentication failed" in results[-1].stderr
        for failed in (results[11], results[-2], results[-1]):
            assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr   # one line, no traceback
        printed = "\n".join(r.stdout + r.stderr for r in results) + added.stderr
        assert f"{owner_role}:***@" in printed
        assert "Traceback" not in printed
        written = files_text(home)
        assert "good 3" in written               # the exports are among the files searched
        server_log = (Path(os.environ[DATA_ENV]).parent / "server.log") if os.environ.get(DATA_ENV) else None
        logged = server_log.read_text(errors="replace") if server_log and server_log.exists() else ""
        assert "CREATE ROLE" in logged or not logged   # the statement was logged: it carried only a verifier
        for secret in (password, password[::-1]):
            assert secret not in printed
            assert secret not in written
            assert secret not in logged
    finally:
        _drop_roles(admin, [owner_role] + [f"dpo_{database}_{role}" for role in ("owner", "annotator", "viewer")])
