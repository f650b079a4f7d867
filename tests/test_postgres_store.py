"""A workspace on PostgreSQL: URLs as users type them, the driver as an extra, passwords never
shown, run artifacts in a folder on this computer, and ``main.py check``.

The tests that need a server run on the one ``.ci/run`` starts (tests/pg_server.py); the rest
need none."""

from __future__ import annotations

import json
import subprocess
import sys
from multiprocessing import get_context
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text, update

from main import main
from storage.annotation_queue import AnnotationQueue
from storage.ingest import ImportRecord, import_records
from storage.integrity import check_workspace
from storage.locations import RUNS_DIR_ENV, database_url, display_location, server_folder, url_runs_dir
from storage.models import Choice, Pair
from storage.workspace import MissingDriverError, Workspace, WorkspaceError
from tests.pg_server import url_for

ROOT = Path(__file__).resolve().parents[1]
SECRET = "S3cret-pw-not-shown"


def test_display_location_masks_a_password_wherever_the_url_holds_it() -> None:
    assert display_location("postgresql://ann@db.example/team") == "postgresql://ann@db.example/team"
    assert display_location(f"postgresql://ann:{SECRET}@db.example:5433/team") == \
        "postgresql://ann:***@db.example:5433/team"
    shown = display_location(f"postgres://ann@db/team?sslmode=require&password={SECRET}")
    assert SECRET not in shown and "password=***" in shown and "sslmode=require" in shown
    assert SECRET not in display_location(f"postgresql://ann:{SECRET}@[not a url")
    assert display_location("/home/ann/ws") == "/home/ann/ws"


def test_urls_as_typed_use_the_psycopg_driver_and_others_are_refused() -> None:
    for typed in ("postgresql://ann@db/team", "postgres://ann@db/team", "postgresql+psycopg://ann@db/team"):
        assert database_url(typed).drivername == "postgresql+psycopg"
    with pytest.raises(WorkspaceError, match="psycopg2' is not supported"):
        Workspace.open("postgresql+psycopg2://ann@db/team")
    with pytest.raises(WorkspaceError, match="mysql:// is not a database this app can use"):
        Workspace.open("mysql://ann@db/team")


def test_without_the_driver_one_line_names_the_extra_and_the_cli_exits_2() -> None:
    # psycopg hidden (as on an install without the team extra): the app's own message, no traceback.
    script = ("import sys; sys.modules['psycopg'] = None\n"
              "from storage.workspace import Workspace, MissingDriverError\n"
              "try:\n    Workspace.open('postgresql://ann@127.0.0.1:1/team')\n"
              "except MissingDriverError as exc:\n    print('refused:', exc)\n"
              "import main\nsys.exit(main.main(['stats', 'postgresql://ann:" + SECRET + "@127.0.0.1:1/team']))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stdout.startswith("refused: a PostgreSQL workspace needs the \"team\" extra")
    assert done.stderr.strip().splitlines() == [
        'error: a PostgreSQL workspace needs the "team" extra: pip install "dpo-studio[team]" '
        '(in a checkout: pip install -e ".[team]")']
    assert MissingDriverError.__mro__[1] is WorkspaceError   # the GUI's open-workspace path shows it


def test_a_server_that_cannot_be_reached_is_one_line_without_the_password() -> None:
    with pytest.raises(WorkspaceError) as refused:
        Workspace.open(f"postgresql://ann:{SECRET}@127.0.0.1:1/team")
    message = str(refused.value)
    assert message.startswith("cannot use the database postgresql://ann:***@127.0.0.1:1/team: ")
    assert SECRET not in message and "\n" not in message


def test_run_artifacts_of_a_url_workspace_go_to_a_local_folder(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv(RUNS_DIR_ENV, raising=False)
    url = f"postgresql://ann:{SECRET}@db.example:5433/team"
    if sys.platform.startswith("linux"):
        assert server_folder(url) == tmp_path / "data" / "DPO Studio" / "servers" / "db.example-5433" / "team"
    assert url_runs_dir(url) == server_folder(url) / "runs"
    assert server_folder("postgresql://ann@/team?host=/var/run/postgresql").parent.name == "var_run_postgresql-5432"
    monkeypatch.setenv(RUNS_DIR_ENV, str(tmp_path / "from-env"))
    assert url_runs_dir(url) == tmp_path / "from-env"
    assert url_runs_dir(url, tmp_path / "from-flag") == tmp_path / "from-flag"   # --runs-dir wins


# -- on the test server -----------------------------------------------------------------------

@pytest.fixture
def pg(fresh_postgres_url: str):
    with Workspace.open(fresh_postgres_url) as ws:
        yield ws


def test_a_url_workspace_has_runs_and_exports_folders_on_this_computer(pg: Workspace, tmp_path: Path) -> None:
    assert pg.is_server and pg.root is None
    assert pg.runs_dir == tmp_path / "server-runs" and pg.runs_dir.is_dir()   # the fixture's DPO_STUDIO_RUNS_DIR
    assert pg.exports_dir.is_dir()
    with Workspace.open(pg.location, runs_dir=tmp_path / "elsewhere") as again:
        assert again.runs_dir == tmp_path / "elsewhere"


def _open_new(url: str, results) -> None:
    try:
        with Workspace.open(url) as ws:
            results.put(ws.upgraded_from)
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        results.put(repr(exc))


def test_processes_opening_a_new_database_at_once_create_its_schema_once(postgres_databases) -> None:
    name = postgres_databases.create(empty=True)
    try:
        context = get_context("spawn")
        results = context.Queue()
        workers = [context.Process(target=_open_new, args=(url_for(name), results)) for _ in range(4)]
        for worker in workers:
            worker.start()
        found = [results.get(timeout=120) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
        from storage.migrations import SCHEMA_VERSION

        assert found == [SCHEMA_VERSION] * 4, found
        with Workspace.open(url_for(name)) as ws, ws.session() as s:
            assert s.execute(text("SELECT COUNT(*) FROM schema_version")).scalar() == 1
    finally:
        postgres_databases.drop(name)


def test_check_recounts_reports_and_repairs(pg: Workspace) -> None:
    pair_ids = import_records(pg, [ImportRecord(f"p {i}", [f"a {i}", f"b {i}"]) for i in range(4)], "c").pair_ids
    queue = AnnotationQueue(pg, "ann")
    queue.record(pair_ids[0], Choice.A)
    assert check_workspace(pg).clean
    with pg.session() as s:   # damage: a wrong count, and a row written with an explicit id
        s.execute(update(Pair).where(Pair.id == pair_ids[1]).values(judged_count=3))
        s.execute(text("INSERT INTO annotators (id, name, is_pseudo, created_at) VALUES (90, 'zed', false, now())"))
    report = check_workspace(pg)
    assert {p.kind: p.count for p in report.problems} == {"judged_count": 1, "id_sequence": 1}
    assert report.problems[0].examples == [{"pair": pair_ids[1], "stored": 3, "recount": 0}]
    repaired = check_workspace(pg, fix=True)
    assert repaired.clean and {p.kind for p in repaired.repaired} == {"judged_count", "id_sequence"}
    AnnotationQueue(pg, "newcomer")   # the next annotator's id no longer collides with the explicit one
    with pg.session() as s:
        assert s.scalar(select(Pair.judged_count).where(Pair.id == pair_ids[1])) == 0


def test_a_scripted_session_never_prints_the_password(fresh_postgres_url: str, tmp_path: Path, capsys) -> None:
    database = fresh_postgres_url.rsplit("/", 1)[1]
    url = url_for(database, password=SECRET)   # trust authentication: accepted, not needed
    with Workspace.open(url) as ws:
        assert SECRET not in repr(ws) + ws.display_location
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"}) + "\n"
                            for i in range(6)))
    ok = [["import", url, str(data)], ["stats", url], ["stats", url, "--json"],
          ["export", url, str(tmp_path / "out.jsonl")], ["check", url], ["check", url, "--json"],
          ["runs", url], ["runs", url, "--json"]]
    refused = [["stats", url_for("no_such_database", password=SECRET)],
               ["check", f"postgresql://postgres:{SECRET}@127.0.0.1:1/{database}"],
               ["train", f"postgresql://postgres:{SECRET}@127.0.0.1:1/{database}"]]
    codes = [main(argv) for argv in ok] + [main(argv) for argv in refused]
    out, err = capsys.readouterr()
    assert codes == [0] * len(ok) + [2] * len(refused), (codes, err)
    assert SECRET not in out + err
    assert "postgres:***@" in out and "postgres:***@" in err
    assert len(err.strip().splitlines()) == len(refused)   # one line each


def test_a_v1_database_is_upgraded_in_place(postgres_databases) -> None:
    """The v1 DDL (written for SQLite) with PostgreSQL's timestamp type, rows as v1 wrote them:
    every migration step runs on PostgreSQL too."""
    from storage.ingest import prompt_hash, response_hash
    from storage.migrations import SCHEMA_VERSION
    from tests.test_migrations import NOW, SCHEMA_V1

    name = postgres_databases.create(empty=True)
    try:
        ddl = "\n".join(line for line in SCHEMA_V1.read_text().replace("DATETIME", "TIMESTAMP").splitlines()
                        if not line.startswith("--"))
        v1_engine = create_engine(database_url(url_for(name)))
        with v1_engine.begin() as conn:
            for statement in (s for s in ddl.split(";") if s.strip()):
                conn.exec_driver_sql(statement)
            conn.execute(text("INSERT INTO annotators VALUES (1, 'alice', false, :t), (2, 'old.jsonl', true, :t)"),
                         {"t": NOW})
            conn.execute(text("INSERT INTO prompts VALUES (1, 'Capital?', NULL, :h, :t)"),
                         {"h": prompt_hash("Capital?"), "t": NOW})
            for rid, answer in [(1, "Paris"), (2, "Lyon")]:
                conn.execute(text("INSERT INTO responses VALUES (:id, 1, :x, NULL, 'imported', NULL, NULL, :h, :t)"),
                             {"id": rid, "x": answer, "h": response_hash(answer), "t": NOW})
            conn.execute(text("INSERT INTO pairs VALUES (1, 1, 1, 2, 'old.jsonl', :t)"), {"t": NOW})
            conn.execute(text("INSERT INTO verdicts VALUES (1, 1, 2, 'a', 0, :t), (2, 1, 1, 'skip', 1.5, :t)"),
                         {"t": NOW})
        v1_engine.dispose()
        with Workspace.open(url_for(name)) as ws:
            assert ws.upgraded_from == 1
            with ws.session() as s:
                assert s.execute(text("SELECT version FROM schema_version")).scalar() == SCHEMA_VERSION
                assert s.scalar(select(Pair.judged_count)) == 1      # the pseudo-annotator; a skip does not count
                assert s.execute(text("SELECT COUNT(*) FROM verdicts WHERE retracted_at IS NULL")).scalar() == 2
    finally:
        postgres_databases.drop(name)
