"""The checks of every exercise reject plausible wrong answers and accept a right one written
differently from the solution.

tests/variants/<assignment>.py gives, per graded cell, a right answer that is not the solution's
code and a list of wrong ones (the mistakes a student makes). Each is run in this process (no
kernel, no grading run): the set-up cell and every answer cell of the solutions, then the variant
in place of its exercise's answer, then the test cell's visible part, then its hidden part.
The right variant must pass both; every wrong one must fail the visible checks (what the student
sees), and the hidden tests too. Every hidden test must run at least one check of
autograder.checks (a hidden test that checks nothing would give its points away).
"""
from __future__ import annotations

import contextlib
import io
import runpy
from pathlib import Path

import nbformat
import pytest

from autograder import checks
from autograder.grading.course import split_hidden
from tests.helpers import assignments, source_notebook

FOLDER = Path(__file__).parent / "variants"
ASSIGNMENTS = assignments()


def variants(assignment: str) -> dict:
    return runpy.run_path(str(FOLDER / f"{assignment}.py"))["VARIANTS"]


def parts(assignment: str):
    """(code run before every exercise, {grade_id: (visible, hidden)}) of the source notebook."""
    nb = nbformat.read(source_notebook(assignment), 4)
    before, tests = [], {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code":
            continue
        if meta.get("grade"):
            segments = split_hidden(cell.source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
            tests[meta["grade_id"]] = tuple("\n".join(text for kind, text in segments if kind == want)
                                            for want in ("visible", "hidden"))
        else:
            before.append(cell.source)
    return "\n\n".join(before), tests


def outcome(before: str, answer: str, code: str) -> str | None:
    """None if ``code`` runs without an error after ``before`` and ``answer``, else the error."""
    namespace = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(before, "<set-up and answers>", "exec"), namespace)
        exec(compile(answer, "<variant>", "exec"), namespace)
        try:
            exec(compile(code, "<test cell>", "exec"), namespace)
        except Exception as error:   # what nbgrader counts as a failed test cell
            return f"{type(error).__name__}: {error}"
    return None


CASES = [(a, g) for a in ASSIGNMENTS for g in parts(a)[1]]


def test_every_graded_cell_has_variants():
    for assignment in ASSIGNMENTS:
        given = variants(assignment)
        assert set(given) == set(parts(assignment)[1]), assignment
        for grade_id, v in given.items():
            assert v["right"] and len(v["wrong"]) >= 2, f"{assignment} {grade_id}: a right variant and two wrong ones"


@pytest.mark.parametrize("assignment,grade_id", CASES)
def test_the_checks_accept_a_right_variant(assignment, grade_id):
    before, tests = parts(assignment)
    visible, hidden = tests[grade_id]
    right = variants(assignment)[grade_id]["right"]
    assert outcome(before, right, visible) is None, outcome(before, right, visible)
    calls = []
    checks._observer = lambda kind, **info: calls.append(kind) or len(calls)
    try:
        assert outcome(before, right, hidden) is None, outcome(before, right, hidden)
    finally:
        checks._observer = None
    assert {"assert_matches", "assert_scalar"} & set(calls), f"{grade_id}: its hidden test ran no check"


@pytest.mark.parametrize("assignment,grade_id", CASES)
def test_the_visible_checks_reject_every_wrong_variant(assignment, grade_id):
    before, tests = parts(assignment)
    visible, hidden = tests[grade_id]
    passed = {name for name, wrong in variants(assignment)[grade_id]["wrong"].items()
              if outcome(before, wrong, visible) is None}
    assert not passed, f"{assignment} {grade_id}: the visible checks pass {sorted(passed)}"
    passed = {name for name, wrong in variants(assignment)[grade_id]["wrong"].items()
              if outcome(before, wrong, hidden) is None}
    assert not passed, f"{assignment} {grade_id}: the hidden tests pass {sorted(passed)}"


@pytest.mark.parametrize("assignment,grade_id", CASES)
def test_a_failing_visible_check_says_what_it_expected_and_what_it_got(assignment, grade_id):
    before, tests = parts(assignment)
    visible, _ = tests[grade_id]
    for name, wrong in variants(assignment)[grade_id]["wrong"].items():
        error = outcome(before, wrong, visible)
        if error and error.startswith("AssertionError"):
            assert "expected" in error and "got" in error, f"{grade_id}, {name}: {error}"
