"""The grader's tiers on this machine (autograder/grading/limits/): each graded with warm kernels by
tests/tiers_case.py (a correct notebook, a fork bomb, a memory hog, a daemon, the correct notebook
again, and a classmate graded meanwhile by another worker process), as root with cgroup v1, as
root without cgroups (/sys/fs/cgroup read-only in a mount namespace of its own, as in a
container), and as a normal user (Debian's /usr/bin/python3, which a normal user can run). The
cgroup v2 tiers run in a virtual machine: ``make test-vm`` (tests/vm/)."""
from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.grading import limits, sandbox

ROOT = Path(__file__).resolve().parent.parent
CASE = ROOT / "tests" / "tiers_case.py"
USER = "autograder-tiers"
USER_VENV = Path("/opt/autograder-tiers-venv")   # (/var/tmp is not the host's in tests/vm's machine)
SYSTEM_PYTHON = "/usr/bin/python3"
# What the grader's workers and kernels import (the course's whole environment is not needed to
# grade), at the versions of requirements.txt.
GRADER_PACKAGES = ("torch", "numpy", "ipython", "ipykernel", "jupyter_client", "nbformat", "nbgrader", "pyzmq",
                   "matplotlib", "traitlets", "pyseccomp")

pytestmark = pytest.mark.skipif(not (sandbox.bwrap_status()[0] and os.geteuid() == 0),
                                reason="needs bubblewrap and root (to make the tiers)")


def run_case(argv: list[str]) -> dict:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def check(report: dict, victim: bool = True) -> None:
    """Warm kernels; each submission ended, nothing left, the classmate unharmed."""
    for name in ("correct", "correct_after"):
        assert (report[name]["status"], report[name]["printed"]) == ("ok", "grad [2.0, 4.0, 6.0]\n"), report[name]
    bomb = report["fork_bomb"]
    # With one CPU for the whole submission (cgroups) the bomb may reach its time limit: either is right.
    assert bomb["status"] in ("ok", "timeout") and "processes" in bomb["printed"], bomb
    processes = int(bomb["printed"].split("processes ")[1])
    assert processes <= limits.rlimits.PROCESSES + 10, f"the fork bomb reached {processes} processes"
    assert "MemoryError" in report["memory_hog"]["printed"], report["memory_hog"]
    assert "shm full at 64 MB" in report["memory_hog"]["printed"], report["memory_hog"]
    assert report["daemon"]["printed"] == "daemon started\n"
    for name in ("correct", "fork_bomb", "memory_hog", "daemon", "correct_after"):
        assert report[name]["left"] == [], f"{name} left a process running"
        assert report[name]["in_sandbox"] == 0, f"{name} left a process in the warm parent's sandbox"
    # The warm parent holds exactly CAP_SYS_ADMIN and CAP_SETPCAP (bits 21 and 8) to make each
    # child's namespaces; the child none, with no_new_privs and a seccomp filter.
    assert report["parent_capabilities"] == [f"{1 << 21 | 1 << 8:016x}"], report["parent_capabilities"]
    held = dict(line.split() for line in report["child_privileges"].splitlines())
    assert {k: v for k, v in held.items() if k.startswith("Cap")} == {
        k: "0" * 16 for k in ("CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:")}, held
    assert (held["NoNewPrivs:"], held["Seccomp:"]) == ("1", "2"), held
    assert report["parent_starts"] == [1], "a submission's processes could not be ended without restarting the parent"
    if not victim:
        return
    victim = report["victim"]
    assert len(victim) >= 2 and all(v["status"] == "ok" and v["printed"] == "grad [2.0, 4.0, 6.0]\n" for v in victim), victim
    assert max(v["seconds"] for v in victim[1:]) < 10, "the classmate graded meanwhile was slowed down"


@pytest.mark.skipif(limits.chosen() is not limits.cgroup1, reason="this machine has no cgroup v1 the grader can write")
def test_cgroup_v1_as_root():
    report = run_case([sys.executable, str(CASE)])
    assert report["mechanism"] == "cgroup v1"
    check(report)


def test_no_cgroups_as_root():
    """As in a container: the cgroups cannot be written. RLIMIT_NPROC does not bind uid 0, so the
    warm parent's sandbox runs as a uid of its own."""
    if shutil.which("unshare") is None:
        pytest.skip("needs util-linux's unshare")
    read_only = ('findmnt -rn -o TARGET -R /sys/fs/cgroup | while read m; do mount -o remount,bind,ro "$m"; done; '
                 'exec "$@"')
    report = run_case(["unshare", "-m", "sh", "-c", read_only, "sh", sys.executable, str(CASE)])
    assert report["mechanism"] == "rlimits" and report["uid"] == 0
    assert report["sandbox_user"] > limits.rlimits.UID_BASE
    assert "no CPU fairness" in report["describe"] and "Read-only file system" in report["describe"]
    check(report)


@pytest.fixture(scope="module")
def normal_user() -> tuple[str, Path]:
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip(f"needs {SYSTEM_PYTHON}")
    return make_normal_user()


def make_normal_user() -> tuple[str, Path]:
    """A normal user, and a virtual environment of Debian's Python for it with what the grader
    needs (made once, kept in /opt; tests/vm/run.sh uses them too)."""
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", USER], check=True)
    python = USER_VENV / "bin" / "python"
    pins = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
            if line.split("==")[0].strip().lower().replace("-", "_") in GRADER_PACKAGES]
    marker = USER_VENV / ".complete"   # the pins it was made with: a new one is installed into it
    if not python.exists():
        shutil.rmtree(USER_VENV, ignore_errors=True)
        USER_VENV.mkdir()
        shutil.chown(USER_VENV, USER)
        subprocess.run(["su", USER, "-s", "/bin/sh", "-c", f"{SYSTEM_PYTHON} -m venv {USER_VENV}"], check=True)
    if not marker.exists() or marker.read_text() != " ".join(pins):
        install = f"{python} -m pip install -q {' '.join(pins)} && echo -n '{' '.join(pins)}' > {marker}"
        subprocess.run(["su", USER, "-s", "/bin/sh", "-c", install], check=True, timeout=1800)
    return USER, python


def test_no_cgroups_as_a_normal_user(normal_user):
    user, python = normal_user
    report = run_case(["su", user, "-s", "/bin/sh", "-c",
                       f"cd {ROOT} && PYTHONPATH={ROOT} exec {python} {CASE}"])
    assert report["mechanism"] == "rlimits" and report["uid"] != 0 and report["sandbox_user"] is None
    assert "no CPU fairness" in report["describe"]
    check(report)
