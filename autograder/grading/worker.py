"""What a dask worker does with one task: grade one submission, or grade the assignment's
solutions (the "trusted run": they must earn every point, or no student's row means anything).

Nothing here needs a file system shared with the main process: a task carries the submission's
files (:func:`pack`) and the assignment (``bundle``: its master, its other files), which the worker
lays out in a private temporary folder; a result carries the row and, in ``result["files"]``, the
feedback page and the autograded notebook, which the main process alone writes, with the gradebook
and grades.csv."""
from __future__ import annotations

import copy
import os
import shutil
import tempfile
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

import nbformat
from nbgrader.preprocessors import LimitOutput

from . import compare, execute, feedback, hints, limits, sandbox, sanitize
from .course import grader_digest
from .runner import Garbled
from .prepare import MAX_NOTEBOOK_BYTES, InstructorNote, SubmissionError, prepare, prepare_source


class SolutionsFail(Exception):
    """The assignment's solutions cannot be graded: args (assignment, problems, the kernel did not start)."""


class GraderMismatch(Exception):
    """This worker's grader code is not the main process's: args (its digest, where it is)."""


class NoSandbox(Exception):
    """The run sandboxes student code and bubblewrap does not work on this worker: args (why,)."""


def dask_setup(worker) -> None:
    """Run by a worker of the grader's own LocalCluster as it starts (``preload``): Ctrl-C, which
    the terminal sends to every process of the command, is the main process's to handle; it then
    stops the workers in order."""
    import signal

    import torch
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to do
        pass
    # A worker is one task at a time on one core: torch's own threads (one per core by default)
    # would compete with the other workers for the cores (the kernel's torch has one thread too).
    torch.set_num_threads(1)


def _bytes(data: str | bytes) -> bytes:
    # "replace": text a submission controls (names, messages) may hold lone surrogates.
    return data.encode("utf-8", "replace") if isinstance(data, str) else data


def atomic_write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(_bytes(data))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------
# A folder's files, carried by a task (no shared file system between the main process and workers)
# ----------------------------------------------------------------------------------------------
def pack(folder: Path, notebooks: bool = True) -> list | None:
    """The files of ``folder`` as [(relative path as bytes, kind, payload)]: "bytes" and the
    content; "link" and its target (a symbolic link is never followed, only reported); "size" for a
    file over the grader's limits (sent as its size only: the worker makes a sparse file of that
    size, which prepare and make_workdir refuse or skip as they would the real one). None: no folder."""
    if not folder.is_dir() or folder.is_symlink():
        return None
    files = []
    for path in sorted(folder.rglob("*")):
        if ".ipynb_checkpoints" in path.parts or (not notebooks and path.suffix == ".ipynb"):
            continue
        relative = os.fsencode(path.relative_to(folder))
        if path.is_symlink():
            files.append((relative, "link", os.readlink(path)))
        elif path.is_file():
            size = path.stat().st_size
            limit = MAX_NOTEBOOK_BYTES if path.suffix == ".ipynb" else execute.MAX_COPIED_BYTES
            files.append((relative, "size", size) if size > limit else (relative, "bytes", path.read_bytes()))
    return files


def unpack(files: list | None, folder: Path) -> None:
    """The files :func:`pack` carried, laid out again in ``folder`` (which stays absent for None)."""
    if files is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for relative, kind, payload in files:
        path = folder / os.fsdecode(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "link":
            os.symlink(payload, path)
        elif kind == "size":
            with open(path, "wb") as f:
                f.truncate(payload)
        else:
            path.write_bytes(payload)


@contextmanager
def _laid_out(bundle: dict, submission: dict | None):
    """A private folder with the assignment's files and the submission's, removed afterwards; the
    submission keeps its names (``<student>/<assignment>/``): the messages quote them."""
    root = Path(tempfile.mkdtemp(prefix=f"agr-task-{sandbox.owner_tag()}-"))
    try:
        assignment_dir = root / "assignment"
        unpack(bundle["files"] or [], assignment_dir)
        folder = None
        if submission is not None:
            folder = root / "submission" / submission["student_id"] / submission["assignment_id"]
            folder.parent.mkdir(parents=True)
            unpack(submission["files"], folder)
        yield assignment_dir, folder
    finally:
        shutil.rmtree(root, ignore_errors=True)


_swept = False


def _check_worker(bundle: dict, settings: dict) -> None:
    """Every worker must grade with the main process's code (on a cluster: the same checkout) and,
    unless the run says otherwise, in bubblewrap. At its first task, a worker removes what workers
    killed on this machine left behind (:func:`sandbox.sweep_leftovers`)."""
    global _swept
    if not _swept:
        _swept = True
        sandbox.sweep_leftovers([tempfile.gettempdir(), execute.work_root()])
    if bundle["grader"] != grader_digest():
        import autograder
        raise GraderMismatch(grader_digest()[:12], str(Path(autograder.__file__).resolve().parent))
    if settings["sandbox"]:
        works, why = sandbox.bwrap_status()
        if not works:
            raise NoSandbox(why)


def _launch(task: dict) -> dict:
    """What each kernel process limits itself to, as the machine's mechanism of limits says
    (:mod:`limits`); no count of processes outside a sandbox (it would count all the user's)."""
    launch = dict(limits.chosen().process_limits(task["memory_bytes"]), file_bytes=task["file_bytes"],
                  cwd_bytes=task["file_bytes"])
    if not task["sandbox"]:
        launch.pop("processes", None)
    return launch


_runs = 0


def prestart(settings: dict) -> None:
    """Start this worker's warm parent now, in the background, with the run's limits (the main
    process calls this on every worker as the run starts): its start-up, a Python importing torch
    in its sandbox, then overlaps the main process's own instead of delaying the first task. A
    parent that fails to start here is started again by the first task, which reports why."""
    import threading

    from . import warm
    if not (settings["sandbox"] and warm.wanted()):
        return

    def start() -> None:
        parent = warm.parent_for(_launch(settings), execute.work_root())
        with parent.lock:
            if not parent.alive():
                try:
                    parent.start()
                except Exception:
                    return
        # The sandbox dies with the thread that started it (bwrap --die-with-parent acts on the
        # thread): this one stays, idle, as long as the worker.
        threading.Event().wait()
    threading.Thread(target=start, daemon=True, name="autograder-prestart").start()


def _execute(task: dict, prepared, submission: Path | None, timeout: float):
    """Run a prepared notebook in a fresh working folder under limits of its own (:mod:`limits`:
    a cgroup where the machine allows); whatever the notebook started is killed and its files
    removed afterwards."""
    global _runs
    _runs += 1
    bounds = limits.chosen().Limits(f"{sandbox.owner_tag()}-{_runs}", task["memory_bytes"])
    workdir, cwd = execute.make_workdir(submission, Path(task["assignment_dir"]), task.get("tmp_root"))
    try:
        execution = execute.run(prepared, _launch(task), timeout, task["sandbox"], workdir, cwd, limits=bounds)
        execution.oom = bounds.oom_killed()
        return execution
    finally:
        bounds.remove()
        shutil.rmtree(workdir, ignore_errors=True)


def run_trusted(task: dict) -> dict:
    """Grade the source notebook itself (the solutions) the way students are graded: if it does
    not earn every point, no student's row can mean anything."""
    master = task["master"]
    prepared = prepare_source(master)
    execution = _execute(task, prepared, None, task["timeout"] * 4)
    if execution.start_error:
        return {"kind": "trusted", "assignment_id": master.assignment, "digest": master.digest,
                "problems_fatal": [execution.start_error], "start_error": True, "warnings": []}
    evaluation = compare.evaluate(master, prepared, execution, task["timeout"] * 4)
    fatal = [f"{v.grade_id}: {v.failure}" for v in evaluation.cells if not v.passed]
    fatal += [f"flagged: {reason}" for reason, _ in evaluation.flags]
    return {"kind": "trusted", "assignment_id": master.assignment, "digest": master.digest,
            "problems_fatal": fatal, "warnings": []}


def _autograded_notebook(prepared, execution) -> nbformat.NotebookNode:
    nb = copy.deepcopy(prepared.notebook)
    outputs: dict[int, list] = {}
    for step, result in zip(prepared.steps, execution.results):
        if step.cell is not None and result is not None:
            outputs.setdefault(step.cell, []).extend(result.outputs)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.outputs = outputs.get(index, [])
            cell.execution_count = None
    nb, _ = LimitOutput().preprocess(nb, {})
    return sanitize.notebook(nb)   # formgrader shows it in the instructor's browser


def _student_message(status: str, error: str, notes: list, flagged: bool) -> str:
    if flagged:
        return "This submission is held for review by your instructor."
    if status == "error" and error:
        return f"Your submission could not be graded as it is: {error}."
    return " ".join(n[0].upper() + n[1:] + "." for n in notes)


UNSANDBOXED = "graded without a sandbox (--no-sandbox)"


def _mark_unsandboxed(result: dict) -> None:
    """A row graded with --no-sandbox says so, in grades.csv and on its feedback page."""
    result["message"] = "; ".join(filter(None, [UNSANDBOXED, result["message"]]))[:4000]
    if result.get("page"):
        result["page"]["message"] = " ".join(filter(None, [UNSANDBOXED[0].upper() + UNSANDBOXED[1:] + ".",
                                                           result["page"]["message"]]))
        result["files"][result["feedback"]] = _bytes(feedback.render_page(result["page"]))


def grade_submission(task: dict) -> dict:
    result = _grade_submission(task)
    if not task["sandbox"]:
        _mark_unsandboxed(result)
    return result


def _grade_submission(task: dict) -> dict:
    master = task["master"]
    sid, aid = task["student_id"], task["assignment_id"]
    started = time.monotonic()
    # files: output path relative to the output folder -> bytes, written by the main process.
    result = {"kind": "submission", "student_id": sid, "assignment_id": aid, "input_digest": task["input_digest"],
              "max_score": master.max_score, "scores": {g: 0.0 for g, _ in master.graded}, "score": 0.0,
              "status": "ok", "message": "", "notebook": None, "feedback": None, "autograded": None,
              "flags": [], "failed": {}, "solution_sources": {}, "files": {}}
    feedback_path = Path("feedback") / sid / aid / (master.notebook_id + ".html")

    def not_graded(why: str) -> dict:
        """The submission's own error row (cached like any row: grading it again gives the same)."""
        result.update(status="error", message=why, scores={g: 0.0 for g, _ in master.graded}, score=0.0)
        verdicts = [compare.CellVerdict(g, 0.0, p, False, failure="not graded") for g, p in master.graded]
        result["page"] = feedback.page(sid, aid, result["notebook"] or master.notebook_name, "error",
                                       _student_message("error", why, [], False),
                                       verdicts, master.titles, 0.0, master.max_score)
        result["files"] = {str(feedback_path): _bytes(feedback.render_page(result["page"]))}
        result["feedback"] = str(feedback_path)
        return result

    try:
        try:
            prepared = prepare(Path(task["folder"]), master, task["all_ids"])
        except SubmissionError as error:
            return not_graded(str(error))
        result["notebook"] = prepared.path.name
        for cell in prepared.notebook.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id and master.cells.get(grade_id, {}).get("solution"):
                result["solution_sources"][grade_id] = cell.source
        try:
            execution = _execute(task, prepared, Path(task["folder"]), task["timeout"])
        except Garbled as error:
            return not_graded(f"the notebook's kernel sent the grader a message it cannot read ({error}): the "
                              "notebook interfered with the grader")
        if execution.start_error:
            raise RuntimeError(execution.start_error)
        evaluation = compare.evaluate(master, prepared, execution, task["timeout"])
        flags = [reason for reason, _ in evaluation.flags]
        notes = prepared.notes + evaluation.notes
        for step, step_result in zip(prepared.steps, execution.results):
            if step_result is not None and step.kind == "student" and (
                    step_result.ename == "MemoryError" or "can't allocate memory" in step_result.evalue):
                notes.append(f"cell {step.grade_id or step.cell + 1} ran out of memory (the limit is "
                             f"{_launch(task)['memory_bytes'] / 2**30:g} GB per process)")
        if execution.oom:
            notes.append(f"the notebook's processes together ran out of memory (the limit is "
                         f"{task['memory_bytes'] / 2**30:g} GB) and one was killed")
        for v in evaluation.cells:
            result["scores"][v.grade_id] = v.points
            if not v.passed:
                result["failed"][v.grade_id] = v.failure + (
                    f" (likely mistake: {hints.LABELS[v.mistake]})" if v.mistake else "")
        result["score"] = float(sum(result["scores"].values()))
        result["flags"] = flags
        if flags:
            status = "flagged"
        elif evaluation.died:
            status = "error"
        elif evaluation.timeout:
            status = "timeout"
        else:
            status = "ok"
        parts = []
        if flags:
            parts.append("flagged: " + "; ".join(flags))
        if evaluation.died:
            parts.append("the kernel died, was restarted and the cells after the one that killed it were graded")
        parts += notes
        failed = [f"{g}: {text}" for g, text in result["failed"].items()]
        if failed and status == "ok" or failed and len(parts) < 3:
            parts.append("failed " + " | ".join(failed))
        result.update(status=status, message="; ".join(parts)[:4000])
        nb = _autograded_notebook(prepared, execution)
        autograded_path = Path("autograded") / sid / aid / master.notebook_name
        result["files"][str(autograded_path)] = _bytes(nbformat.writes(nb))
        result["autograded"] = str(autograded_path)
        student_notes = [n for n in prepared.notes + evaluation.notes if not isinstance(n, InstructorNote)]
        # The page's data is kept in the result: the main process renders it again with the
        # scores an instructor changed by hand, and puts the exchange's files beside it.
        result["page"] = feedback.page(
            sid, aid, prepared.path.name, status, _student_message(status, "", student_notes, bool(flags)),
            evaluation.cells, master.titles, result["score"], master.max_score,
            markers=(master.begin_hidden, master.end_hidden))
        result["files"][str(feedback_path)] = _bytes(feedback.render_page(result["page"]))
        result["feedback"] = str(feedback_path)
    except Exception as error:  # the grader's own failure: this row says so, the class goes on
        result.update(status="error", retry=True, message=f"the grader failed on this submission: {type(error).__name__}: "
                                              f"{error}"[:1000], scores={g: 0.0 for g, _ in master.graded}, score=0.0,
                      files={})
        result["traceback"] = traceback.format_exc()[-3000:]
    finally:
        result["seconds"] = round(time.monotonic() - started, 3)
    return result


# ----------------------------------------------------------------------------------------------
# The tasks the main process submits to dask
# ----------------------------------------------------------------------------------------------
def _task(bundle: dict, settings: dict, assignment_dir: Path, **more) -> dict:
    return dict(settings, master=bundle["master"], all_ids=bundle["all_ids"], assignment_dir=str(assignment_dir),
                **more)


def solutions_task(bundle: dict, settings: dict) -> dict:
    """Grade the assignment's solutions; raise SolutionsFail if they do not earn every point."""
    _check_worker(bundle, settings)
    master = bundle["master"]
    with _laid_out(bundle, None) as (assignment_dir, _):
        try:
            result = run_trusted(_task(bundle, settings, assignment_dir, kind="trusted"))
        except Exception as error:
            result = {"problems_fatal": [f"the grader failed: {type(error).__name__}: {error}"],
                      "traceback": traceback.format_exc()}
    if result["problems_fatal"]:
        raise SolutionsFail(master.assignment, result["problems_fatal"], bool(result.get("start_error")))
    return result


def submission_task(bundle: dict, submission: dict, settings: dict) -> dict:
    """Grade one submission (``submission``: student_id, assignment_id, input_digest and the folder's
    files, :func:`pack`); the main process sends it once the assignment's solutions have passed."""
    _check_worker(bundle, settings)
    with _laid_out(bundle, submission) as (assignment_dir, folder):
        return grade_submission(_task(bundle, settings, assignment_dir, kind="submission", folder=str(folder),
                                      student_id=submission["student_id"],
                                      assignment_id=submission["assignment_id"],
                                      input_digest=submission["input_digest"]))


__all__ = ["solutions_task", "submission_task", "pack", "dask_setup", "atomic_write", "hints"]
