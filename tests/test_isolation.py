"""Isolation per submission, end to end (issue 16): `python -m autograder grade --workers 1` grades
a class in name order on one worker, so each attacker's warm child is followed by an honest
victim's from the same warm parent; and without a sandbox the command refuses to grade unless told
`--no-sandbox`, which every row then shows.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.grading import sandbox
from tests.grade_cases.chapter1 import ASSIGNMENT as A
from tests.grade_cases.chapter1 import RIGHT
from tests.helpers import answer, make_course, run, student_notebook, write_submission
from tests.test_grade import read_rows

ANSWERS = "".join(RIGHT.values())
CHANNELS = ("/dev/answers", "/dev/shm/answers", "/tmp/answers", "/dev/stdin/answers")
SETTINGS = ("import os, resource\nprint('settings', os.getpriority(os.PRIO_PROCESS, 0), sorted(os.sched_getaffinity(0)), "
            "open('/proc/self/oom_score_adj').read().strip(), resource.getrlimit(resource.RLIMIT_NOFILE))\n")
# Leave every answer where a later notebook could look (a /dev name that existed before the first
# child, replaced by a folder, among them), in a POSIX message queue and the kernel's keyring.
WRITE = f"""import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
answers = {ANSWERS!r}
os.unlink("/dev/stdin")
os.mkdir("/dev/stdin")
for path in {CHANNELS!r}:
    open(path, "w").write(answers)
queue = libc.mq_open(b"/answers", os.O_CREAT | os.O_RDWR, 0o600, None)
libc.mq_send(queue, answers.encode(), len(answers), 0)
libc.syscall(248, b"user", b"autograder-test-answers", answers.encode(), len(answers), ctypes.c_int(-4))   # add_key
"""
# What the attacker did to its warm parent, to every process it can name.
ATTACK_PARENT = f"""import os, resource
for pid in range(2, 4096):
    for call in (lambda: open(f"/proc/{{pid}}/oom_score_adj", "w").write("1000"),
                 lambda: os.setpriority(os.PRIO_PROCESS, pid, 19), lambda: os.sched_setaffinity(pid, {{0}}),
                 lambda: resource.prlimit(pid, resource.RLIMIT_NOFILE, (5, 5))):
        try:
            call()
        except OSError:
            pass
"""
# No answers of its own: whatever it finds.
READ = f"""import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
found = [open(p).read() for p in {CHANNELS!r} if os.path.exists(p)]
queue = libc.mq_open(b"/answers", os.O_RDONLY, 0, None)
buffer = ctypes.create_string_buffer(1 << 16)
if queue >= 0 and libc.mq_receive(queue, buffer, len(buffer), None) > 0:
    found.append(buffer.value.decode())
key = libc.syscall(250, 10, ctypes.c_int(-4), b"user", b"autograder-test-answers", 0)   # keyctl(KEYCTL_SEARCH)
if key >= 0 and libc.syscall(250, 11, key, buffer, len(buffer)) > 0:                     # KEYCTL_READ
    found.append(buffer.value.decode())
print("found", len(found))
for text in found:
    exec(text)
"""


def _only_first(code: str) -> dict:
    """``code`` in the first answer cell, the others empty (so they do not redefine stubs)."""
    names = list(RIGHT)
    return {names[0]: code, **{name: "" for name in names[1:]}}


@pytest.fixture(scope="module")
def isolated(tmp_path_factory):
    if not sandbox.bwrap_status()[0]:
        pytest.skip("needs bubblewrap")
    course = make_course(tmp_path_factory.mktemp("isolation"))
    student = nbformat.read(student_notebook(A), 4)
    submissions = {
        "a_honest": dict(RIGHT, layer=SETTINGS + RIGHT["layer"]),   # the control for the victim's settings
        "b_writer": _only_first(WRITE + "exec(answers)\n"),
        "c_reader": _only_first(READ),
        "d_attacker": _only_first(ATTACK_PARENT + ANSWERS),
        "e_victim": dict(RIGHT, layer=SETTINGS + RIGHT["layer"]),
        # The control for the reader: where the answers are there to find (its own), it scores.
        "f_reader_control": _only_first(WRITE + READ),
    }
    for student_id, answers in submissions.items():
        write_submission(course / "submitted", student_id, A, answer(student, answers))
    done = run([sys.executable, "-m", "autograder", "grade", "submitted", "--workers", "1", "--assignment", A,
                "--timeout", "30", "--memory", "2"], cwd=course, timeout=1200)
    return course, done, read_rows(course / "graded" / "grades.csv")


def _printed(course: Path, student_id: str) -> str:
    notebook = course / "graded" / "autograded" / student_id / A / f"{A}.ipynb"
    return "".join(o.get("text", "") for c in nbformat.read(notebook, 4).cells if c.cell_type == "code"
                   for o in c.outputs)


def test_what_a_submission_leaves_or_does_to_the_parent_reaches_no_later_one(isolated):
    course, done, rows = isolated
    assert done.returncode == 0, done.stdout
    scores = {student_id: row["score"] for student_id, row in rows.items()}
    assert scores == {"a_honest": "10", "b_writer": "10", "c_reader": "0", "d_attacker": "10", "e_victim": "10",
                      "f_reader_control": "10"}, rows
    assert "found 0" in _printed(course, "c_reader")
    assert "found 5" in _printed(course, "f_reader_control")   # four files and the queue; no key could be added
    settings = [line for line in _printed(course, "a_honest").splitlines() if line.startswith("settings")]
    assert settings and settings == [line for line in _printed(course, "e_victim").splitlines()
                                     if line.startswith("settings")]
    assert "autograder-test-answers" not in Path("/proc/keys").read_text(), "a key reached the host's keyring"


def _grade_with_path(course: Path, path: str, *args: str):
    env = dict(os.environ, PATH=path)
    import subprocess
    return subprocess.run([sys.executable, "-m", "autograder", "grade", "submitted", "--workers", "1",
                           "--assignment", A, *args], cwd=course, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=1200)


def test_without_a_sandbox_nothing_is_graded_unless_asked_and_then_every_row_says_so(tmp_path):
    course = make_course(tmp_path / "course")
    student = nbformat.read(student_notebook(A), 4)
    write_submission(course / "submitted", "s1", A, answer(student, RIGHT))
    bin_dir = str(Path(sys.executable).parent)   # the environment's scripts, and no bwrap
    missing = _grade_with_path(course, bin_dir)
    assert missing.returncode == 2, missing.stdout
    assert "no sandbox can be made" in missing.stdout and "bubblewrap is not installed" in missing.stdout
    assert not (course / "graded" / "grades.csv").exists()
    # Installed, but unable to make namespaces (as in many containers).
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "bwrap").write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    (fake / "bwrap").chmod(0o755)
    broken = _grade_with_path(course, f"{fake}:{bin_dir}")
    assert broken.returncode == 2 and "No permissions to create new namespace" in broken.stdout, broken.stdout
    assert not (course / "graded" / "grades.csv").exists()
    unsandboxed = _grade_with_path(course, bin_dir, "--no-sandbox")
    assert unsandboxed.returncode == 0, unsandboxed.stdout
    assert unsandboxed.stdout.count("--no-sandbox: student code") == 2   # at the start and at the end
    row = read_rows(course / "graded" / "grades.csv")["s1"]
    assert row["score"] == "10" and row["message"].startswith("graded without a sandbox"), row
    page = (course / "graded" / "feedback" / "s1" / A / f"{A}.html").read_text()
    assert "Graded without a sandbox" in page


def test_a_worker_that_cannot_sandbox_stops_the_run(monkeypatch):
    """On a cluster, each worker checks its own machine at its first task: one without a working
    bubblewrap stops the run (exit status 2) rather than grade unsandboxed."""
    from autograder import grade
    from autograder.grading import worker
    monkeypatch.setattr(worker, "_swept", True)   # (its first task also sweeps leftovers: not here)
    monkeypatch.setattr(worker.sandbox, "bwrap_status", lambda: (False, "bubblewrap is not installed"))
    bundle = {"grader": worker.grader_digest()}
    with pytest.raises(worker.NoSandbox):
        worker._check_worker(bundle, {"sandbox": True})
    worker._check_worker(bundle, {"sandbox": False})   # --no-sandbox: the run said so, the worker grades
    with pytest.raises(grade.Stop, match="a worker cannot sandbox student code: bubblewrap is not installed"):
        grade._stop_for(worker.NoSandbox("bubblewrap is not installed"), None)
