"""Ending every process of a submission, given a way to list them (what a cgroup or a PID
namespace holds), when the kernel offers nothing that does it at once (``cgroup.kill``)."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Callable


def state(pid: int | str) -> str:
    """The process's state letter (R, S, D, T, Z...); X if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"


def _signal(pids: list[int], number: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, number)
        except ProcessLookupError:
            pass


def end(listed: Callable[[], list[int]], seconds: float = 5.0) -> None:
    """Stop them all first (a fork bomb killed one by one forks into the places freed: a stopped
    process forks no more), then kill them; until none is listed or ``seconds`` have passed."""
    deadline = time.monotonic() + seconds / 2
    while time.monotonic() < deadline:
        running = [pid for pid in listed() if state(pid) not in "TtZX"]
        if not running:
            break
        _signal(running, signal.SIGSTOP)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pids = listed()
        if not pids:
            return
        _signal(pids, signal.SIGKILL)
        time.sleep(0.01)


def remove_cgroup(path: Path) -> None:
    """rmdir a cgroup, retrying while its last processes exit (EBUSY until then)."""
    for _ in range(100):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)
