"""A clean, pre-warmed process that forks one sandbox per question.

Importing torch takes seconds; forking a process that already has it takes milliseconds.
The zygote is started with ``exec`` (so it holds none of the grader's memory: no tests, no
expected values), imports the lab's modules, and then only forks: each child enters a
sandbox (:mod:`.sandbox`) and serves the grader over a socket pair whose other end the
grader keeps. The zygote also ends sandboxes: it kills the whole process tree (and any
orphan that was re-parented to it, since it is a child subreaper), then reaps it.
It never runs student code itself.
"""

from __future__ import annotations

import array
import contextlib
import importlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from coursekit.grading import _linux, cgroups, wire


# --- the zygote process ---------------------------------------------------------------------
def _recv(sock: socket.socket) -> tuple[dict | None, list[int]]:
    header = b""
    fds: list[int] = []
    while len(header) < 4:
        data, ancdata, _, _ = sock.recvmsg(4 - len(header), socket.CMSG_LEN(4 * 4))
        if not data:
            return None, []
        header += data
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += array.array("i", payload[: len(payload) - len(payload) % 4]).tolist()
    (size,) = struct.unpack(">I", header)
    body = b""
    while len(body) < size:
        chunk = sock.recv(size - len(body))
        if not chunk:
            return None, fds
        body += chunk
    return json.loads(body), fds


def _send(sock: socket.socket, message: dict, fds: tuple[int, ...] = ()) -> None:
    body = json.dumps(message).encode()
    frame = struct.pack(">I", len(body)) + body
    if fds:
        sock.sendmsg([frame[:4]], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        sock.sendall(frame[4:])
    else:
        sock.sendall(frame)


def _parents() -> dict[int, int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                parents[int(entry)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    return parents


def _tree(root: int, parents: dict[int, int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        if pid in parents:
            out.append(pid)
        stack += children.get(pid, [])
    return out


class _Zygote:
    def __init__(self) -> None:
        self.live: set[int] = set()
        self.status: dict[int, int] = {}
        self.groups: set[str] = set()  # cgroups of our sandboxes, removed if the grader dies

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.live:
                self.live.discard(pid)
                self.status[pid] = status

    def kill_tree(self, pid: int) -> None:
        me = os.getpid()
        for _ in range(200):
            self.reap()
            parents = _parents()
            victims = _tree(pid, parents) if pid in self.live else []
            orphans = [p for p, pp in parents.items() if pp == me and p not in self.live]
            if not victims and not orphans:
                return
            for victim in victims + orphans:
                try:
                    os.kill(victim, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.005)

    def finish(self, pid: int, grace: float) -> dict:
        deadline = time.monotonic() + grace
        killed = False
        while True:
            self.reap()
            if pid not in self.live or time.monotonic() >= deadline:
                break
            time.sleep(0.01)
        if pid in self.live:
            killed = True
        self.kill_tree(pid)
        for _ in range(500):
            self.reap()
            if pid not in self.live:
                break
            time.sleep(0.01)
        status = self.status.pop(pid, None)
        return {"killed": killed, "status": status}

    def spawn(self, spec_json: dict, rpc_fd: int, output: str) -> int:
        from coursekit.grading import sandbox

        spec = sandbox.Spec.from_json(spec_json)
        self.groups.update(os.path.dirname(p) for p in spec.cgroup_procs)
        out_fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        pid = os.fork()
        if pid == 0:  # the child: keep only the RPC socket and the output file
            try:
                for fd in _open_fds():
                    if fd not in (rpc_fd, out_fd, 0, 1, 2):
                        try:
                            os.close(fd)
                        except OSError:
                            pass
                sandbox.run(spec, rpc_fd, out_fd)
            finally:
                os._exit(70)
        os.close(out_fd)
        os.close(rpc_fd)
        self.live.add(pid)
        return pid


def _open_fds() -> list[int]:
    try:
        return sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
    except OSError:
        return list(range(3, 1024))


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    preload = json.loads(sys.argv[2])
    try:
        _linux.prctl(_linux.PR_SET_DUMPABLE, 0)  # no ptrace or /proc/<pid>/mem for others
        _linux.prctl(_linux.PR_SET_CHILD_SUBREAPER, 1)  # orphans come back to us, to be killed
    except OSError:
        pass
    failed = {}
    for name in preload:
        try:
            importlib.import_module(name)
        except Exception as error:  # a lab module that does not import fails in the sandbox too
            failed[name] = f"{type(error).__name__}: {error}"
    from coursekit.grading import oplog, sandbox, worker  # noqa: F401 - preloaded for the children

    try:  # the operator log's first use costs about a second: pay it once, here
        import torch

        with oplog.operator_log() or contextlib.nullcontext():
            torch.zeros(2).add(1).sum()
    except Exception:
        pass

    zygote = _Zygote()
    _send(control, {"ok": True, "failed": failed})
    while True:
        try:
            message, fds = _recv(control)
        except OSError:
            message, fds = None, []
        if message is None:
            break
        op = message.get("op")
        try:
            if op == "spawn":
                pid = zygote.spawn(message["spec"], fds[0], message["output"])
                reply = {"ok": True, "pid": pid}
            elif op == "finish":
                reply = {"ok": True, **zygote.finish(message["pid"], message.get("grace", 0.0))}
            else:
                reply = {"ok": False, "error": f"unknown op {op!r}"}
        except Exception as error:
            for fd in fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
            reply = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        _send(control, reply)
    for pid in list(zygote.live):
        zygote.kill_tree(pid)
    # the grader hung up: normally it cleans up after us, but if it was killed (SIGKILL)
    # nobody else will; its scratch folder is our working directory
    for group in zygote.groups:
        cgroups.remove_dir(group, tries=50)
    scratch = os.getcwd()
    if os.path.basename(scratch).startswith(cgroups.SCRATCH_PREFIX):
        os.chdir("/")
        shutil.rmtree(scratch, ignore_errors=True)


# --- the grader's handle on it -----------------------------------------------------------------
ENV_ALLOWED = ("PYTHONPATH",)  # the only variables of the grader's environment passed on


def clean_environment() -> dict[str, str]:
    """The zygote's whole environment: an allow-list, never the grader's own.

    A process's initial environment stays in its memory (and in /proc/self/environ) after
    ``os.environ.clear()``, and every sandbox is forked from the zygote; so the zygote is
    started with nothing of the grader's environment but what Python needs to find
    coursekit.
    """
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0",
           "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    env.update({k: os.environ[k] for k in ENV_ALLOWED if k in os.environ})
    return env


class ZygoteError(RuntimeError):
    """The zygote could not start, or stopped answering."""


@dataclass
class Handle:
    """One running sandbox, as the grader sees it."""

    pid: int
    sock: socket.socket
    output: str
    folders: tuple[str, ...] = ()  # the grader's scratch folders for it, removed at the end
    group: object = None  # its cgroups.Group (memory, CPU time, tasks), or None


class Zygote:
    """Start the zygote process and talk to it (thread-safe)."""

    def __init__(self, preload: list[str], scratch: str, start_timeout: float = 180.0) -> None:
        self.scratch = scratch
        self._lock = threading.Lock()
        self._count = 0
        ours, theirs = socket.socketpair()
        env = clean_environment()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "coursekit.grading.zygote", str(theirs.fileno()),
             json.dumps(preload)],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, env=env, cwd=scratch,
            start_new_session=True)
        theirs.close()
        self.control = ours
        ours.settimeout(start_timeout)
        try:
            ready, _ = _recv(ours)
        except OSError as error:
            self.close()
            raise ZygoteError(f"the grading zygote did not start: {error}") from None
        if not ready or not ready.get("ok"):
            self.close()
            raise ZygoteError("the grading zygote did not start (see its stderr above)")
        ours.settimeout(60.0)
        self.failed_imports: dict[str, str] = ready.get("failed", {})

    def _request(self, message: dict, fds: tuple[int, ...] = ()) -> dict:
        with self._lock:
            try:
                _send(self.control, message, fds)
                reply, _ = _recv(self.control)
            except OSError as error:
                raise ZygoteError(f"the grading zygote stopped answering: {error}") from None
        if reply is None:
            raise ZygoteError("the grading zygote exited")
        if not reply.get("ok"):
            raise ZygoteError(reply.get("error", "unknown zygote error"))
        return reply

    def alive(self) -> bool:
        return self.process.poll() is None

    def spawn(self, spec) -> Handle:
        ours, theirs = socket.socketpair()
        with self._lock:
            self._count += 1
            output = os.path.join(self.scratch, f"output-{self._count}.txt")
        try:
            reply = self._request({"op": "spawn", "spec": spec.to_json(), "output": output},
                                  (theirs.fileno(),))
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return Handle(reply["pid"], ours, output)

    def finish(self, handle: Handle, grace: float = 0.0) -> dict:
        """Kill the sandbox's whole tree (after ``grace`` seconds to exit by itself)."""
        handle.sock.close()
        return self._request({"op": "finish", "pid": handle.pid, "grace": grace})

    def close(self) -> None:
        try:
            self.control.close()
        finally:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def request(handle: Handle, message: dict, deadline: float, over=None) -> dict:
    """Send one request to a sandbox and wait for its reply until ``deadline``.

    ``over()``, polled while waiting, returns True when the question's budget (its CPU
    time) is spent: the wait then ends like a timeout.
    """
    handle.sock.settimeout(max(0.001, deadline - time.monotonic()))
    try:
        wire.send(handle.sock, message)
    except TimeoutError:  # the sandbox stopped reading and the socket buffer is full
        raise wire.ChannelTimeout("the sandbox stopped reading requests") from None
    except (BrokenPipeError, ConnectionResetError):
        raise wire.ChannelClosed("the sandbox closed the channel") from None
    finally:
        handle.sock.settimeout(None)
    return wire.receive(handle.sock, deadline, over=over)


if __name__ == "__main__":
    main()
