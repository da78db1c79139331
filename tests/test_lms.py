"""The LMS round trip: a Canvas (or Moodle) download, collected by the commands of instructors.md,
graded, and exported in the form the LMS imports, keyed by the LMS's user ids; late work,
resubmissions and one student at a time. The example rosters are in tests/lms_cases/."""
from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from autograder import lms
from autograder.grading.course import Course
from autograder.grading.prepare import newest_version

from .helpers import ROOT, fill_in_solutions, make_course, nbgrader, run, source_notebook, student_notebook

A = "01_forward_pass_exercises"
CASES = Path(__file__).parent / "lms_cases"
PAGE = ROOT / "instructors.md"


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def grades(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv", newline="") as f:
        return {r["student_id"]: r for r in csv.DictReader(f)}


def page_block(heading: str, containing: str) -> str:
    """The ```bash block of instructors.md under ``heading`` that contains ``containing``."""
    section = PAGE.read_text().split(heading, 1)[1].split("\n### ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return next(b for b in blocks if containing in b)


def shell(block: str, course: Path, home: Path) -> subprocess.CompletedProcess:
    """Run an instructors.md command block as written, from the course folder, in a fresh shell,
    with HOME set and `.venv/bin` meaning this environment's (a course copy has no `.venv`; a link
    would not do: the sandbox shows the kernel the environment's real path only)."""
    venv = str(Path(sys.executable).parent)
    block = re.sub(r"(?:\$PWD/)?\.venv/bin", venv, block)
    env = dict(os.environ, HOME=str(home))
    return subprocess.run(["bash", "-e", "-c", block], cwd=course, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)


def grade(course: Path, *args: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "autograder", "grade", *args], cwd=course, timeout=1800)


def export(course: Path, *args: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "autograder", "export", *args], cwd=course)


def notebooks():
    source = nbformat.read(source_notebook(A), 4)
    blank = nbformat.read(student_notebook(A), 4)
    return nbformat.writes(fill_in_solutions(blank, source)), nbformat.writes(blank)


def lms_course(tmp: Path, config: str = "") -> Path:
    """A course folder where the page's commands run (see shell), and a home with Downloads/."""
    course = make_course(tmp / "course")
    with open(course / "nbgrader_config.py", "a") as f:
        f.write(config)
    (tmp / "home" / "Downloads").mkdir(parents=True)
    return course


# --- Canvas, end to end ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def canvas(tmp_path_factory):
    """A Canvas download of five students (two named John Doe, a hyphenated name, a late one, a
    resubmission), collected and graded by the page's commands (Collect, then Resubmissions), with
    the course's penalty for late work set to "zero"; then the resubmitter's first version is put
    back next to the new one and the class graded again."""
    tmp = tmp_path_factory.mktemp("canvas")
    course = lms_course(tmp, '\nc.LateSubmissionPlugin.penalty_method = "zero"\n')
    home = tmp / "home"
    right, blank = notebooks()

    def download(sam: tuple[str, str]):
        with zipfile.ZipFile(home / "Downloads" / "submissions.zip", "w") as z:
            z.writestr(f"doejohn_1001_5001_{A}.ipynb", right)
            z.writestr(f"doejohn_1002_5002_{A}.ipynb", blank)
            z.writestr(f"smith-jonesann_1003_5003_{A}.ipynb", right)
            z.writestr(f"leekim_LATE_1004_5004_{A}.ipynb", right)
            z.writestr(*sam)

    download((f"parksam_1005_5005_{A}.ipynb", blank))
    collected = shell(page_block("### 2. Collect", "submissions.zip"), course, home)
    assert collected.returncode == 0, collected.stdout
    # Sam resubmits; the instructor downloads again and follows the page.
    download((f"parksam_1005_5105_{A}-1.ipynb", right))
    again = shell(page_block("### Resubmissions", "zip_collect").replace("--timeout 30", "--timeout 15"), course, home)
    assert again.returncode == 0, again.stdout
    assert sorted(p.name for p in (course / "submitted" / "1005" / A).iterdir()) == [f"{A}-1.ipynb"]
    # His first version put back by hand: both versions in his folder, the newest is graded.
    (course / "submitted" / "1005" / A / f"{A}.ipynb").write_text(blank)
    done = grade(course, "submitted", "--workers", "2", "--timeout", "15")
    return SimpleNamespace(course=course, home=home, done=done, rows=grades(course / "graded"))


def test_the_page_collects_canvas_by_user_id(canvas):
    """Two students of the same name and a hyphenated one each get their own folder, keyed by
    Canvas user id; the page's expression is the one the grader documents."""
    assert page_block("### 2. Collect", "submissions.zip").count(lms.CANVAS_REGEXP) == 1
    folders = sorted(p.name for p in (canvas.course / "submitted").iterdir())
    assert folders == ["1001", "1002", "1003", "1004", "1005"]


def test_canvas_rows_are_graded_by_user_id(canvas):
    assert canvas.done.returncode == 0, canvas.done.stdout
    scores = {s: (r["score"], r["max_score"]) for s, r in canvas.rows.items()}
    assert scores == {"1001": ("10", "10"), "1002": ("0", "10"), "1003": ("10", "10"), "1004": ("0", "10"),
                      "1005": ("10", "10")}, canvas.done.stdout


def test_the_late_one_is_marked_and_penalised_as_configured(canvas):
    late = canvas.rows["1004"]
    assert late["late"] == "late (Canvas _LATE; time unknown)"
    assert late["late_penalty"] == "10" and late["score"] == "0"
    assert all(canvas.rows[s]["late"] == "" and canvas.rows[s]["late_penalty"] == "" for s in ("1001", "1003", "1005"))


def test_the_newest_resubmission_is_graded_and_the_row_says_so(canvas):
    assert "grading 1 of 5 submissions" in canvas.done.stdout  # only the folder that changed
    message = canvas.rows["1005"]["message"]
    assert f"graded {A}-1.ipynb, the newest submission" in message
    assert f"older, not graded: {A}.ipynb" in message


def test_the_canvas_export_reads_back(canvas, tmp_path):
    roster = canvas.home / "Downloads" / "gradebook.csv"
    shutil.copy(CASES / "canvas_roster.csv", roster)
    done = shell(page_block("### 5. Export", "--to canvas"), canvas.course, canvas.home)
    assert done.returncode == 0, done.stdout
    table = read_csv(canvas.course / "graded" / "canvas_import.csv")
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", f"{A} (70001)"]
    assert table[1][0].strip() == "Points Possible" and table[1][5] == "10.00"
    by_id = {row[1]: row for row in table[2:]}
    assert {i: r[5] for i, r in by_id.items()} == {"1001": "10", "1002": "0", "1003": "10", "1004": "0",
                                                   "1005": "10", "1006": ""}
    assert by_id["1001"][0] == by_id["1002"][0] == "Doe, John" and by_id["1003"][0] == "Smith-Jones, Ann"
    assert "no grade for 1 student(s) of the roster, left empty (not 0): 1006" in done.stdout


def test_one_student_is_graded_again_after_an_extension(canvas):
    """--student: Kim gets a later deadline, is graded again and loses the penalty; every other
    row is kept as it was, not graded again."""
    before = dict(canvas.rows)
    (canvas.course / "extensions.csv").write_text(f"student_id,assignment_id,due\n1004,{A},2099-01-01 00:00:00 UTC\n")
    try:
        done = shell(page_block("### Deadlines and late work", "--student 1004").replace("--timeout 30", "--timeout 15"),
                     canvas.course, canvas.home)
        assert done.returncode == 0, done.stdout
        assert "grading 1 of 5 submissions" in done.stdout
        after = grades(canvas.course / "graded")
        assert after["1004"]["score"] == "10" and after["1004"]["late"] == "" and after["1004"]["late_penalty"] == ""
        assert {s: after[s] for s in after if s != "1004"} == {s: before[s] for s in before if s != "1004"}
        unknown = grade(canvas.course, "submitted", "--student", "9999")
        assert unknown.returncode == 2 and "no submission folder for student 9999" in unknown.stdout
    finally:
        (canvas.course / "extensions.csv").unlink()


# --- Moodle, end to end ---------------------------------------------------------------------------

def test_the_moodle_round_trip(tmp_path):
    """Two students of the same name in Moodle's folders, collected by the page's command, graded,
    and written into the grading worksheet, scaled to its maximum grade."""
    course = lms_course(tmp_path)
    home = tmp_path / "home"
    right, blank = notebooks()
    with zipfile.ZipFile(home / "Downloads" / "moodle_submissions.zip", "w") as z:
        z.writestr(f"Jane Roe_2001_assignsubmission_file_/{A}.ipynb", right)
        z.writestr(f"Jane Roe_2002_assignsubmission_file_/{A}.ipynb", blank)
    collected = shell(page_block("### 2. Collect", "moodle_submissions.zip"), course, home)
    assert collected.returncode == 0, collected.stdout
    assert sorted(p.name for p in (course / "submitted").iterdir()) == ["2001", "2002"]
    done = grade(course, "submitted", "--workers", "2", "--timeout", "15")
    assert done.returncode == 0, done.stdout
    shutil.copy(CASES / "moodle_worksheet.csv", home / "Downloads" / "worksheet.csv")
    exported = shell(page_block("### 5. Export", "--to moodle"), course, home)
    assert exported.returncode == 0, exported.stdout
    table = read_csv(course / "graded" / "moodle_import.csv")
    assert table[0] == read_csv(CASES / "moodle_worksheet.csv")[0]
    grade_at = table[0].index("Grade")
    assert {row[0]: row[grade_at] for row in table[1:]} == {"Participant 2001": "100", "Participant 2002": "0",
                                                            "Participant 2003": ""}
    assert "scaled from 10 to 100 points" in exported.stdout


# --- The pieces, without kernels ------------------------------------------------------------------

def test_the_canvas_expression_keys_by_user_id():
    pattern = re.compile(lms.CANVAS_REGEXP)
    for name, uid, file in [(f"x/doejohn_1001_5001_{A}.ipynb", "1001", f"{A}.ipynb"),
                            (f"x/smith-jonesann_1003_5003_{A}.ipynb", "1003", f"{A}.ipynb"),
                            (f"x/leekim_LATE_1004_5004_{A}-1.ipynb", "1004", f"{A}-1.ipynb"),
                            (f"x/o_brien_7_8_{A}.ipynb", "7", f"{A}.ipynb")]:
        match = pattern.match(name)
        assert match and (match["student_id"], match["file_id"]) == (uid, file), name
    assert lms.CANVAS_FILE.match(f"leekim_LATE_1004_5004_{A}.ipynb")["late"]
    assert not lms.CANVAS_FILE.match(f"doejohn_1001_5001_{A}.ipynb")["late"]


def test_the_newest_version_of_a_notebook_is_the_highest_number():
    paths = [Path(n) for n in (f"{A}.ipynb", f"{A}-2.ipynb", f"{A}-10.ipynb", "notes.ipynb", f"{A}-x.ipynb")]
    newest, older = newest_version(paths, f"{A}.ipynb")
    assert newest == Path(f"{A}-10.ipynb") and older == [Path(f"{A}.ipynb"), Path(f"{A}-2.ipynb")]
    assert newest_version([Path("notes.ipynb")], f"{A}.ipynb") == (None, [])


def test_lateness_from_timestamps_due_dates_and_extensions(tmp_path):
    """A time from timestamp.txt against nbgrader's due date (set with the page's command), an
    extension in extensions.csv, and a course's own penalty plugin."""
    course_dir = lms_course(tmp_path, '\nc.AssignLatePenalties.plugin_class = "tests.lms_cases.late_plugin.PointPerHour"\n')
    added = shell(page_block("### Deadlines and late work", "db assignment add"), course_dir, tmp_path / "home")
    assert added.returncode == 0, added.stdout
    submitted = course_dir / "submitted"
    for student, stamp in [("early", "2026-12-08 15:59:00 UTC"), ("late", "2026-12-08 18:30:01 Europe/Berlin"),
                           ("extended", "2026-12-09 12:00:00 UTC"), ("unknown", None)]:
        (submitted / student / A).mkdir(parents=True)
        if stamp:
            (submitted / student / A / "timestamp.txt").write_text(stamp)
    (course_dir / "extensions.csv").write_text(f"student_id,assignment_id,due\nextended,{A},2026-12-10 17:00:00 UTC\n")
    course = Course(course_dir)
    rows = [(s, A) for s in ("early", "late", "extended", "unknown")]
    found = lms.lateness(submitted, rows, course)
    # Due 17:00 Berlin = 16:00 UTC: "late" is 1 h 30 min 1 s late, a started minute counting.
    assert {k[0]: v.text() for k, v in found.items()} == {"early": "", "late": "1 h 31 min", "extended": ""}
    rule = lms.penalty_rule(course)
    assert rule("late", 10.0, found[("late", A)]) == 2.0
    assert rule("late", 1.0, found[("late", A)]) == 1.0  # never more than the score
    assert rule("early", 10.0, found[("early", A)]) is None
    (course_dir / "extensions.csv").write_text("who,when\nx,y\n")
    with pytest.raises(ValueError, match="extensions.csv, line 2"):
        lms.extensions(course)


def test_a_marker_alone_is_penalised_only_by_nbgraders_own_methods(tmp_path):
    zero = lms_course(tmp_path / "a", '\nc.LateSubmissionPlugin.penalty_method = "zero"\n')
    assert lms.penalty_rule(Course(zero))("s", 7.0, lms.Late(marker="Canvas _LATE")) == 7.0
    assert lms.penalty_rule(Course(lms_course(tmp_path / "b")))("s", 7.0, lms.Late(marker="Canvas _LATE")) is None
    own = lms_course(tmp_path / "c", '\nc.AssignLatePenalties.plugin_class = "tests.lms_cases.late_plugin.PointPerHour"\n')
    marked = lms.Late(marker="Canvas _LATE")
    assert lms.penalty_rule(Course(own))("s", 7.0, marked) is None
    assert marked.text() == "late (Canvas _LATE; time unknown) (no penalty: the course's late-penalty plugin needs the time late)"
    failing = lms.Late(seconds=float("inf"))  # a plugin that fails on a row: that row says so, no penalty
    assert lms.penalty_rule(Course(own))("s", 7.0, failing) is None and "plugin failed: OverflowError" in failing.problem


def write_grades(folder: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["student_id", "assignment_id", "score", "max_score", "late", "late_penalty", "status", "message"])
    for student, assignment, score, max_score in rows:
        writer.writerow([student, assignment, score, max_score, "", "", "ok", ""])
    (folder / "grades.csv").write_text(text.getvalue())
    return folder


def test_the_canvas_export_matches_columns_scales_and_warns(tmp_path):
    graded = write_grades(tmp_path / "graded", [("1001", "essay", "8", "10"), ("1002", "essay", "5", "10"),
                                                 ("4242", "essay", "9", "10"), ("1003", "essay", "n/a", "10")])
    text, warnings = lms.export_canvas(lms.read_grades(graded), CASES / "canvas_roster.csv", {"essay": "70002"})
    table = list(csv.reader(io.StringIO(text)))
    assert table[0][5] == "Essay on gradients (70002)" and len(table[0]) == 6
    assert {r[1]: r[5] for r in table[2:]} == {"1001": "4", "1002": "2.5", "1003": "", "1004": "", "1005": "",
                                               "1006": ""}
    assert "essay: scaled from 10 to 5 points" in warnings
    assert "1003: the score 'n/a' in grades.csv is not a number; left empty" in warnings
    assert any("graded but not in the roster (not exported): 4242" in w for w in warnings)
    with pytest.raises(lms.ExportError, match="--column essay="):
        lms.export_canvas(lms.read_grades(graded), CASES / "canvas_roster.csv", {})
    with pytest.raises(lms.ExportError, match="not a Canvas gradebook export"):
        lms.export_canvas(lms.read_grades(graded), CASES / "moodle_worksheet.csv", {"essay": "70002"})


def test_the_export_command_says_what_is_wrong(tmp_path):
    graded = write_grades(tmp_path / "graded", [("2001", A, "10", "10"), ("2001", "other", "1", "10")])
    done = export(tmp_path, "--to", "moodle", "--roster", str(CASES / "moodle_worksheet.csv"), str(graded))
    assert done.returncode == 2 and "say which with --assignment" in done.stdout
    done = export(tmp_path, "--to", "canvas", "--roster", str(tmp_path / "missing.csv"), str(graded))
    assert done.returncode == 2 and "no roster" in done.stdout
    done = export(tmp_path, "--to", "canvas", "--roster", str(CASES / "canvas_roster.csv"), str(tmp_path / "none"))
    assert done.returncode == 2 and "grade the class first" in done.stdout
