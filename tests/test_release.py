"""The student notebooks: generated from solutions/, in sync, free of solutions, standalone."""
from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from autograder import release
from tests.helpers import LEAK_MARKERS, assignments, fill_in_solutions, graded_cells, source_notebook, student_notebook

ASSIGNMENTS = assignments()


def test_there_is_at_least_one_assignment():
    assert ASSIGNMENTS, "no assignment found under solutions/"


def test_committed_student_notebooks_equal_a_fresh_release():
    stale = release.out_of_date()
    assert not stale, f"out of date, run `python -m autograder release`: {stale}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_student_notebook_has_no_solution_or_hidden_test(assignment):
    text = student_notebook(assignment).read_text()
    for marker in LEAK_MARKERS:
        assert marker not in text, f"{student_notebook(assignment).name} contains {marker!r}"
    assert "autograder" not in text, "the student notebook must not need the course package"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_student_notebook_keeps_every_graded_cell_and_its_points(assignment):
    source = graded_cells(nbformat.read(source_notebook(assignment), 4))
    student = graded_cells(nbformat.read(student_notebook(assignment), 4))
    assert {k: v["points"] for k, v in student.items()} == {k: v["points"] for k, v in source.items()}
    assert len(student) >= 3


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_student_notebook_runs_standalone(assignment):
    """Answered correctly, the released notebook runs top to bottom, visible checks included,
    in a kernel where the course package cannot be imported."""
    student = nbformat.read(student_notebook(assignment), 4)
    filled = fill_in_solutions(student, nbformat.read(source_notebook(assignment), 4))
    block = nbformat.v4.new_code_cell("import sys\nsys.modules['autograder'] = None  # any import of it now fails")
    filled.cells.insert(0, block)
    NotebookClient(filled, timeout=120, kernel_name="python3").execute()
    printed = "".join(o.get("text", "") for c in filled.cells if c.cell_type == "code" for o in c.outputs)
    assert "OK" in printed
