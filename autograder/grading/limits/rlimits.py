"""Limits without cgroups (a container, a normal user without systemd's delegation): what the
kernel bounds per process and per user namespace.

- Processes: ``RLIMIT_NPROC``, which Linux (5.14 on) counts per user and user namespace: a
  sandbox's processes only, as bubblewrap gives it a user namespace of its own. The kernel never
  applies it to root (uid 0), so as root the sandbox of a warm parent runs as an unprivileged uid
  of its own (:func:`sandbox_user`). Set by the kernel process itself before any notebook code
  (``processes`` in its launch file).
- Memory: ``RLIMIT_DATA`` per process (not per submission), on top of what it holds once torch
  is imported; ``/tmp``, ``/dev/shm`` and the working folder are sized tmpfs (:mod:`sandbox`).
- Ending a submission: every process in the warm child's own PID namespace (``confine.py``),
  found through ``/proc``.
- CPU: nothing shares it fairly; a busy submission slows the others (the time limits still hold).
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

from . import processes

NAME = "rlimits"
PROCESSES = 128
SANDBOX = 2              # bubblewrap's init and the warm parent share the count with the submission
UID_BASE = 1_500_000_000  # as root: the sandbox's uid is this plus the worker's pid (one per worker)


def process_limits(memory_bytes: int) -> dict:
    return {"memory_bytes": memory_bytes, "processes": PROCESSES + SANDBOX}


def sandbox_user() -> int | None:
    """The uid a warm parent's sandbox runs as: as root, one no other process has (the count of
    RLIMIT_NPROC is then this worker's submissions' only); otherwise ours (None)."""
    return UID_BASE + os.getpid() if os.geteuid() == 0 else None


def _namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


class Limits:
    """The processes of one submission: those of the PID namespace of the process :meth:`join`
    was given, but for its ancestors there (the sandbox's own processes)."""

    def __init__(self, name: str, memory_bytes: int, pids: int = PROCESSES, cpus: float = 1.0):
        self.name, self.namespace, self.keep = name, None, set()

    @classmethod
    def existing(cls, name: str) -> "Limits":
        return cls(name, 0)

    def wrap(self, argv: list[str]) -> list[str]:
        # A kernel process of its own: its sandbox (PID namespace) dies with it, and the kernel
        # sets its own limits.
        return argv

    def join(self, pid: int) -> None:
        """``pid``: a warm child not yet running student code (its limits it sets itself)."""
        self.namespace = _namespace(pid)
        ancestor = _parent(pid)
        while ancestor and _namespace(ancestor) == self.namespace:
            self.keep.add(ancestor)
            ancestor = _parent(ancestor)

    def pids(self) -> list[int]:
        if self.namespace is None:
            return []
        return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in self.keep
                and _namespace(int(p)) == self.namespace and processes.state(p) not in "ZX"]

    def kill_all(self) -> None:
        processes.end(self.pids)

    def oom_killed(self) -> bool:
        return False   # no per-submission memory: a process over its own limit gets MemoryError

    def remove(self) -> None:
        self.kill_all()


def names() -> set[str]:
    return set()


@functools.lru_cache(maxsize=None)
def available() -> tuple[bool, str]:
    where = "the warm sandbox's own uid" if os.geteuid() == 0 else "its user namespace"
    return True, (f"no cgroups: processes per submission (RLIMIT_NPROC in {where}), memory per process "
                  "(RLIMIT_DATA), sized tmpfs; no CPU fairness, no memory limit per submission")
