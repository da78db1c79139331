"""nbgrader on the course: validate (and its inversion) and autograde end to end."""
from __future__ import annotations

import nbformat
import pytest
from nbgrader.api import Gradebook

from tests.hardcoded_answers import hardcoded_answers
from tests.helpers import answer, assignments, fill_in_solutions, graded_cells, make_course, nbgrader, source_notebook, student_notebook

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
def test_hardcoded_answers_pass_the_visible_checks(assignment, tmp_path):
    """The copied numbers do pass what the student sees: the hidden tests are what stops them."""
    path = tmp_path / student_notebook(assignment).name
    nbformat.write(answer(nbformat.read(student_notebook(assignment), 4), hardcoded_answers(assignment)), path)
    done = nbgrader("validate", str(path))
    assert "Success! Your notebook passes all the tests." in done.stdout, done.stdout


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_autograde_scores_correct_blank_and_hardcoded_submissions(assignment, tmp_path):
    """Three simulated students: one submits the released notebook answered with the solutions,
    one submits it untouched, one copies the published numbers. nbgrader autograde must give
    full marks, zero, and zero (the hidden tests call the functions on fresh networks)."""
    course = make_course(tmp_path)
    source = nbformat.read(source_notebook(assignment), 4)
    student = nbformat.read(student_notebook(assignment), 4)
    name = student_notebook(assignment).name
    submissions = {"full": fill_in_solutions(student, source), "blank": student,
                   "hardcoded": answer(student, hardcoded_answers(assignment))}
    for student_id, nb in submissions.items():
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
        hardcoded = gradebook.find_submission(assignment, "hardcoded")
        assert blank.score == 0
        assert hardcoded.score == 0, {g.name: g.score for g in hardcoded.notebooks[0].grades}
        assert not any(s.needs_manual_grade for s in (full, blank, hardcoded))
