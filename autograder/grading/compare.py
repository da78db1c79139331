"""Grading outside the kernel: the values the student's code produced (recorded in the kernel)
are compared, in the grader's own process, with the expected values of a clean run of the
solutions, with :mod:`autograder.checks` itself. The kernel's verdict is not trusted; where it
disagrees, the submission is flagged."""
from __future__ import annotations

import base64
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import checks
from . import hints

NUMPY_NUMBERS = {"numpy.float16", "numpy.float32", "numpy.float64", "numpy.int8", "numpy.int16", "numpy.int32",
                 "numpy.int64", "numpy.uint8", "numpy.uint16", "numpy.uint32", "numpy.uint64", "numpy.longdouble"}
PLAIN_CLASSES = {"torch.Tensor", "torch.nn.parameter.Parameter", "builtins.float", "builtins.int", "builtins.bool"}


@dataclass
class CellVerdict:
    grade_id: str
    points: float
    max_points: float
    passed: bool
    checks_run: int = 0
    checks_expected: int = 0
    failure: str = ""            # what failed, in words (shown to the student: no hidden source)
    mistake: str = ""            # a key of hints.MISTAKES
    visible_outputs: list = field(default_factory=list)
    problems: list = field(default_factory=list)   # timeout / died / restored, for this cell


def _placeholder(name: str):
    return type(name, (), {})()


def decode_array(blob: dict | None):
    if not blob or blob.get("data") is None:
        return None
    raw = base64.b64decode(blob["data"])
    return np.frombuffer(raw, dtype=np.float64).reshape(blob["shape"]).copy()


def reconstruct(got: dict):
    """A plain Python object standing for what the student's code returned: a tensor with the
    numbers it held, a number of its type, or a placeholder of another type's name."""
    kind, cls = got.get("type"), got.get("cls", "")
    if kind == "tensor":
        dtype = getattr(torch, got["dtype"].replace("torch.", ""), None)
        if got.get("data") is None or dtype is None:
            return _placeholder(f"tensor too large to record ({'x'.join(map(str, got.get('shape', [])))})")
        array = np.frombuffer(base64.b64decode(got["data"]), dtype=np.dtype(got["np_dtype"])).reshape(got["shape"])
        return torch.from_numpy(array.copy()).to(dtype)
    if kind == "number":
        value = got["value"]
        if cls == "builtins.bool":
            return bool(value)
        if cls == "builtins.int":
            return int(value)
        if cls in NUMPY_NUMBERS:
            return getattr(np, cls.split(".")[1])(value)
        return float(value)
    if kind == "unreadable":
        return _placeholder(f"{cls.rsplit('.', 1)[-1]} (unreadable: {got.get('error', '')})")
    return _placeholder(got.get("name", "object"))


def compare(student: dict, trusted: dict) -> tuple[bool, str]:
    """Run the check again here: the student's value against the clean run's expected value."""
    if (student.get("kind"), student.get("name"), student.get("case")) != (trusted["kind"], trusted["name"], trusted["case"]):
        return False, (f"the hidden checks did not run as in the solution: expected the check {trusted['name']!r}, "
                       f"got {student.get('name')!r}")
    got = reconstruct(student["got"])
    expected = decode_array(trusted["expected"])
    try:
        if trusted["kind"] == "assert_matches":
            dtype = getattr(torch, trusted["dtype"].replace("torch.", ""))
            checks.assert_matches(trusted["name"], got, expected, dtype, trusted["case"])
        else:
            checks.assert_scalar(trusted["name"], got, float(expected), trusted["rtol"], trusted["atol"])
    except AssertionError as error:
        return False, str(error)
    return True, ""


def _mistake_for_check(student: dict, trusted: dict) -> str:
    got = student["got"]
    if trusted["kind"] == "assert_matches" and got.get("type") == "tensor":
        if trusted["dtype"] == "torch.float64" and got.get("dtype") == "torch.float32":
            return "float32"
        values = reconstruct(got)
        if not isinstance(values, torch.Tensor):
            return ""
        values = values.to(torch.float64).numpy()
        expected = decode_array(trusted["expected"])
        if expected is None or values.shape != expected.shape:
            return ""
        if trusted["dtype"] == "torch.float64" and np.allclose(values, expected, **checks.TOLERANCES[torch.float32]):
            return "float32"
        found = hints.case_network(trusted.get("seed"), trusted.get("case", ""))
        if found:
            return hints.diagnose(values, expected, *found) or ""
        return ""
    return ""


def _visible_mistake(record: dict) -> str:
    got, expected = record.get("got", {}), decode_array(record.get("expected"))
    if expected is None or got.get("type") not in ("tensor", "number"):
        return ""
    value = reconstruct(got)
    if isinstance(value, torch.Tensor):
        value = value.to(torch.float64).numpy()
    try:
        value = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return ""
    if value.shape != expected.shape:
        return ""
    net, x, t = hints.worked_example(expected.shape)
    return hints.diagnose(value, expected, net, x, t, worked_example=True) or ""


def trusted_checks(steps, results) -> tuple[dict, list]:
    """From the clean run of the source notebook: grade_id -> its checks; and what went wrong."""
    by_cell: dict[str, list] = {}
    problems = []
    outcomes = {}
    for step, result in zip(steps, results):
        if result is None:
            problems.append(f"step {step.kind} of {step.grade_id} did not run")
            continue
        for record in result.records:
            if record.get("ev") == "check":
                by_cell.setdefault(step.grade_id, []).append(record)
            elif record.get("ev") == "outcome":
                outcomes[record["call"]] = record
            elif record.get("ev") == "flag":
                problems.append(f"the solution was flagged: {record['reason']}")
        if step.kind in ("hidden", "visible") and result.status != "ok":
            problems.append(f"{step.grade_id}: {result.ename}: {result.evalue}".strip())
    for grade_id, records in by_cell.items():
        for record in records:
            outcome = outcomes.get(record["call"])
            if outcome is not None and not outcome["ok"]:
                problems.append(f"{grade_id}: {outcome['message']}")
    return by_cell, problems


@dataclass
class Evaluation:
    cells: list                          # CellVerdict per graded cell
    flags: list                          # (reason, severe)
    notes: list                          # instructor notes: timeouts, restarts...
    timeout: bool = False
    died: bool = False


def evaluate(master, prepared, execution, trusted: dict, timeout: float) -> Evaluation:
    steps, results = prepared.steps, execution.results
    flags: list[tuple[str, bool]] = []
    # Serious integrity problems take the credit away: from the test cell where they happened,
    # or, when they happened in the notebook's own cells, from every test cell after them.
    tainted_cells: set = set()
    tainted_from = None
    outcomes, checks_by_step, visible_by_cell = {}, {}, {}
    hidden_state = {}
    for i, (step, result) in enumerate(zip(steps, results)):
        if result is None:
            continue
        for record in result.records:
            ev = record.get("ev")
            if ev == "check":
                checks_by_step.setdefault(i, []).append(record)
                if step.kind != "hidden":
                    flags.append(("the grader's checks ran outside the hidden tests (called by the notebook)", True))
                    if step.kind == "visible":
                        tainted_cells.add(step.grade_id)
                    elif tainted_from is None:
                        tainted_from = i
            elif ev == "outcome":
                outcomes[record["call"]] = record
            elif ev == "visible":
                if step.kind == "visible":
                    visible_by_cell.setdefault(step.grade_id, []).append(record)
            elif ev == "flag":
                flags.append((record["reason"], bool(record.get("severe"))))
                if record.get("severe"):
                    if step.kind in ("visible", "hidden"):
                        tainted_cells.add(step.grade_id)
                    elif tainted_from is None:
                        tainted_from = i
            elif ev in ("hidden_start", "hidden_end", "hidden_error", "hidden_missing"):
                hidden_state.setdefault(i, {})[ev] = record
            elif ev == "garbled":
                flags.append(("the grader's record of the run was tampered with", True))
                tainted_from = i if tainted_from is None else tainted_from

    verdicts = []
    for grade_id, points in master.graded:
        verdict = CellVerdict(grade_id, 0.0, points, False)
        cell_steps = [i for i, s in enumerate(steps) if s.grade_id == grade_id and s.kind in ("visible", "hidden")]
        expected_checks = trusted.get(grade_id, [])
        verdict.checks_expected = len(expected_checks)
        failures = []
        if not cell_steps:
            failures.append("the test cell did not run")
        student_checks = []
        for i in cell_steps:
            step, result = steps[i], results[i]
            if result is None:
                failures.append("the test cell was not run (the kernel could not go on)")
                continue
            if result.status == "skipped":
                continue
            if step.kind == "visible":
                verdict.visible_outputs.extend(result.outputs)
                if result.status == "error" and not failures:
                    if result.ename == "NotImplementedError":
                        failures.append("not answered (the function still raises NotImplementedError)")
                    else:
                        failures.append(f"a visible check failed: {result.ename}: {result.evalue}".rstrip(": "))
            if result.status == "timeout":
                failures.append(f"the test ran past the time limit of {timeout:g} s")
                verdict.problems.append("timeout")
            elif result.status == "died":
                failures.append("the kernel died while the test ran")
                verdict.problems.append("died")
            if step.kind == "hidden":
                state = hidden_state.get(i, {})
                records = checks_by_step.get(i, [])
                student_checks.extend(records)
                if result.status in ("ok", "error") and "hidden_start" not in state:
                    flags.append(("the hidden tests could not start (the notebook changed sys.audit or the "
                                  "import machinery)", True))
                if (tainted_from is not None and i >= tainted_from) or grade_id in tainted_cells:
                    failures.append("no credit: the notebook did something the grader does not allow "
                                    "(see the instructor)")
        # Compare every recorded check with the clean run.
        for n, expected in enumerate(expected_checks):
            if n >= len(student_checks):
                if not failures:
                    error = next((hidden_state[i]["hidden_error"] for i in cell_steps
                                  if "hidden_error" in hidden_state.get(i, {})), None)
                    if error:
                        text = error["evalue"] if error["ename"] == "AssertionError" else f"{error['ename']}: {error['evalue']}"
                        where = f" on a {expected['case']}" if expected.get("case") else ""
                        failures.append(f"checking {expected['name']}{where}: {text}".strip())
                    else:
                        failures.append("the hidden checks stopped before the end")
                        flags.append(("the hidden checks stopped early without an error", True))
                break
            student = student_checks[n]
            ok, message = compare(student, expected)
            if student.get("caller") not in ("hidden", None):
                flags.append((f"a check of {grade_id} was called by {student.get('caller')} code, not by the hidden test", True))
                ok, message = False, message or "the check was not called by the hidden test"
            cls = student["got"].get("cls", "")
            if student["got"].get("type") in ("tensor", "number") and cls not in PLAIN_CLASSES | NUMPY_NUMBERS:
                flags.append((f"the notebook returned a value of its own class {cls} to the tests", False))
            kernel_outcome = outcomes.get(student.get("call"))
            if not ok:
                if kernel_outcome is not None and kernel_outcome["ok"]:
                    flags.append((f"{grade_id}: the kernel's check passed a wrong value ({message}): the notebook "
                                  "changed what the tests compare with", True))
                if not failures:
                    failures.append(message)
                    verdict.mistake = _mistake_for_check(student, expected)
                break
            got_expected = decode_array(student.get("expected"))
            want = decode_array(expected.get("expected"))
            if got_expected is not None and want is not None and (
                    got_expected.shape != want.shape or not np.allclose(got_expected, want, rtol=1e-7, atol=1e-12)):
                flags.append(("the expected values computed in the kernel differ from a clean run: the notebook "
                              "changed what the tests compute with", False))
            verdict.checks_run = n + 1
        if len(student_checks) > len(expected_checks) and not failures:
            failures.append("the hidden checks did not run as in the solution")
            flags.append(("more checks were recorded than the hidden tests make", True))
        if not expected_checks and not failures:
            # A graded cell without autograder checks: only the kernel's verdict exists.
            pass
        if failures and not verdict.mistake:
            for record in visible_by_cell.get(grade_id, []):
                mistake = _visible_mistake(record)
                if mistake:
                    verdict.mistake = mistake
                    break
        verdict.passed = not failures
        verdict.points = points if verdict.passed else 0.0
        verdict.failure = failures[0] if failures else ""
        verdicts.append(verdict)

    notes = []
    for i, text in execution.events:
        step = steps[i]
        where = f"test cell {step.grade_id}" if step.kind in ("visible", "hidden") else (
            f"cell {step.grade_id}" if step.grade_id else f"cell {step.cell + 1 if step.cell is not None else '?'}")
        notes.append(f"{where} {text}" if text.startswith(("ran", "gave", "could")) else f"{where}: {text}")
    seen, unique_flags = set(), []
    for reason, severe in flags:
        if reason not in seen:
            seen.add(reason)
            unique_flags.append((reason, severe))
    return Evaluation(verdicts, unique_flags, notes,
                      timeout=any(r is not None and r.status == "timeout" for r in results),
                      died=any(r is not None and r.status == "died" for r in results))
