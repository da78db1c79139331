"""The class report: ``GRADED/report/<assignment>.html``, a page per assignment for the
instructor, written at the end of every grading run and by ``python -m autograder report``.

It is made from what a run leaves in its output folder: ``grades.csv`` (each row as the LMS gets
it: the points of each exercise, the final score, lateness, status) and each row's result kept in
``.autograder/results/`` (the likely mistake behind each failed exercise, the seconds its grading
took). A page is one file: its figures are SVG images inside it, so it opens offline, moved or
mailed. Student ids, messages and file names come from students: every one is escaped.
"""
from __future__ import annotations

import base64
import csv
import html
import io
import json
import statistics
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import spreadsheet

FOLDER = "report"
STATUS_MEANING = {
    "ok": "graded",
    "timeout": "a cell ran past the time limit; the rest was graded",
    "error": "could not be graded as it is (damaged, missing, another assignment's notebook, a kernel that died)",
    "flagged": "the notebook did something to the tests: look at it in formgrader",
}
MESSAGE_CHARS = 600   # of a row's message on the page; grades.csv has it whole
SLOWEST = 5
NO_RESULTS = ("No row's result is kept in <code>.autograder/results/</code> (was the folder copied without it?): "
              "the likely mistakes and grading times are unknown.")
STYLE = """
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.distribution { display: flex; flex-wrap: wrap; gap: 1rem 2rem; align-items: flex-start; }
"""


class ReportError(Exception):
    """Nothing to report from: no grades.csv, or not the grader's."""


@dataclass
class Exercise:
    grade_id: str
    title: str
    max_points: float
    counts: Counter = field(default_factory=Counter)     # points -> rows
    mistakes: Counter = field(default_factory=Counter)   # key of hints.LABELS -> rows
    unanswered: int = 0                                  # rows whose answer still raises NotImplementedError


# ----------------------------------------------------------------------------------------------
# Reading what the run left
# ----------------------------------------------------------------------------------------------
def read_grades(out: Path) -> tuple[list[str], list[dict]]:
    """The test-cell columns of grades.csv and its rows."""
    path = out / "grades.csv"
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            # Cells are read back as they were before grades.csv neutralised formulas (a leading ').
            rows = [{k: spreadsheet.text(v or "") for k, v in r.items()} for r in reader]
    except OSError as error:
        raise ReportError(f"no grades.csv in {out} ({error.strerror}): grade the class first "
                          "(python -m autograder grade SUBMISSIONS)") from None
    needed = {"student_id", "assignment_id", "score", "max_score", "status"}
    if not needed <= set(header):
        raise ReportError(f"{path} is not the grader's grades.csv (its columns: {', '.join(header)})")
    return header[2:header.index("score")], rows


def read_results(out: Path, rows: list[dict]) -> dict[tuple[str, str], dict]:
    """Each row's kept result (``.autograder/results/<student>/<assignment>.json``), where there is one."""
    base = out / ".autograder" / "results"
    found = {}
    for row in rows:
        key = (row["student_id"], row["assignment_id"])
        if any("/" in part or part in ("", ".", "..") for part in key):
            continue
        try:
            result = json.loads((base / key[0] / f"{key[1]}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # graded in a run that kept no result (the grader failed): the CSV row is all there is
        if isinstance(result, dict):
            found[key] = result
    return found


def _float(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


# ----------------------------------------------------------------------------------------------
# What a page says
# ----------------------------------------------------------------------------------------------
def exercises(cells: list[str], rows: list[dict], results: dict) -> list[Exercise]:
    """The assignment's exercises (the columns its rows fill), each with its points' distribution
    (as in grades.csv: scores given by hand included) and the likely mistakes behind failures."""
    pages = [(results.get((r["student_id"], r["assignment_id"])) or {}).get("page") or {} for r in rows]
    known = {}
    for page in pages:
        for cell in page.get("cells", []):
            known.setdefault(cell.get("grade_id"), cell)
    found = []
    for grade_id in cells:
        values = [v for v in (_float(r.get(grade_id)) for r in rows) if v is not None]
        if not values:
            continue
        cell = known.get(grade_id, {})
        exercise = Exercise(grade_id, str(cell.get("title") or grade_id),
                            float(cell.get("max_points") or max(values)), Counter(values))
        for page in pages:
            for c in page.get("cells", []):
                if c.get("grade_id") != grade_id or c.get("passed"):
                    continue
                if c.get("mistake"):
                    exercise.mistakes[c["mistake"]] += 1
                exercise.unanswered += str(c.get("failure", "")).startswith("not answered")
        found.append(exercise)
    return found


def _bar_chart(counts: Counter, values: list[float], title: str) -> str:
    """A bar chart of rows per points, a bar for each of ``values``, as a data: URL of an SVG image."""
    import matplotlib
    from matplotlib.figure import Figure
    fig = Figure(figsize=(4.4, 2.6), layout="constrained")
    ax = fig.add_subplot()
    bars = ax.bar([f"{v:g}" for v in values], [counts.get(v, 0) for v in values], color="#1f5f99")
    ax.bar_label(bars, fontsize=9)
    ax.set_xlabel("points")
    ax.set_ylabel("students")
    ax.set_title(title, fontsize=10)
    ax.set_ylim(0, max(counts.values(), default=0) * 1.2 + 1)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.spines[["top", "right"]].set_visible(False)
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "class-report"}):  # the same figure, the same file
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue().encode()).decode()


def _students(n: int) -> str:
    return f"{n} student{'s' * (n != 1)}"


def _points(x: float) -> str:
    return f"{x:g} point{'s' * (x != 1)}"


def _distribution(counts: Counter, max_points: float, what: str, caption: str) -> str:
    """A figure of the distribution, its numbers in the alt text, and the same numbers as a table:
    a bar for each value that occurs, and for 0 and the maximum even where none does."""
    e = html.escape
    values = sorted(set(counts) | {0.0, float(max_points)})
    alt = (f"Bar chart of {what}, out of {max_points:g} points: "
           + "; ".join(f"{v:g} points: {_students(counts.get(v, 0))}" for v in values) + ".")
    rows = "".join(f"<tr><td class='num'>{v:g}</td><td class='num'>{counts.get(v, 0)}</td></tr>" for v in values)
    return (f"<div class='distribution'><figure><img src='{_bar_chart(counts, values, what)}' alt='{e(alt)}' "
            f"width='440' height='260'></figure><table><caption>{e(caption)}</caption><tr><th scope='col' "
            f"class='num'>Points</th><th scope='col' class='num'>Students</th></tr>{rows}</table></div>")


def _feedback_link(row: dict, results: dict) -> str:
    """The row's student id, linked to their feedback page (relative: ``report/`` is beside
    ``feedback/``) where the row has one."""
    e = html.escape
    page = (results.get((row["student_id"], row["assignment_id"])) or {}).get("feedback")
    if not page:
        return e(row["student_id"])
    return f"<a href='../{e(urllib.parse.quote(page))}'>{e(row['student_id'])}</a>"


def render(assignment: str, cells: list[str], rows: list[dict], results: dict) -> str:
    """The report page of one assignment, as HTML."""
    from .grading import hints
    from .grading.feedback import STYLE as PAGE_STYLE   # the students' pages' look
    e = html.escape
    found = exercises(cells, rows, results)
    kept = any((r["student_id"], r["assignment_id"]) in results for r in rows)
    statuses = Counter(r["status"] for r in rows)
    scores = Counter(v for v in (_float(r["score"]) for r in rows) if v is not None)
    max_score = max((v for v in (_float(r["max_score"]) for r in rows) if v is not None), default=0.0)
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<title>Class report: {e(assignment)}</title><style>{PAGE_STYLE}{STYLE}</style></head><body><main>",
             f"<h1>Class report: {e(assignment)}</h1>",
             f"<p>{len(rows)} rows of <code>grades.csv</code> (one per student). Scores are as the LMS gets "
             "them: scores given by hand in formgrader included, late penalties taken off.</p>"]

    # Statuses, and every row that is not ok.
    parts.append("<h2>Statuses</h2><table><caption>Rows by status</caption><tr><th scope='col'>Status</th>"
                 "<th scope='col' class='num'>Rows</th><th scope='col'>Meaning</th></tr>")
    for status in [*STATUS_MEANING, *sorted(set(statuses) - set(STATUS_MEANING))]:
        parts.append(f"<tr><th scope='row'>{e(status)}</th><td class='num' data-status='{e(status)}'>"
                     f"{statuses.get(status, 0)}</td><td>{e(STATUS_MEANING.get(status, ''))}</td></tr>")
    parts.append("</table>")
    attention = [r for r in rows if r["status"] != "ok"]
    if attention:
        parts.append("<table><caption>Rows that are not ok</caption><tr><th scope='col'>Student</th>"
                     "<th scope='col'>Status</th><th scope='col' class='num'>Score</th>"
                     "<th scope='col'>Message</th></tr>")
        for r in attention:
            message = r.get("message") or ""
            message = message if len(message) <= MESSAGE_CHARS else message[:MESSAGE_CHARS] + "…"
            parts.append(f"<tr><td>{_feedback_link(r, results)}</td><td>{e(r['status'])}</td>"
                         f"<td class='num'>{e(r['score'])}</td><td>{e(message)}</td></tr>")
        parts.append("</table><p>A student's id links to their feedback page.</p>")

    # Scores: the total, then each exercise with its likely mistakes.
    parts.append("<h2>Scores</h2>")
    if scores:
        values = [v for v, n in scores.items() for _ in range(n)]
        parts.append(f"<p>Mean {statistics.fmean(values):.3g}, median {statistics.median(values):g} of "
                     f"{max_score:g} points; {_students(scores.get(max_score, 0))} with full marks, "
                     f"{_students(scores.get(0.0, 0))} with none.</p>")
        parts.append(_distribution(scores, max_score, "final score", "Students per final score"))
    for x in found:
        passed = x.counts.get(x.max_points, 0)
        unanswered = f" {_students(x.unanswered)} left it unanswered." if x.unanswered else ""
        parts.append(f"<h3>{e(x.title)} (<code>{e(x.grade_id)}</code>, {_points(x.max_points)})</h3>"
                     f"<p>{_students(passed)} of {sum(x.counts.values())} earned every point.{unanswered}</p>"
                     + _distribution(x.counts, x.max_points, x.grade_id, f"Students per points, {x.grade_id}"))
        if x.mistakes:
            parts.append("<p>Likely mistakes: " + "; ".join(
                f"{e(hints.LABELS.get(m, m))} ({n})" for m, n in x.mistakes.most_common()) + ".</p>")

    # The likely mistakes of the whole assignment, most common first.
    mistakes = Counter({(m, x.grade_id): n for x in found for m, n in x.mistakes.items()})
    parts.append("<h2>Likely mistakes</h2>")
    if mistakes:
        parts.append("<table><caption>Likely mistakes behind failed tests, most common first</caption><tr>"
                     "<th scope='col'>Mistake</th><th scope='col'>Exercise</th><th scope='col' class='num'>Students"
                     "</th></tr>")
        for (m, grade_id), n in mistakes.most_common():
            parts.append(f"<tr><td>{e(hints.MISTAKES.get(m, m))}</td><td><code>{e(grade_id)}</code></td>"
                         f"<td class='num'>{n}</td></tr>")
        parts.append("</table>")
    elif not kept:
        parts.append(f"<p>{NO_RESULTS}</p>")
    else:
        parts.append("<p>No failed test was recognised as one of the known mistakes.</p>")

    # Late work.
    late = [r for r in rows if (r.get("late") or "").strip()]
    taken = [(_float(r.get("late_penalty")) or 0.0) for r in late]
    parts.append("<h2>Late work</h2>")
    if late:
        parts.append(f"<p>{len(late)} late, {sum(1 for t in taken if t)} with a penalty ({sum(taken):g} points "
                     "taken off in all).</p><table><caption>Late rows</caption><tr><th scope='col'>Student</th>"
                     "<th scope='col'>Late</th><th scope='col' class='num'>Penalty</th>"
                     "<th scope='col' class='num'>Final score</th></tr>")
        for r in late:
            parts.append(f"<tr><td>{e(r['student_id'])}</td><td>{e(r['late'])}</td>"
                         f"<td class='num'>{e(r.get('late_penalty') or '')}</td>"
                         f"<td class='num'>{e(r['score'])}</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p>No row is late (or none could be known late: see the instructors' page on deadlines).</p>")

    # Grading time.
    timed = sorted(((float(results[k]["seconds"]), k[0], results[k].get("status", "")) for k in
                    ((r["student_id"], r["assignment_id"]) for r in rows)
                    if isinstance((results.get(k) or {}).get("seconds"), (int, float))), reverse=True)
    parts.append("<h2>Grading time</h2>")
    if timed:
        seconds = [t for t, _, _ in timed]
        parts.append(f"<p>{len(timed)} rows timed (each when it was last graded): {sum(seconds):.1f} s of grading "
                     f"in all, median {statistics.median(seconds):.1f} s, longest {seconds[0]:.1f} s.</p>"
                     "<table><caption>The longest to grade</caption><tr><th scope='col'>Student</th>"
                     "<th scope='col' class='num'>Seconds</th><th scope='col'>Status</th></tr>")
        for t, student, status in timed[:SLOWEST]:
            parts.append(f"<tr><td>{e(student)}</td><td class='num'>{t:.1f}</td><td>{e(status)}</td></tr>")
        parts.append("</table>")
    else:
        parts.append(f"<p>{NO_RESULTS}</p>" if not kept else
                     "<p>No row has its grading time (rows whose grading failed keep none).</p>")
    parts.append("<p><small>Made by <code>python -m autograder report</code> from <code>grades.csv</code> and "
                 "<code>.autograder/results/</code>.</small></p></main></body></html>")
    return "".join(parts)


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------
def write(out: Path, results: dict | None = None) -> list[Path]:
    """Write ``out/report/<assignment>.html`` for each assignment of grades.csv (and remove the
    pages of assignments it no longer has); return their paths. ``results``: the rows' results
    in memory, keyed as the grader keys them (a run passes them; else they are read from disk)."""
    from .grade import printable
    from .grading.worker import atomic_write
    out = Path(out)
    cells, rows = read_grades(out)
    if results is None:
        results = read_results(out, rows)
    else:  # those kept on disk only (what the report command reads), by grades.csv's printable() ids
        results = {(printable(s), printable(a)): r for (s, a), r in results.items()
                   if r.get("input_digest") and not r.get("retry")}
    folder = out / FOLDER
    written = []
    for assignment in sorted({r["assignment_id"] for r in rows}):
        if "/" in assignment or assignment.startswith("."):  # not a folder's name: grades.csv was edited
            continue
        path = folder / f"{assignment}.html"
        atomic_write(path, render(assignment, cells, [r for r in rows if r["assignment_id"] == assignment], results))
        written.append(path)
    if folder.is_dir():
        for stale in set(folder.glob("*.html")) - set(written):
            stale.unlink()
    return written


def after_run(out: Path, results: dict, stream) -> None:
    """The end of a grading run: the report, or a warning that says why there is none."""
    try:
        written = write(out, results)
    except Exception as error:  # the grades are written: a report that fails never fails the run
        print(f"warning: the class report could not be written: {type(error).__name__}: {error}", file=stream)
        return
    if written:
        print(f"class report: {out / FOLDER}/ ({', '.join(p.name for p in written)})", file=stream)
