"""The exchange's round trip, end to end, in temporary folders: the instructor releases an
assignment into an exchange (``Exchange.root`` set in the course's nbgrader_config.py), a student
fetches it, answers and submits; the instructor collects, grades with ``python -m autograder
grade``, releases the feedback with ``nbgrader release_feedback`` in ``graded/``; the student
fetches the grader's page. Then: a score given by hand in the gradebook (as formgrader does)
reaches grades.csv and the page; a submission collected from an LMS zip is skipped by
release_feedback with a clear warning; a moved ``graded/`` still exports and releases.

The student and the instructor are the same OS user here (the exchange names a student by their
user name); each has a home folder of their own, so the student's nbgrader reads only the
student's configuration (~/.jupyter/nbgrader_config.py) and keeps its own submission cache.
"""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.utils import get_username

from autograder.grading.course import split_hidden
from tests.helpers import LEAK_MARKERS, fill_in_solutions, make_course, source_notebook

A = "01_forward_pass_exercises"
NOTEBOOK = f"{A}.ipynb"
COURSE_ID = "backprop-step-by-step"
ZIP_STUDENT = "zipstudent"


def as_user(home: Path, cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run a command as someone whose home is ``home``: Jupyter's configuration and data folders
    (nbgrader's submission cache) are those of that home, not of the machine's user."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(HOME=str(home), PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=1200)


def ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, f"{done.args}:\n{done.stdout[-4000:]}"
    return done.stdout


def read_rows(path: Path) -> dict[str, dict]:
    with open(path, newline="") as f:
        return {row["student_id"]: row for row in csv.DictReader(f)}


def hidden_lines() -> list[str]:
    """Every line of the assignment's hidden tests that could only come from them."""
    source = nbformat.read(source_notebook(A), 4)
    lines = []
    for cell in source.cells:
        if cell.cell_type == "code":
            for kind, text in split_hidden(cell.source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
                if kind == "hidden":
                    lines += [line.strip() for line in text.split("\n") if len(line.strip()) > 12]
    assert lines, "the assignment has hidden tests"
    return lines


@pytest.fixture(scope="module")
def trip(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("roundtrip")
    t = SimpleNamespace(tmp=tmp, exchange=tmp / "exchange", course=make_course(tmp / "course"),
                        instructor=tmp / "instructor-home", student_home=tmp / "student-home",
                        student_dir=tmp / "student-work", student=get_username())
    for folder in (t.instructor, t.student_home, t.student_dir):
        folder.mkdir()
    # The instructor's exchange, in the course's configuration; the student's, in their own.
    with open(t.course / "nbgrader_config.py", "a") as f:
        f.write(f"\nc.Exchange.root = {str(t.exchange)!r}\n")
    (t.student_home / ".jupyter").mkdir()
    (t.student_home / ".jupyter" / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.Exchange.root = {str(t.exchange)!r}\nc.CourseDirectory.course_id = {COURSE_ID!r}\n")
    t.instructor_nbgrader = lambda *args, cwd=t.course: as_user(t.instructor, [sys.executable, "-m", "nbgrader",
                                                                               *args], cwd)
    t.student_nbgrader = lambda *args: as_user(t.student_home, [sys.executable, "-m", "nbgrader", *args],
                                               t.student_dir)
    t.grade = lambda: ok(as_user(t.instructor, [sys.executable, "-m", "autograder", "grade", "submitted",
                                                "--workers", "2", "--timeout", "12"], t.course))

    ok(t.instructor_nbgrader("generate_assignment", A))
    ok(t.instructor_nbgrader("release_assignment", A))
    ok(t.student_nbgrader("fetch_assignment", A))
    fetched = t.student_dir / A / NOTEBOOK
    answered = fill_in_solutions(nbformat.read(fetched, 4), nbformat.read(source_notebook(A), 4))
    nbformat.write(answered, fetched)
    ok(t.student_nbgrader("submit", A))
    ok(t.instructor_nbgrader("collect", A))
    # A second student's work came from an LMS zip: zip_collect leaves the notebook only.
    zipped = t.course / "submitted" / ZIP_STUDENT / A
    zipped.mkdir(parents=True)
    nbformat.write(answered, zipped / NOTEBOOK)

    t.graded = t.course / "graded"
    t.grading = t.grade()
    t.release = ok(t.instructor_nbgrader("release_feedback", A, cwd=t.graded))
    t.fetch = ok(t.student_nbgrader("fetch_feedback", A))
    return t


def fetched_pages(t) -> list[Path]:
    return sorted((t.student_dir / A / "feedback").glob(f"*/{A}.html"))


def test_the_student_fetches_the_graders_page(trip):
    submitted = trip.course / "submitted" / trip.student / A
    page_folder = trip.graded / "feedback" / trip.student / A
    for name in ("timestamp.txt", "submission_secret.txt"):
        assert (page_folder / name).read_bytes() == (submitted / name).read_bytes(), name
    (fetched,) = fetched_pages(trip)
    page = fetched.read_text()
    assert page == (page_folder / NOTEBOOK.replace(".ipynb", ".html")).read_text(), "the grader's page"
    assert "10 of 10 points" in page
    for marker in LEAK_MARKERS:
        assert marker not in page
    leaked = [line for line in hidden_lines() if line in page]
    assert not leaked, f"hidden test lines on the page: {leaked[:3]}"


def test_the_graded_folder_config_carries_the_course_settings_and_no_absolute_path(trip):
    config = (trip.graded / "nbgrader_config.py").read_text()
    # The exchange's path is the course's own setting; the grader writes none of its own.
    assert str(trip.course) not in config, "no absolute path: the folder can be moved"
    assert "load_subconfig" in config and repr(str(trip.exchange)) in config, "the copy for a moved folder"
    # release_feedback in graded/ used the exchange that only the course's config names.
    assert len(list((trip.exchange / COURSE_ID / "feedback").glob("*.html"))) == 1


def test_a_zip_collected_page_is_skipped_with_a_clear_warning(trip):
    page_folder = trip.graded / "feedback" / ZIP_STUDENT / A
    assert (page_folder / f"{A}.html").is_file()
    assert not (page_folder / "submission_secret.txt").exists(), "no secret is made up"
    stamp = (page_folder / "timestamp.txt").read_text()
    assert stamp.endswith(" UTC") and stamp.startswith("20"), stamp
    assert f"Not releasing {page_folder / A}.html" in trip.release
    assert ZIP_STUDENT in trip.release and "LMS" in trip.release
    assert "1 feedback page(s) not released" in trip.release
    assert "Traceback" not in trip.release


def test_a_score_given_by_hand_reaches_grades_csv_and_the_fetched_page(trip):
    # What formgrader does when the instructor types a score: the grade's manual score.
    with Gradebook(f"sqlite:///{trip.graded / 'gradebook.db'}", COURSE_ID) as gb:
        grade = gb.find_grade("test_forward", A, A, trip.student)
        assert grade.auto_score == 1
        grade.manual_score = 0.5
        grade.needs_manual_grade = False
        gb.find_grade("test_layer", A, A, ZIP_STUDENT).extra_credit = 1  # formgrader's extra credit counts too
        gb.db.commit()
    trip.grade()
    row = read_rows(trip.graded / "grades.csv")[trip.student]
    assert float(row["test_forward"]) == 0.5 and float(row["score"]) == 9.5, row
    assert "points given by hand: test_forward 1 -> 0.5" in row["message"]
    zip_row = read_rows(trip.graded / "grades.csv")[ZIP_STUDENT]
    assert (float(zip_row["test_layer"]), float(zip_row["score"])) == (2, 11), zip_row
    with Gradebook(f"sqlite:///{trip.graded / 'gradebook.db'}", COURSE_ID) as gb:
        grade = gb.find_grade("test_forward", A, A, trip.student)
        assert (grade.manual_score, grade.auto_score, grade.needs_manual_grade) == (0.5, 1, False), \
            "grading again keeps the score given by hand and does not ask for a review"
    ok(trip.instructor_nbgrader("release_feedback", A, cwd=trip.graded))
    ok(trip.student_nbgrader("fetch_feedback", A))
    (fetched,) = fetched_pages(trip)
    page = fetched.read_text()
    assert "9.5 of 10 points" in page
    assert "0.5 / 1" in page and "Points changed by your instructor: 0.5 points (the automatic tests gave 1)" in page
    # The score given by hand taken away again: the tests' points come back.
    with Gradebook(f"sqlite:///{trip.graded / 'gradebook.db'}", COURSE_ID) as gb:
        gb.find_grade("test_forward", A, A, trip.student).manual_score = None
        gb.find_grade("test_layer", A, A, ZIP_STUDENT).extra_credit = None
        gb.db.commit()
    trip.grade()
    rows = read_rows(trip.graded / "grades.csv")
    assert float(rows[trip.student]["score"]) == 10 and float(rows[ZIP_STUDENT]["score"]) == 10, rows
    assert "by hand" not in rows[trip.student]["message"]
    page = (trip.graded / "feedback" / trip.student / A / f"{A}.html").read_text()
    assert "10 of 10 points" in page and "changed by your instructor" not in page


def test_a_moved_graded_folder_still_exports_and_releases(trip):
    moved = trip.tmp / "archive" / "graded-2026"
    moved.parent.mkdir()
    shutil.move(trip.graded, moved)  # away from the course: its config can no longer be read
    ok(trip.instructor_nbgrader("export", "--to", "export.csv", cwd=moved))
    with open(moved / "export.csv", newline="") as f:
        exported = {row["student_id"]: row for row in csv.DictReader(f)}
    assert set(exported) == {trip.student, ZIP_STUDENT} and float(exported[trip.student]["score"]) == 10
    released = trip.exchange / COURSE_ID / "feedback"
    shutil.rmtree(released)
    out = ok(trip.instructor_nbgrader("release_feedback", A, cwd=moved))
    assert len(list(released.glob("*.html"))) == 1, out
    assert "Not releasing" in out, "the grader's release_feedback, from the copy of the settings"
