"""Per-submission limits, one module per mechanism behind one interface (what :mod:`execute`,
:mod:`warm` and :mod:`worker` use):

- :mod:`.cgroup2`: a cgroup v2 per submission (root, or a normal user's delegated subtree);
- :mod:`.cgroup1`: a cgroup v1 per submission (root, as on the course's CI machines);
- :mod:`.rlimits`: no usable cgroups: per-process and per-user-namespace limits of the kernel.

Each module has ``available() -> (bool, why)``, ``process_limits(memory_bytes)`` (what each
kernel process sets itself: its launch file), ``sandbox_user()`` (the uid a warm parent's sandbox
runs as, None for the grader's own), ``names()`` (its submissions' cgroups that exist, for the
sweep) and ``Limits(name, memory_bytes)``, one per submission: ``wrap(argv)`` (a kernel process
started inside), ``join(pid)`` (a warm child, before it runs student code), ``pids()``,
``kill_all()``, ``oom_killed()``, ``remove()`` and ``Limits.existing(name)``.
"""
from __future__ import annotations

import functools

from . import cgroup1, cgroup2, rlimits

MECHANISMS = (cgroup2, cgroup1, rlimits)   # the first available one is used


@functools.lru_cache(maxsize=None)
def chosen():
    """The mechanism of this machine (and user): the first available."""
    return next(m for m in MECHANISMS if m.available()[0])


def describe() -> str:
    """The limits, and why the better mechanisms are not used, for the run's first line."""
    mechanism = chosen()
    # Why not the cgroups of this machine's kind (v2, or v1 where there is no v2).
    kind = cgroup1 if cgroup2.available()[1].startswith("no cgroup v2") else cgroup2
    why_not = [m.available()[1] for m in MECHANISMS[:MECHANISMS.index(mechanism)] if m is kind]
    return mechanism.available()[1] + (f" ({why_not[0]})" if why_not else "")
