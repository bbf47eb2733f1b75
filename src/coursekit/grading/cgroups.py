"""One control group per question: memory (all of it), CPU time and tasks of the whole tree.

``RLIMIT_AS`` counts one process's address space; memory held in a ``memfd``, in shared
memory or in another process of the tree escapes it. A memory cgroup counts every page
the question's processes charge, whatever holds it, and the kernel's OOM killer ends the
question when it is over. The CPU accounting counts the CPU time of every process of the
tree (a fork bomb included), so the grader limits CPU time, not wall time, and a busy
machine does not change a grade. The pids controller caps the tasks of the tree.

cgroup v2 (``memory.max``, ``cpu.stat``, ``pids.max`` in one directory) is used where the
grader's own cgroup delegates those controllers; otherwise cgroup v1 (``memory/``,
``cpuacct/``, ``pids/``), which needs root. :func:`available` says which, or None: then
the sandbox falls back on rlimits and refuses the memory escape routes (see ``seccomp``).
"""

from __future__ import annotations

import os
import shutil
import time

SCRATCH_PREFIX = "coursekit-grading-"  # <prefix><grader pid>-…: scratch folders in /tmp
CGROUP_PREFIX = "coursekit-"  # <prefix><grader pid>-<n>: one group per question

ROOT = "/sys/fs/cgroup"
V1 = ("memory", "cpuacct", "pids")


def _own(controller: str) -> str | None:
    """This process's cgroup path in a v1 hierarchy ('' for v2), from /proc/self/cgroup."""
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, names, path = line.rstrip("\n").split(":", 2)
                if controller in names.split(","):
                    return path
    except OSError:
        return None
    return None


def _v2_base() -> str | None:
    try:
        with open("/proc/self/cgroup") as f:
            lines = [ln.rstrip("\n").split(":", 2) for ln in f]
    except OSError:
        return None
    path = next((p for h, n, p in lines if h == "0" and n == ""), None)
    if path is None:
        return None
    mount = ROOT if os.path.exists(f"{ROOT}/cgroup.controllers") else f"{ROOT}/unified"
    base = f"{mount}{path}".rstrip("/")
    try:
        with open(f"{base}/cgroup.subtree_control") as f:
            enabled = f.read().split()
    except OSError:
        return None
    return base if {"memory", "cpu", "pids"} <= set(enabled) else None


def _v1_bases() -> dict[str, str] | None:
    bases = {}
    for controller in V1:
        own = _own(controller)
        base = f"{ROOT}/{controller}{own or ''}".rstrip("/") if own is not None else None
        if base is None or not os.access(base, os.W_OK):
            return None
        bases[controller] = base
    return bases


def available() -> str | None:
    """``"v2"``, ``"v1"`` or None: what this process may use to confine a question."""
    if os.environ.get("COURSEKIT_NO_CGROUPS"):
        return None
    if _v2_base() and os.access(_v2_base(), os.W_OK):
        return "v2"
    return "v1" if _v1_bases() else None


class Group:
    """A cgroup for one question, created by the grader, joined by the sandbox at start."""

    def __init__(self, kind: str, name: str, memory_bytes: int, tasks: int) -> None:
        self.kind = kind
        if kind == "v2":
            self.dirs = {"all": f"{_v2_base()}/{name}"}
        else:
            self.dirs = {c: f"{b}/{name}" for c, b in (_v1_bases() or {}).items()}
        for path in self.dirs.values():
            os.makedirs(path, exist_ok=True)
        if kind == "v2":
            d = self.dirs["all"]
            self._write(f"{d}/memory.max", memory_bytes)
            self._write(f"{d}/memory.swap.max", 0, optional=True)
            self._write(f"{d}/pids.max", tasks)
        else:
            m = self.dirs["memory"]
            self._write(f"{m}/memory.limit_in_bytes", memory_bytes)
            self._write(f"{m}/memory.memsw.limit_in_bytes", memory_bytes, optional=True)
            self._write(f"{self.dirs['pids']}/pids.max", tasks)

    @staticmethod
    def _write(path: str, value: int, optional: bool = False) -> None:
        try:
            with open(path, "w") as f:
                f.write(str(value))
        except OSError:
            if not optional:
                raise

    @property
    def procs(self) -> list[str]:
        """The ``cgroup.procs`` files the sandbox writes its pid into."""
        return [f"{d}/cgroup.procs" for d in self.dirs.values()]

    def cpu_seconds(self) -> float:
        """CPU time used by every process of the question so far."""
        try:
            if self.kind == "v2":
                with open(f"{self.dirs['all']}/cpu.stat") as f:
                    for line in f:
                        if line.startswith("usage_usec"):
                            return int(line.split()[1]) / 1e6
                return 0.0
            with open(f"{self.dirs['cpuacct']}/cpuacct.usage") as f:
                return int(f.read()) / 1e9
        except (OSError, ValueError):
            return 0.0

    def tasks(self) -> list[str]:
        """Thread ids of the group's live tasks (host ids)."""
        path = (f"{self.dirs['all']}/cgroup.threads" if self.kind == "v2"
                else f"{self.dirs['cpuacct']}/tasks")
        try:
            with open(path) as f:
                return f.read().split()
        except OSError:
            return []

    def wanted_seconds(self) -> float:
        """CPU time used, plus the time live tasks spent waiting for a CPU (schedstat).

        On a busy machine a task may wait long for a CPU; it is not idle. A question whose
        tasks neither run nor wait to run is sleeping or blocked, which the grader limits
        separately from its CPU time.
        """
        waited = 0
        for tid in self.tasks()[:256]:
            try:
                with open(f"/proc/{tid}/schedstat") as f:
                    waited += int(f.read().split()[1])
            except (OSError, ValueError, IndexError):
                continue
        return self.cpu_seconds() + waited / 1e9

    def out_of_memory(self) -> bool:
        """Whether the kernel refused the question memory (or killed it for that)."""
        try:
            if self.kind == "v2":
                with open(f"{self.dirs['all']}/memory.events") as f:
                    events = dict(line.split() for line in f)
                return int(events.get("oom_kill", 0)) > 0 or int(events.get("max", 0)) > 0
            with open(f"{self.dirs['memory']}/memory.failcnt") as f:
                return int(f.read()) > 0
        except (OSError, ValueError):
            return False

    def remove(self) -> None:
        """Remove the group (its processes are gone by then; retry briefly while they exit)."""
        for path in self.dirs.values():
            remove_dir(path)


def remove_dir(path: str, tries: int = 100) -> None:
    """rmdir a cgroup folder, retrying for a moment while its last tasks exit."""
    for _ in range(tries):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.01)


def sweep(prefix: str) -> None:
    """Remove groups left by a grader that was killed (their processes are gone too)."""
    bases = ([_v2_base()] if available() == "v2" else list((_v1_bases() or {}).values()))
    for base in bases:
        if not base:
            continue
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for name in _abandoned(names, prefix):
            for sub, _, _ in sorted(os.walk(f"{base}/{name}"), reverse=True):
                try:
                    os.rmdir(sub)
                except OSError:
                    pass


def _abandoned(names: list[str], prefix: str) -> list[str]:
    """Names ``<prefix><pid>-…`` whose grader process ``pid`` is no longer running."""
    return [name for name in names
            if name.startswith(prefix) and not _alive(name[len(prefix):].split("-")[0])]


def _alive(pid: str) -> bool:
    return pid.isdigit() and os.path.exists(f"/proc/{pid}")


def sweep_scratch(prefix: str, parent: str) -> None:
    """Remove scratch folders ``<prefix><pid>-*`` of graders that are no longer running."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in _abandoned(names, prefix):
        shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
