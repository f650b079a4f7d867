"""The command line's error paths, one row each: arguments -> exit code and the first error line
on stderr; none prints a traceback (in-process through ``main.main``)."""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import pytest

import main
from core.engine.run_records import create_run
from core.engine.training_config import TrainingConfig
from storage.models import RunStatus
from storage.runs import update_run
from storage.workspace import Workspace
from tests.damaged_stores import _newer_schema
from tests.tiny_models import fill_workspace, make_tiny_model_dir


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("errors")
    model = make_tiny_model_dir(root / "model")
    ws = Workspace.open(root / "ws")
    fill_workspace(ws, 16)
    config = TrainingConfig(base_model=str(model), max_steps=4)
    create_run(ws, "run-stopped", config, ws.runs_dir / "run-stopped", 4)
    update_run(ws, "run-stopped", status=RunStatus.STOPPED)
    ws.close()
    damaged = root / "damaged_model"
    shutil.copytree(model, damaged)
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])   # "incomplete metadata"/"invalid header"
    adapter = root / "adapter"
    _write_adapter(model, adapter)
    newer = root / "newer"
    Workspace.open(newer).close()
    _newer_schema(newer)
    toml = root / "twice.toml"
    toml.write_text('[optim]\nlr = 1e-4\n\n[train]\nlearning_rate = 1e-3\n', encoding="utf-8")
    return {"WS": str(root / "ws"), "MODEL": str(model), "DAMAGED": str(damaged), "ADAPTER": str(adapter),
            "NEWER": str(newer), "TWICE": str(toml), "MISSING": str(root / "no_such_model"),
            "NOFILE": str(root / "nothing.jsonl")}


def _write_adapter(model_dir: Path, out: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from core.engine.modeling import quiet_peft_wrap

    base = AutoModelForCausalLM.from_pretrained(model_dir)
    with quiet_peft_wrap():   # peft's own deprecated call (see quiet_peft_wrap), not ours
        get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"])).save_pretrained(out)


BASE = ["--set", "base_model=MODEL", "--set", "max_steps=1"]
ROWS = [
    # (argv, exit code, a substring of the first error line)
    (["train"], 2, "usage:"),
    (["frobnicate"], 2, "usage:"),
    (["train", "WS", "--set", "nonsense"], 2, "expected key=value"),
    (["train", "WS", "--set", "no_such_setting=1"], 2, "no_such_setting"),
    (["train", "WS", "--set", "lr=fast"], 2, "lr"),
    (["train", "WS", "--config", "TWICE"], 2, "set twice"),
    (["train", "WS", "--config", "NOFILE"], 2, "cannot read"),
    (["train", "WS", *BASE, "--set", "device=cuda"], 2, "no CUDA GPU is available"),
    (["train", "WS", *BASE, "--set", "lora_target_modules=nothing_here"], 2, "lora_target_modules"),
    (["train", "WS", *BASE, "--set", "max_length=2"], 2, "max_length"),
    (["train", "WS", "--set", "base_model=MISSING"], 2, "no model folder at MISSING"),
    (["train", "WS", "--set", "base_model=DAMAGED", "--set", "max_steps=1"], 2, "DAMAGED/model.safetensors"),
    (["train", "WS", "--resume", "no-such-run"], 2, "no run 'no-such-run'"),
    (["train", "WS", "--resume", "run-stopped", "--set", "beta=0.5"], 2, "beta"),
    (["train", "WS", "--resume", "run-stopped", "--set", "lora_r=4"], 2, "lora_r"),
    (["train", "WS", "--resume", "run-stopped", "--config", "TWICE"], 2, "--config cannot change a resumed run"),
    (["train", "WS", "--resume", "run-stopped", "--set", "lr=-1"], 2, "learning_rate"),
    (["evaluate", "WS", "--adapter", "ADAPTER", "--set", "device=cuda"], 2, "no CUDA GPU is available"),
    (["evaluate", "WS", "--adapter", "ADAPTER", "--set", "max_length=oops"], 2, "max_length"),
    (["evaluate", "WS", "--adapter", "no-such-run"], 2, "neither a run id"),
    (["evaluate", "NEWER", "--adapter", "x"], 2, "newer"),
    (["train", "NEWER"], 2, "newer"),
    (["runs", "NEWER"], 2, "newer"),
    (["demo-eval", "NEWER"], 2, "newer"),
    (["stats", "NEWER"], 2, "newer"),
    (["demo-eval", "WS", "--prompts", "0"], 2, "--prompts"),
    (["runs", "WS", "--export-adapter", "no-such-run", "MISSING"], 2, "no-such-run"),
    (["import", "WS", "NOFILE"], 2, "nothing.jsonl"),
]


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main.main(argv)
        except SystemExit as exc:   # argparse's own refusals
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def first_error_line(err: str) -> str:
    """The first line that is not progress ("loading the model…", transformers' bars)."""
    progress = ("loading the model", "Loading weights", "Writing model shards")
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    return next((line for line in lines if not line.startswith(progress)), "")


@pytest.mark.parametrize("argv, code, expected", ROWS, ids=[" ".join(row[0][:4]) for row in ROWS])
def test_error_path(places, argv, code, expected) -> None:
    argv = [places.get(arg, arg) for arg in argv]
    argv = [arg.replace("=MODEL", "=" + places["MODEL"]).replace("=MISSING", "=" + places["MISSING"])
            .replace("=DAMAGED", "=" + places["DAMAGED"]) for arg in argv]
    for name, value in places.items():
        expected = expected.replace(name, value) if name.isupper() and name in expected else expected
    got, _out, err = run_cli(argv)
    assert "Traceback" not in err
    assert got == code, err
    assert expected in first_error_line(err), err


def test_an_unexpected_error_is_one_line_and_a_log(places, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.setattr("sys.platform", "linux")

    def broken(*_args, **_kwargs):
        raise RuntimeError("something inside broke\nsecond line")

    monkeypatch.setattr("core.operations.runs.list_runs", broken)
    code, _out, err = run_cli(["runs", places["WS"]])
    assert code == 1 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "RuntimeError: something inside broke" in lines[0]
    log = Path(lines[0].split("the full trace is in ")[1])
    assert log.is_relative_to(tmp_path) and "Traceback" in log.read_text()


def test_a_password_never_reaches_the_line_or_the_log(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.setattr("sys.platform", "linux")
    url = "postgresql://ann:s3cret-pw@127.0.0.1:1/studio"

    def broken(location, *_args, **_kwargs):
        raise RuntimeError(f"cannot reach {location}")

    monkeypatch.setattr("core.operations.runs.list_runs", broken)
    monkeypatch.setattr("storage.workspace.Workspace.open", classmethod(lambda cls, location, **kw: broken(location)))
    code, out, err = run_cli(["runs", url])
    assert code == 1 and "s3cret-pw" not in err + out
    log = Path(err.strip().split("the full trace is in ")[1])
    assert "s3cret-pw" not in log.read_text()
