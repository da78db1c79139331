"""nbgrader on the course: validate (and its inversion) and autograde end to end."""
from __future__ import annotations

import nbformat
import pytest
from nbgrader.api import Gradebook

from tests.helpers import assignments, fill_in_solutions, graded_cells, make_course, nbgrader, source_notebook, student_notebook

ASSIGNMENTS = assignments()


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solutions_pass_every_test(assignment):
    done = nbgrader("validate", str(source_notebook(assignment)))
    assert "Success! Your notebook passes all the tests." in done.stdout, done.stdout


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_stubs_fail_every_graded_test(assignment):
    done = nbgrader("validate", "--invert", str(student_notebook(assignment)))
    assert "Success! The notebook does not pass any tests." in done.stdout, done.stdout


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_autograde_scores_a_correct_and_a_blank_submission(assignment, tmp_path):
    """Two simulated students: one submits the released notebook answered with the solutions,
    the other submits it untouched. nbgrader autograde must give full marks and zero."""
    course = make_course(tmp_path)
    source = nbformat.read(source_notebook(assignment), 4)
    student = nbformat.read(student_notebook(assignment), 4)
    name = student_notebook(assignment).name
    for student_id, nb in {"full": fill_in_solutions(student, source), "blank": student}.items():
        folder = course / "submitted" / student_id / assignment
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / name)

    generated = nbgrader("generate_assignment", assignment, "--force", cwd=course)
    assert generated.returncode == 0, generated.stdout
    graded = nbgrader("autograde", assignment, "--force", cwd=course)
    assert graded.returncode == 0, graded.stdout

    max_score = sum(cell["points"] for cell in graded_cells(source).values())
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        full = gradebook.find_submission(assignment, "full")
        blank = gradebook.find_submission(assignment, "blank")
        assert (full.score, full.max_score) == (max_score, max_score)
        assert blank.score == 0
        assert not full.needs_manual_grade and not blank.needs_manual_grade
