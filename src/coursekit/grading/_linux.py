"""Thin ctypes wrappers for the Linux calls the sandbox needs and Python 3.10 lacks."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import platform
import socket
import struct

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2

PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP = 1, 4, 24
PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 28, 38, 47
PR_SET_CHILD_SUBREAPER, PR_CAP_AMBIENT_CLEAR_ALL = 36, 4
SECBIT_ALL_LOCKED = 0xEF  # NOROOT, NO_SETUID_FIXUP, KEEP_CAPS off, NO_CAP_AMBIENT_RAISE; all locked

_SYSCALLS = {"x86_64": {"pivot_root": 155, "capset": 126},
             "aarch64": {"pivot_root": 41, "capset": 91}}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _b(path: str | None) -> bytes | None:
    return None if path is None else os.fsencode(path)


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)),
           f"mount {target}")


def umount(target: str, flags: int = MNT_DETACH) -> None:
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    _check(_libc.prctl(option, arg2, arg3, 0, 0), f"prctl {option}")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


def pivot_root(new_root: str, put_old: str) -> None:
    number = _SYSCALLS.get(platform.machine(), {}).get("pivot_root")
    if number is None:
        raise OSError(errno.ENOSYS, "pivot_root: unknown syscall number on this machine")
    _check(_libc.syscall(number, _b(new_root), _b(put_old)), "pivot_root")


def drop_all_capabilities() -> None:
    """Empty bounding, ambient, effective, permitted and inheritable sets, and lock them."""
    number = _SYSCALLS.get(platform.machine(), {}).get("capset")
    if number is None:
        raise OSError(errno.ENOSYS, "capset: unknown syscall number on this machine")
    prctl(PR_SET_SECUREBITS, SECBIT_ALL_LOCKED)
    drop_bounding_set()
    header = struct.pack("Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = bytes(24)  # two (effective, permitted, inheritable) triples of zeros
    _check(_libc.syscall(number, header, data), "capset")


def drop_bounding_set() -> None:
    """No capability can come back through execve (needs CAP_SETPCAP, so do this first)."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for cap in range(last + 1):
        prctl(PR_CAPBSET_DROP, cap)
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


def capabilities() -> dict[str, int]:
    """The CapEff/CapPrm/CapBnd/CapAmb masks of this process (for verification)."""
    caps = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Cap"):
                key, value = line.split(":")
                caps[key] = int(value.strip(), 16)
    return caps


def loopback_up() -> None:
    """A fresh network namespace has only ``lo``, and it is down; bring it up."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, siocgifflags, request))[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sH22x", b"lo", flags | iff_up))


def write_id_maps(pid: str, uid_line: str, gid_line: str) -> None:
    with open(f"/proc/{pid}/setgroups", "w") as f:
        f.write("deny")
    with open(f"/proc/{pid}/uid_map", "w") as f:
        f.write(uid_line)
    with open(f"/proc/{pid}/gid_map", "w") as f:
        f.write(gid_line)


# --- seccomp: a few system calls refused with EPERM ---------------------------------------------
# Kernel state that namespaces do not separate: the per-uid keyrings (keyctl and friends) would
# carry data from one student to the next sandbox of the same uid. io_uring, bpf, perf and
# userfaultfd are not needed by Python code and widen the kernel surface. Without a memory
# cgroup, memfd_create and shmget are refused too: their memory escapes RLIMIT_AS.
_SECCOMP = {
    "x86_64": (0xC000003E, {"add_key": 248, "request_key": 249, "keyctl": 250, "ptrace": 101,
                            "perf_event_open": 298, "bpf": 321, "userfaultfd": 323,
                            "io_uring_setup": 425, "io_uring_enter": 426,
                            "io_uring_register": 427, "process_vm_readv": 310,
                            "process_vm_writev": 311, "memfd_create": 319, "shmget": 29}),
    "aarch64": (0xC00000B7, {"add_key": 217, "request_key": 218, "keyctl": 219, "ptrace": 117,
                             "perf_event_open": 241, "bpf": 280, "userfaultfd": 282,
                             "io_uring_setup": 425, "io_uring_enter": 426,
                             "io_uring_register": 427, "process_vm_readv": 270,
                             "process_vm_writev": 271, "memfd_create": 279, "shmget": 194}),
}
MEMORY_ESCAPES = ("memfd_create", "shmget")
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def seccomp_deny(names: list[str]) -> list[str]:
    """Install a filter refusing ``names`` with EPERM (and other ABIs outright).

    Needs ``no_new_privs``. Returns the names refused; raises OSError on an unknown machine.
    """
    arch, numbers = _SECCOMP.get(platform.machine(), (None, {}))
    if arch is None:
        raise OSError(errno.ENOSYS, "seccomp: unknown syscall numbers on this machine")
    ld_w_abs, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, kill, eperm = 0x7FFF0000, 0x80000000, 0x00050000 | errno.EPERM
    chosen = [n for n in names if n in numbers]
    program = [(ld_w_abs, 0, 0, 4),  # seccomp_data.arch
               (jeq, 1, 0, arch), (ret, 0, 0, kill),  # another ABI (int 0x80): no
               (ld_w_abs, 0, 0, 0),  # seccomp_data.nr
               (jge, 0, 1, 0x40000000), (ret, 0, 0, eperm)]  # x32 numbers: no
    for name in chosen:
        program += [(jeq, 0, 1, numbers[name]), (ret, 0, 0, eperm)]
    program.append((ret, 0, 0, allow))
    filters = (_SockFilter * len(program))(*(_SockFilter(*ins) for ins in program))
    prog = _SockFprog(len(program), filters)
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0),
           "seccomp")
    return chosen


def seccomp_names(memory_escapes: bool) -> list[str]:
    """The calls a sandbox refuses: always the shared-state ones, and the memory escapes when
    no cgroup counts their memory."""
    _, numbers = _SECCOMP.get(platform.machine(), (None, {}))
    return [n for n in numbers if memory_escapes or n not in MEMORY_ESCAPES]
