"""From a run to points: a test cell earns its points when its visible part ran in the kernel
without an error and every hidden check, run by the grader outside the kernel
(:mod:`.remote`), matched the reference. Nothing the kernel reports about itself counts: the
hidden checks' expected values and comparisons never were in the kernel."""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import checks
from . import hints


@dataclass
class CellVerdict:
    grade_id: str
    points: float
    max_points: float
    passed: bool
    checks_run: int = 0
    failure: str = ""            # what failed, in words (shown to the student: no hidden source)
    mistake: str = ""            # a key of hints.MISTAKES
    visible_outputs: list = field(default_factory=list)
    problems: list = field(default_factory=list)   # timeout / died, for this cell


def mistake_of(failed: dict | None) -> str:
    """The likely mistake behind the first failing hidden check, from the reference: a known
    wrong variant of the computation that gives the student's value on the same network."""
    if not failed or failed.get("kind") != "assert_matches":
        return ""
    got, dtype = failed.get("got"), failed.get("dtype")
    if not isinstance(got, torch.Tensor) or not got.is_floating_point():
        return ""
    if dtype == torch.float64 and got.dtype == torch.float32:
        return "float32"
    try:
        values = got.detach().to(torch.float64).numpy()
        expected = np.asarray(failed["expected"], dtype=np.float64)
    except (TypeError, ValueError, RuntimeError):
        return ""
    if values.shape != expected.shape:
        return ""
    if dtype == torch.float64 and np.allclose(values, expected, **checks.TOLERANCES[torch.float32]):
        return "float32"
    found = hints.case_network(failed.get("seed"), failed.get("case", ""))
    return (hints.diagnose(values, expected, *found) or "") if found else ""


def visible_mistake(values) -> str:
    """The likely mistake behind a visible check that failed: the worked example's variants."""
    _, got, expected = values
    try:
        if isinstance(got, torch.Tensor):
            got = got.detach().to(torch.float64).numpy()
        got = np.asarray(got, dtype=np.float64)
        expected = np.asarray(expected, dtype=np.float64)
    except (TypeError, ValueError, RuntimeError):
        return ""
    if got.shape != expected.shape:
        return ""
    net, x, t = hints.worked_example(expected.shape)
    return hints.diagnose(got, expected, net, x, t, worked_example=True) or ""


@dataclass
class Evaluation:
    cells: list                          # CellVerdict per graded cell
    flags: list                          # (reason, severe)
    notes: list                          # instructor notes: timeouts, restarts...
    timeout: bool = False
    died: bool = False


def _visible_failure(result) -> str:
    if result.ename == "NotImplementedError":
        return "not answered (the function still raises NotImplementedError)"
    return f"a visible check failed: {result.ename}: {result.evalue}".rstrip(": ")


def error_text(ename: str, evalue: str) -> str:
    """An error as the student should read it: a syntax error with its line in the cell (IPython
    names the cell's temporary file, which means nothing to the student)."""
    found = re.fullmatch(r"(.*) \([^()]*, line (\d+)\)", evalue or "", re.DOTALL)
    if ename in ("SyntaxError", "IndentationError", "TabError") and found:
        return f"{ename}: {found.group(1)} (line {found.group(2)} of the cell)"
    return f"{ename}: {evalue}".rstrip(": ")


def defined_names(source: str) -> set[str]:
    """The names a cell's code defines at top level (functions, classes, assignments)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return names


def broken_answers(master, steps, results) -> dict[str, str]:
    """name -> why it is missing, for each name an answer cell should define (as its solution
    does) whose cell failed: a test's "name 'layer' is not defined" then says why."""
    broken = {}
    for step, result in zip(steps, results):
        if step.kind != "student" or result is None or result.status != "error":
            continue
        cell = master.cells.get(step.grade_id) if step.grade_id else None
        if not cell or not cell["solution"]:
            continue
        for name in defined_names(cell["source"]):
            broken.setdefault(name, f"the answer cell {step.grade_id} failed with {error_text(result.ename, result.evalue)}")
    return broken


def explain(failure: str, broken: dict[str, str]) -> str:
    found = re.search(r"name '(\w+)' is not defined", failure)
    if found and found.group(1) in broken:
        return f"`{found.group(1)}` is not defined: {broken[found.group(1)]}"
    return failure


def evaluate(master, prepared, execution, timeout: float) -> Evaluation:
    steps, results = prepared.steps, execution.results
    flags: list[tuple[str, bool]] = []
    notes: list[str] = []
    verdicts = []
    broken = broken_answers(master, steps, results)
    for grade_id, points in master.graded:
        verdict = CellVerdict(grade_id, 0.0, points, False)
        failures = []
        cell_steps = [i for i, s in enumerate(steps) if s.grade_id == grade_id and s.kind in ("visible", "hidden")]
        if not cell_steps:
            failures.append("the test cell did not run")
        for i in cell_steps:
            step, result = steps[i], results[i]
            if result is None:
                failures.append("the test cell was not run (the kernel could not go on)")
                continue
            if step.kind == "visible":
                verdict.visible_outputs.extend(result.outputs)
                if result.status == "error":
                    failures.append(_visible_failure(result))
                if result.visible_check is not None and not verdict.mistake:
                    verdict.mistake = visible_mistake(result.visible_check)
            else:
                hidden = result.hidden
                verdict.checks_run += hidden.observed.passed
                for reason in hidden.observed.flags:
                    flags.append((reason, False))
                if hidden.status == "tampered":
                    flags.append((f"{grade_id}: {hidden.message}", True))
                    failures.append("the notebook interfered with the grader's requests (see the instructor)")
                elif hidden.status == "failed":
                    failures.append(hidden.message)
                    verdict.mistake = verdict.mistake or mistake_of(hidden.observed.failed)
            if result.status == "timeout":
                failures.append(f"the test ran past the time limit of {timeout:g} s")
                verdict.problems.append("timeout")
            elif result.status == "died":
                failures.append("the kernel died while the test ran")
                verdict.problems.append("died")
        verdict.passed = not failures
        verdict.points = points if verdict.passed else 0.0
        verdict.failure = explain(failures[0], broken) if failures else ""
        verdicts.append(verdict)

    for i, text in execution.events:
        step = steps[i]
        where = f"test cell {step.grade_id}" if step.kind in ("visible", "hidden") else (
            f"cell {step.grade_id}" if step.grade_id else f"cell {step.cell + 1 if step.cell is not None else '?'}")
        notes.append(f"{where} {text}" if text.startswith(("ran", "gave", "could")) else f"{where}: {text}")
    for step, result in zip(steps, results):
        if step.kind == "student" and result is not None and result.status == "error" and result.ename != "NotImplementedError":
            where = f"answer cell {step.grade_id}" if step.grade_id else f"cell {step.cell + 1 if step.cell is not None else '?'}"
            notes.append(f"{where} raised {error_text(result.ename, result.evalue)}")
    if execution.output_exhausted:
        notes.append("the notebook printed more than the grader keeps; the rest of its output was dropped")
    if any(r is not None and r.ename == "ModuleNotFoundError" and "autograder" in r.evalue for r in results):
        notes.append("the notebook imports the course package, which is not available while grading")
    seen, unique_flags = set(), []
    for reason, severe in flags:
        if reason not in seen:
            seen.add(reason)
            unique_flags.append((reason, severe))
    return Evaluation(verdicts, unique_flags, notes,
                      timeout=any(r is not None and r.status == "timeout" for r in results),
                      died=any(r is not None and r.status == "died" for r in results))
