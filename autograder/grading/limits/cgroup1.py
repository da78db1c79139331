"""Limits through cgroup v1 (root, the memory, pids and cpu controllers mounted: the course's CI
machines): a cgroup per submission in each controller, below the grader's own."""
from __future__ import annotations

import functools
import os
from pathlib import Path

from . import processes

NAME = "cgroup v1"
CONTROLLERS = ("memory", "pids", "cpu")
ROOT = Path("/sys/fs/cgroup")
PROCESSES = 128


def process_limits(memory_bytes: int) -> dict:
    # Each process may allocate 3/4 of the submission's memory (RLIMIT_DATA): one that allocates too
    # much fails with MemoryError (a clear message) before the cgroup is full (where the kernel
    # reclaims for seconds, then kills).
    return {"memory_bytes": memory_bytes * 3 // 4}


def sandbox_user() -> int | None:
    return None


def _base(controller: str) -> Path:
    """Our own cgroup of ``controller`` (the grader's limits stay inside its own)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        number, names, path = line.split(":", 2)
        if controller in names.split(","):
            return ROOT / controller / path.lstrip("/") / "autograder"
    raise OSError(f"no cgroup v1 {controller} controller")   # (cgroup v2: nothing made under its root)


class Limits:
    """A cgroup per submission: memory, processes and CPU for all its processes together, and a
    way to kill every one of them."""

    def __init__(self, name: str, memory_bytes: int, pids: int = PROCESSES, cpus: float = 1.0):
        self.paths = []
        for controller in CONTROLLERS:
            path = _base(controller) / name
            path.mkdir(parents=True, exist_ok=True)
            self.paths.append(path)
        memory, pid_limit, cpu = self.paths
        (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
        swap = memory / "memory.memsw.limit_in_bytes"
        if swap.exists():
            try:
                swap.write_text(str(memory_bytes))
            except OSError:
                pass
        (pid_limit / "pids.max").write_text(str(pids))
        period = int((cpu / "cpu.cfs_period_us").read_text())
        (cpu / "cpu.cfs_quota_us").write_text(str(int(period * cpus)))

    @classmethod
    def existing(cls, name: str) -> "Limits":
        """The cgroup ``name`` as it is (made by another process), to kill what it holds and remove it."""
        limits = cls.__new__(cls)
        limits.paths = [_base(controller) / name for controller in CONTROLLERS]
        return limits

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv``, started inside the cgroup: it joins before it runs, so everything it starts
        (bubblewrap's sandbox included) is in it from the first instruction."""
        join = " && ".join(f"echo $$ > '{path}/cgroup.procs'" for path in self.paths)
        return ["/bin/sh", "-c", f'{join} && exec "$@"', "sh", *argv]

    def join(self, pid: int) -> None:
        """Move the process ``pid`` (not yet running student code) into this cgroup."""
        for path in self.paths:
            (path / "cgroup.procs").write_text(str(pid))

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.paths[1] / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def kill_all(self) -> None:
        processes.end(self.pids)

    def oom_killed(self) -> bool:
        try:
            return "oom_kill 0" not in (self.paths[0] / "memory.oom_control").read_text()
        except OSError:
            return False

    def remove(self) -> None:
        self.kill_all()
        for path in self.paths:
            processes.remove_cgroup(path)


def names() -> set[str]:
    """The submissions' cgroups that exist (for the sweep of what killed workers left)."""
    found = set()
    for controller in CONTROLLERS:
        try:
            found.update(p.name for p in _base(controller).iterdir() if p.is_dir())
        except OSError:
            continue
    return found


@functools.lru_cache(maxsize=None)
def available() -> tuple[bool, str]:
    name = f"probe-{os.getpid()}"
    try:
        probe = Limits(name, 2**30)
        probe.remove()
    except (OSError, ValueError) as error:   # the probe's name left out: every process says the same
        return False, f"no cgroup v1 controllers the grader can write ({type(error).__name__}: {error})".replace(
            name, "probe")
    return True, "cgroup v1: memory (swap included), processes and one CPU per submission"
