"""What confining a warm child costs per submission (issue 16): each mechanism timed on its own.

    .venv/bin/python benchmarks/bench_confine.py [--forks 50]

In a warm parent's sandbox (bubblewrap, as the grader makes it), a small Python forks ``--forks``
children for each step and prints the median time from fork to the child's report, with each
step added to the ones before it (the child does them in this order before any notebook code):

* ``fork``: a plain fork, the child reports at once (the floor);
* ``pid namespace``: the parent's setns + unshare(CLONE_NEWPID) before the fork (``confine.next_child_alone``);
* ``mounts``: the child's own mount and IPC namespaces, /proc, /tmp, /dev, /dev/shm, /dev/mqueue
  and working folder (``confine.private_mounts``);
* ``capabilities``: bounding set, securebits, capset, no_new_privs (``confine.drop_privileges``);
* ``seccomp``: loading the filter, built once in the parent (``syscall_filter.build().load()``).

The parent here has imported nothing heavy: the grader's parent holds torch, whose fork costs more
(page tables), the same with or without these steps. Timings only; never asserted in tests.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograder.grading import sandbox  # noqa: E402

INSIDE = r"""
import os, statistics, sys, time
sys.path.insert(0, "/opt/autograder-kernel")
import confine, syscall_filter
flt = syscall_filter.build()
own = os.open("/proc/self/ns/pid", os.O_RDONLY)
STEPS = ["fork", "pid namespace", "mounts", "capabilities", "seccomp"]
forks = int(sys.argv[1])
for depth, name in enumerate(STEPS):
    times = []
    for _ in range(forks):
        read, write = os.pipe()
        started = time.perf_counter()
        if depth >= 1:
            confine.next_child_alone(own)
        pid = os.fork()
        if pid == 0:
            if depth >= 2:
                confine.private_mounts("/tmp", 2**20, 2**20)   # the working folder: a second tmpfs
            if depth >= 3:
                confine.drop_privileges()
            if depth >= 4:
                flt.load()
            os.write(write, b"x")
            os._exit(0)   # (a step that fails leaves the read below waiting: the traceback says why)
        os.read(read, 1)
        times.append(time.perf_counter() - started)
        os.waitpid(pid, 0)
        os.close(read)
        os.close(write)
    print(f"{name:15s} {1000 * statistics.median(times):7.2f} ms (median of {forks})")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forks", type=int, default=50)
    args = parser.parse_args()
    argv = sandbox.command([sandbox.python(), "-I", "-c", INSIDE, str(args.forks)], Path("/nonexistent"), Path("/"),
                           check=True, warm=True)
    subprocess.run(argv, check=True)


if __name__ == "__main__":
    main()
