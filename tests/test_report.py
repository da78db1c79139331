"""The class report (autograder/report.py): a small chapter-1 class graded for real (right, two
with the same known mistake, partial, late, damaged, and a student whose id and file name are
HTML), then its report read in Chromium from file:// and checked against grades.csv, for
accessibility by axe-core, and for the hostile id running nothing. The report command writes the
same page again from the output folder, typed as instructors.md shows it.

Where no Chromium is installed the browser tests skip, as tests/test_site.py's (the `browser`
fixture of tests/conftest.py); in CI they may not.
"""
from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from autograder.grading import hints
from tests.grade_cases import chapter1
from tests.helpers import (ROOT, answer, fill_in_solutions, make_course, run, source_notebook, student_notebook,
                           write_submission)

A = chapter1.ASSIGNMENT
needs_chromium = pytest.mark.needs_chromium   # skips without Chromium (tests/conftest.py); fails in CI

# A student id and a file name that are HTML: escaped, they are text; not escaped, they run.
HOSTILE = "<img src=x onerror=window.pwned=1>"
HOSTILE_FILE = "<svg onload=window.pwned=2>.txt"
TRANSPOSED = "def layer(x, W, b):\n    return torch.sigmoid(x @ W + b)\n"
NO_HALF = "def total_error(out, target):\n    return ((target - out) ** 2).sum()\n"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("class"))
    (course / ".venv").symlink_to(ROOT / ".venv")  # the instructors' page types .venv/bin/python
    submitted = course / "submitted"
    student = nbformat.read(student_notebook(A), 4)
    full = fill_in_solutions(student, nbformat.read(source_notebook(A), 4))
    write_submission(submitted, "correct", A, full)
    write_submission(submitted, "transposed_1", A, answer(full, {"layer": TRANSPOSED}))
    write_submission(submitted, "transposed_2", A, answer(full, {"layer": TRANSPOSED}))
    write_submission(submitted, "partial", A, answer(full, {"total_error": NO_HALF, "mse_over_error": (
        chapter1.student_cell(student, "mse_over_error"))}))
    write_submission(submitted, "late", A, full)
    (submitted / "late" / A / "timestamp.txt").write_text("2026-01-02 12:00:00 UTC")
    (course / "extensions.csv").write_text(f"student_id,assignment_id,due\nlate,{A},2026-01-01 12:00:00 UTC\n")
    write_submission(submitted, "broken", A, '{"cells": [ {"cell_type": "code", ')
    write_submission(submitted, HOSTILE, A, "my answers", name=HOSTILE_FILE)
    done = run([sys.executable, "-m", "autograder", "grade", "submitted", "--workers", "2", "--timeout", "12",
                "--assignment", A, "--memory", "2"], cwd=course, timeout=1200)
    assert done.returncode == 0, done.stdout
    out = course / "graded"
    with open(out / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return SimpleNamespace(course=course, out=out, done=done, rows=rows, page=out / "report" / f"{A}.html")


def test_every_grading_run_writes_the_report(graded):
    assert graded.page.is_file(), graded.done.stdout
    assert f"class report: {graded.out / 'report'}/ ({A}.html)" in graded.done.stdout
    assert {r["student_id"] for r in graded.rows} == {"correct", "transposed_1", "transposed_2", "partial", "late",
                                                       "broken", HOSTILE}
    by_id = {r["student_id"]: r for r in graded.rows}
    # What the class is for: each case is what the report must show.
    assert by_id["late"]["late"], "the late submission is late in grades.csv"
    assert by_id["broken"]["status"] == by_id[HOSTILE]["status"] == "error"
    assert HOSTILE_FILE in by_id[HOSTILE]["message"], "the file name reaches the message, to be escaped"


def instructors_block() -> str:
    """The instructors' page's command that writes the report, as the page shows it."""
    text = (ROOT / "instructors.md").read_text()
    (block,) = [b for b in re.findall(r"```bash\n(.*?)```", text, re.DOTALL) if "autograder report" in b]
    return block


def test_the_report_command_as_the_instructors_page_shows_it_writes_the_same_page(graded):
    """From grades.csv and .autograder/ alone: the same page as the grading run's, and the page of
    an assignment grades.csv no longer holds is removed."""
    made_by_run = graded.page.read_bytes()
    stale = graded.out / "report" / "99_gone_exercises.html"
    stale.write_text("old")
    graded.page.unlink()
    done = subprocess.run(["bash", "-e", "-c", instructors_block()], cwd=graded.course, capture_output=True,
                          text=True, timeout=600, env={"PATH": "/usr/bin:/bin", "HOME": str(graded.course)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"wrote graded/report/{A}.html" in done.stdout
    assert graded.page.read_bytes() == made_by_run
    assert not stale.exists()


def test_a_folder_without_its_kept_results_still_gets_the_counts_and_says_what_is_unknown(graded, tmp_path):
    (tmp_path / "graded").mkdir()
    shutil.copy(graded.out / "grades.csv", tmp_path / "graded" / "grades.csv")
    done = run([sys.executable, "-m", "autograder", "report"], cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    text = (tmp_path / "graded" / "report" / f"{A}.html").read_text()
    assert "the likely mistakes and grading times are unknown" in text
    assert "<td class='num' data-status='error'>2</td>" in text and "Students per points, test_layer" in text


def test_the_report_command_says_when_there_is_nothing_to_report(tmp_path):
    done = run([sys.executable, "-m", "autograder", "report", "--out", str(tmp_path)], cwd=tmp_path)
    assert done.returncode == 2 and "no grades.csv" in done.stdout and "autograder grade" in done.stdout


def mistakes_in(rows: list[dict]) -> Counter:
    """(label, test cell) -> rows, from the messages of grades.csv: `failed CELL: ... (likely mistake: LABEL)`."""
    found = Counter()
    for row in rows:
        for grade_id, label in re.findall(r"(?:failed |\| )(\w+): [^|]*?\(likely mistake: ([^)]+)\)", row["message"]):
            found[(label, grade_id)] += 1
    return found


@pytest.fixture(scope="module")
def opened(browser, graded):
    """The report in Chromium from file://, every request other than the page itself recorded and
    aborted (offline, it would fail), and every script error recorded."""
    page = browser.new_page()
    requests, errors = [], []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def route(r):
        if r.request.url in (graded.page.as_uri(),) or r.request.url.startswith("data:"):
            r.continue_()
        else:
            requests.append(r.request.url)
            r.abort()
    page.route("**/*", route)
    page.goto(graded.page.as_uri(), wait_until="load")
    page.wait_for_timeout(300)
    yield SimpleNamespace(page=page, requests=requests, errors=errors)
    page.close()


def table(page, caption: str) -> list[list[str]]:
    """The body rows of the table with this caption, as the reader sees their cells."""
    return page.evaluate("""caption => {
        const t = [...document.querySelectorAll('table')].find(t => t.caption && t.caption.textContent === caption);
        return t ? [...t.rows].slice(1).map(r => [...r.cells].map(c => c.innerText.trim())) : null;
    }""", caption)


@needs_chromium
def test_the_report_opens_offline_and_the_hostile_id_is_text(opened):
    page = opened.page
    assert not opened.requests, f"the report asked for: {opened.requests}"
    assert not opened.errors, opened.errors
    assert page.evaluate("window.pwned") is None, "a student's id or file name ran as HTML"
    assert page.locator("img[src='x']").count() == 0 and page.locator("svg[onload]").count() == 0
    cells = page.locator("td").all_inner_texts()
    assert HOSTILE in cells, "the hostile id is shown as the text it is"
    assert any(HOSTILE_FILE in c for c in cells)
    images = page.locator("img").all()
    assert len(images) == 1 + len(chapter1.CELLS), "a figure for the final score and one per exercise"
    for img in images:
        assert len(img.get_attribute("alt") or "") > 40
        assert page.evaluate("img => img.complete && img.naturalWidth > 100", img.element_handle())


@needs_chromium
def test_the_report_shows_the_counts_of_grades_csv(opened, graded):
    page, rows = opened.page, graded.rows
    statuses = Counter(r["status"] for r in rows)
    shown = {status: int(n) for status, n, _ in table(page, "Rows by status")}
    assert shown == {s: statuses.get(s, 0) for s in ("ok", "timeout", "error", "flagged")}
    not_ok = table(page, "Rows that are not ok")
    assert sorted(r[0] for r in not_ok) == sorted(r["student_id"] for r in rows if r["status"] != "ok")
    links = page.eval_on_selector_all("a[href]", "links => links.map(a => [a.innerText, a.href])")
    assert sorted(text for text, _ in links) == sorted(r[0] for r in not_ok), "each id links to its page"
    for text, href in links:
        target = graded.out / "feedback" / text / A / f"{A}.html"
        assert href == target.as_uri() and target.is_file(), (text, href)

    def counts(column: str) -> dict[float, int]:
        found = Counter(float(r[column]) for r in rows if r[column] != "")
        return {v: n for v, n in found.items() if n}
    for cell in chapter1.CELLS:
        shown = {float(points): int(n) for points, n in table(page, f"Students per points, {cell}") if int(n)}
        assert shown == counts(cell), cell
    assert {float(p): int(n) for p, n in table(page, "Students per final score") if int(n)} == counts("score")
    unanswered = Counter(g for r in rows for g in re.findall(r"(?:failed |\| )(\w+): not answered", r["message"]))
    assert unanswered == {"test_mse_over_error": 1}
    for cell in chapter1.CELLS:
        said = page.locator(f"h3:has(code:text-is('{cell}')) + p").inner_text()
        n = unanswered.get(cell, 0)
        assert (f"{n} student{'s' * (n != 1)} left it unanswered" in said) == bool(n), (cell, said)

    expected = mistakes_in(rows)
    assert expected[("transposed weights", "test_layer")] == 2 and expected[("missing 1/2", "test_total_error")] == 1
    labels = {text: hints.LABELS[key] for key, text in hints.MISTAKES.items()}
    shown = Counter({(labels[text], grade_id): int(n)
                     for text, grade_id, n in table(page, "Likely mistakes behind failed tests, most common first")})
    assert shown == expected
    assert [int(r[2]) for r in table(page, "Likely mistakes behind failed tests, most common first")] == sorted(
        expected.values(), reverse=True), "most common first"
    late = table(page, "Late rows")
    assert [(r[0], r[1], r[2]) for r in late] == [(r["student_id"], r["late"], r["late_penalty"]) for r in rows
                                                  if r["late"]]
    slowest = table(page, "The longest to grade")
    seconds = [float(r[1]) for r in slowest]
    assert seconds == sorted(seconds, reverse=True) and len(slowest) == 5 and seconds[0] > 0
    assert {r[0] for r in slowest} <= {r["student_id"] for r in rows if r["status"] == "ok"}, \
        "rows that never ran a kernel (the damaged ones) take no time"


@needs_chromium
def test_no_serious_or_critical_accessibility_violation(opened):
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(opened.page).response["violations"]
    blocking = [f"{v['id']} ({v['impact']}: {v['help']}) at {' '.join(node['target'])}"
                for v in violations if v["impact"] in ("critical", "serious") for node in v["nodes"]]
    assert not blocking, "\n".join(blocking)

