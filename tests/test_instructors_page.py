"""The instructors' page is tested: every command it tells an instructor to type runs as written.

Each command block of `instructors.md` (fenced ```bash) is preceded by a MyST comment line that
names its scenario, `% test: SCENARIO`, or why no test here runs it, `% not run: REASON` (a server
that runs until Ctrl-C, the site build that `tests/test_book.py` makes). A scenario is a story an
instructor lives through (release with the exchange, collect a Canvas zip, grade, export, return
feedback): its blocks run in the page's order, each in a fresh `bash -e` from the root of a scratch
copy of the repository, with a PATH that does not hold the course's environment and a HOME of its
own, so a command that forgets `.venv/bin/` fails here as it would for the instructor.
"""
from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from tests.helpers import ROOT, fill_in_solutions, source_notebook, student_notebook

PAGE = ROOT / "instructors.md"
TAGGED = re.compile(r"^[ \t]*% (test|not run): ([^\n]+)\n[ \t]*```bash\n(.*?)^[ \t]*```$", re.MULTILINE | re.DOTALL)
FRESH_PATH = "/usr/local/bin:/usr/bin:/bin"
A = "01_forward_pass_exercises"
CASES = Path(__file__).parent / "lms_cases"


def blocks() -> list[tuple[str, str, str]]:
    """(kind, scenarios or reason, commands) of every command block, in the page's order."""
    text = PAGE.read_text()
    found = [(m.group(1), m.group(2).strip(), m.group(3)) for m in TAGGED.finditer(text)]
    assert len(found) == text.count("```bash"), (
        "every ```bash block of instructors.md needs a line `% test: SCENARIO, ...` or `% not run: REASON` "
        "right before it")
    return found


def scenario_blocks(name: str) -> list[str]:
    return [commands for kind, tag, commands in blocks()
            if kind == "test" and name in [t.strip() for t in tag.split(",")]]


def page_text_after(words: str) -> str:
    """The first ```text block of the page after ``words``: a file the page tells the instructor to write."""
    return re.search(r"```text\n(.*?)```", PAGE.read_text().split(words, 1)[1], re.DOTALL).group(1)


def scratch_course(tmp: Path) -> Path:
    """A copy of the repository as an instructor has it, with the course's environment linked in
    (modification times kept, so `make` sees the environment as up to date)."""
    root = tmp / "course"
    root.mkdir()
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in tracked.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, root / name)
    (root / ".venv").symlink_to(ROOT / ".venv")
    (tmp / "home").mkdir()
    return root


def type_in(root: Path, commands: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    """Run one block as the instructor would type it: a fresh shell at the repository root."""
    env = {"PATH": FRESH_PATH, "HOME": str(root.parent / "home"), "LANG": "C.UTF-8", "TERM": "dumb"}
    for name in ("CI", "TMPDIR"):
        if name in os.environ:
            env[name] = os.environ[name]
    return subprocess.run(["bash", "-e", "-c", commands], cwd=root, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)


class Scenario:
    """The blocks of one scenario, typed in the page's order: ``next(words)`` runs the next one,
    which must contain ``words`` (so the story and the page cannot drift apart unnoticed)."""

    def __init__(self, name: str, root: Path):
        self.name, self.root = name, root
        self.left = scenario_blocks(name)
        assert self.left, f"instructors.md has no block `% test: {name}`"

    def next(self, words: str) -> str:
        assert self.left, f"{self.name}: the page has no more blocks, expected one with {words!r}"
        block = self.left.pop(0)
        assert words in block, f"{self.name}: the page's next block is\n{block}\nnot one with {words!r}"
        done = type_in(self.root, block)
        assert done.returncode == 0, f"instructors.md's block\n{block}\nfailed ({done.returncode}):\n{done.stdout[-4000:]}"
        return done.stdout

    def finished(self) -> None:
        assert not self.left, f"{self.name}: blocks of the page this test did not type: {self.left}"


def notebooks() -> tuple[str, str]:
    """A right and a blank submission of chapter 1, as files."""
    source = nbformat.read(source_notebook(A), 4)
    blank = nbformat.read(student_notebook(A), 4)
    return nbformat.writes(fill_in_solutions(blank, source)), nbformat.writes(blank)


def rows(root: Path) -> dict[str, dict]:
    with open(root / "graded" / "grades.csv", newline="") as f:
        return {r["student_id"]: r for r in csv.DictReader(f)}


def as_student(home: Path, work: Path, *args: str) -> str:
    """nbgrader as a student whose home (configuration, submission cache) is ``home``."""
    env = dict(os.environ, HOME=str(home), PATH=f"{Path(sys.executable).parent}{os.pathsep}{FRESH_PATH}")
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=work, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)
    assert done.returncode == 0, done.stdout
    return done.stdout


def test_every_command_block_is_tested_or_says_why_not():
    found = blocks()
    assert found, "instructors.md has no command block"
    for kind, tag, commands in found:
        assert commands.strip(), f"empty block ({tag})"
        if kind == "not run":
            assert len(tag) > 20, f"say why this block is not run, and what covers it: {commands}"
    untested = {t.strip() for kind, tag, _ in found if kind == "test" for t in tag.split(",")} - SCENARIOS
    assert not untested, f"scenarios without a test here: {sorted(untested)}"


def test_changing_an_exercise(tmp_path):
    root = scratch_course(tmp_path)
    page = Scenario("changing an exercise", root)
    page.next("autograder release")
    page.next("release --check")
    page.finished()


def test_the_exchange_round_trip(tmp_path):
    """Release into an exchange (set in the course's configuration, as the page allows for a try
    on one machine), a student fetches, answers and submits; collect, grade, release the pages;
    the student fetches the grader's page."""
    root = scratch_course(tmp_path)
    exchange = tmp_path / "exchange"
    with open(root / "nbgrader_config.py", "a") as f:
        f.write(f"\nc.Exchange.root = {str(exchange)!r}\n")
    student_home, work = tmp_path / "student", tmp_path / "student-work"
    (student_home / ".jupyter").mkdir(parents=True)
    work.mkdir()
    (student_home / ".jupyter" / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.Exchange.root = {str(exchange)!r}\nc.CourseDirectory.course_id = 'backprop-step-by-step'\n")
    page = Scenario("exchange", root)
    page.next("release_assignment")
    as_student(student_home, work, "fetch_assignment", A)
    fetched = work / A / f"{A}.ipynb"
    right = fill_in_solutions(nbformat.read(fetched, 4), nbformat.read(source_notebook(A), 4))
    nbformat.write(right, fetched)
    as_student(student_home, work, "submit", A)
    page.next("collect")
    page.next("autograder grade")
    assert [r["score"] for r in rows(root).values()] == ["10"]
    page.next("release_feedback")
    as_student(student_home, work, "fetch_feedback", A)
    (fetched_page,) = (work / A / "feedback").glob(f"*/{A}.html")
    assert "10 of 10 points" in fetched_page.read_text()
    page.finished()


def canvas_download(downloads: Path, sam: tuple[str, str]) -> None:
    """Canvas's Download Submissions, named as Canvas names them (lib/content_zipper.rb)."""
    right, blank = notebooks()
    with zipfile.ZipFile(downloads / "submissions.zip", "w") as z:
        z.writestr(f"doejohn_1001_5001_{A}.ipynb", right)
        z.writestr(f"doejohn_1002_5002_{A}.ipynb", blank)
        z.writestr(f"smithjonesann_1003_5003_{A}.ipynb", right)
        z.writestr(f"leekim_LATE_1004_5004_{A}.ipynb", right)
        z.writestr(*sam)


def test_the_canvas_round_trip(tmp_path):
    """A Canvas download (two students of one name, a late one), collected, graded, exported,
    returned as the Re-Upload zip; a resubmission collected again; two students graded again.
    Canvas's late policy is the page's default: the late one is marked, nothing taken off here."""
    root = scratch_course(tmp_path)
    downloads = tmp_path / "home" / "Downloads"
    downloads.mkdir()
    right, blank = notebooks()
    canvas_download(downloads, (f"parksam_1005_5005_{A}.ipynb", blank))
    shutil.copy(CASES / "canvas_roster.csv", downloads / "gradebook.csv")
    page = Scenario("canvas", root)
    page.next("collect --from canvas")
    assert sorted(p.name for p in (root / "submitted").iterdir()) == [".lms", "1001", "1002", "1003", "1004", "1005"]
    page.next("autograder grade")
    got = rows(root)
    assert {s: r["score"] for s, r in got.items()} == {"1001": "10", "1002": "0", "1003": "10", "1004": "10",
                                                        "1005": "0"}
    assert got["1004"]["late"] == "late (marked late by Canvas; the time is not known)", got["1004"]
    assert got["1004"]["late_penalty"] == ""
    page_1004 = (root / "graded" / "feedback" / "1004" / A / f"{A}.html").read_text()
    assert "Lee, Kim (id 1004)" in page_1004 and "late policy" in page_1004
    out = page.next("--to canvas")
    with open(root / "graded" / "canvas_import.csv", newline="") as f:
        table = {row[1]: row for row in csv.reader(f)}
    assert table["1001"][-1] == "10" and table["1002"][-1] == "0" and table["1006"][-1] == ""
    assert "nothing submitted by 1 student(s) of the roster, left empty (not 0): 1006" in out
    page.next("return --to canvas")
    with zipfile.ZipFile(root / "graded" / f"canvas_feedback_{A}.zip") as z:
        names = sorted(z.namelist())
    assert names[0] == f"doejohn_1001_5001_feedback_{A}.html" and len(names) == 5, names
    canvas_download(downloads, (f"parksam_1005_5105_{A}.ipynb", right))
    page.next("collect --from canvas")
    assert rows(root)["1005"]["score"] == "10"
    page.next("--student 1004 --student 1005")
    page.finished()


def test_the_moodle_round_trip(tmp_path):
    """Moodle: due date, download and worksheet (its times) collected, graded with the page's
    10 % per day, exported, returned as the feedback zip; an extension that still leaves the
    student late."""
    root = scratch_course(tmp_path)
    with open(root / "nbgrader_config.py", "a") as f:
        f.write("\n" + page_text_after("per started day late"))
    downloads = tmp_path / "home" / "Downloads"
    downloads.mkdir()
    right, blank = notebooks()
    with zipfile.ZipFile(downloads / "moodle_submissions.zip", "w") as z:
        z.writestr(f"Jane Roe_2001_assignsubmission_file/{A}.ipynb", right)
        z.writestr(f"Jane Roe_2002_assignsubmission_file/{A}.ipynb", right)
        z.writestr(f"Sam Lee_2004_assignsubmission_file/{A}.ipynb", right)
    shutil.copy(CASES / "moodle_worksheet.csv", downloads / "worksheet.csv")
    page = Scenario("moodle", root)
    page.next("collect --from moodle")
    page.next("autograder grade")
    got = rows(root)
    # Due 17:00 Berlin; 2002 handed in at 17:40 (one started day: 10 %), 2004 a day later at 17:45 (20 %).
    assert {s: (r["score"], r["late_penalty"]) for s, r in got.items()} == {
        "2001": ("10", ""), "2002": ("9", "1"), "2004": ("8", "2")}
    out = page.next("--to moodle")
    assert "nothing submitted by 1 student(s) of the roster, left empty (not 0): 2003" in out
    page.next("return --to moodle")
    with zipfile.ZipFile(root / "graded" / f"moodle_feedback_{A}.zip") as z:
        assert f"Jane Roe_2001_assignsubmission_file/feedback_{A}.html" in z.namelist()
    (root / "extensions.csv").write_text(page_text_after("extensions.csv` in the repository root"))
    page.next("--student 2004")
    assert rows(root)["2004"]["score"] == "9"  # 15 minutes past the extended date: still late
    page.finished()


def test_the_page_shows_no_test_tags(site):
    """The tags are MyST comments: the built page does not show them."""
    html = (site / "instructors.html").read_text()
    assert "% test:" not in html and "% not run:" not in html


SCENARIOS = {"changing an exercise", "exchange", "canvas", "moodle"}
