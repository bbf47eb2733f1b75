"""Basic mode only: a Python audit hook as a last line of defence without namespaces.

Audit hooks (PEP 578) cannot be removed once installed, and they see every ``open``,
socket, subprocess and ctypes operation made through Python. They do not see native code
that calls the C library directly, which is why ctypes is refused too; but a determined
submission can still reach such code (for instance through ``_posixsubprocess``), so basic
mode is documented as best effort. Where namespaces are allowed the grader uses them.
"""

from __future__ import annotations

import os
import socket
import sys

_REFUSED_PREFIXES = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                     "pty.spawn", "ctypes.dlopen", "ctypes.dlsym", "ctypes.call_function",
                     "ctypes.cdata", "os.startfile")
_PATH_EVENTS = {"open", "os.listdir", "os.scandir", "os.chdir", "os.rename", "os.remove",
                "os.rmdir", "os.mkdir", "shutil.copyfile", "os.truncate", "os.symlink",
                "os.link", "os.chmod", "os.chown", "os.utime", "glob.glob", "shutil.rmtree"}
_TWO_PATHS = {"os.rename", "os.symlink", "os.link", "shutil.copyfile"}


def install(allowed: list[str], hidden: list[str], workdir: str) -> None:
    """Refuse network, programs, ctypes, and any path outside ``allowed`` or inside ``hidden``.

    ``allowed`` is the same allow-list the namespace modes mount (the system, this Python,
    coursekit) plus the sandbox's working directory: a copy of a solution or another
    student's notebook elsewhere on the disk is out of reach even if it is world-readable.
    """
    def roots(paths: list[str]) -> tuple[str, ...]:
        return tuple(os.path.realpath(p).rstrip("/") or "/" for p in paths if p)

    allowed_roots = roots([*allowed, f"/proc/{os.getpid()}", "/dev/null", "/dev/urandom",
                           "/dev/random", "/dev/zero"])
    hidden_roots = roots(hidden)
    own_roots = roots([workdir])  # inside the grader's scratch folder, which is hidden

    def under(full: str, prefixes: tuple[str, ...]) -> bool:
        return any(full == r or full.startswith(r + "/") for r in prefixes)

    def is_hidden(path: object) -> bool:
        if isinstance(path, int) or path is None:
            return False
        try:
            full = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return True
        if under(full, own_roots):
            return False
        return under(full, hidden_roots) or not under(full, allowed_roots)

    me = os.getpid()

    def hook(event: str, args: tuple) -> None:
        if event.startswith(_REFUSED_PREFIXES):
            raise PermissionError(f"{event} is not allowed while grading")
        if event in ("os.kill", "os.killpg") and args and args[0] != me:
            # without namespaces the grader runs as the same user: no signals to others
            raise PermissionError(f"{event} is not allowed while grading")
        if event in ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"):
            sock = args[0]
            if getattr(sock, "family", None) != socket.AF_UNIX:
                raise PermissionError("network access is not allowed while grading")
        elif event == "socket.__new__" and args and args[1] not in (socket.AF_UNIX, -1):
            raise PermissionError("network access is not allowed while grading")
        elif event in _PATH_EVENTS and args and (is_hidden(args[0]) or (
                event in _TWO_PATHS and len(args) > 1 and is_hidden(args[1]))):
            raise PermissionError(f"{event}: this path is not available while grading")

    sys.addaudithook(hook)
