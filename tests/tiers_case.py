"""One tier, graded as a worker grades (``worker._execute``: the machine's limits, warm kernels):
run by tests/test_tiers.py as the user, in the namespaces and with the Python of the tier, and
by tests/vm/run.sh in the cgroup v2 machine. Prints one JSON object: the tier, what each
submission printed, and what was left running.

A correct notebook, then a fork bomb, a memory hog and a daemon, then the correct notebook again
(in the same warm parent), while another worker process (``victim``) grades the correct notebook
over and over: each of its runs must pass in time.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from autograder.grading import limits, sandbox, warm, worker
from autograder.grading.prepare import Prepared, Step

MEMORY = 2**30
SCALE = float(os.environ.get("TIERS_TIME_SCALE", "1"))   # the emulated machine of tests/vm is ~35x slower
MARKER = "autograder-tiers-daemon"
CORRECT = """import torch
x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
(x * x).sum().backward()
print("grad", x.grad.tolist())"""
# A real bomb: every process forks as long as it can, and goes on trying.
FORK_BOMB = """import os, time
started = 0
for _ in range(100000):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        while True:
            try:
                os.fork()
            except OSError:
                time.sleep(0.01)
    started += 1
print("started", started)
time.sleep(3)
print("processes", len([p for p in os.listdir("/proc") if p.isdigit()]))"""
MEMORY_HOG = f"""import os
try:
    hog = bytearray({3 * MEMORY})
    print("held", len(hog))
except MemoryError:
    print("MemoryError")
try:
    with open("/dev/shm/hog", "wb") as f:
        for _ in range(1024):
            f.write(bytes(2**20))
    print("shm held 1 GB")
except OSError as error:
    print("shm full at", os.path.getsize("/dev/shm/hog") // 2**20, "MB")"""
DAEMON = f"""import subprocess, sys
subprocess.Popen([sys.executable, "-c", "import os, time\\nif os.fork() == 0:\\n    os.setsid()\\n    time.sleep(600)",
                  "{MARKER}"], start_new_session=True).wait()
print("daemon started")"""


# What the child holds (confine.py): no capability, no_new_privs, a seccomp filter (mode 2).
PRIVILEGES = """for line in open("/proc/self/status"):
    if line.startswith(("Cap", "NoNewPrivs", "Seccomp:")):
        print(line.split()[0], line.split()[1])"""


def grade(code: str, timeout: float = 60.0) -> dict:
    prepared = Prepared(nbformat.v4.new_notebook(), Path("submission.ipynb"), steps=[Step("student", code, cell=0)])
    task = {"memory_bytes": MEMORY, "file_bytes": 64 * 2**20, "sandbox": True, "assignment_dir": tempfile.mkdtemp()}
    started = time.monotonic()
    execution = worker._execute(task, prepared, None, timeout * SCALE)
    result = execution.results[0]
    return {"status": result.status if result else execution.start_error, "seconds": round(time.monotonic() - started, 1),
            "printed": "".join(o.get("text", "") for o in result.outputs) if result else "",
            "ename": result.ename if result else "", "left": _marked(), "in_sandbox": _in_sandbox()}


def _status(pid: int | str) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":\t" in line)


def _in_sandbox() -> int:
    """Processes left below the warm parent (in its children's PID namespaces or its own): each
    one's parent chain, as the host sees it, reaches the warm parent."""
    parents = [p.pid for p in warm._parents.values() if p.pid]
    if not parents:
        return -1
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = _status(pid)
            ancestor = int(status["PPid"])
            while ancestor > 1 and ancestor != parents[0]:
                ancestor = int(_status(ancestor)["PPid"])
            count += ancestor == parents[0] and status["State"][0] not in "ZX"
        except (OSError, KeyError, ValueError):
            pass
    return count


def _marked() -> list[int]:
    """Processes of the daemon's, anywhere on this machine."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if MARKER in Path(f"/proc/{pid}/cmdline").read_text():
                found.append(int(pid))
        except OSError:
            pass
    return found


def victim(seconds: float) -> None:
    """Grade the correct notebook until ``seconds`` have passed; each run's result as a JSON line."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        print(json.dumps(grade(CORRECT, timeout=30.0)), flush=True)


def main() -> None:
    warm.STARTUP_TIMEOUT *= SCALE   # the warm parent imports torch: minutes when emulated
    warm.CONTROL_TIMEOUT *= SCALE
    if sys.argv[1:2] == ["victim"]:
        return victim(float(sys.argv[2]))
    assert warm.wanted() and sandbox.bwrap_status()[0], "warm kernels in bubblewrap"
    mechanism = limits.chosen()
    report = {"mechanism": mechanism.NAME, "describe": limits.describe(), "uid": os.getuid(),
              "sandbox_user": mechanism.sandbox_user(), "kernel": os.uname().release}
    report["correct"] = grade(CORRECT)   # the warm parent is started here, before the victim runs
    # (In the emulated machine of tests/vm, ``--no-victim``: a second worker would take minutes.)
    other = None if "--no-victim" in sys.argv else subprocess.Popen([sys.executable, __file__, "victim", "25"],
                                                                    stdout=subprocess.PIPE, text=True)
    report["fork_bomb"] = grade(FORK_BOMB, timeout=30.0)
    report["memory_hog"] = grade(MEMORY_HOG)
    report["daemon"] = grade(DAEMON)
    report["correct_after"] = grade(CORRECT)
    report["child_privileges"] = grade(PRIVILEGES)["printed"]
    report["parent_capabilities"] = [p.pid and _status(p.pid)["CapEff"] for p in warm._parents.values()]
    report["parent_starts"] = [p.starts for p in warm._parents.values()]
    out = other.communicate(timeout=600)[0] if other else ""
    report["victim"] = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
