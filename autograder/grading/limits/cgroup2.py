"""Limits through cgroup v2 (current Debian, Ubuntu, Fedora; WSL2 with systemd): a cgroup per
submission with ``memory.max`` (swap off), ``pids.max``, ``cpu.max`` and ``memory.oom.group``,
ended by ``cgroup.kill``.

The grader needs a subtree it may write: a cgroup systemd delegated to it (a normal user:
``systemd-run --user --scope -p Delegate=yes ...``; a service with ``Delegate=yes``), or, as root
elsewhere, ``autograder`` at the top of the hierarchy. cgroup v2 lets a cgroup with processes
enable no controller for its children, so in a delegated cgroup the grader first moves its own
processes (a delegated cgroup holds only the grader's) into a leaf, ``autograder-grader``, and
makes the submissions' cgroups in ``autograder`` next to it. As root in a cgroup nobody delegated
(a login session's scope, say) it moves nobody: the other processes there are not its own.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

from . import processes

NAME = "cgroup v2"
ROOT = Path("/sys/fs/cgroup")
LEAF = "autograder-grader"
CONTROLLERS = ("memory", "pids", "cpu")
PROCESSES = 128
HOW = ("run the grader in a delegated cgroup: systemd-run --user --scope -p Delegate=yes "
       "python -m autograder grade ...")


def process_limits(memory_bytes: int) -> dict:
    # As with cgroup v1: MemoryError in a process before the whole submission is out of memory.
    return {"memory_bytes": memory_bytes * 3 // 4}


def sandbox_user() -> int | None:
    return None


def _own() -> Path:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return ROOT / line[3:].lstrip("/")
    raise OSError("this process is in no cgroup v2")


def _enable(group: Path) -> None:
    wanted = set(CONTROLLERS) - set((group / "cgroup.subtree_control").read_text().split())
    if wanted:
        (group / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in sorted(wanted)))


def _delegated(group: Path) -> bool:
    """systemd marks the cgroups it delegates (Delegate=yes; systemd 251 on: trusted.delegate,
    254 on: user.delegate too); a normal user may write only a delegated one anyway."""
    if os.geteuid() != 0:
        return True
    for name in ("trusted.delegate", "user.delegate"):
        try:
            os.getxattr(group, name)
            return True
        except OSError:
            pass
    return False


def _home(own: Path) -> Path:
    """The cgroup whose child ``autograder`` holds the submissions' cgroups: the delegated one
    (ours, or the parent of the LEAF we moved to); as root in a cgroup nobody delegated, the root
    cgroup (which may hold processes and enable controllers too)."""
    if own.name == LEAF:
        return own.parent
    return own if _delegated(own) else ROOT


def _base() -> Path:
    """The cgroup the submissions' cgroups go in: ``autograder`` in :func:`_home`, with our
    processes moved out of a delegated one (into LEAF) and the controllers enabled for the
    children of both. Each process of the grader calls it; the first moves them all."""
    own = _own()
    if own.name == LEAF:
        return own.parent / "autograder"
    own = _home(own)
    if own != ROOT:
        leaf = own / LEAF
        leaf.mkdir(exist_ok=True)
        for _ in range(20):   # processes may start meanwhile
            pids = (own / "cgroup.procs").read_text().split()
            if not pids:
                break
            for pid in pids:
                try:
                    (leaf / "cgroup.procs").write_text(pid)
                except ProcessLookupError:
                    pass
    _enable(own)
    group = own / "autograder"
    group.mkdir(exist_ok=True)
    _enable(group)
    return group


class Limits:
    """A cgroup per submission: memory (no swap), processes and CPU for all its processes
    together; when one is killed for memory, all are (``memory.oom.group``)."""

    def __init__(self, name: str, memory_bytes: int, pids: int = PROCESSES, cpus: float = 1.0):
        self.path = _base() / name
        self.path.mkdir(exist_ok=True)
        for file, value in (("memory.max", memory_bytes), ("memory.swap.max", 0), ("pids.max", pids),
                            ("cpu.max", f"{int(100000 * cpus)} 100000"), ("memory.oom.group", 1)):
            target = self.path / file
            if file != "memory.swap.max" or target.exists():   # no swap accounting: no swap to limit
                target.write_text(str(value))

    @classmethod
    def existing(cls, name: str) -> "Limits":
        limits = cls.__new__(cls)
        limits.path = _base() / name
        return limits

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv``, started inside the cgroup (it joins before it runs)."""
        return ["/bin/sh", "-c", f'echo $$ > \'{self.path}/cgroup.procs\' && exec "$@"', "sh", *argv]

    def join(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def kill_all(self) -> None:
        try:
            (self.path / "cgroup.kill").write_text("1")   # Linux 5.14: every process, forks included
        except OSError:
            pass
        processes.end(self.pids)   # before 5.14; or those still exiting

    def oom_killed(self) -> bool:
        try:
            events = dict(line.split() for line in (self.path / "memory.events").read_text().splitlines())
            return int(events.get("oom_kill", 0)) > 0
        except (OSError, ValueError):
            return False

    def remove(self) -> None:
        self.kill_all()
        processes.remove_cgroup(self.path)


def names() -> set[str]:
    try:
        return {p.name for p in _base().iterdir() if p.is_dir()}
    except OSError:
        return set()


@functools.lru_cache(maxsize=None)
def available() -> tuple[bool, str]:
    if not (ROOT / "cgroup.controllers").exists():
        return False, "no cgroup v2 at /sys/fs/cgroup"
    try:
        own = _own()
        if not os.access(own / "cgroup.procs", os.W_OK) or not os.access(own / "cgroup.subtree_control", os.W_OK):
            if own.name != LEAF:
                return False, f"cgroup v2, but the grader's cgroup {own} is not delegated to it; {HOW}"
        home = _home(own)
        missing = set(CONTROLLERS) - set((home / "cgroup.controllers").read_text().split())
        if missing:
            return False, f"cgroup v2 without the {', '.join(sorted(missing))} controller(s) in {home}; {HOW}"
        probe = Limits(f"probe-{os.getpid()}", 2**30)
        probe.remove()
    except (OSError, ValueError) as error:   # the probe's name left out: every process says the same
        return False, f"cgroup v2 the grader cannot write ({type(error).__name__}: {error}); {HOW}".replace(
            f"probe-{os.getpid()}", "probe")
    return True, f"cgroup v2 (in {_base()}): memory (no swap), processes and one CPU per submission"
