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

How a submission is graded (see :mod:`autograder.grading`): a worker process restores the
notebook's test cells from the source, runs it cell by cell in a sandboxed kernel with a time
limit per cell, and runs the hidden tests itself, outside the kernel, calling the student's
functions through it: the kernel never holds a hidden test, the reference or an expected value.
The main process alone writes the gradebook and grades.csv.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path

from .grading.course import Course, CourseError, find_course

DEFAULT_OUT = "graded"
STATUSES = ("ok", "timeout", "error", "flagged")
RESULT_VERSION = 2


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


def refused(submissions: Path, student: str, assignment: str) -> str | None:
    """Why a submission folder is not read at all (a row says so), or None."""
    if _unencodable(student) or _unencodable(assignment):
        return ("the folder's name is not valid UTF-8 (" + printable(f"{student}/{assignment}") + "): rename it "
                "and grade again")
    for path in (submissions / student, submissions / student / assignment):
        if path.is_symlink():
            return (f"{printable(path.name)} is a symbolic link; the grader does not follow links: put the "
                    "submission itself there")
    return None


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
    """A progress bar on stderr: counts by status and an estimated time left."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total, self.stream = total, stream
        self.done = 0
        self.counts = {s: 0 for s in STATUSES}
        self.started = time.monotonic()
        self.graded_now = 0
        self.first_graded = None
        self.tty = stream.isatty()
        self.last_line = 0.0
        self.last_text = ""

    def add(self, status: str, cached: bool) -> None:
        self.done += 1
        self.counts[status] = self.counts.get(status, 0) + 1
        if not cached:
            self.graded_now += 1
        self.show()

    def eta(self) -> str:
        remaining = self.total - self.done
        if remaining == 0:
            return "done"
        if self.graded_now == 0:
            return "estimating time left"
        rate = self.graded_now / max(time.monotonic() - self.started, 1e-6)
        return f"about {_clock(remaining / rate)} left"

    def line(self) -> str:
        width = 24
        filled = int(width * self.done / max(self.total, 1))
        counts = " ".join(f"{s} {self.counts[s]}" for s in STATUSES)
        return (f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} graded ({counts}), "
                f"{_clock(time.monotonic() - self.started)} elapsed, {self.eta()}")

    def show(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + self.line() + "\x1b[K")
            self.stream.flush()
        elif force or self.done == self.total or now - self.last_line > 10:
            line = self.line()
            if line != self.last_text:
                self.stream.write(line + "\n")
                self.stream.flush()
                self.last_text = line
            self.last_line = now

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


# ----------------------------------------------------------------------------------------------
# Workers
# ----------------------------------------------------------------------------------------------
def _worker_main(tasks, results) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle

    def stop(signum, frame):
        raise SystemExit(1)

    signal.signal(signal.SIGTERM, stop)
    from .grading import worker
    while True:
        task = tasks.get()
        if task is None:
            return
        results.put(worker.handle(task))


class Pool:
    """N worker processes, one task each at a time (so a crashed worker's task is known)."""

    def __init__(self, n: int):
        self.context = multiprocessing.get_context("fork")
        self.results = self.context.Queue()
        self.workers = [self._spawn() for _ in range(n)]

    def _spawn(self) -> dict:
        tasks = self.context.Queue()
        process = self.context.Process(target=_worker_main, args=(tasks, self.results), daemon=True)
        process.start()
        return {"process": process, "tasks": tasks, "task": None}

    def idle(self) -> list[dict]:
        return [w for w in self.workers if w["task"] is None]

    def submit(self, worker: dict, task: dict) -> None:
        worker["task"] = task
        worker["tasks"].put(task)

    def get(self, timeout: float):
        """A finished result, or a synthetic one for a worker that died; None on timeout."""
        try:
            result = self.results.get(timeout=timeout)
        except queue.Empty:
            for i, w in enumerate(self.workers):
                if w["task"] is not None and not w["process"].is_alive():
                    task = w["task"]
                    self.workers[i] = self._spawn()
                    return _crashed(task, w["process"].exitcode)
            return None
        for w in self.workers:
            task = w["task"]
            if task is not None and _same_task(task, result):
                w["task"] = None
                break
        return result

    def busy(self) -> int:
        return sum(w["task"] is not None for w in self.workers)

    def close(self, now: bool = False) -> None:
        for w in self.workers:
            if now:
                if w["process"].is_alive():
                    os.kill(w["process"].pid, signal.SIGTERM)
            else:
                w["tasks"].put(None)
        for w in self.workers:
            w["process"].join(timeout=15 if now else 60)
            if w["process"].is_alive():
                w["process"].kill()
                w["process"].join(timeout=5)


def _same_task(task: dict, result: dict) -> bool:
    if task["kind"] == "trusted":
        return result.get("kind") == "trusted" and result["assignment_id"] == task["master"].assignment
    return result.get("kind") == "submission" and (result["student_id"], result["assignment_id"]) == (
        task["student_id"], task["assignment_id"])


def _crashed(task: dict, exitcode) -> dict:
    if task["kind"] == "trusted":
        return {"kind": "trusted", "assignment_id": task["master"].assignment, "digest": task["master"].digest,
                "problems_fatal": [f"the grader's worker process died (exit code {exitcode})"],
                "warnings": []}
    master = task["master"]
    return {"kind": "submission", "student_id": task["student_id"], "assignment_id": task["assignment_id"],
            "input_digest": None, "max_score": master.max_score, "scores": {g: 0.0 for g, _ in master.graded},
            "score": 0.0, "status": "error", "flags": [], "failed": {}, "solution_sources": {},
            "message": f"the grader's worker process died while grading this submission (exit code {exitcode}); "
                       "run the command again to retry it", "notebook": None, "feedback": None, "autograded": None}


# ----------------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------------
def write_csv(path: Path, rows: list[tuple[str, str]], results: dict, columns: list[str],
              late: dict | None = None, penalty=None) -> None:
    """grades.csv, written to a temporary file and renamed: never half-written. ``score`` is the
    row's final score: the points (manual scores included) less the late penalty, if any."""
    late = late or {}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student_id", "assignment_id", *columns, "score", "max_score", "late", "late_penalty",
                     "status", "message"])
    for key in rows:
        result = results.get(key)
        if result is None:
            continue
        scores = result.get("scores", {})
        lateness = late.get(key)
        taken = penalty(key[0], float(result["score"]), lateness) if penalty and lateness else None
        writer.writerow([printable(key[0]), printable(key[1]),
                         *[_number(scores[c]) if c in scores else "" for c in columns],
                         _number(result["score"] - (taken or 0)), _number(result["max_score"]),
                         lateness.text() if lateness else "", _number(taken), result["status"],
                         printable(str(result["message"]))])
    from .grading.worker import atomic_write
    atomic_write(path, buffer.getvalue())


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
        sandbox: bool = True, stream=sys.stderr, students: list[str] | None = None) -> int:
    try:
        return _run(submissions, out, workers, timeout, assignment, course_path, memory_gb, sandbox, stream,
                    students)
    except (UsageError, CourseError) as error:
        print(f"python -m autograder grade: {error}", file=stream)
        return 2


def _run(submissions, out, workers, timeout, assignment, course_path, memory_gb, use_sandbox, stream,
         students=None) -> int:
    from .grading import sandbox as sandbox_mod

    submissions = Path(submissions).resolve()
    if not submissions.is_dir():
        raise UsageError(f"{submissions} is not a folder of submissions")
    course = find_course(Path(course_path) if course_path else None)
    out = Path(out or DEFAULT_OUT).resolve()
    if out == submissions or submissions in out.parents:
        raise UsageError(f"the output folder {out} must not be inside the submissions {submissions}")
    if workers is not None and workers < 1:
        raise UsageError("--workers must be at least 1")
    workers = workers or os.cpu_count() or 1
    timeout = float(timeout or course.timeout)
    if timeout <= 0:
        raise UsageError("--timeout must be positive")
    rows = discover(submissions, course, assignment)
    only = _only_students(students, rows, submissions)
    late, penalty = _lateness(submissions, rows, course)
    out.mkdir(parents=True, exist_ok=True)
    state = out / ".autograder"
    (state / "results").mkdir(parents=True, exist_ok=True)
    (state / "trusted").mkdir(parents=True, exist_ok=True)

    if use_sandbox:
        use_sandbox, why = sandbox_mod.bwrap_status()
        if not use_sandbox:
            print(f"warning: {why}; student code runs unsandboxed, with your user's rights", file=stream)
    else:
        print("warning: --no-sandbox: student code runs unsandboxed, with your user's rights", file=stream)
    use_cgroups, why = sandbox_mod.Limits.available()
    if not use_cgroups:
        print(f"warning: {why}: memory, process and CPU limits apply per process, not per submission, and "
              "processes a notebook starts outside the sandbox may outlive it", file=stream)

    # The assignments, as their source notebooks define them.
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

    settings = f"timeout={timeout}|memory={memory_gb}|sandbox={use_sandbox}"
    common = {"memory_bytes": int(memory_gb * 2**30), "file_bytes": 256 * 2**20, "timeout": timeout,
              "sandbox": use_sandbox, "cgroups": use_cgroups, "out": str(out)}

    # What a previous run already graded, unchanged since.
    results: dict[tuple[str, str], dict] = {}
    todo = []
    for student, name in rows:
        problem = refused(submissions, student, name)
        if name not in masters or problem:
            results[(student, name)] = _unknown_assignment(student, name, course, problem or broken.get(name))
            if problem and name in masters:
                results[(student, name)].update(max_score=masters[name].max_score,
                                                scores={g: 0.0 for g, _ in masters[name].graded})
            continue
        digest = input_digest(submissions / student / name, masters[name].digest, settings)
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

    trusted_tasks, trusted_paths = [], {}
    for name in sorted({n for _, n, _ in todo}):
        master = masters[name]
        path = state / "trusted" / f"{name}-{master.digest[:16]}.json"
        trusted_paths[name] = path
        if not path.exists():
            trusted_tasks.append(dict(common, kind="trusted", master=master,
                                      assignment_dir=str(course.source_dir / name)))
    tasks = trusted_tasks + [
        dict(common, kind="submission", master=masters[name], student_id=student, assignment_id=name,
             folder=str(submissions / student / name), assignment_dir=str(course.source_dir / name),
             all_ids=all_ids, trusted_path=str(trusted_paths[name]), input_digest=digest)
        for student, name, digest in todo]

    print(f"grading {len(todo)} of {len(rows)} submissions ({len(rows) - len(todo)} unchanged since the last run) "
          f"with {workers} worker{'s' * (workers != 1)}, {timeout:g} s per cell, "
          f"{'sandboxed (bubblewrap)' if use_sandbox else 'not sandboxed'}; output in {out}", file=stream)

    from .grading import worker as _worker_module  # noqa: F401  (imported before forking: shared by the workers)
    from .grading.gradebook import GradebookWriter

    gradebook = GradebookWriter(out, course, submissions)
    gradebook.write_config()
    progress = Progress(len(rows), stream)
    for key, result in results.items():
        progress.done += 1
        progress.counts[result["status"]] = progress.counts.get(result["status"], 0) + 1
    csv_path = out / "grades.csv"
    pool = Pool(min(workers, max(len(tasks), 1))) if tasks else None

    # The gradebook is prepared (nbgrader generate_assignment) while the workers grade.
    gradebook_problems: list[str] = []
    gradebook_ready = threading.Event()

    def prepare_gradebook():
        try:
            gradebook_problems.extend(gradebook.ensure_assignments([masters[n] for n in sorted(masters)]))
        except Exception as error:
            gradebook_problems.append(f"the gradebook could not be prepared: {error}")
        gradebook_ready.set()

    threading.Thread(target=prepare_gradebook, daemon=True).start()
    pending_gradebook = [r for r in results.values() if r["assignment_id"] in masters and r.get("input_digest")]
    warnings: list[str] = []
    failed_trusted: list[Path] = []
    # Ctrl-C sets a flag that the loop reads between two results: a result is either saved whole
    # (its cache file, the gradebook, grades.csv) or not at all.
    stop = threading.Event()
    previous_handler = signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    outstanding = list(tasks)
    try:
        progress.show(force=True)
        while (outstanding or (pool and pool.busy())) and not stop.is_set():
            if pool:
                for w in pool.idle():
                    if not outstanding:
                        break
                    pool.submit(w, outstanding.pop(0))
            result = pool.get(timeout=0.25) if pool else None
            if result is None:
                progress.show()
                continue
            if result["kind"] == "trusted":
                name = result["assignment_id"]
                fatal, found = result.get("problems_fatal", []), result.get("warnings", [])
                from .grading.worker import atomic_write
                atomic_write(trusted_paths[name], json.dumps(result))
                if fatal:
                    failed_trusted.append(trusted_paths[name])  # kept for this run's workers only
                for text in fatal:
                    warnings.append(f"{name}: the solutions fail their own tests: {text}")
                for text in found:
                    warnings.append(f"{name}: {text}")
                if fatal and progress.tty:
                    stream.write("\n")
                for text in fatal:
                    print(f"warning: {name}: the solutions fail their own tests: {text}", file=stream)
                continue
            key = (result["student_id"], result["assignment_id"])
            results[key] = result
            from .grading.worker import atomic_write
            cache = state / "results" / key[0] / f"{key[1]}.json"
            if result.get("input_digest") and not result.get("retry"):
                atomic_write(cache, json.dumps(result))
            elif cache.exists():
                cache.unlink()  # the grader failed, not the submission: grade it again next time
            pending_gradebook.append(result)
            if gradebook_ready.is_set():
                _flush_gradebook(gradebook, pending_gradebook, masters, gradebook_problems)
            write_csv(csv_path, rows, results, columns, late, penalty)
            progress.add(result["status"], cached=False)
    finally:
        interrupted = stop.is_set()
        if pool:
            pool.close(now=interrupted)
        for path in failed_trusted:
            path.unlink(missing_ok=True)
    if not interrupted:
        gradebook_ready.wait()
    if gradebook_ready.is_set():
        _flush_gradebook(gradebook, pending_gradebook, masters, gradebook_problems)
        _finish_rows(gradebook, results, gradebook_problems)
    gradebook.close()
    write_csv(csv_path, rows, results, columns, late, penalty)
    signal.signal(signal.SIGINT, previous_handler)
    progress.show(force=True)
    progress.close()
    for text in gradebook_problems + warnings:
        if "fail their own tests" not in text:
            print(f"warning: {text}", file=stream)
    graded = sum(1 for key in rows if key in results)
    if interrupted:
        print(f"interrupted: {graded} of {len(rows)} rows are in {csv_path}; nothing graded is lost. Run the same "
              "command again to grade the rest.", file=stream)
        return 130
    elapsed = time.monotonic() - progress.started
    rate = f", {60 * progress.graded_now / elapsed:.1f} notebooks per minute" if progress.graded_now else ""
    print(f"graded {progress.graded_now} notebooks in {_clock(elapsed)}{rate}; {len(rows)} rows in {csv_path}",
          file=stream)
    return 0


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


def _lateness(submissions: Path, rows: list, course: Course):
    """Each row's lateness and the course's late-penalty rule (nbgrader's configuration)."""
    from . import lms
    try:
        return lms.lateness(submissions, rows, course), lms.penalty_rule(course)
    except Exception as error:  # a bad due date, extensions.csv or penalty plugin: the run cannot be right
        raise UsageError(f"late work: {type(error).__name__}: {error}") from None


def _finish_rows(gradebook, results: dict, problems: list) -> None:
    """Scores given by hand in the gradebook (formgrader) into the rows and the feedback pages,
    and beside each page the exchange's files that nbgrader release_feedback reads."""
    try:
        if gradebook.gradebook is None:
            gradebook.open()
        problems.extend(gradebook.finish_rows(results))
    except Exception as error:  # the rows keep the tests' scores; the run still ends well
        problems.append(f"the scores given by hand could not be read from the gradebook: {type(error).__name__}: "
                        f"{printable(str(error))[:300]}")


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
        result = pending.pop(0)
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
