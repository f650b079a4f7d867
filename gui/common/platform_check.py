"""Can this computer open the app's window? Asked before the ``QApplication`` exists.

Qt aborts the process (exit code 134, a page of plugin diagnostics) when it cannot load a
platform plugin: on Linux with no display at all, or when the ``xcb`` plugin's system libraries
are missing (Qt's own message then blames ``libxcb-cursor0`` even when others are missing).
``window_problem()`` finds both cases first and returns one line that says what to do, or
``None`` when the window can open. The missing libraries are found by asking the plugin
itself: ``ldd`` on ``libqxcb.so`` (and the ``libQt6XcbQpa`` it links) lists every library the
dynamic loader cannot find. Only QtCore is imported here, which needs no display library.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Mapping

HEADLESS_HINT = "the headless commands work without a window: python main.py --help"

# The platform plugins that need a display server; any other QT_QPA_PLATFORM (offscreen, vnc,
# eglfs, ...) draws without one.
DISPLAY_PLATFORMS = {"xcb", "wayland", "wayland-egl"}

# The Debian/Ubuntu package of each library the xcb plugin (and QtGui under it) links,
# read with `dpkg -S` on Debian 12. A library not listed is named by its soname instead.
DEBIAN_PACKAGES = {
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb.so.1": "libxcb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libXau.so.6": "libxau6",
    "libXdmcp.so.6": "libxdmcp6",
    "libGL.so.1": "libgl1",
    "libGLX.so.0": "libglx0",
    "libGLdispatch.so.0": "libglvnd0",
    "libEGL.so.1": "libegl1",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
    "libpng16.so.16": "libpng16-16",
    "libbrotlidec.so.1": "libbrotli1",
    "libbrotlicommon.so.1": "libbrotli1",
    "libexpat.so.1": "libexpat1",
    "libz.so.1": "zlib1g",
}


def window_problem(env: Mapping[str, str] | None = None, system: str | None = None) -> str | None:
    """One line saying why the app's window cannot open here, or None when it can."""
    env = os.environ if env is None else env
    system = sys.platform if system is None else system
    if not system.startswith("linux"):
        return None     # macOS and Windows: the PySide6 wheels bring everything Qt needs
    requested = _requested_platforms(env.get("QT_QPA_PLATFORM", ""))
    first = requested[0] if requested else None
    if first is not None and first not in DISPLAY_PLATFORMS:
        return None     # offscreen, vnc, eglfs...: no display server needed (or one Qt checks itself)
    has_x11, has_wayland = bool(env.get("DISPLAY")), bool(env.get("WAYLAND_DISPLAY"))
    if (first == "xcb" and not has_x11) or not (has_x11 or has_wayland):
        return ("DPO Studio cannot open its window: there is no display (DISPLAY and WAYLAND_DISPLAY "
                f"are not set); {HEADLESS_HINT}.")
    uses_xcb = first == "xcb" or (first is None and not has_wayland)
    if uses_xcb:
        missing = missing_xcb_libraries()
        if missing:
            return missing_libraries_message(missing)
    return None


def _requested_platforms(value: str) -> list[str]:
    """``QT_QPA_PLATFORM`` is a ';'-separated list of plugin names, each with optional ':options'."""
    return [part.split(":", 1)[0].strip().lower() for part in value.split(";") if part.strip()]


def xcb_plugin_files() -> list[Path]:
    """The xcb platform plugin of the installed Qt and the ``libQt6XcbQpa`` it links."""
    from PySide6.QtCore import QLibraryInfo

    plugins = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath))
    libraries = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.LibrariesPath))
    candidates = [plugins / "platforms" / "libqxcb.so", *sorted(libraries.glob("libQt6XcbQpa.so*"))[:1]]
    return [path for path in candidates if path.is_file()]


def ldd_report(files: list[Path]) -> str:
    """``ldd``'s output for ``files`` ('' when ldd is not available: then nothing is reported)."""
    ldd = shutil.which("ldd")
    if ldd is None or not files:
        return ""
    try:
        done = subprocess.run([ldd, *map(str, files)], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout


def libraries_not_found(ldd_output: str) -> list[str]:
    """The sonames ``ldd`` marked "not found", each once, in the order first seen."""
    missing: list[str] = []
    for line in ldd_output.splitlines():
        name, arrow, where = line.strip().partition("=>")
        if arrow and where.strip() == "not found" and name.strip() not in missing:
            missing.append(name.strip())
    return missing


def missing_xcb_libraries() -> list[str]:
    return libraries_not_found(ldd_report(xcb_plugin_files()))


def missing_libraries_message(missing: list[str], has_apt: bool | None = None) -> str:
    """One line: which libraries are missing and the command that installs them."""
    has_apt = shutil.which("apt-get") is not None if has_apt is None else has_apt
    packages = list(dict.fromkeys(DEBIAN_PACKAGES[name] for name in missing if name in DEBIAN_PACKAGES))
    unknown = [name for name in missing if name not in DEBIAN_PACKAGES]
    line = ("DPO Studio cannot open its window: Qt's xcb platform plugin needs libraries that are not "
            f"installed: {', '.join(missing)}. ")
    if has_apt and packages:
        line += f"Install them with: sudo apt-get install -y {' '.join(packages)}"
        if unknown:
            line += f" (and the packages that provide {', '.join(unknown)})"
    else:
        line += "Install the packages that provide them with your system's package manager"
        if packages:
            line += f" (on Debian/Ubuntu: {' '.join(packages)})"
    return f"{line}; {HEADLESS_HINT}."
