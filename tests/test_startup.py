"""Starting the app where it cannot open a window: one line saying why, exit code 2, never
Qt's abort (exit 134 and a plugin dump)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import main
from gui.common import platform_check

ROOT = Path(__file__).resolve().parents[1]

# What ldd printed for libqxcb.so on a Debian 12 machine without two of the plugin's libraries.
LDD_WITH_TWO_MISSING = """\
\tlinux-vdso.so.1 (0x00007ffd4b5f2000)
\tlibQt6XcbQpa.so.6 => /opt/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f1e2a400000)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f1e2a3f0000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f1e2a000000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f1e2a600000)
"""


def _env_without_display() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_no_display_exits_2_with_one_line():
    done = subprocess.run([sys.executable, "main.py"], cwd=ROOT, env=_env_without_display(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "no display" in lines[0] and "python main.py --help" in lines[0]
    assert done.stdout == ""


def test_missing_xcb_libraries_exit_2_naming_them_and_the_install_command(monkeypatch, capsys):
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.setattr(platform_check, "ldd_report", lambda files: LDD_WITH_TWO_MISSING)
    monkeypatch.setattr(platform_check.shutil, "which", lambda name: f"/usr/bin/{name}")

    def must_not_start(*args, **kwargs):
        raise AssertionError("the app started although its platform plugin cannot load")

    import gui.app

    monkeypatch.setattr(gui.app, "run_app", must_not_start)
    assert main.main([]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in err
    assert "sudo apt-get install -y libxcb-icccm4 libxcb-keysyms1" in err
    assert "cursor" not in err     # a library that is there is not blamed


def test_ldd_output_gives_each_missing_library_once():
    assert platform_check.libraries_not_found(LDD_WITH_TWO_MISSING) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert platform_check.libraries_not_found("\tlibc.so.6 => /lib/libc.so.6 (0x1)\n") == []


def test_an_unknown_library_is_named_by_its_soname():
    line = platform_check.missing_libraries_message(["libxkbcommon-x11.so.0", "libfancy.so.3"], has_apt=True)
    assert "sudo apt-get install -y libxkbcommon-x11-0" in line
    assert "the packages that provide libfancy.so.3" in line
    without_apt = platform_check.missing_libraries_message(["libxcb-cursor.so.0"], has_apt=False)
    assert "apt-get" not in without_apt and "package manager" in without_apt and "libxcb-cursor0" in without_apt


@pytest.mark.parametrize("env, system", [
    ({"QT_QPA_PLATFORM": "offscreen"}, "linux"),          # draws without a display
    ({"QT_QPA_PLATFORM": "vnc:size=800x600"}, "linux"),
    ({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}, "linux"),   # Wayland: the xcb plugin is not used
    ({}, "darwin"),                                        # the wheels bring what Qt needs
    ({}, "win32"),
])
def test_no_complaint_where_the_window_can_open(env, system):
    assert platform_check.window_problem(env, system) is None


def test_xcb_asked_for_without_an_x_display_is_no_display():
    line = platform_check.window_problem({"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert line is not None and "no display" in line


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb plugin exists on Linux only")
def test_the_installed_xcb_plugin_is_found_and_ldd_answers():
    files = platform_check.xcb_plugin_files()
    assert files and files[0].name == "libqxcb.so"
    missing = platform_check.missing_xcb_libraries()   # whatever this machine lacks, as a list
    assert isinstance(missing, list)
