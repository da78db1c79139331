"""The LMS round trip: a Canvas (or Moodle) download, collected (only its top-level names decide
whose work a file is), graded, exported in the form the LMS imports and returned as the zip its
bulk feedback upload takes, both read back by the LMS's own rules; late work and its penalty the
same on the page, in grades.csv and in nbgrader's export; formgrader's comments on the page. The
page's own commands are typed by tests/test_instructors_page.py; the example rosters are in
tests/lms_cases/."""
from __future__ import annotations

import csv
import io
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from autograder import collect, lms
from autograder.grading.course import Course
from autograder.grading.prepare import newest_version

from .helpers import fill_in_solutions, make_course, nbgrader, run, source_notebook, student_notebook

A = "01_forward_pass_exercises"
CASES = Path(__file__).parent / "lms_cases"


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def grades(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv", newline="") as f:
        return {r["student_id"]: r for r in csv.DictReader(f)}


def grade(course: Path, *args: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "autograder", "grade", *args], cwd=course, timeout=1800)


def export(course: Path, *args: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "autograder", "export", *args], cwd=course)


def notebooks():
    source = nbformat.read(source_notebook(A), 4)
    blank = nbformat.read(student_notebook(A), 4)
    return nbformat.writes(fill_in_solutions(blank, source)), nbformat.writes(blank)


def lms_course(tmp: Path, config: str = "") -> Path:
    """A course folder with the repository's solutions and configuration, and ``config`` added."""
    course = make_course(tmp / "course")
    with open(course / "nbgrader_config.py", "a") as f:
        f.write(config)
    return course


# --- Collecting: only the download's own top-level names decide ------------------------------------

def canvas_zip(path: Path, entries: dict[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


def nested_archive(entries: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buffer.getvalue()


def test_collect_from_canvas_keeps_each_students_files_to_themselves(tmp_path):
    """A student's zip holding files named like a classmate's late resubmission, a path that
    climbs out, a folder entry: none of it reaches anyone else's folder, nothing is extracted;
    Canvas's _LATE is kept from the download's own names only."""
    right, blank = notebooks()
    planted = nested_archive({f"doejohn_LATE_1001_9999_{A}-99.ipynb": blank, f"../1001/{A}/{A}-99.ipynb": blank})
    download = canvas_zip(tmp_path / "submissions.zip", {
        f"doejohn_1001_5001_{A}.ipynb": right,
        f"leekim_LATE_1004_5004_{A}.ipynb": right,
        "absental_1006_5006_work.zip": planted,
        f"somewhere/doejohn_LATE_1001_7_{A}-5.ipynb": blank,       # not a Canvas name: inside a folder
        f"LATE_anon_x1y2z_5077_{A}.ipynb": blank,                   # anonymous grading
    })
    done, warnings = collect.collect("canvas", str(download), A, str(tmp_path / "submitted"),
                                     str(CASES / "canvas_roster.csv"))
    submitted = tmp_path / "submitted"
    assert sorted(p.name for p in (submitted / "1001" / A).iterdir()) == [f"{A}.ipynb"]
    assert sorted(p.name for p in (submitted / "1006" / A).iterdir()) == ["work.zip"]
    assert (submitted / "1006" / A / "work.zip").read_bytes() == planted
    manifest = collect.read_manifest(submitted, A)
    assert {s: r["late"] for s, r in manifest.items()} == {"1001": "", "1004": "LATE", "1006": ""}
    assert manifest["1004"]["name"] == "Lee, Kim" and manifest["1001"]["entries"] == f"doejohn_1001_5001_{A}.ipynb"
    assert "1006: handed in an archive (work.zip): not extracted" in warnings
    assert any("somewhere/" in w and "inside a folder" in w for w in warnings)
    assert any("anonymous grading" in w for w in warnings)
    assert done == [f"collected 3 students' submissions of {A} into {submitted}/ (1 marked late by Canvas)"]
    # Late found from the manifest, for the marked student only.
    late = lms.lateness(submitted, [(s, A) for s in ("1001", "1004", "1006")], Course(make_course(tmp_path / "c")))
    assert list(late) == [("1004", A)] and late[("1004", A)].marker == lms.CANVAS_MARK


def test_collect_from_moodle_reads_folders_times_and_skips_what_is_not_a_file(tmp_path):
    right, _ = notebooks()
    download = canvas_zip(tmp_path / "moodle.zip", {
        f"Jane Roe_2001_assignsubmission_file/{A}.ipynb": right,
        f"Jane Roe_2002_assignsubmission_file_/sub/{A}.ipynb": right,         # before Moodle 4.1; a subfolder
        f"Sam Lee_2004_assignsubmission_file_{A}.ipynb": right,               # "download as folders" off
        "Jane Roe_2001_assignsubmission_onlinetext/onlinetext.html": "<p>hi</p>",
        f"Jane Roe_2002_assignsubmission_file/../2001_x/{A}.ipynb": right,
    })
    done, warnings = collect.collect("moodle", str(download), A, str(tmp_path / "submitted"),
                                     str(CASES / "moodle_worksheet.csv"), "Europe/Berlin")
    submitted = tmp_path / "submitted"
    assert (submitted / "2001" / A / f"{A}.ipynb").is_file() and (submitted / "2004" / A / f"{A}.ipynb").is_file()
    assert (submitted / "2002" / A / "sub" / f"{A}.ipynb").is_file()
    assert sorted(p.name for p in submitted.iterdir()) == [".lms", "2001", "2002", "2004"]
    # 4:12 PM in Berlin (UTC+1 in November) is 15:12 UTC.
    assert (submitted / "2001" / A / "timestamp.txt").read_text() == "2026-11-30 15:12:00.000000 UTC"
    assert collect.read_manifest(submitted, A)["2004"]["name"] == "Sam Lee"
    assert any("assignsubmission_onlinetext submission, not a file" in w for w in warnings)
    assert any("/../" in w and "cannot be used" in w for w in warnings)
    other = canvas_zip(tmp_path / "other.zip", {f"Kim Ng_2999_assignsubmission_file/{A}.ipynb": right})
    _, warnings = collect.collect("moodle", str(other), A, str(tmp_path / "submitted"),
                                  str(CASES / "moodle_worksheet.csv"), "Europe/Berlin")
    assert "not in the roster moodle_worksheet.csv: 2999" in warnings
    assert not (submitted / "2999" / A / "timestamp.txt").exists()  # no time: never late by guess


# --- Canvas, end to end ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def canvas(tmp_path_factory):
    """A Canvas download of six students (two named John Doe, a late one, a nested archive planting
    a classmate's "resubmission"), collected with the roster, graded with the "zero" penalty; then
    a comment typed in formgrader, a resubmission downloaded and collected again, graded again."""
    tmp = tmp_path_factory.mktemp("canvas")
    course = lms_course(tmp, '\nc.LateSubmissionPlugin.penalty_method = "zero"\n')
    right, blank = notebooks()
    entries = {f"doejohn_1001_5001_{A}.ipynb": right, f"doejohn_1002_5002_{A}.ipynb": blank,
               f"smithjonesann_1003_5003_{A}.ipynb": right, f"leekim_LATE_1004_5004_{A}.ipynb": right,
               f"parksam_1005_5005_{A}.ipynb": blank,
               "absental_1006_5006_work.zip": nested_archive({f"doejohn_1002_9999_{A}-99.ipynb": right})}
    download = canvas_zip(tmp / "submissions.zip", entries)

    def collect_and_grade():
        done = run([sys.executable, "-m", "autograder", "collect", "--from", "canvas", str(download), A,
                    "--roster", str(CASES / "canvas_roster.csv")], cwd=course)
        assert done.returncode == 0, done.stdout
        return done, grade(course, "submitted", "--workers", "2", "--timeout", "15")

    collected, first = collect_and_grade()
    assert first.returncode == 0, first.stdout
    before = grades(course / "graded")
    # A comment typed in formgrader on 1003's first answer cell; 1005 resubmits.
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'graded' / 'gradebook.db'}") as gb:
        comment = gb.find_submission_notebook(A, A, "1003").comments[0]
        comment.manual_comment = "Neat: the loop reads like the formula."
        commented = comment.name
        gb.db.commit()
    del entries[f"parksam_1005_5005_{A}.ipynb"]
    entries[f"parksam_1005_5105_{A}.ipynb"] = right
    download = canvas_zip(tmp / "submissions.zip", entries)
    _, again = collect_and_grade()
    return SimpleNamespace(course=course, collected=collected, first=first, before=before, again=again,
                           rows=grades(course / "graded"), commented=commented)


def page_of(course: Path, student: str) -> str:
    return (course / "graded" / "feedback" / student / A / f"{A}.html").read_text()


def test_canvas_rows_are_graded_by_user_id_and_the_planted_file_changes_nothing(canvas):
    assert canvas.again.returncode == 0, canvas.again.stdout
    assert {s: r["score"] for s, r in canvas.before.items()} == {"1001": "10", "1002": "0", "1003": "10", "1004": "0",
                                                                  "1005": "0", "1006": "0"}
    assert canvas.before["1006"]["status"] == "error" and "no notebook submitted" in canvas.before["1006"]["message"]
    assert canvas.before["1002"]["late"] == "" and "-99" not in canvas.before["1002"]["message"]
    assert "warning: 1006: handed in an archive (work.zip): not extracted" in canvas.collected.stdout
    assert "Canvas takes points off the imported score again" in canvas.first.stdout  # the double penalty


def test_the_late_page_shows_what_the_lms_gets(canvas):
    """Penalty "zero" with Canvas's marker: grades.csv, the page and the import all say 0."""
    late = canvas.rows["1004"]
    assert (late["late"], late["late_penalty"], late["score"]) == (
        "late (marked late by Canvas; the time is not known)", "10", "0")
    page = page_of(canvas.course, "1004")
    assert "<strong>0 of 10 points</strong>" in page and "10 of 10 points" not in page
    assert "late penalty: 10 points; final score: 0 of 10" in page
    assert "Lee, Kim (id 1004)" in page


def test_a_formgrader_comment_reaches_the_page_and_grades_csv(canvas):
    assert canvas.rows["1003"]["comments"] == f"{canvas.commented}: Neat: the loop reads like the formula."
    page = page_of(canvas.course, "1003")
    assert "Comments from your instructor" in page and "Neat: the loop reads like the formula." in page
    assert "Comments from your instructor" not in page_of(canvas.course, "1001")


def test_the_resubmission_replaces_the_first(canvas):
    assert "grading 1 of 6 submissions" in canvas.again.stdout  # only the folder that changed
    assert canvas.rows["1005"]["score"] == "10"
    assert sorted(p.name for p in (canvas.course / "submitted" / "1005" / A).iterdir()) == [f"{A}.ipynb"]


def test_nbgrader_export_agrees_with_grades_csv(canvas):
    exported = nbgrader("export", "--to", "nbgrader_export.csv", cwd=canvas.course / "graded")
    assert exported.returncode == 0, exported.stdout
    with open(canvas.course / "graded" / "nbgrader_export.csv", newline="") as f:
        theirs = {r["student_id"]: r for r in csv.DictReader(f) if r["assignment"] == A}
    assert {s: float(r["score"]) for s, r in theirs.items()} == {s: float(r["score"]) for s, r in canvas.rows.items()}
    assert float(theirs["1004"]["late_submission_penalty"]) == 10 and float(theirs["1004"]["raw_score"]) == 10
    assert (theirs["1004"]["last_name"], theirs["1004"]["first_name"]) == ("Lee", "Kim")  # the roster's


def test_the_canvas_export_reads_back_and_lists_every_row_not_ok(canvas):
    done = export(canvas.course, "--to", "canvas", "--roster", str(CASES / "canvas_roster.csv"))
    assert done.returncode == 0, done.stdout
    table = read_csv(canvas.course / "graded" / "canvas_import.csv")
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", f"{A} (70001)"]
    assert table[1][0].strip() == "Points Possible" and table[1][5] == "10.00"
    by_id = {row[1]: row for row in table[2:]}
    assert {i: r[5] for i, r in by_id.items()} == {"1001": "10", "1002": "0", "1003": "10", "1004": "0",
                                                   "1005": "10", "1006": "0"}
    assert by_id["1001"][0] == by_id["1002"][0] == "Doe, John" and by_id["1003"][0] == "Smith-Jones, Ann"
    assert f"{A}: 1 row(s) not ok, exported with their score (look at them): 1006 error: no notebook" in done.stdout


def canvas_reupload(path: Path, download: dict[str, set[str]]) -> dict[str, list[str]]:
    """What Canvas's Re-Upload Submissions makes of a zip (Assignment#infer_comment_context_from_filename):
    the first two whole-number parts of each file's name, split at "_", are the user id and the
    attachment id, which must be one of that user's submitted files; others are ignored."""
    attached: dict[str, list[str]] = {}
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            numbers = [p for p in Path(name).name.split("_") if p.isdigit()][:2]
            if len(numbers) == 2 and numbers[1] in download.get(numbers[0], set()):
                attached.setdefault(numbers[0], []).append(z.read(name).decode())
    return attached


def test_the_canvas_bulk_return_reads_back(canvas):
    done = run([sys.executable, "-m", "autograder", "return", "--to", "canvas", A], cwd=canvas.course)
    assert done.returncode == 0, done.stdout
    download = {"1001": {"5001"}, "1002": {"5002"}, "1003": {"5003"}, "1004": {"5004"}, "1005": {"5105"},
                "1006": {"5006"}}
    attached = canvas_reupload(canvas.course / "graded" / f"canvas_feedback_{A}.zip", download)
    assert sorted(attached) == sorted(download) and all(len(pages) == 1 for pages in attached.values())
    assert "Doe, John (id 1001)" in attached["1001"][0] and "Doe, John (id 1002)" in attached["1002"][0]
    assert "<strong>0 of 10 points</strong>" in attached["1004"][0]


# --- Moodle, end to end ---------------------------------------------------------------------------

def moodle_feedback_import(path: Path, participants: set[str]) -> dict[str, list[str]]:
    """What Moodle's "Upload multiple feedback files in a zip" makes of a zip
    (assignfeedback_file_zip_importer::is_valid_filename_for_import): the first path part that,
    split at "_" into at most five, has a participant id of the assignment and a known plugin."""
    found: dict[str, list[str]] = {}
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            for part in name.split("/"):
                info = part.split("_", 4)
                if len(info) >= 4 and info[1].isdigit() and info[1] in participants and \
                        (info[2], info[3]) == ("assignsubmission", "file"):
                    found.setdefault(info[1], []).append(z.read(name).decode())
                    break
    return found


def test_the_moodle_round_trip(tmp_path):
    """Moodle's folders and worksheet times, 10 % a day, collected, graded, exported, returned."""
    course = lms_course(tmp_path, '\nc.AssignLatePenalties.plugin_class = "autograder.lms.PercentPerDay"\n'
                                  'c.PercentPerDay.percent = 10\n')
    right, blank = notebooks()
    download = canvas_zip(tmp_path / "moodle.zip", {f"Jane Roe_2001_assignsubmission_file/{A}.ipynb": right,
                                                     f"Jane Roe_2002_assignsubmission_file/{A}.ipynb": right})
    added = nbgrader("db", "assignment", "add", A, "--duedate=2026-11-30 17:00:00 Europe/Berlin", cwd=course)
    assert added.returncode == 0, added.stdout
    done = run([sys.executable, "-m", "autograder", "collect", "--from", "moodle", str(download), A,
                "--roster", str(CASES / "moodle_worksheet.csv"), "--timezone", "Europe/Berlin"], cwd=course)
    assert done.returncode == 0, done.stdout
    graded = grade(course, "submitted", "--workers", "2", "--timeout", "15")
    assert graded.returncode == 0, graded.stdout
    rows = grades(course / "graded")
    assert {s: (r["score"], r["late"], r["late_penalty"]) for s, r in rows.items()} == {
        "2001": ("10", "", ""), "2002": ("9", "40 min", "1")}
    assert "Jane Roe (id 2002)" in page_of(course, "2002") and "final score: 9 of 10" in page_of(course, "2002")
    exported = export(course, "--to", "moodle", "--roster", str(CASES / "moodle_worksheet.csv"))
    assert exported.returncode == 0, exported.stdout
    table = read_csv(course / "graded" / "moodle_import.csv")
    assert table[0] == read_csv(CASES / "moodle_worksheet.csv")[0]
    grade_at = table[0].index("Grade")
    assert {row[0]: row[grade_at] for row in table[1:]} == {"Participant 2001": "100", "Participant 2002": "90",
                                                            "Participant 2003": "", "Participant 2004": ""}
    assert "scaled from 10 to 100 points" in exported.stdout
    assert "nothing submitted by 2 student(s) of the roster, left empty (not 0): 2003, 2004" in exported.stdout
    back = run([sys.executable, "-m", "autograder", "return", "--to", "moodle", A], cwd=course)
    assert back.returncode == 0, back.stdout
    pages = moodle_feedback_import(course / "graded" / f"moodle_feedback_{A}.zip", {"2001", "2002", "2003", "2004"})
    assert sorted(pages) == ["2001", "2002"] and "Jane Roe (id 2001)" in pages["2001"][0]
    nbexport = nbgrader("export", "--to", "nbgrader_export.csv", cwd=course / "graded")
    assert nbexport.returncode == 0, nbexport.stdout
    with open(course / "graded" / "nbgrader_export.csv", newline="") as f:
        theirs = {r["student_id"]: r for r in csv.DictReader(f)}
    assert float(theirs["2002"]["score"]) == 9 and theirs["2002"]["duedate"].startswith("2026-11-30 16:00:00")
    assert theirs["2002"]["timestamp"].startswith("2026-11-30 16:40:00")


# --- The pieces, without kernels ------------------------------------------------------------------

def test_the_newest_version_of_a_notebook_is_the_highest_number():
    paths = [Path(n) for n in (f"{A}.ipynb", f"{A}-2.ipynb", f"{A}-10.ipynb", "notes.ipynb", f"{A}-x.ipynb")]
    newest, older = newest_version(paths, f"{A}.ipynb")
    assert newest == Path(f"{A}-10.ipynb") and older == [Path(f"{A}.ipynb"), Path(f"{A}-2.ipynb")]
    assert newest_version([Path("notes.ipynb")], f"{A}.ipynb") == (None, [])


def test_lateness_from_timestamps_due_dates_and_extensions(tmp_path):
    """A time from timestamp.txt against nbgrader's due date (set with the page's command), an
    extension in extensions.csv, and a course's own penalty plugin."""
    course_dir = lms_course(tmp_path, '\nc.AssignLatePenalties.plugin_class = "tests.lms_cases.late_plugin.PointPerHour"\n')
    added = nbgrader("db", "assignment", "add", A, "--duedate=2026-12-08 17:00:00 Europe/Berlin", cwd=course_dir)
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
    assert lms.penalty_rule(Course(zero))("s", 7.0, lms.Late(marker=lms.CANVAS_MARK)) == 7.0
    assert lms.penalty_rule(Course(lms_course(tmp_path / "b")))("s", 7.0, lms.Late(marker=lms.CANVAS_MARK)) is None
    own = lms_course(tmp_path / "c", '\nc.AssignLatePenalties.plugin_class = "tests.lms_cases.late_plugin.PointPerHour"\n')
    marked = lms.Late(marker=lms.CANVAS_MARK)
    assert lms.penalty_rule(Course(own))("s", 7.0, marked) is None
    assert marked.text() == ("late (marked late by Canvas; the time is not known) (no penalty: the course's late-penalty "
                             "rule needs the time late)")
    failing = lms.Late(seconds=float("inf"))  # a plugin that fails on a row: that row says so, no penalty
    assert lms.penalty_rule(Course(own))("s", 7.0, failing) is None and "plugin failed: OverflowError" in failing.problem


def write_grades(folder: Path, rows: list[tuple]) -> Path:
    """grades.csv of rows (student, assignment, score, max_score[, status, message])."""
    folder.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["student_id", "assignment_id", "score", "max_score", "late", "late_penalty", "status", "message"])
    for student, assignment, score, max_score, *rest in rows:
        status, message = rest or ("ok", "")
        writer.writerow([student, assignment, score, max_score, "", "", status, message])
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


def test_the_export_treats_nothing_submitted_alike_and_lists_rows_not_ok(tmp_path):
    """No folder for one assignment (while another was handed in) and no row at all: both empty and
    listed; an error row (a wrong notebook) exported with its 0 and listed with its message."""
    graded = write_grades(tmp_path / "graded", [
        ("1001", A, "10", "10"),
        ("1002", A, "0", "10", "error", f"nothing submitted: no folder 1002/{A}"),
        ("1003", A, "0", "10", "error", "x.ipynb is the notebook of assignment 02_backprop_exercises"),
        ("1004", A, "3", "10", "timeout", "a cell ran past the limit")])
    path, warnings = lms.export(str(graded), "canvas", str(CASES / "canvas_roster.csv"), None, None, [])
    table = {r[1]: r[5] for r in read_csv(Path(path))[2:]}
    assert table == {"1001": "10", "1002": "", "1003": "0", "1004": "3", "1005": "", "1006": ""}
    assert f"{A}: nothing submitted by 3 student(s) of the roster, left empty (not 0): 1002, 1005, 1006" in warnings
    assert (f"{A}: 2 row(s) not ok, exported with their score (look at them): 1003 error: x.ipynb is the notebook "
            "of assignment 02_backprop_exercises; 1004 timeout: a cell ran past the limit") in warnings
