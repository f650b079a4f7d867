"""Calling a function in a child process: ``call_in_child("pkg.module", "function", *args)``.

The window runs work that is heavy in Python — building the training set of 100,000 pairs for
the form's data preview, tokenising a sample of it — in a child process rather than on a thread
of its own, for the reason ``core.operations.training_process`` gives: a thread shares the GIL
(and the garbage collector) with the UI thread, and held it for hundreds of milliseconds at a
time. The arguments and the result cross the pipe pickled (both ends are this program; pass
plain values: a workspace location, not a ``Workspace``). An exception in the child comes back
as ``ChildCallError`` with its one-line message; the child's trace goes to its stderr.
"""

from __future__ import annotations

import importlib
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

_PROJECT_ROOT = Path(__file__).resolve().parents[2]


class ChildCallError(RuntimeError):
    """The function raised in the child (the message is its one line), or the child died."""


def call_in_child(module: str, function: str, *args: Any, timeout: float | None = 600) -> Any:
    """``module.function(*args)`` in a fresh Python process; its return value (blocks: call it
    from a worker thread)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(_PROJECT_ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    process = subprocess.run([sys.executable, "-m", "core.operations.child_call"],
                             input=pickle.dumps((module, function, args)), capture_output=True,
                             env=env, cwd=str(_PROJECT_ROOT), timeout=timeout)
    try:
        kind, value = pickle.loads(process.stdout)
    except Exception:  # noqa: BLE001 - a child that died before answering
        last = process.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise ChildCallError(f"the helper process ended without an answer (exit code {process.returncode})"
                             + (f": {last[0]}" if last[0] else "")) from None
    if kind == "error":
        raise ChildCallError(value)
    return value


def _main() -> int:
    module, function, args = pickle.loads(sys.stdin.buffer.read())
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)                 # whatever a library prints goes to stderr, never into the answer
    sys.stdout = sys.stderr
    try:
        result = ("ok", getattr(importlib.import_module(module), function)(*args))
    except Exception as exc:  # noqa: BLE001 - the parent shows the message
        import traceback

        from core.operations.error_log import one_line

        traceback.print_exc(file=sys.stderr)
        result = ("error", one_line(exc))
    out.write(pickle.dumps(result))
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
