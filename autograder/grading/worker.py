"""What a worker process does with one task: grade one submission, or run an assignment's
solutions to get the expected values (the "trusted run"). Results are plain dicts; the main
process alone writes the gradebook and grades.csv."""
from __future__ import annotations

import copy
import json
import os
import shutil
import time
import traceback
from pathlib import Path

import nbformat
from nbgrader.preprocessors import LimitOutput

from . import compare, execute, feedback, hints
from .prepare import SubmissionError, prepare, prepare_source

TRUSTED_WAIT = 1800.0


def atomic_write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        # "replace": text a submission controls (names, messages) may hold lone surrogates.
        f.write(data.encode("utf-8", "replace") if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _launch(task: dict) -> dict:
    # With a cgroup holding all the submission's processes to memory_bytes, each process gets 3/4
    # of it as address space: one that allocates too much fails with MemoryError (a clear message)
    # before the cgroup is full (where the kernel reclaims for seconds, then kills).
    per_process = task["memory_bytes"] * 3 // (4 if task.get("cgroups") else 3)
    return {"memory_bytes": per_process, "file_bytes": task["file_bytes"], "cwd_bytes": task["file_bytes"]}


_runs = 0


def _execute(task: dict, prepared, submission: Path | None, timeout: float):
    """Run a prepared notebook in a fresh working folder and, where the machine allows, a cgroup
    of its own; whatever the notebook started is killed and its files removed afterwards."""
    global _runs
    _runs += 1
    limits = None
    if task.get("cgroups"):
        from .sandbox import Limits
        limits = Limits(f"{os.getpid()}-{_runs}", task["memory_bytes"])
    workdir, cwd = execute.make_workdir(submission, Path(task["assignment_dir"]), task.get("tmp_root"))
    try:
        execution = execute.run(prepared, _launch(task), timeout, task["sandbox"], workdir, cwd, limits=limits)
        execution.oom = bool(limits and limits.oom_killed())
        return execution
    finally:
        if limits is not None:
            limits.remove()
        shutil.rmtree(workdir, ignore_errors=True)


def run_trusted(task: dict) -> dict:
    """Grade the source notebook itself (the solutions) the way students are graded: if it does
    not earn every point, no student's row can mean anything."""
    master = task["master"]
    prepared = prepare_source(master)
    execution = _execute(task, prepared, None, task["timeout"] * 4)
    if execution.start_error:
        return {"kind": "trusted", "assignment_id": master.assignment, "digest": master.digest,
                "problems_fatal": [execution.start_error], "warnings": []}
    evaluation = compare.evaluate(master, prepared, execution, task["timeout"] * 4)
    fatal = [f"{v.grade_id}: {v.failure}" for v in evaluation.cells if not v.passed]
    fatal += [f"flagged: {reason}" for reason, _ in evaluation.flags]
    return {"kind": "trusted", "assignment_id": master.assignment, "digest": master.digest,
            "problems_fatal": fatal, "warnings": []}


def _wait_for(path: Path) -> dict:
    deadline = time.monotonic() + TRUSTED_WAIT
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no result of the solutions' run in {path}")
        time.sleep(0.05)
    return json.loads(path.read_text())


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
    return nb


def _student_message(status: str, error: str, notes: list, flagged: bool) -> str:
    if flagged:
        return "This submission is held for review by your instructor."
    if status == "error" and error:
        return f"Your submission could not be graded as it is: {error}."
    return " ".join(n[0].upper() + n[1:] + "." for n in notes)


def grade_submission(task: dict) -> dict:
    master = task["master"]
    sid, aid = task["student_id"], task["assignment_id"]
    out = Path(task["out"])
    started = time.monotonic()
    result = {"kind": "submission", "student_id": sid, "assignment_id": aid, "input_digest": task["input_digest"],
              "max_score": master.max_score, "scores": {g: 0.0 for g, _ in master.graded}, "score": 0.0,
              "status": "ok", "message": "", "notebook": None, "feedback": None, "autograded": None,
              "flags": [], "failed": {}, "solution_sources": {}}
    feedback_path = out / "feedback" / sid / aid / (master.notebook_id + ".html")
    try:
        try:
            prepared = prepare(Path(task["folder"]), master, task["all_ids"])
        except SubmissionError as error:
            result.update(status="error", message=str(error))
            verdicts = [compare.CellVerdict(g, 0.0, p, False, failure="not graded") for g, p in master.graded]
            result["page"] = feedback.page(sid, aid, master.notebook_name, "error",
                                           _student_message("error", str(error), [], False),
                                           verdicts, master.titles, 0.0, master.max_score)
            atomic_write(feedback_path, feedback.render_page(result["page"]))
            result["feedback"] = str(feedback_path.relative_to(out))
            return result
        result["notebook"] = prepared.path.name
        for cell in prepared.notebook.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id and master.cells.get(grade_id, {}).get("solution"):
                result["solution_sources"][grade_id] = cell.source
        execution = _execute(task, prepared, Path(task["folder"]), task["timeout"])
        if execution.start_error:
            raise RuntimeError(execution.start_error)
        trusted = _wait_for(Path(task["trusted_path"]))
        if trusted.get("problems_fatal"):
            result.update(status="error", retry=True,
                          message="the assignment's solutions fail their own tests, so nothing can be compared: "
                                  + "; ".join(trusted["problems_fatal"])[:500])
            return result
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
        autograded_path = out / "autograded" / sid / aid / master.notebook_name
        atomic_write(autograded_path, nbformat.writes(nb))
        result["autograded"] = str(autograded_path.relative_to(out))
        student_notes = [n for n in prepared.notes + evaluation.notes]
        # The page's data is kept in the result: the main process renders it again with the
        # scores an instructor changed by hand, and puts the exchange's files beside it.
        result["page"] = feedback.page(
            sid, aid, prepared.path.name, status, _student_message(status, "", student_notes, bool(flags)),
            evaluation.cells, master.titles, result["score"], master.max_score,
            markers=(master.begin_hidden, master.end_hidden))
        atomic_write(feedback_path, feedback.render_page(result["page"]))
        result["feedback"] = str(feedback_path.relative_to(out))
    except Exception as error:  # the grader's own failure: this row says so, the class goes on
        result.update(status="error", retry=True, message=f"the grader failed on this submission: {type(error).__name__}: "
                                              f"{error}"[:1000], scores={g: 0.0 for g, _ in master.graded}, score=0.0)
        result["traceback"] = traceback.format_exc()[-3000:]
    finally:
        result["seconds"] = round(time.monotonic() - started, 3)
    return result


def handle(task: dict) -> dict:
    if task["kind"] == "trusted":
        try:
            return run_trusted(task)
        except Exception as error:
            return {"kind": "trusted", "assignment_id": task["master"].assignment, "digest": task["master"].digest,
                    "problems_fatal": [f"{type(error).__name__}: {error}"], "warnings": [],
                    "traceback": traceback.format_exc()}
    return grade_submission(task)


__all__ = ["handle", "atomic_write", "hints"]
