"""The sandbox one question of one submission runs in: OS isolation, then the worker.

Three modes, best first; the grader probes which one this machine allows and records it in
every report:

``namespaces`` (the grader runs as root)
    New mount, network, PID, IPC and UTS namespaces. The filesystem is rebuilt from an
    allow-list (system directories, the Python installation, the packages on ``sys.path``,
    all read-only; a private ``/tmp``) and entered with ``pivot_root``: solutions, hidden
    tests, other submissions and the gradebook are not in it. The network namespace has
    only a loopback (brought up, so local sockets work) and no route out. The student's
    process is PID 1 of its namespace: when it dies, or the grader kills it, every process
    it started dies too, however detached. It then drops to an unprivileged uid (one per
    parallel slot), which also makes ``RLIMIT_NPROC`` count its processes.
``userns`` (unprivileged, where user namespaces are allowed)
    The same, inside a new user namespace, with every capability dropped before student
    code runs.
``basic`` (neither is allowed)
    Resource limits, a new session, a dedicated uid when root, and a Python audit hook in
    the student's process that refuses network sockets, opening anything outside the same
    allow-list (or inside the hidden paths), starting programs and ctypes. The hook is a
    best-effort barrier (native code could get round it); the reports say so.

In every mode: a cgroup where the machine allows one (all memory, CPU time and tasks of
the tree, see :mod:`.cgroups`), ``RLIMIT_AS`` (memory), ``RLIMIT_NPROC`` (fork bombs),
``RLIMIT_CPU``, ``RLIMIT_FSIZE``, ``RLIMIT_NOFILE``, no core dumps, ``PR_SET_NO_NEW_PRIVS``,
a seccomp filter (keyrings and other shared kernel state; memfd and SysV shared memory
when no cgroup counts them), a fixed environment, and a CPU-time budget (with idle and
wall-clock backstops) enforced from outside with ``SIGKILL`` on the whole process tree
(which no ``KeyboardInterrupt`` handler can ignore).
"""

from __future__ import annotations

import math
import os
import resource
import signal
import socket
import sys
from dataclasses import asdict, dataclass, field

from coursekit.grading import _linux

MODES = ("namespaces", "userns", "basic")


@dataclass
class Limits:
    """Per-question resource limits."""

    timeout: float = 20.0  # CPU seconds for one question (loading + all its tests)
    memory_mb: int = 1024  # memory allowed on top of the preloaded interpreter
    processes: int = 16  # processes + threads of the sandbox
    file_mb: int = 16  # largest file it may write (its printed output included)
    open_files: int = 256
    tmp_mb: int = 64  # size of its private /tmp (namespace modes)
    wall: float | None = None  # wall-clock backstop; None: max(2 * timeout, timeout + 10)
    idle: float | None = None  # seconds asleep, neither running nor runnable; None: min(timeout, 5)

    def __post_init__(self) -> None:
        for name in ("timeout", "memory_mb", "processes", "file_mb", "open_files", "tmp_mb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    value > 0 and value < float("inf")):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name in ("wall", "idle"):
            value = getattr(self, name)
            if value is not None and not (0 < value < float("inf")):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")

    @property
    def idle_limit(self) -> float:
        """Seconds a question may sleep or block (measured where cgroups are available)."""
        return self.idle if self.idle is not None else min(self.timeout, 5.0)

    @property
    def wall_backstop(self) -> float:
        """Wall seconds after which a question stops even if it used little CPU (sleeping)."""
        return self.wall if self.wall is not None else max(2 * self.timeout, self.timeout + 10)


@dataclass
class Spec:
    """Everything the zygote needs to start one sandbox (sent as JSON)."""

    mode: str
    limits: Limits
    uid: int = 65534
    gid: int = 65534
    keep: list[str] = field(default_factory=list)  # namespace modes: the allow-list
    hidden: list[str] = field(default_factory=list)  # basic mode: paths the hook refuses
    root_dir: str = ""  # an empty directory to build the new root on
    workdir: str = ""  # basic mode: the working directory
    cgroup_procs: list[str] = field(default_factory=list)  # joined before anything else

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Spec:
        data = dict(data)
        data["limits"] = Limits(**data["limits"])
        return cls(**data)


def describe(mode: str, uid: int | None = None, cgroup: str | None = None) -> str:
    """One line for reports: what this mode isolates."""
    who = f", uid {uid}" if uid is not None else ""
    limits = (f"cgroup {cgroup} (all memory, CPU time and tasks of the tree)" if cgroup else
              "rlimits (no cgroup: memfd and shared memory refused)")
    common = (f"{limits} + rlimits + seccomp (keyrings, io_uring, bpf, ptrace refused) + "
              "CPU-time limit + SIGKILL of the tree")
    if mode == "namespaces":
        return ("namespaces (mount, network, pid, ipc, uts; allow-listed read-only filesystem; "
                f"private /tmp; no network{who}) + {common}")
    if mode == "userns":
        return ("user namespace (mount, network, pid, ipc, uts; allow-listed read-only "
                f"filesystem; private /tmp; no network; no capabilities) + {common}")
    return (f"basic (new session{who}; network, paths outside the allow-list, programs and "
            f"ctypes refused by a Python audit hook: best effort) + {common}")


def default_keep(hidden: list[str] = ()) -> list[str]:
    """Paths a student's Python process needs to see: the system and this Python.

    Not ``sys.path`` as such: under pytest or ``python -m`` it holds the working directory,
    which may be the repository with its solutions. Only the interpreter's own directories,
    its site-packages and the ``coursekit`` package itself; and never a directory that
    contains one of the ``hidden`` paths.
    """
    import site
    import sysconfig

    import coursekit

    paths = ["/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/sys",
             sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable)),
             os.path.dirname(os.path.realpath(coursekit.__file__))]
    paths += [p for p in sysconfig.get_paths().values()]
    paths += site.getsitepackages()
    secrets = [os.path.realpath(h) for h in hidden]
    keep = set()
    for path in paths:
        path = os.path.abspath(path)
        real = os.path.realpath(path)
        if not os.path.lexists(path) or any(
                s == real or s.startswith(real.rstrip("/") + "/") for s in secrets):
            continue
        keep.add(path)
    return sorted(keep)


# --- in the forked child ------------------------------------------------------------------------
def _limit(kind: int, value: int) -> None:
    soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, value))


def _address_space_now() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _count_own_tasks(uid: int) -> int:
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as status:
                    for line in status:
                        if line.startswith("Uid:"):
                            if int(line.split()[1]) == uid:
                                count += len(os.listdir(f"/proc/{entry}/task"))
                            break
            except OSError:
                continue
    return count


def apply_limits(limits: Limits, relative_nproc: bool = False,
                 cgroup: bool = False) -> None:
    mb = 2**20
    _limit(resource.RLIMIT_AS, _address_space_now() + limits.memory_mb * mb)
    nproc = limits.processes
    if relative_nproc:  # the limit counts every process of this uid, not just ours
        nproc += _count_own_tasks(os.getuid())
    _limit(resource.RLIMIT_NPROC, nproc)
    # the grader counts the whole tree's CPU time in a cgroup; without one this per-process
    # limit is the CPU budget itself (SIGXCPU at the soft limit, SIGKILL one second later)
    cpu = math.ceil(limits.timeout) + (2 if cgroup else 0)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    _limit(resource.RLIMIT_FSIZE, limits.file_mb * mb)
    _limit(resource.RLIMIT_NOFILE, limits.open_files)
    _limit(resource.RLIMIT_CORE, 0)


def _bind(path: str, root: str, device: bool = False) -> None:
    target = root + path
    if os.path.islink(path):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.lexists(target):
            os.symlink(os.readlink(path), target)
        return
    if os.path.isdir(path):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    _linux.mount(path, target, None, _linux.MS_BIND | _linux.MS_REC)
    flags = _linux.MS_REMOUNT | _linux.MS_BIND | _linux.MS_RDONLY | _linux.MS_NOSUID
    _linux.mount(None, target, None, flags | (0 if device else _linux.MS_NODEV))


def _outermost(paths: list[str]) -> list[str]:
    """Drop paths already visible through another kept directory (not through a symlink)."""
    kept: list[str] = []
    for path in sorted(set(paths), key=lambda p: (p.count("/"), p)):
        if not any(path.startswith(k.rstrip("/") + "/") and not os.path.islink(k)
                   for k in kept):
            kept.append(path)
    return kept


def _build_root(spec: Spec) -> None:
    root = spec.root_dir
    _linux.mount(None, "/", None, _linux.MS_REC | _linux.MS_PRIVATE)
    _linux.mount("tmpfs", root, "tmpfs", _linux.MS_NOSUID | _linux.MS_NODEV, "size=1m,mode=755")
    # the private /tmp and /dev/shm first: a kept path below /tmp (a virtualenv there) is then
    # bound on top of the fresh tmpfs instead of being hidden by it
    for path, size in (("/tmp", spec.limits.tmp_mb), ("/dev/shm", 8)):
        os.makedirs(root + path, exist_ok=True)
        _linux.mount("tmpfs", root + path, "tmpfs", _linux.MS_NOSUID | _linux.MS_NODEV,
                     f"size={size}m,mode=1777")
    for path in _outermost(spec.keep):
        if os.path.lexists(path):
            _bind(path, root)
    for name in ("null", "zero", "full", "random", "urandom"):
        _bind(f"/dev/{name}", root, device=True)
    os.makedirs(root + "/proc", exist_ok=True)
    os.makedirs(root + "/.old", exist_ok=True)


def _enter_root(spec: Spec) -> None:
    """In the new PID namespace: mount its /proc, switch to the new root, drop the old one."""
    root = spec.root_dir
    _linux.mount("proc", root + "/proc", "proc",
                 _linux.MS_NOSUID | _linux.MS_NODEV | _linux.MS_NOEXEC)
    os.chdir(root)
    _linux.pivot_root(".", ".old")
    os.chdir("/")
    _linux.umount("/.old")
    os.rmdir("/.old")
    _linux.mount(None, "/", None, _linux.MS_REMOUNT | _linux.MS_RDONLY | _linux.MS_NOSUID
                 | _linux.MS_NODEV)


def _exit_like(status: int) -> None:
    if os.WIFSIGNALED(status):
        os._exit(128 + os.WTERMSIG(status))
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 70)


def _drop_to(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def _verify_unprivileged() -> None:
    caps = _linux.capabilities()
    if caps.get("CapEff") or caps.get("CapPrm") or caps.get("CapBnd"):
        raise RuntimeError(f"capabilities were not dropped: {caps}")


def enter(spec: Spec, rpc_fd: int, out_fd: int) -> None:
    """Turn this freshly forked process into a sandbox; returns in the process to run code.

    The caller (the zygote's child) has closed every other descriptor. In the namespace
    modes this process stays outside as a waiting parent and a child becomes PID 1 of the
    new namespace; only that child returns.
    """
    _linux.prctl(_linux.PR_SET_PDEATHSIG, signal.SIGKILL)  # if the zygote dies, so do we
    for procs in spec.cgroup_procs:  # before anything: every later process is counted
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    os.setsid()
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    os.close(null)
    os.close(out_fd)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails, not kills
    if spec.mode in ("namespaces", "userns"):
        flags = (_linux.CLONE_NEWNS | _linux.CLONE_NEWNET | _linux.CLONE_NEWPID
                 | _linux.CLONE_NEWIPC | _linux.CLONE_NEWUTS)
        if spec.mode == "userns":
            uid, gid = os.getuid(), os.getgid()
            _linux.unshare(flags | _linux.CLONE_NEWUSER)
            _linux.write_id_maps("self", f"0 {uid} 1", f"0 {gid} 1")
        else:
            _linux.unshare(flags)
        _build_root(spec)
        _linux.sethostname("sandbox")
        _linux.loopback_up()
        child = os.fork()
        if child:
            os.close(rpc_fd)
            _, status = os.waitpid(child, 0)
            _exit_like(status)
        _linux.prctl(_linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        _enter_root(spec)
        apply_limits(spec.limits, cgroup=bool(spec.cgroup_procs))
        if spec.mode == "namespaces":
            _linux.drop_bounding_set()
            _drop_to(spec.uid, spec.gid)
        else:
            _linux.drop_all_capabilities()
        _linux.prctl(_linux.PR_SET_NO_NEW_PRIVS, 1)
        _linux.prctl(_linux.PR_SET_PDEATHSIG, signal.SIGKILL)  # a uid change cleared it
        _verify_unprivileged()
        os.chdir("/tmp")
        home = "/tmp"
    else:
        root = os.geteuid() == 0
        if root:
            os.chown(spec.workdir, spec.uid, spec.gid)
        apply_limits(spec.limits, relative_nproc=not root,
                     cgroup=bool(spec.cgroup_procs))
        if root:
            _drop_to(spec.uid, spec.gid)
        _linux.prctl(_linux.PR_SET_NO_NEW_PRIVS, 1)
        _linux.prctl(_linux.PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with the zygote
        os.chdir(spec.workdir)
        home = spec.workdir
    _linux.seccomp_deny(_linux.seccomp_names(memory_escapes=not spec.cgroup_procs))
    os.environ.clear()
    os.environ.update({"HOME": home, "TMPDIR": home, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
                       "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"})
    import tempfile

    tempfile.tempdir = None  # the zygote may have cached its own; use TMPDIR from now on


def run(spec: Spec, rpc_fd: int, out_fd: int) -> None:
    """The zygote's child: enter the sandbox, then serve the grader until it hangs up."""
    code, stage = 0, "sandbox setup"
    try:
        enter(spec, rpc_fd, out_fd)
        stage = "sandbox"
        sock = socket.socket(fileno=rpc_fd)
        try:
            import torch

            torch.set_num_threads(1)
        except ImportError:
            pass
        if spec.mode == "basic":
            from coursekit.grading import audit

            audit.install(spec.keep, spec.hidden, spec.workdir)
        from coursekit.grading import worker

        worker.serve(sock)
    except BaseException as error:  # noqa: B036 - report anything, then exit
        try:
            os.write(2, f"coursekit {stage} failed: {type(error).__name__}: "
                        f"{error}\n".encode())
        except OSError:
            pass
        code = 71 if stage == "sandbox setup" else 72
    finally:
        os._exit(code)
