"""A warm child's own namespaces, mounts and privileges (runs inside the sandbox, beside kernel.py;
no course knowledge).

The warm parent (``kernel.py --warm``) holds CAP_SYS_ADMIN and CAP_SETPCAP in the sandbox's user
namespace, and nothing else; it never runs notebook code. Before each fork it asks for a new PID
namespace for its next child (:func:`next_child_alone`): the child is PID 1 there, so it cannot
name the parent (or any earlier child) to signal, ``prlimit``, renice, ``ptrace`` or re-pin it,
and everything the child starts dies with it. The child then (:func:`private_mounts`) takes mount
and IPC namespaces of its own, with a fresh ``/proc`` of its PID namespace, and fresh tmpfs
``/tmp``, ``/dev`` (the few device nodes a program needs), ``/dev/shm``, ``/dev/mqueue`` and
working folder: what it writes there, its System V and POSIX IPC objects, go with its last process.
Last (:func:`drop_privileges`) it gives up every capability for good and sets ``no_new_privs``;
:mod:`syscall_filter` then closes the system calls no notebook needs.
"""
from __future__ import annotations

import ctypes
import os

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWPID = 0x00020000, 0x08000000, 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = (
    1, 2, 4, 8, 32, 4096, 8192, 16384, 1 << 18)
# What of /proc writes to the whole machine, read-only as bubblewrap makes it (uid 0 in the sandbox
# is the host's root for the permission bits of /proc/sys).
PROC_READ_ONLY = ("sys", "sysrq-trigger", "irq", "bus")
PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 24, 28, 38, 47, 4
# SECBIT_NOROOT, SECBIT_NO_SETUID_FIXUP and SECBIT_KEEP_CAPS off, each locked: uid 0 in the
# sandbox gains no capability by running a program.
SECUREBITS = 0b101111
LINUX_CAPABILITY_VERSION_3 = 0x20080522
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
         "stderr": "/proc/self/fd/2"}

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                       data.encode() if data else None), f"mount {target}")


def next_child_alone(own_pid_namespace: int) -> None:
    """The next fork's child is PID 1 of a new PID namespace. (A process's children all go to the
    one namespace it last unshared, so the parent first returns to its own, an open descriptor of
    ``/proc/self/ns/pid`` taken at start, then unshares a new one.)"""
    _check(_libc.setns(own_pid_namespace, CLONE_NEWPID), "setns to the parent's PID namespace")
    _check(_libc.unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID)")


def _mounts_below(folder: str) -> dict[str, int]:
    """The sandbox's own mounts below ``folder`` (the environment, when it lives under /tmp), each
    with a descriptor to mount it again once ``folder`` is covered (nearest ones only: a bind with
    MS_REC brings those below them)."""
    with open("/proc/self/mountinfo") as f:
        points = sorted({line.split()[4] for line in f if line.split()[4].startswith(folder + "/")})
    top = [p for p in points if not any(p.startswith(q + "/") for q in points)]
    return {p: os.open(p, os.O_PATH | os.O_CLOEXEC) for p in top}


def _cover(folder: str, fstype: str, flags: int, data: str | None = None) -> None:
    """A fresh ``fstype`` over ``folder``, with the sandbox's mounts below it kept in place."""
    kept = _mounts_below(folder)
    _mount(fstype, folder, fstype, flags, data)
    for path, fd in kept.items():
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            os.makedirs(path, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "w").close()
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
        os.close(fd)


def private_mounts(cwd: str, cwd_bytes: int, tmp_bytes: int) -> None:
    """In the child, PID 1 of its namespace: own mount and IPC namespaces; fresh /proc, /tmp, /dev,
    /dev/shm, /dev/mqueue and working folder over the parent's (which stay out of reach below)."""
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWIPC), "unshare(CLONE_NEWNS | CLONE_NEWIPC)")
    _mount("none", "/", None, MS_REC | MS_PRIVATE)   # nothing mounted here reaches the parent
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for name in PROC_READ_ONLY:
        path = f"/proc/{name}"
        if os.path.exists(path):
            _mount(path, path, None, MS_BIND | MS_REC)
            _mount(path, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _cover("/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_bytes},mode=1777")
    dev = "/tmp/.dev"   # built aside, then moved over /dev
    os.mkdir(dev)
    _mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=755")
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            open(f"{dev}/{name}", "w").close()
            _mount(f"/dev/{name}", f"{dev}/{name}", None, MS_BIND)
    for name, target in LINKS.items():
        os.symlink(target, f"{dev}/{name}")
    os.mkdir(f"{dev}/shm")
    os.mkdir(f"{dev}/mqueue")
    _mount(dev, "/dev", None, MS_MOVE)
    os.rmdir(dev)
    _cover("/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_bytes},mode=1777")
    _mount("mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC)   # this IPC namespace's queues
    _mount("tmpfs", cwd, "tmpfs", MS_NOSUID | MS_NODEV, f"size={cwd_bytes},mode=755")
    os.makedirs("/tmp/home")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_privileges() -> None:
    """No capability, now or after any exec (bounding set emptied, securebits locked), and
    ``no_new_privs`` (no setuid or file-capability gain; a seccomp filter may then be installed)."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for cap in range(last + 1):
        _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"dropping capability {cap} from the bounding set")
    _check(_libc.prctl(PR_SET_SECUREBITS, SECUREBITS, 0, 0, 0), "securebits")
    _check(_libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "ambient capabilities")
    header, data = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
