"""`python -m autograder grade` on dask.distributed: a cluster of separate processes reached by
address (workers that cannot see the course folder: everything a task needs travels with it), a
worker killed mid-run (nothing lost, nothing twice), and the runs that must stop (exit 2) because
the solutions themselves cannot be graded. The other grading tests (tests/test_grade.py) go
through the default LocalCluster.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from nbgrader.api import Gradebook

from tests.helpers import (ROOT, fill_in_solutions, make_course, require, run, source_notebook,
                           student_notebook, write_submission)

A = "01_forward_pass_exercises"
DASK = str(Path(sys.executable).parent / "dask")
ALLOWED_FAILURES = 1   # the cluster's distributed.scheduler.allowed-failures: a task may lose one worker


def grade(course: Path, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "autograder", "grade", *args], cwd=course, timeout=timeout)


def csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def notebooks():
    source = nbformat.read(source_notebook(A), 4)
    student = nbformat.read(student_notebook(A), 4)
    return fill_in_solutions(student, source), student


def with_cell(notebook, code: str):
    changed = nbformat.from_dict(notebook)
    changed.cells.append(nbformat.v4.new_code_cell(code))
    return changed


def _wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"waited {seconds:g} s for {what}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``dask scheduler`` and two ``dask worker`` processes on loopback. The workers run in a
    mount namespace where the folder holding the courses is an empty tmpfs: they cannot read the
    solutions, the submissions or the output folder, only what the tasks carry."""
    require("bwrap")   # the workers run under bubblewrap
    from distributed import Client
    courses = tmp_path_factory.mktemp("courses")
    home = tmp_path_factory.mktemp("cluster")
    scheduler_file = home / "scheduler.json"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=str(ALLOWED_FAILURES),
               DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION="1.0")  # as instructors.md advises
    processes = []

    def start(argv, log):
        processes.append(subprocess.Popen(argv, cwd=home, env=env, stdout=open(home / log, "w"),
                                          stderr=subprocess.STDOUT, start_new_session=True))

    client = None
    try:   # whatever fails below, every process started so far is stopped
        start([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file", str(scheduler_file)],
              "scheduler.log")
        _wait_for(scheduler_file.exists, 120, "the scheduler file")
        for k in range(2):
            start(["bwrap", "--dev-bind", "/", "/", "--tmpfs", str(courses), DASK, "worker", "--scheduler-file",
                   str(scheduler_file), "--nthreads", "1", "--nworkers", "1"], f"worker{k}.log")
        client = Client(scheduler_file=str(scheduler_file), timeout=60)
        client.wait_for_workers(2, timeout=300)
        yield {"address": json.loads(scheduler_file.read_text())["address"], "client": client, "courses": courses,
               "home": home}
    finally:
        if client is not None:
            client.close()
        for process in reversed(processes):   # each in a session of its own: its group is all it started
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            except ProcessLookupError:   # the group is gone: reap its leader
                process.wait()


def test_a_class_is_graded_on_a_cluster_that_shares_no_folder(cluster):
    course = make_course(cluster["courses"] / "class")
    assert cluster["client"].run(os.path.exists, str(course / "solutions")) == {
        address: False for address in cluster["client"].scheduler_info()["workers"]}, "the workers must not see it"
    full, blank = notebooks()
    submitted = course / "submitted"
    write_submission(submitted, "full", A, full)
    write_submission(submitted, "blank", A, blank)
    # A file next to the notebook, which the notebook reads; a symbolic link, never followed.
    write_submission(submitted, "data", A, with_cell(full, "print(open('notes.txt').read())"))
    (submitted / "data" / A / "notes.txt").write_text("carried by the task")
    write_submission(submitted, "linked", A, full)
    (submitted / "linked" / A / "elsewhere.txt").symlink_to("/etc/hostname")
    write_submission(submitted, "renamed", A, full, name="my notebook.ipynb")
    (submitted / "missing" / "another_assignment").mkdir(parents=True)

    done = grade(course, "submitted", "--scheduler", cluster["address"], "--timeout", "12", "--assignment", A)
    assert done.returncode == 0, done.stdout
    assert "on the dask cluster at" in done.stdout and "6/6 graded" in done.stdout
    rows = {r["student_id"]: r for r in csv_rows(course / "graded" / "grades.csv")}
    assert sorted(rows) == ["blank", "data", "full", "linked", "missing", "renamed"]
    assert {s: (r["score"], r["status"]) for s, r in rows.items()} == {
        "full": ("10", "ok"), "blank": ("0", "ok"), "data": ("10", "ok"), "linked": ("10", "ok"),
        "renamed": ("10", "ok"), "missing": ("0", "error")}, done.stdout
    assert "symbolic links: elsewhere.txt" in rows["linked"]["message"]
    assert "renamed" in rows["renamed"]["message"] and "nothing submitted" in rows["missing"]["message"]
    # What the workers sent back, written by the command: feedback pages, executed notebooks, gradebook.
    out = course / "graded"
    executed = nbformat.read(out / "autograded" / "data" / A / f"{A}.ipynb", 4)
    assert "carried by the task" in "".join(o.get("text", "") for o in executed.cells[-1].outputs)
    for student in ("full", "blank", "data", "linked", "renamed", "missing"):
        assert (out / "feedback" / student / A / f"{A}.html").is_file(), student
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        assert gb.find_submission(A, "full").score == 10 and gb.find_submission(A, "blank").score == 0

    again = grade(course, "submitted", "--scheduler", cluster["address"], "--timeout", "12", "--assignment", A)
    assert again.returncode == 0 and "grading 0 of 6 submissions" in again.stdout, again.stdout


def _worker_running(client, student: str) -> int | None:
    """The pid of the worker process executing ``student``'s task, once its kernel runs."""
    for address, keys in client.processing().items():
        if not any(f"-{student}-" in str(key) for key in keys):
            continue
        pid = client.run(os.getpid, workers=[address], on_error="ignore").get(address)
        try:
            if isinstance(pid, int) and any(_is_kernel(p) for p in psutil.Process(pid).children(recursive=True)):
                return pid
        except psutil.NoSuchProcess:
            pass
    return None


def _is_kernel(process: psutil.Process) -> bool:
    """A kernel running a notebook: a kernel process of its own, or a child forked from the warm
    parent (which the worker keeps, running or not, from the start of the run)."""
    try:
        command = " ".join(process.cmdline())
        return "kernel.py" in command and ("--warm" not in command or "kernel.py" in " ".join(
            process.parent().cmdline()))
    except (psutil.NoSuchProcess, AttributeError):
        return False


def test_each_worker_starts_its_warm_parent_as_the_run_starts_and_keeps_it(cluster):
    """What the command asks of every worker as it starts (worker.prestart): the worker's warm
    parent starts before any task, and stays (bubblewrap kills its sandbox when the thread that
    started it ends: the starting thread must live as long as the worker)."""
    from autograder.grading import sandbox, worker
    if not sandbox.bwrap_status()[0]:
        pytest.skip("warm kernels need bubblewrap")
    client = cluster["client"]
    settings = {"memory_bytes": 3 * 2**30, "file_bytes": 2**28, "timeout": 30.0, "sandbox": True}
    client.run(worker.prestart, settings)

    def _warm_parent() -> int | None:   # run on a worker (sent by value): its ready parent's pid
        from autograder.grading import warm
        running = [p.pid for p in warm._parents.values() if p.pid is not None and p.alive()]
        return running[0] if running else None

    ready = _wait_for(lambda: (lambda found: found if all(found.values()) else None)(client.run(_warm_parent)), 180,
                      "a warm parent ready under each worker")
    assert len(ready) == 2
    time.sleep(5)
    assert client.run(_warm_parent) == ready, "the same parents, still running"


def test_killed_workers_lose_no_row_and_a_submission_that_kills_them_gets_an_error_row(cluster):
    client = cluster["client"]
    course = make_course(cluster["courses"] / "killed")
    full, blank = notebooks()
    submitted = course / "submitted"
    write_submission(submitted, "a_sleeper", A, with_cell(full, "import time\ntime.sleep(150)"))
    for k in range(4):
        write_submission(submitted, f"s{k}", A, full if k % 2 else blank)
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "grade", "submitted", "--scheduler",
                             cluster["address"], "--timeout", "200"], cwd=course, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}"))
    try:
        # Once: the task goes to another worker and its row comes once.
        os.kill(_wait_for(lambda: _worker_running(client, "s0"), 600, "s0's kernel"), signal.SIGKILL)
        # One more time than the cluster allows: dask gives the submission up.
        for _ in range(ALLOWED_FAILURES + 1):
            os.kill(_wait_for(lambda: _worker_running(client, "a_sleeper"), 600, "a_sleeper's kernel"),
                    signal.SIGKILL)
        output, _ = proc.communicate(timeout=1200)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    rows = csv_rows(course / "graded" / "grades.csv")
    assert sorted(r["student_id"] for r in rows) == ["a_sleeper", "s0", "s1", "s2", "s3"], "every row, once"
    by_id = {r["student_id"]: r for r in rows}
    for k in range(4):
        assert (by_id[f"s{k}"]["score"], by_id[f"s{k}"]["status"]) == ("10" if k % 2 else "0", "ok"), output
    sleeper = by_id["a_sleeper"]
    assert sleeper["status"] == "error" and f"killed {ALLOWED_FAILURES + 1} grader workers" in sleeper["message"]
    # Not cached: the next run grades it again (and only it).
    cached = course / "graded" / ".autograder" / "results"
    assert sorted(p.parent.name for p in cached.rglob("*.json")) == ["s0", "s1", "s2", "s3"]


# --- When the run itself cannot proceed ----------------------------------------------------------

def test_solutions_that_fail_their_tests_stop_the_run_before_any_student(tmp_path):
    course = make_course(tmp_path)
    source_path = course / "solutions" / A / f"{A}.ipynb"
    source = nbformat.read(source_path, 4)
    (cell,) = [c for c in source.cells if c.metadata.get("nbgrader", {}).get("solution") and "def layer" in c.source]
    cell.source = cell.source.replace("torch.sigmoid(", "torch.tanh(")
    nbformat.write(source, source_path)
    full, blank = notebooks()
    write_submission(course / "submitted", "full", A, full)
    write_submission(course / "submitted", "blank", A, blank)
    done = grade(course, "submitted", "--workers", "2", "--timeout", "12")
    assert done.returncode == 2, done.stdout
    assert f"the solutions of {A} fail their own tests" in done.stdout and "test_layer" in done.stdout
    assert "What to do: fix the source notebook" in done.stdout
    assert csv_rows(course / "graded" / "grades.csv") == [], "no student row may be recorded"
    state = course / "graded" / ".autograder"
    assert not list((state / "results").rglob("*.json")) and not list((state / "trusted").rglob("*.json")), \
        "nothing cached: the next run grades them"


def test_a_kernel_that_cannot_start_stops_the_run_and_says_what_to_do(tmp_path, monkeypatch):
    """20 MB is too little memory for a kernel process to start (it imports torch): every student
    would get an error row that means nothing, so the run stops. (A warm kernel is forked from a
    parent that has imported torch already, so only a kernel process of its own, the `cold` kind,
    meets this limit at start.)"""
    monkeypatch.setenv("AUTOGRADER_KERNELS", "cold")
    course = make_course(tmp_path)
    write_submission(course / "submitted", "full", A, notebooks()[0])
    done = grade(course, "submitted", "--workers", "1", "--memory", "0.02")
    assert done.returncode == 2, done.stdout
    assert "the grading kernel does not start" in done.stdout and "What to do" in done.stdout
    assert csv_rows(course / "graded" / "grades.csv") == []


def test_another_checkout_grades_with_its_own_package(tmp_path):
    """The environment made here (`make env`: the package installed editable from this checkout),
    the command run in another checkout whose grader differs: the command, its workers and the
    sandboxed kernel all use the other checkout's package, and the class is graded."""
    import shutil
    other = make_course(tmp_path / "other")
    shutil.copytree(ROOT / "autograder", other / "autograder", ignore=shutil.ignore_patterns("__pycache__"))
    with open(other / "autograder" / "grading" / "kernel.py", "a") as f:
        f.write("\n# this checkout's kernel differs from the installed one\n")
    full, blank = notebooks()
    write_submission(other / "submitted", "full", A, full)
    write_submission(other / "submitted", "blank", A, blank)
    done = grade(other, "submitted", "--workers", "2", "--timeout", "12")
    assert done.returncode == 0, done.stdout
    rows = {r["student_id"]: (r["score"], r["status"]) for r in csv_rows(other / "graded" / "grades.csv")}
    assert rows == {"full": ("10", "ok"), "blank": ("0", "ok")}, done.stdout


def test_workers_and_scheduler_cannot_be_mixed(tmp_path):
    course = make_course(tmp_path)
    write_submission(course / "submitted", "full", A, notebooks()[0])
    both = grade(course, "submitted", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1")
    assert both.returncode == 2 and "--workers" in both.stdout
    nowhere = grade(course, "submitted", "--scheduler", "tcp://127.0.0.1:1", timeout=300)
    assert nowhere.returncode == 2 and "cannot reach the dask scheduler" in nowhere.stdout, nowhere.stdout
