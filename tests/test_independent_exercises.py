"""A broken answer costs its own exercise's points, not those of a right answer checked alone.

Each test cell of the source notebooks uses, in its visible and its hidden part, only the names
its own exercise's answer defines (a static check over every exercise). Then every assignment is
graded with `python -m autograder grade` for two students who answered everything as the
solutions do except the first exercise's function: one with a syntax error in its cell, one whose
function raises. Every later exercise gets its full points, except those whose answer calls the
first one, as their text tells the student to (BUILDS_ON_FIRST). A third student breaks chapter
6's backward_deep, which another check used to call (LATER).
"""
from __future__ import annotations

import ast
import csv
import re
import sys
from types import SimpleNamespace

import nbformat
import pytest

from autograder.grading.course import split_hidden
from tests.helpers import (assignments, broken_answers, fill_in_solutions, make_course, run, source_notebook,
                           student_notebook, write_submission)

ASSIGNMENTS = assignments()
TIMEOUT = "30"   # nbgrader's default: a loaded machine took more than 12 s for a first torch.optim step

# The exercises whose answer calls the first exercise's function, with the exercise text that
# says so: a broken first answer costs their points too.
BUILDS_ON_FIRST = {
    "01_forward_pass_exercises": {"test_forward": "forward uses your layer (exercise 2: 'Use your `layer`')"},
    "02_chain_rule_exercises": {},
    "03_backprop_by_hand_exercises": {"test_backward_layers": "backward_layers uses your output_deltas (exercise 3)"},
    "04_gradient_descent_exercises": {"test_train": "train uses your sgd_step (exercise 2)"},
    "05_nn_module_sgd_exercises": {"test_train_bce": "train_bce builds your SigmoidMLP (exercise 3)"},
    "06_gradient_checking_exercises": {"test_count_failures": "count_failures compares through your "
                                                              "relative_error (exercise 4)"},
}


def exercises(nb) -> list[SimpleNamespace]:
    """Each graded cell with the names its exercise's answer cells (since the last graded cell) define."""
    found, names = [], set()
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            names |= {node.name for node in ast.parse(cell.source).body
                      if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        if meta.get("grade"):
            found.append(SimpleNamespace(grade_id=meta["grade_id"], points=float(meta["points"]),
                                         source=cell.source, names=names))
            names = set()
    return found


def names_used(code: str) -> set[str]:
    """The names a piece of code uses, less those it imports (a hidden test's reference functions)."""
    tree = ast.parse(code)
    imported = {(alias.asname or alias.name).split(".")[0] for node in ast.walk(tree)
                if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)} - imported


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_no_check_uses_another_exercises_answer(assignment):
    cells = exercises(nbformat.read(source_notebook(assignment), 4))
    answers = set().union(*(cell.names for cell in cells))
    assert set(BUILDS_ON_FIRST[assignment]) <= {cell.grade_id for cell in cells[1:]}
    for cell in cells:
        for kind, code in split_hidden(cell.source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            others = (names_used(code) & answers) - cell.names
            assert not others, f"{assignment}: the {kind} part of {cell.grade_id} uses {sorted(others)}, " \
                               "another exercise's answer: build its inputs in the cell instead"


def raising_answers(student_nb, source_nb):
    """Answered as in the source, but the first answer's first function raises when called."""
    full = fill_in_solutions(student_nb, source_nb)
    first = next(c for c in full.cells if c.metadata.get("nbgrader", {}).get("solution"))
    signature = re.search(r"^( *)def .*:\n", first.source, re.MULTILINE)
    raising = f'{signature.group(1)}    raise RuntimeError("a broken answer")\n'
    first.source = first.source[:signature.end()] + raising + first.source[signature.end():]
    return full


BREAKERS = {"syntax_error": broken_answers, "raises": raising_answers}

# One more: chapter 6's count_failures check used to pass the student's backward_deep (exercise 3).
LATER = ("06_gradient_checking_exercises", "backward_deep", "test_backward_deep")


def broken_later_answer(student_nb, source_nb):
    """Answered as in the source, but the answer cell LATER names has a syntax error."""
    full = fill_in_solutions(student_nb, source_nb)
    cell = next(c for c in full.cells if c.metadata.get("nbgrader", {}).get("grade_id") == LATER[1])
    cell.source = cell.source.replace("def ", "def (", 1)
    return full


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Every assignment, both broken students, graded in one run."""
    course = make_course(tmp_path_factory.mktemp("independent"))
    for assignment in ASSIGNMENTS:
        source = nbformat.read(source_notebook(assignment), 4)
        student = nbformat.read(student_notebook(assignment), 4)
        for student_id, breaker in BREAKERS.items():
            write_submission(course / "submitted", student_id, assignment, breaker(student, source))
        if assignment == LATER[0]:
            write_submission(course / "submitted", "later_syntax_error", assignment, broken_later_answer(student, source))
    done = run([sys.executable, "-m", "autograder", "grade", "submitted", "--workers", "2", "--timeout", TIMEOUT],
               cwd=course, timeout=3600)
    assert done.returncode == 0, done.stdout
    with open(course / "graded" / "grades.csv", newline="") as f:
        return {(row["student_id"], row["assignment_id"]): row for row in csv.DictReader(f)}


@pytest.mark.parametrize("student_id", sorted(BREAKERS))
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_a_broken_first_answer_costs_only_the_exercises_that_use_it(graded, assignment, student_id):
    row = graded[(student_id, assignment)]
    cells = exercises(nbformat.read(source_notebook(assignment), 4))
    lost = {cells[0].grade_id} | set(BUILDS_ON_FIRST[assignment])
    expected = {cell.grade_id: 0.0 if cell.grade_id in lost else cell.points for cell in cells}
    assert {grade_id: float(row[grade_id]) for grade_id in expected} == expected, row
    assert float(row["score"]) == sum(expected.values()), row
    assert float(row["max_score"]) == 10, row


def test_a_broken_later_answer_costs_only_its_own_points(graded):
    row = graded[("later_syntax_error", LATER[0])]
    cells = exercises(nbformat.read(source_notebook(LATER[0]), 4))
    expected = {cell.grade_id: 0.0 if cell.grade_id == LATER[2] else cell.points for cell in cells}
    assert {grade_id: float(row[grade_id]) for grade_id in expected} == expected, row
