"""``python -m autograder grade SUBMISSIONS``: grade a whole class, in parallel, robustly.

SUBMISSIONS is nbgrader's submitted layout, ``SUBMISSIONS/<student_id>/<assignment_id>/<notebook>.ipynb``.
The output folder (``--out``, default ``graded/`` in the current folder) receives

* ``grades.csv``: a row per student and assignment (points per graded cell, score, status, message);
* ``feedback/<student>/<assignment>/<notebook>.html``: the student's feedback page;
* ``autograded/<student>/<assignment>/<notebook>.ipynb`` and ``gradebook.db``: nbgrader's
  gradebook and executed notebooks, with an ``nbgrader_config.py`` that makes the folder a course
  root for formgrader and ``nbgrader export``;
* ``.autograder/``: each row's result and the solutions' expected values, so that a second run
  re-grades only the submissions that changed.

How a submission is graded (see :mod:`autograder.grading`): a dask worker restores the
notebook's test cells from the source, runs it cell by cell in a sandboxed kernel with a time
limit per cell, and runs the hidden tests itself, outside the kernel, calling the student's
functions through it: the kernel never holds a hidden test, the reference or an expected value.

The workers are a dask.distributed LocalCluster on this machine (one single-threaded worker
process per CPU, ``--workers N``) or the cluster at ``--scheduler ADDRESS``. They share no folder
with this process: a task carries the submission's files and the assignment's source, a result
carries the row, the feedback page and the executed notebook; this process alone writes the
output folder, the gradebook and grades.csv. Each assignment's solutions are graded first (once:
the result is cached); if they do not earn every point the run stops (exit status 2).
"""
from __future__ import annotations

import collections
import csv
import hashlib
import importlib.util
import io
import json
import os
import signal
import sys
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

from . import report, spreadsheet
from .grading.course import Course, CourseError, find_course

DEFAULT_OUT = "graded"
STATUSES = ("ok", "timeout", "error", "flagged")
RESULT_VERSION = 2
CSV_SECONDS = 2.0
DEFAULT_MAX_SUBMISSION_MB = 100   # a submission folder's files together (a task carries them all)


class UsageError(Exception):
    """Bad arguments or no course: the run cannot start (exit status 2)."""


# ----------------------------------------------------------------------------------------------
# Finding the submissions
# ----------------------------------------------------------------------------------------------
def discover(submissions: Path, course: Course, only: str | None) -> list[tuple[str, str]]:
    """(student_id, assignment_id) of every row: each student folder times each assignment found
    (or the one asked for); an assignment the course does not have only where it was submitted."""
    students = sorted(p.name for p in submissions.iterdir()
                      if not p.name.startswith(".") and (p.is_symlink() or p.is_dir()))
    if not students:
        raise UsageError(f"no student folders in {submissions}: expected {submissions}/<student_id>/<assignment_id>/"
                         "<notebook>.ipynb (nbgrader's submitted layout)")
    known = set(course.assignments())
    if only:
        if only not in known:
            raise UsageError(f"the course has no assignment {only!r} (it has: {', '.join(sorted(known))})")
        wanted = [only]
    else:
        found = {a.name for s in students if not (submissions / s).is_symlink()
                 for a in (submissions / s).iterdir() if a.is_dir() and not a.name.startswith(".")}
        wanted = sorted(found)
        if not wanted:
            raise UsageError(f"no assignment folders in {submissions}/<student_id>/: expected "
                             "<student_id>/<assignment_id>/<notebook>.ipynb")
    rows = []
    for student in students:
        for assignment in wanted:
            if assignment in known or (submissions / student / assignment).is_dir():
                rows.append((student, assignment))
    return rows


def printable(text: str) -> str:
    """``text`` as valid UTF-8: a name that is not (a file name's bytes) keeps its other characters."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8") if _unencodable(text) else text


def _unencodable(text: str) -> bool:
    try:
        text.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def refused(submissions: Path, student: str, assignment: str, max_bytes: int | None = None) -> str | None:
    """Why a submission folder is not read at all (a row says so), or None."""
    if _unencodable(student) or _unencodable(assignment):
        return ("the folder's name is not valid UTF-8 (" + printable(f"{student}/{assignment}") + "): rename it "
                "and grade again")
    for path in (submissions / student, submissions / student / assignment):
        if path.is_symlink():
            return (f"{printable(path.name)} is a symbolic link; the grader does not follow links: put the "
                    "submission itself there")
    return too_large(submissions / student / assignment, max_bytes) if max_bytes else None


def too_large(folder: Path, max_bytes: int) -> str | None:
    """Why ``folder`` is over the size limit (its size, its largest files), or None. Sizes only,
    read before any file is: a task carries the folder's bytes, so this bounds the memory of the
    command and of the workers whatever a folder holds."""
    sizes, total = [], 0
    if folder.is_dir() and not folder.is_symlink():
        for path in folder.rglob("*"):
            if ".ipynb_checkpoints" not in path.parts and path.is_file() and not path.is_symlink():
                size = path.lstat().st_size
                sizes.append((size, path))
                total += size
    if total <= max_bytes:
        return None
    largest = ", ".join(f"{printable(str(p.relative_to(folder)))} ({n / 2**20:.0f} MB)"
                        for n, p in sorted(sizes, key=lambda s: (-s[0], s[1]))[:3])
    return (f"the submission folder holds {total / 2**20:.0f} MB, over the grader's limit of {max_bytes / 2**20:g} MB "
            f"per submission (largest: {largest}); nothing of it was read. Remove what is not the notebook and its "
            "data, or grade with a larger --max-submission-mb")


def input_digest(folder: Path, master_digest: str, settings: str) -> str:
    h = hashlib.sha256(f"{RESULT_VERSION}|{master_digest}|{settings}".encode())
    if not folder.is_dir():
        h.update(b"missing")
        return h.hexdigest()
    for path in sorted(folder.rglob("*")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        if path.is_symlink():  # never followed: its target is not part of the submission
            h.update(b"link\0" + os.fsencode(path.relative_to(folder)) + b"\0" + os.fsencode(os.readlink(path)))
        elif path.is_file():
            h.update(os.fsencode(path.relative_to(folder)) + b"\0")
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------
# Progress
# ----------------------------------------------------------------------------------------------
class Progress:
    """The progress bar (tqdm) on ``stream``: rows by status, time elapsed and left. Where the
    stream is not a terminal (a log file, CI), a line every 10 seconds instead of one redrawn line."""

    def __init__(self, total: int, done: dict, stream=sys.stderr):
        from tqdm import tqdm
        self.tty = stream.isatty()
        self.interval = 0.5 if self.tty else 10.0
        self.counts = {s: 0 for s in STATUSES}
        for result in done.values():
            self.counts[result["status"]] = self.counts.get(result["status"], 0) + 1
        self.graded_now = 0
        self.started = self.shown = time.monotonic()
        # tqdm's time left counts only what this run graded (its rate is (n - initial) / elapsed).
        self.bar = tqdm(total=total, initial=len(done), file=stream if self.tty else _Lines(stream),
                        bar_format="[{bar:24}] {n_fmt}/{total_fmt} graded ({desc}), {elapsed} elapsed, "
                                   "{remaining} left", ascii=".#", mininterval=self.interval, smoothing=0.1,
                        desc=self._counts())

    def _counts(self) -> str:
        return " ".join(f"{s} {self.counts[s]}" for s in STATUSES)

    def add(self, status: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1
        self.graded_now += 1
        self.bar.set_description_str(self._counts(), refresh=False)
        self.bar.update(1)

    def tick(self) -> None:
        """Redraw now and then while nothing arrives: the time elapsed goes on."""
        if time.monotonic() - max(self.shown, self.bar.last_print_t) >= self.interval:
            self.bar.refresh()
            self.shown = time.monotonic()

    def close(self) -> None:
        self.bar.refresh()
        self.bar.close()


class _Lines:
    """For a stream that is not a terminal: each redraw of tqdm's bar becomes a line of its own."""

    def __init__(self, stream):
        self.stream, self.last = stream, ""

    def write(self, text: str) -> None:
        text = text.replace("\r", "").rstrip()
        if text and text != self.last:
            self.stream.write(text + "\n")
            self.last = text

    def flush(self) -> None:
        self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


# ----------------------------------------------------------------------------------------------
# The workers: a dask cluster
# ----------------------------------------------------------------------------------------------
class Cluster:
    """Where the tasks run: the dask cluster at ``scheduler`` (its address, or a scheduler file),
    else a LocalCluster of ``workers`` single-threaded worker processes on this machine."""

    def __init__(self, scheduler: str | None, workers: int):
        import logging

        import dask
        from distributed import Client, LocalCluster
        logging.getLogger("distributed").setLevel(logging.ERROR)  # the progress bar says how it goes
        warnings.filterwarnings("ignore", message=".*large graph.*")  # a task carries a submission's files
        self.local = None
        if scheduler:
            try:
                if Path(scheduler).is_file():
                    self.client = Client(scheduler_file=scheduler, timeout=30)
                else:
                    self.client = Client(scheduler, timeout=30)
            except (OSError, TimeoutError, ValueError) as error:
                raise UsageError(f"cannot reach the dask scheduler at {scheduler}: {error}") from None
            self.where = f"on the dask cluster at {self.client.scheduler.address}"
        else:
            # A task is sent to a worker only when it is free: a worker that dies takes (and makes
            # dask suspect) the submission it was grading, not one queued behind it.
            dask.config.set({"distributed.scheduler.worker-saturation": 1.0})
            # Forked, not spawned: a worker starts with torch and the grader already imported
            # (measured: 0.2 s for two workers against 5 s spawned, on 2 cores).
            dask.config.set({"distributed.worker.multiprocessing-method": "fork"})
            # Worker processes ignore Ctrl-C (worker.dask_setup): this process stops them in order.
            self.local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                      dashboard_address=":0", silence_logs=logging.CRITICAL,
                                      preload=["autograder.grading.worker"])
            self.client = Client(self.local)
            self.where = f"with {workers} worker{'s' * (workers != 1)} on this machine"
        self.threads_seen = 0.0

    def dashboard(self) -> str | None:
        """The dask dashboard's address, where there is one: it needs bokeh (on the scheduler's
        machine; this one's for a LocalCluster), which the course's environment does not install."""
        if self.local is not None and importlib.util.find_spec("bokeh") is None:
            return None
        services = self.client.scheduler_info().get("services", {})
        return self.client.dashboard_link if "dashboard" in services else None

    def threads(self) -> int:
        """Tasks the cluster runs at once now (checked at most every 5 s)."""
        if time.monotonic() - self.threads_seen > 5:
            self.threads_seen = time.monotonic()
            self._threads = sum(self.client.nthreads().values())
        return self._threads

    def close(self) -> None:
        try:
            self.client.close(timeout=30)
        finally:
            if self.local is not None:
                self.local.close(timeout=30)


# ----------------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------------
class Final:
    """What a row finally is, the same in grades.csv, the student's page and the gradebook: its
    lateness, the penalty (from the points, manual scores included) and the student's name."""

    def __init__(self, late: dict | None = None, penalty=None, names: dict | None = None):
        self.late, self.penalty, self.names = late or {}, penalty, names or {}

    def __call__(self, key: tuple[str, str], result: dict) -> dict:
        lateness = self.late.get(key)
        taken = self.penalty(key[0], float(result["score"]), lateness) if self.penalty and lateness else None
        result["late"] = lateness.text() if lateness else ""
        result["late_penalty"] = taken
        result["student_name"] = self.names.get(key, "")
        return result


def write_csv(path: Path, rows: list[tuple[str, str]], results: dict, columns: list[str], final: Final) -> None:
    """grades.csv, written to a temporary file and renamed: never half-written. ``score`` is the
    row's final score: the points (manual scores included) less the late penalty, if any."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(spreadsheet.row(["student_id", "assignment_id", *columns, "score", "max_score", "late",
                                     "late_penalty", "status", "message", "comments"]))
    for key in rows:
        result = results.get(key)
        if result is None:
            continue
        scores = result.get("scores", {})
        final(key, result)
        taken = result["late_penalty"]
        # Text cells through spreadsheet.cell (a student id may start with "="); numbers as numbers.
        text = spreadsheet.cell
        writer.writerow([text(printable(key[0])), text(printable(key[1])),
                         *[_number(scores[c]) if c in scores else "" for c in columns],
                         _number(result["score"] - (taken or 0)), _number(result["max_score"]),
                         text(result["late"]), _number(taken), text(result["status"]),
                         text(printable(str(result["message"]))),
                         text(printable(comments_text(result.get("comments"))))])
    from .grading.worker import atomic_write
    atomic_write(path, buffer.getvalue())


def comments_text(comments: dict | None) -> str:
    """The comments typed in formgrader, one line for grades.csv."""
    return "; ".join(f"{cell}: {text}" for cell, text in (comments or {}).items())


def _number(value) -> str:
    return "" if value is None else f"{float(value):g}"


def _unknown_assignment(student: str, assignment: str, course: Course, problem: str | None = None) -> dict:
    return {"kind": "submission", "student_id": student, "assignment_id": assignment, "input_digest": None,
            "max_score": 0.0, "scores": {}, "score": 0.0, "status": "error", "flags": [], "failed": {},
            "message": problem or (f"the course has no assignment {assignment!r} (in {course.source_dir.name}/): "
                                   "misnamed folder?"),
            "notebook": None, "feedback": None, "autograded": None, "solution_sources": {}}


# ----------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------
def run(submissions: str, out: str | None = None, workers: int | None = None, timeout: float | None = None,
        assignment: str | None = None, course_path: str | None = None, memory_gb: float = 4.0,
        sandbox: bool = True, stream=sys.stderr, scheduler: str | None = None,
        students: list[str] | None = None, max_submission_mb: float = DEFAULT_MAX_SUBMISSION_MB) -> int:
    try:
        return _run(submissions, out, workers, timeout, assignment, course_path, memory_gb, sandbox, stream,
                    scheduler, students, max_submission_mb)
    except (UsageError, CourseError) as error:
        print(f"python -m autograder grade: {error}", file=stream)
        return 2


NO_SANDBOX_HELP = ("install bubblewrap (apt-get install bubblewrap) and check that it can make namespaces "
                   "(`bwrap --unshare-all --ro-bind / / true`; in a container, allow user namespaces), or, "
                   "only for notebooks you trust, grade with --no-sandbox.")
NO_SANDBOX_WARNING = "--no-sandbox: student code {} unsandboxed, with your user's rights; every row graded says so"


class Stop(Exception):
    """The run cannot go on (the solutions fail, a worker cannot grade): exit status 2."""


def _run(submissions, out, workers, timeout, assignment, course_path, memory_gb, use_sandbox, stream,
         scheduler=None, students=None, max_submission_mb=None) -> int:
    settings = _check_arguments(submissions, out, workers, timeout, course_path, memory_gb, use_sandbox,
                                scheduler, max_submission_mb)
    if not _first_line(settings, stream):
        return 2
    rows = discover(settings.submissions, settings.course, assignment)
    only = _only_students(students, rows, settings.submissions)
    final = _lateness(settings.submissions, rows, settings.course, stream)
    state = _state_folder(settings.out)
    masters, broken, all_ids, columns = _assignments(settings.course, rows)
    results, todo = _plan(settings, rows, only, masters, broken, state)
    gradebook = GradebookFeed(settings, masters, results)
    cluster = _start_workers(settings, todo, len(rows), gradebook, stream)
    progress = Progress(len(rows), results, stream)
    record = Recorder(settings.out, state, rows, results, columns, final, gradebook, progress)
    # Ctrl-C sets a flag that the loop reads between two results: a result is either saved whole
    # (its files, its cache file, the gradebook) or not at all; grades.csv follows (Recorder).
    stop = threading.Event()
    previous_handler = signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    stopped, interrupted = _grade_rows(cluster, settings, todo, masters, all_ids, state, record, stop)
    record.close(interrupted)
    signal.signal(signal.SIGINT, previous_handler)
    return _finish(settings, record, stopped, interrupted, stream)


@dataclass
class Settings:
    """A run's arguments, checked: the folders resolved, the workers, the limits of a task."""
    submissions: Path
    course: Course
    out: Path
    workers: int
    scheduler: str | None
    timeout: float
    memory_gb: float
    sandbox: bool
    max_bytes: int   # a submission folder's files together

    @property
    def cache_key(self) -> str:
        """The settings a cached row was graded with: another value grades it again."""
        return f"timeout={self.timeout}|memory={self.memory_gb}|sandbox={self.sandbox}"

    @property
    def task_limits(self) -> dict:
        """The limits every task (solutions, submission) is graded under."""
        return {"memory_bytes": int(self.memory_gb * 2**30), "file_bytes": 256 * 2**20, "timeout": self.timeout,
                "sandbox": self.sandbox}


def _check_arguments(submissions, out, workers, timeout, course_path, memory_gb, use_sandbox, scheduler,
                     max_submission_mb) -> Settings:
    """The arguments checked (a UsageError says what is wrong) and resolved into the run's Settings."""
    submissions = Path(submissions).resolve()
    if not submissions.is_dir():
        raise UsageError(f"{submissions} is not a folder of submissions")
    course = find_course(Path(course_path) if course_path else None)
    out = Path(out or DEFAULT_OUT).resolve()
    if out == submissions or submissions in out.parents:
        raise UsageError(f"the output folder {out} must not be inside the submissions {submissions}")
    if workers is not None and workers < 1:
        raise UsageError("--workers must be at least 1")
    if workers is not None and scheduler:
        raise UsageError("--workers sets the size of the cluster made on this machine; with --scheduler the "
                         "cluster has the workers started for it")
    workers = workers or os.cpu_count() or 1
    timeout = float(timeout or course.timeout)
    if timeout <= 0:
        raise UsageError("--timeout must be positive")
    max_submission_mb = DEFAULT_MAX_SUBMISSION_MB if max_submission_mb is None else max_submission_mb
    if max_submission_mb <= 0:
        raise UsageError("--max-submission-mb must be positive")
    return Settings(submissions, course, out, workers, scheduler, timeout, memory_gb, use_sandbox,
                    int(max_submission_mb * 2**20))


def _first_line(settings: Settings, stream) -> bool:
    """The sandbox checked (fail closed: False, no student is graded), then the run's first line."""
    from .grading import limits, warm
    from .grading import sandbox as sandbox_mod
    if settings.sandbox:
        works, why = sandbox_mod.bwrap_status()
        if not works:   # fail closed: a notebook outside a sandbox can read the solutions and rewrite grades.csv
            print(f"python -m autograder grade: no sandbox can be made on this machine: {why}.\n"
                  f"No student was graded. What to do: {NO_SANDBOX_HELP}", file=stream)
            return False
    # The first line: the tier this machine (and user) grades on, and what it lacks.
    kernels = ("warm" if warm.wanted() else "cold (AUTOGRADER_KERNELS=cold)") if settings.sandbox else "cold"
    print(f"sandbox: {'bubblewrap' if settings.sandbox else 'none'}; limits: {limits.describe()}; kernels: {kernels}",
          file=stream)
    if not settings.sandbox:
        print(f"warning: {NO_SANDBOX_WARNING.format('runs')}", file=stream)
    return True


def _state_folder(out: Path) -> Path:
    """The output folder and its .autograder folder (cached rows, trusted solutions), made if missing."""
    out.mkdir(parents=True, exist_ok=True)
    state = out / ".autograder"
    (state / "results").mkdir(parents=True, exist_ok=True)
    (state / "trusted").mkdir(parents=True, exist_ok=True)
    return state


def _assignments(course: Course, rows: list) -> tuple[dict, dict, dict, list[str]]:
    """The assignments, as their source notebooks define them: masters, broken (why), all ids, columns."""
    masters, broken = {}, {}
    for name in sorted({a for _, a in rows}):
        if name not in course.assignments():
            continue
        try:
            masters[name] = course.master(name)
        except Exception as error:
            broken[name] = f"the assignment's source notebook cannot be used: {error}"
    all_ids = {}
    for name in course.assignments():
        try:
            all_ids[name] = set(course.master(name).order)
        except Exception:  # an assignment being written may not be readable; it only helps recognise folders
            pass
    columns = [g for name in sorted(masters) for g, _ in masters[name].graded]
    columns = list(dict.fromkeys(columns))
    return masters, broken, all_ids, columns


def _plan(settings: Settings, rows: list, only: set[str], masters: dict, broken: dict,
          state: Path) -> tuple[dict, list]:
    """Each row kept from the cache, refused (into results) or to grade (todo, with its input digest)."""
    # What a previous run already graded, unchanged since.
    results: dict[tuple[str, str], dict] = {}
    todo = []
    for student, name in rows:
        problem = refused(settings.submissions, student, name, settings.max_bytes)
        if name not in masters or problem:
            results[(student, name)] = _unknown_assignment(student, name, settings.course, problem or broken.get(name))
            if problem and name in masters:
                results[(student, name)].update(max_score=masters[name].max_score,
                                                scores={g: 0.0 for g, _ in masters[name].graded})
            continue
        digest = input_digest(settings.submissions / student / name, masters[name].digest, settings.cache_key)
        cached = state / "results" / student / f"{name}.json"
        if cached.exists() and not (only and student in only):  # --student: graded again, cache or not
            try:  # a cached row that cannot be used is graded again, never fatal
                previous = json.loads(cached.read_text())
                usable = isinstance(previous, dict) and previous.get("status") in STATUSES and isinstance(
                    previous.get("scores"), dict) and previous.get("student_id") == student
            except (ValueError, OSError, UnicodeDecodeError):
                previous, usable = None, False
            if usable and (previous.get("input_digest") == digest or only and student not in only):
                results[(student, name)] = previous
                continue
        if only and student not in only:
            continue  # --student: another student's row stays as it was (no cached row: none)
        todo.append((student, name, digest))
    return results, todo


class GradebookFeed:
    """nbgrader's gradebook, prepared while the workers start and grade; rows wait in ``pending`` till then."""

    def __init__(self, settings: Settings, masters: dict, results: dict):
        from .grading.gradebook import GradebookWriter
        self.writer = GradebookWriter(settings.out, settings.course, settings.submissions)
        self.writer.write_config()
        self.masters = masters
        self.problems: list[str] = []
        self.ready = threading.Event()
        self.pending = collections.deque(r for r in results.values() if r["assignment_id"] in masters
                                         and r.get("input_digest") and not self.writer.is_recorded(r))

    def prepare(self) -> None:
        """The assignments into the gradebook (nbgrader generate_assignment, in a thread); then it is ready."""
        try:
            self.problems.extend(self.writer.ensure_assignments([self.masters[n] for n in sorted(self.masters)]))
        except Exception as error:
            self.problems.append(f"the gradebook could not be prepared: {error}")
        self.ready.set()

    def add(self, result: dict) -> None:
        """A finished row: into the gradebook now if it is ready, else when it is."""
        self.pending.append(result)
        if self.ready.is_set():
            self.flush()

    def flush(self) -> None:
        """The rows pending, into the gradebook."""
        _flush_gradebook(self.writer, self.pending, self.masters, self.problems)


def _start_workers(settings: Settings, todo: list, total: int, gradebook: GradebookFeed, stream) -> Cluster | None:
    """The workers (when there is anything to grade) and the gradebook started; the line that says what is graded."""
    from .grading import worker
    workers = min(settings.workers, max(len(todo), 1))
    # The cluster first: its worker processes are forked from this one, before it has other threads.
    cluster = Cluster(settings.scheduler, workers) if todo else None
    if cluster:
        try:  # returns at once; the warm parents start in the background
            cluster.client.run(worker.prestart, settings.task_limits)
        except Exception:  # a worker that cannot run it (another checkout, ...) says why at its first task
            pass
    threading.Thread(target=gradebook.prepare, daemon=True).start()
    where = cluster.where if cluster else f"with {workers} worker{'s' * (workers != 1)} on this machine"
    print(f"grading {len(todo)} of {total} submissions ({total - len(todo)} unchanged since the last run) "
          f"{where}, {settings.timeout:g} s per cell, "
          f"{'sandboxed (bubblewrap)' if settings.sandbox else 'not sandboxed'}; output in {settings.out}",
          file=stream)
    dashboard = cluster.dashboard() if cluster else None
    if dashboard:
        print(f"dask dashboard (if bokeh is installed where the scheduler runs): {dashboard}", file=stream)
    return cluster


class Recorder:
    """The ``record`` that _grade calls with each result as it arrives; grades.csv at the run's end."""

    def __init__(self, out: Path, state: Path, rows: list, results: dict, columns: list[str], final: Final,
                 gradebook: GradebookFeed, progress: Progress):
        self.out, self.state, self.rows, self.results = out, state, rows, results
        self.columns, self.final, self.gradebook, self.progress = columns, final, gradebook, progress
        self.csv_path = out / "grades.csv"
        self.csv_written = 0.0

    def __call__(self, key: tuple[str, str], result: dict) -> None:
        """One finished row, saved whole: its files, its cache entry, the gradebook, grades.csv."""
        from .grading import worker
        for relative, data in result.pop("files", {}).items():
            path = (self.out / relative).resolve()
            if self.out in path.parents and ".autograder" not in Path(relative).parts:
                worker.atomic_write(path, data)
        self.results[key] = result
        cache = self.state / "results" / key[0] / f"{key[1]}.json"
        if result.get("input_digest") and not result.get("retry"):
            worker.atomic_write(cache, json.dumps(result))
        elif cache.exists():
            cache.unlink()  # the grader failed, not the submission: grade it again next time
        self.gradebook.add(result)
        # grades.csv is written whole, so at most every CSV_SECONDS (a class of 60,000 rows would
        # otherwise be written 60,000 times); the end of the run writes it in full, Ctrl-C or not.
        if time.monotonic() - self.csv_written >= CSV_SECONDS:
            self.write_csv()
            self.csv_written = time.monotonic()
        self.progress.add(result["status"])

    def write_csv(self) -> None:
        """grades.csv, every row."""
        write_csv(self.csv_path, self.rows, self.results, self.columns, self.final)

    def close(self, interrupted: bool) -> None:
        """The run's end, Ctrl-C or not: the gradebook (awaited unless interrupted), the rows finished, grades.csv."""
        if not interrupted:
            self.gradebook.ready.wait()
        if self.gradebook.ready.is_set():
            self.gradebook.flush()
            _finish_rows(self.gradebook.writer, self.results, self.gradebook.problems, self.final)
        self.gradebook.writer.close()
        self.write_csv()


def _grade_rows(cluster: Cluster | None, settings: Settings, todo: list, masters: dict, all_ids: dict,
                state: Path, record: Recorder, stop: threading.Event) -> tuple[Stop | None, bool]:
    """Grade the rows to do, then close the cluster: why the run stopped (or None), whether Ctrl-C stopped it."""
    # The solutions of each assignment are graded once (and again when they or the grader change).
    trusted_paths = {name: state / "trusted" / f"{name}-{masters[name].digest[:16]}.json"
                     for name in sorted({n for _, n, _ in todo})}
    untrusted = [name for name, path in trusted_paths.items() if not path.exists()]
    stopped: Stop | None = None
    try:
        if cluster:
            _grade(cluster, settings.course, todo, untrusted, trusted_paths, masters, all_ids, settings.task_limits,
                   settings.submissions, record, stop, record.progress)
    except Stop as reason:
        stopped = reason
    finally:
        interrupted = stop.is_set()
        if cluster:
            cluster.close()
    return stopped, interrupted


def _finish(settings: Settings, record: Recorder, stopped: Stop | None, interrupted: bool, stream) -> int:
    """The closing lines (the report, the warnings, how the run went) and the exit status: 0, 2 or 130."""
    rows, results, csv_path, progress = record.rows, record.results, record.csv_path, record.progress
    progress.close()
    report.after_run(settings.out, results, stream)  # the class report, from the rows just written
    for text in record.gradebook.problems:
        print(f"warning: {text}", file=stream)
    graded = sum(1 for key in rows if key in results)
    if not settings.sandbox:
        print(f"warning: {NO_SANDBOX_WARNING.format('ran')}", file=stream)
    if stopped is not None:
        print(f"stopped: {stopped}\n{graded} of {len(rows)} rows are in {csv_path}; the rows graded are kept.",
              file=stream)
        return 2
    if interrupted:
        print(f"interrupted: {graded} of {len(rows)} rows are in {csv_path}; nothing graded is lost. Run the same "
              "command again to grade the rest.", file=stream)
        return 130
    elapsed = time.monotonic() - progress.started
    rate = f", {60 * progress.graded_now / elapsed:.1f} notebooks per minute" if progress.graded_now else ""
    print(f"graded {progress.graded_now} notebooks in {_clock(elapsed)}{rate}; {len(rows)} rows in {csv_path}",
          file=stream)
    return 0


def _grade(cluster: Cluster, course: Course, todo: list, untrusted: list, trusted_paths: dict, masters: dict,
           all_ids: dict, common: dict, submissions: Path, record, stop: threading.Event, progress: Progress) -> None:
    """Submit the tasks (a bounded number at a time: a task carries a submission's bytes) and
    record each result as it arrives; raise Stop when the run cannot go on."""
    from distributed import as_completed

    from .grading import worker
    client = cluster.client
    grader = worker.grader_digest()
    # What every task of an assignment carries with it: no task depends on another, so the
    # scheduler queues them and hands each to a worker when it is free.
    bundles = {name: {"master": masters[name], "all_ids": all_ids, "grader": grader,
                      "files": worker.pack(course.source_dir / name, notebooks=False)} for name in trusted_paths}
    # The solutions first: an assignment's submissions are sent once its solutions have passed
    # (in this run or a previous one); if they fail, the run stops before grading its students.
    tasks = {client.submit(worker.solutions_task, bundles[name], common, priority=10,
                           key=f"solutions-{name}-{uuid.uuid4().hex[:8]}"): ("solutions", name)
             for name in untrusted}
    finished = as_completed(list(tasks))
    checking = set(untrusted)
    waiting: dict[str, collections.deque] = {}
    for student, name, digest in todo:
        waiting.setdefault(name, collections.deque()).append((student, digest))

    def submit_more() -> None:
        threads = cluster.threads()
        room = max(2 * threads, threads + 2, 4) - sum(1 for kind, _ in tasks.values() if kind == "submission")
        for name in [n for n in waiting if n not in checking]:
            queue = waiting[name]
            while queue and room > 0 and not stop.is_set():
                student, digest = queue.popleft()
                try:
                    files = worker.pack(submissions / student / name)
                except OSError as error:  # unreadable: the row says so, the class goes on
                    record((student, name), _grader_error(student, name, masters[name],
                                                          f"the submission could not be read: {error}"))
                    continue
                spec = {"student_id": student, "assignment_id": name, "input_digest": digest, "files": files}
                future = client.submit(worker.submission_task, bundles[name], spec, common,
                                       key=f"grade-{name}-{printable(student)}-{uuid.uuid4().hex[:8]}")
                tasks[future] = ("submission", (student, name))
                finished.add(future)
                room -= 1
            if not queue:
                del waiting[name]

    try:
        while (waiting or tasks) and not stop.is_set():
            submit_more()
            batch = finished.next_batch(block=False)
            if not batch:
                progress.tick()
                time.sleep(0.1)
                continue
            for future in batch:
                kind, what = tasks.pop(future)
                if kind == "solutions":
                    _solutions_done(future, what, trusted_paths)
                    checking.discard(what)
                elif future.status == "finished":
                    record(what, future.result())
                else:
                    record(what, _failed_task(future, what, masters[what[1]]))
                if stop.is_set():
                    break
    finally:
        client.cancel(list(tasks))


def _solutions_done(future, name: str, trusted_paths: dict) -> None:
    from .grading.worker import atomic_write
    if future.status == "finished":
        atomic_write(trusted_paths[name], json.dumps(future.result()))
        return
    _stop_for(future.exception(), name)


def _stop_for(error: BaseException, name: str) -> None:
    """Raise Stop when ``error`` (a task's) means no row of the run can be trusted."""
    from .grading.worker import GraderMismatch, NoSandbox, SolutionsFail
    if isinstance(error, SolutionsFail):
        assignment, problems, start_error = error.args
        if start_error:
            raise Stop(f"the grading kernel does not start, so no student of {assignment} was graded: "
                       f"{'; '.join(problems)[:1500]}\nWhat to do: run the grader with the course's environment "
                       "(`make env` in this checkout, then `.venv/bin/python -m autograder grade ...`); check that "
                       "bubblewrap works (`bwrap --ro-bind / / true`) or try --no-sandbox to see whether the "
                       "sandbox is the cause; a --memory limit too small for Python and torch stops it too.")
        raise Stop(f"the solutions of {assignment} fail their own tests, so no student's row can mean anything; "
                   f"no student of {assignment} was graded:\n  " + "\n  ".join(problems)[:3000] +
                   f"\nWhat to do: fix the source notebook ({assignment} in the course's source folder) until "
                   "`nbgrader autograde` gives it full marks, then run the same command again.")
    if isinstance(error, GraderMismatch):
        digest, where = error.args
        raise Stop(f"a worker grades with other code than this command (its autograder, {where}, differs: "
                   f"{digest}); every worker needs the same checkout of the course and its environment.")
    if isinstance(error, NoSandbox):
        raise Stop(f"a worker cannot sandbox student code: {error.args[0]}. On every worker, {NO_SANDBOX_HELP}")
    if name is not None:
        raise Stop(f"the solutions of {name} could not be graded: {type(error).__name__}: {error}"[:2000])


def _failed_task(future, key: tuple[str, str], master) -> dict:
    """The row of a submission whose task did not return: dask gave up on it (it killed workers
    repeatedly), or the worker failed; raises Stop where the whole run must stop."""
    from distributed.scheduler import KilledWorker
    if future.status == "cancelled":
        return _grader_error(*key, master, "its task was cancelled by the dask cluster; run the command again to "
                                           "retry it")
    error = future.exception()
    _stop_for(error, None)
    if isinstance(error, KilledWorker):
        return _grader_error(*key, master, f"grading this submission killed {error.allowed_failures + 1} "
                                           "grader workers in turn (dask's distributed.scheduler.allowed-failures "
                                           f"is {error.allowed_failures}), so it was given up: look at it by hand, "
                                           "or run the command again to retry it")
    return _grader_error(*key, master, f"the grader failed on this submission: {type(error).__name__}: {error}")


def _grader_error(student: str, assignment: str, master, message: str) -> dict:
    """An error row the grader caused (not the submission): kept out of the cache, graded again next run."""
    return {"kind": "submission", "student_id": student, "assignment_id": assignment, "input_digest": None,
            "max_score": master.max_score, "scores": {g: 0.0 for g, _ in master.graded}, "score": 0.0,
            "status": "error", "flags": [], "failed": {}, "solution_sources": {}, "retry": True,
            "message": message[:1000], "notebook": None, "feedback": None, "autograded": None}


def _only_students(students: list[str] | None, rows: list, submissions: Path) -> set[str]:
    """--student: the students to grade again (the others' rows are kept); each must have a folder."""
    if not students:
        return set()
    known = {s for s, _ in rows}
    unknown = [s for s in students if s not in known]
    if unknown:
        raise UsageError(f"no submission folder for student {', '.join(unknown)} in {submissions} (the folder "
                         "names are the LMS's user ids)")
    return set(students)


def _lateness(submissions: Path, rows: list, course: Course, stream) -> Final:
    """Each row's lateness, the course's late-penalty rule (nbgrader's configuration) and the
    students' names that collect kept from the LMS's roster."""
    from . import lms
    from .collect import read_manifest
    try:
        late, rule = lms.lateness(submissions, rows, course), lms.penalty_rule(course)
    except Exception as error:  # a bad due date, extensions.csv or penalty plugin: the run cannot be right
        raise UsageError(f"late work: {type(error).__name__}: {error}") from None
    warning = lms.double_penalty(course, late)
    if warning:
        print(f"warning: {warning}", file=stream)
    names = {(s, a): r["name"] for a in {a for _, a in rows} for s, r in read_manifest(submissions, a).items()
             if r.get("name")}
    return Final(late, rule, names)


def _finish_rows(gradebook, results: dict, problems: list, final: Final) -> None:
    """Scores and comments given in the gradebook (formgrader), lateness and penalties into the
    rows and the feedback pages, and beside each page the files nbgrader release_feedback reads."""
    try:
        problems.extend(gradebook.finish_rows(results, final))
    except Exception as error:  # the rows keep what they have; the run still ends well
        problems.append(f"the rows could not be finished: {type(error).__name__}: {printable(str(error))[:300]}")


def _flush_gradebook(gradebook, pending: list, masters: dict, problems: list) -> None:
    if not pending:
        return
    try:
        if gradebook.gradebook is None:
            gradebook.open()
    except Exception as error:  # the CSV and feedback still hold everything
        problems.append(f"the gradebook could not be opened: {type(error).__name__}: {error}")
        pending.clear()
        return
    while pending:
        result = pending.popleft()
        if result["assignment_id"] not in masters:
            continue
        try:
            gradebook.record(result, masters[result["assignment_id"]])
        except Exception as error:  # one row's problem; the others still go in
            try:
                gradebook.gradebook.db.rollback()
            except Exception:
                pass
            problems.append(f"the gradebook could not take the row of {printable(result['student_id'])}: "
                            f"{type(error).__name__}: {printable(str(error))[:300]}")
