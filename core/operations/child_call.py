"""Calling functions in a child process kept for it: ``HelperProcess().call("pkg.module", "function", *args)``.

The window runs work that is heavy in Python — building the training set of 100,000 pairs for
the form's data preview, tokenising a sample of it — in a child process rather than on a thread
of its own, for the reason ``core.operations.training_process`` gives: a thread shares the GIL
(and the garbage collector) with the UI thread, and held it for hundreds of milliseconds at a
time. The arguments and the result cross the pipe pickled (both ends are this program; pass
plain values: a workspace location, not a ``Workspace``). An exception in the child comes back
as ``ChildCallError`` with its one-line message; the child's trace goes to its stderr.

``HelperProcess`` keeps its child for repeated calls, so what a call imports (torch, a
tokenizer's library: seconds) is imported once; ``shared_helper()`` is the one the screens of a
process share. The Train form asks it for the devices, their free memory and the data preview
with its too-long count, and the window's own process never imports torch or transformers for
the form (an import on a thread of the window held the GIL in C calls of 300 ms and more, and
stalled the UI thread while the tab was being built). The child runs at a lower priority
(``nice`` 5: the UI thread goes first on a machine with few cores, and the helper still gets a
fair part of a core beside other busy programs — at 10 it got a tenth, and a first preview took
over 30 s beside two of them). It ends when its parent closes it, when the parent is gone (its
stdin ends) or after ``idle_exit_s`` without a call — the next call starts a new one. Calls are
answered one at a time, in the order they come; call from worker threads (a call blocks).
"""

from __future__ import annotations

import importlib
import os
import pickle
import select
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

_PROJECT_ROOT = Path(__file__).resolve().parents[2]


class ChildCallError(RuntimeError):
    """The function raised in the child (the message is its one line), or the child died."""


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(_PROJECT_ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


class HelperProcess:
    """One child process answering ``call``s (see the module's docstring). Thread-safe."""

    def __init__(self, idle_exit_s: float = 300.0, nice: int = 5):
        self.idle_exit_s = idle_exit_s
        self.nice = nice
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._stderr: BinaryIO | None = None
        self._closed = False

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def call(self, module: str, function: str, *args: Any, timeout: float | None = 600) -> Any:
        """``module.function(*args)`` in the helper; its return value (blocks)."""
        request = pickle.dumps((module, function, args))
        with self._lock:
            if self._closed:
                raise ChildCallError("the helper process is closed")
            for attempt in (1, 2):
                process = self._running()
                try:
                    _write_frame(process.stdin, request)
                except OSError:     # it had ended (idle, killed) before the request: it never ran
                    self._end(kill=True)
                    if attempt == 1:
                        continue
                    raise ChildCallError(self._last_words(process.wait())) from None
                try:
                    kind, value = pickle.loads(_read_frame(process.stdout, timeout))
                    break
                except TimeoutError:
                    self._end(kill=True)
                    raise ChildCallError(f"the helper process gave no answer within {timeout:.0f} s") from None
                except (OSError, EOFError, pickle.UnpicklingError):
                    code = process.wait()
                    if code == 0 and attempt == 1:   # it had just ended, idle: the request never ran
                        self._end()
                        continue
                    message = self._last_words(code)
                    self._end()
                    raise ChildCallError(message) from None
        if kind == "error":
            raise ChildCallError(value)
        return value

    def close(self) -> None:
        """End the child (it finishes nothing: a call in flight gets ``ChildCallError``)."""
        self._closed = True
        self._end(kill=True)

    def _running(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            self._end()
            self._stderr = tempfile.TemporaryFile()
            self._process = subprocess.Popen(
                [sys.executable, "-m", "core.operations.child_call", "--serve", str(self.idle_exit_s), str(self.nice)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=_child_env(),
                cwd=str(_PROJECT_ROOT))
        return self._process

    def _last_words(self, code: int) -> str:
        last = ""
        if self._stderr is not None:
            self._stderr.seek(0)
            lines = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
            last = lines[-1] if lines else ""
        return f"the helper process ended without an answer (exit code {code})" + (f": {last}" if last else "")

    def _end(self, kill: bool = False) -> None:
        process, self._process = self._process, None
        if process is not None:
            for stream in (process.stdin, process.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            if kill and process.poll() is None:
                process.kill()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


_shared: HelperProcess | None = None
_shared_lock = threading.Lock()


def shared_helper() -> HelperProcess:
    """The process's one ``HelperProcess`` for the screens' checks (started at its first call):
    what it imported stays imported for the next screen, and the next window."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = HelperProcess()
        return _shared


def _write_frame(stream: BinaryIO, payload: bytes) -> None:
    stream.write(struct.pack("<Q", len(payload)) + payload)
    stream.flush()


def _readable(stream: BinaryIO, wait: float) -> bool:
    """Whether ``stream`` has data (or its end) within ``wait`` s. Windows cannot wait on a pipe:
    there it says yes, and a read blocks (no time limit, no idle exit)."""
    if os.name == "nt":
        return True
    return bool(select.select([stream], [], [], max(0.0, wait))[0])


def _read_exactly(stream: BinaryIO, size: int, deadline: float | None) -> bytes:
    chunks, left = [], size
    while left:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not _readable(stream, wait):
                raise TimeoutError
        chunk = os.read(stream.fileno(), left)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_frame(stream: BinaryIO, timeout: float | None) -> bytes:
    deadline = None if timeout is None else time.monotonic() + timeout
    (size,) = struct.unpack("<Q", _read_exactly(stream, 8, deadline))
    return _read_exactly(stream, size, deadline)


def _answer(module: str, function: str, args: tuple) -> tuple[str, Any]:
    try:
        return "ok", getattr(importlib.import_module(module), function)(*args)
    except Exception as exc:  # noqa: BLE001 - the parent shows the message
        import traceback

        from core.operations.error_log import one_line

        traceback.print_exc(file=sys.stderr)
        return "error", one_line(exc)


def _answers_only() -> BinaryIO:
    """The real stdout for answers; whatever a library prints goes to stderr, never into them."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def _serve(idle_exit_s: float, nice: int) -> int:
    if nice and hasattr(os, "nice"):
        os.nice(nice)
    out, requests = _answers_only(), sys.stdin.buffer
    while True:
        if not _readable(requests, idle_exit_s):
            return 0                  # idle: the parent starts a new one when it needs one
        try:
            module, function, args = pickle.loads(_read_frame(requests, None))
        except EOFError:
            return 0                  # the parent closed it, or is gone
        answer = _answer(module, function, args)
        try:
            payload = pickle.dumps(answer)
        except Exception as exc:  # noqa: BLE001 - an answer that cannot cross the pipe
            payload = pickle.dumps(("error", f"the answer of {module}.{function} cannot be sent: {exc}"))
        _write_frame(out, payload)


def _main() -> int:
    return _serve(float(sys.argv[2]), int(sys.argv[3]))


if __name__ == "__main__":
    sys.exit(_main())
