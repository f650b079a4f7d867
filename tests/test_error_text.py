"""A database error reaches the user as one clear line (the driver's message, never the SQL
statement with its parameters), with the full trace in the error log."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from core.operations.error_log import failure_text, one_line
from storage.errors import error_text, is_database_error


def missing_table_error(tmp_path: Path) -> DBAPIError:
    """A real SQLite error: a query with 300 parameters on a table that does not exist."""
    engine = create_engine(f"sqlite:///{tmp_path / 'studio.db'}")
    names = ", ".join(f":p{i}" for i in range(300))
    try:
        with engine.connect() as connection:
            connection.execute(text(f"SELECT * FROM tokenized_examples WHERE pair_id IN ({names})"),
                               {f"p{i}": i for i in range(300)})
    except DBAPIError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("the query did not fail")


def test_a_database_error_is_the_drivers_message_in_one_line(tmp_path):
    exc = missing_table_error(tmp_path)
    assert "[SQL:" in str(exc) and "299)]" in str(exc)           # what SQLAlchemy itself says
    assert is_database_error(exc)
    assert error_text(exc) == "database error: no such table: tokenized_examples"
    assert one_line(exc) == "database error: no such table: tokenized_examples"


def test_other_errors_keep_their_first_line_or_their_type():
    assert error_text(ValueError("bad β\nsecond line")) == "bad β"
    assert error_text(RuntimeError()) == "RuntimeError"
    assert not is_database_error(ValueError("x"))


def test_a_run_failed_by_the_database_names_the_log_with_the_full_trace(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    try:
        try:
            raise missing_table_error(tmp_path)
        except DBAPIError as cause:
            raise RuntimeError(error_text(cause)) from cause    # as the trainer wraps it (TrainingFailed)
    except RuntimeError as exc:
        failed = exc
    reason = failure_text(failed)
    assert reason.startswith("database error: no such table: tokenized_examples (details in ")
    assert "\n" not in reason and "SELECT" not in reason
    log = Path(reason.split("(details in ", 1)[1].rstrip(")"))
    trace = log.read_text(encoding="utf-8")
    assert "Traceback" in trace and "SELECT * FROM tokenized_examples" in trace and "sqlite3.OperationalError" in trace


def test_a_plain_refusal_writes_no_log(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert failure_text(ValueError("no run 'nope' in this workspace")) == "no run 'nope' in this workspace"
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("location", ["postgresql://ada:s3cret@db.example/studio"])
def test_the_password_stays_masked(location):
    assert "s3cret" not in one_line(RuntimeError(f"could not reach {location}"), location)


def test_a_training_session_failed_by_the_database_reports_one_line(workspace, tmp_path, monkeypatch):
    """The reported case: the run's data read fails in the database (a table gone, as
    ``no such table: tokenized_examples`` was); the session's outcome, which ``main.py train``
    prints, is the driver's one line, the trace in the error log."""
    from core.engine.training_config import TrainingConfig
    from core.operations.training import TrainingSession
    from storage.models import RunStatus
    from tests.tiny_models import fill_workspace

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    fill_workspace(workspace, 8)
    with workspace.session() as session:   # commits on leaving
        session.execute(text("DROP TABLE verdicts"))
    training = TrainingSession(workspace)
    training.start(TrainingConfig(base_model=str(tmp_path / "model"), max_steps=2, batch_size=4, eval_interval=0,
                                  checkpoint_interval=0))   # it fails before a model is loaded
    outcome = training.run()
    assert outcome.status == RunStatus.FAILED
    assert outcome.error.startswith("database error: no such table: verdicts (details in "), outcome.error
    assert "\n" not in outcome.error and "SELECT" not in outcome.error
    log = Path(outcome.error.split("(details in ", 1)[1].rstrip(")"))
    assert "FROM verdicts" in log.read_text(encoding="utf-8")
