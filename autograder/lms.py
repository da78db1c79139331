"""From an LMS download to grades, and back: the LMS's names and ids, late work, and the files
Canvas and Moodle import (``python -m autograder export``).

Students are keyed by the LMS's user id everywhere (the folder names under ``submitted/``):
Canvas's user id, Moodle's participant id. Names come only from the roster the instructor
downloads from the LMS, and only to be written back into it.
"""
from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from nbgrader.plugins import BasePlugin, LateSubmissionPlugin
from traitlets import Float

from . import spreadsheet


class ExportError(Exception):
    """The export cannot be written: the message says what to fix."""


# ----------------------------------------------------------------------------------------------
# Late work
# ----------------------------------------------------------------------------------------------
@dataclass
class Late:
    """How late one submission was: ``seconds`` past its due date, or only the LMS's marker."""

    seconds: float | None = None
    marker: str = ""          # e.g. Canvas's _LATE, where the time is all the LMS gave
    problem: str = ""         # why no penalty could be computed, for the instructor

    @property
    def is_late(self) -> bool:
        return bool(self.marker) or (self.seconds or 0) > 0

    def text(self) -> str:
        if self.seconds and self.seconds > 0:
            text = _duration(self.seconds)
        else:
            text = f"late ({self.marker}; the time is not known)" if self.marker else ""
        return f"{text} ({self.problem})" if text and self.problem else text


def _duration(seconds: float) -> str:
    minutes = int(-(-seconds // 60))  # a second late is a minute late
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    return " ".join(p for p in parts if p)


def due_dates(course) -> dict[str, datetime]:
    """Each assignment's due date (UTC) from the course's nbgrader gradebook, where one was set
    (``nbgrader db assignment add ID --duedate=...``). A course without a gradebook has none; the
    gradebook is never created here."""
    db_url = course.config.get("CourseDirectory", {}).get("db_url", "") or f"sqlite:///{course.root / 'gradebook.db'}"
    if db_url.startswith("sqlite:///") and not Path(db_url[len("sqlite:///"):]).is_file():
        return {}
    # Read with nbgrader's tables but not its Gradebook class, which runs `alembic` (from PATH) to
    # check the schema's version on opening: reading due dates needs neither.
    from nbgrader.api import Assignment
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session
    engine = create_engine(db_url)
    try:
        with Session(engine) as session:
            return {a.name: a.duedate for a in session.query(Assignment) if a.duedate is not None}
    finally:
        engine.dispose()


EXTENSIONS_FILE = "extensions.csv"


def extensions(course) -> dict[tuple[str, str], datetime]:
    """Later due dates for single students: ``extensions.csv`` in the course folder, columns
    ``student_id,assignment_id,due`` (a date and time nbgrader reads: ``2026-12-08 17:00:00 UTC``)."""
    from nbgrader.utils import parse_utc
    path = course.root / EXTENSIONS_FILE
    if not path.is_file():
        return {}
    found = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        for number, row in enumerate(csv.DictReader(f), start=2):
            try:
                found[(row["student_id"].strip(), row["assignment_id"].strip())] = parse_utc(row["due"].strip())
            except (KeyError, AttributeError, ValueError, OverflowError) as error:
                raise ValueError(f"{path.name}, line {number}: expected the columns student_id,assignment_id,due "
                                 f"with a date and time ({error})") from None
    return found


def lateness(submissions: Path, rows: list[tuple[str, str]], course) -> dict[tuple[str, str], Late]:
    """Each row's lateness: the submission time in ``timestamp.txt`` (nbgrader's collect, or
    ``python -m autograder collect`` from Moodle's worksheet) against the due date (a student's
    extension first); where there is no time, Canvas's _LATE marker, which collect kept in
    ``SUBMISSIONS/.lms/<assignment>.csv``."""
    from .collect import read_manifest
    from .grading.gradebook import read_timestamp
    due, extra = due_dates(course), extensions(course)
    marks = {a: read_manifest(submissions, a) for a in {a for _, a in rows}}
    found = {}
    for student, assignment in rows:
        stamp = read_timestamp(submissions / student / assignment)
        deadline = extra.get((student, assignment), due.get(assignment))
        if stamp is not None and deadline is not None:
            found[(student, assignment)] = Late(seconds=max(0.0, (stamp - deadline).total_seconds()))
        elif marks[assignment].get(student, {}).get("late") and (student, assignment) not in extra:
            found[(student, assignment)] = Late(marker=CANVAS_MARK)
    return found


CANVAS_MARK = "marked late by Canvas"


class PercentPerDay(BasePlugin):
    """A late-penalty rule nbgrader lacks: ``percent`` of the score per started day late, up to
    all of it. ``c.AssignLatePenalties.plugin_class = "autograder.lms.PercentPerDay"`` and
    ``c.PercentPerDay.percent = 10`` in nbgrader_config.py."""

    percent = Float(10.0, help="Percent of the score taken off per started day late").tag(config=True)

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        days = -(-total_seconds_late // 86400)
        return min(score, score * self.percent / 100 * days)


def penalty_rule(course):
    """``rule(student, score, late) -> points taken off``, by nbgrader's late-penalty
    configuration (``AssignLatePenalties.plugin_class``, ``LateSubmissionPlugin.penalty_method``)."""
    plugin = _plugin(course)

    def rule(student: str, score: float, late: Late) -> float | None:
        if not late.is_late:
            return None
        if late.seconds:
            try:
                penalty = plugin.late_submission_penalty(student, score, late.seconds)
            except Exception as error:  # the course's own rule: one row's failure, the class goes on
                late.problem = f"no penalty: the late-penalty plugin failed: {type(error).__name__}: {error}"[:300]
                return None
        elif type(plugin) is LateSubmissionPlugin:  # only a marker: nbgrader's own methods need no time
            penalty = score if plugin.penalty_method == "zero" else None
        else:  # a rule that needs the time, which the LMS did not give
            late.problem = "no penalty: the course's late-penalty rule needs the time late"
            return None
        return None if penalty is None else min(max(float(penalty), 0.0), score)
    return rule


def _plugin(course):
    from nbgrader.preprocessors import AssignLatePenalties
    assigner = AssignLatePenalties(config=course.config)
    assigner.init_plugin()
    return assigner.plugin_inst


def penalises(course) -> bool:
    """Whether the course's configuration takes points off late work (nbgrader's default does not)."""
    plugin = _plugin(course)
    return type(plugin) is not LateSubmissionPlugin or plugin.penalty_method != "none"


def double_penalty(course, late: dict) -> str | None:
    """A warning where Canvas marked work late and the course penalises it too: Canvas's own
    late policy, if the course has one, takes points off the imported score again."""
    if any(v.marker == CANVAS_MARK for v in late.values()) and penalises(course):
        return ("Canvas marked work late and nbgrader_config.py sets a late penalty: if the Canvas course has a late "
                "policy (Settings, Gradebook, Late Policies), Canvas takes points off the imported score again. Keep "
                "one of the two (instructors.md, Deadlines and late work)")
    return None


# ----------------------------------------------------------------------------------------------
# Rosters and the files the LMS imports
# ----------------------------------------------------------------------------------------------
CANVAS_FIXED = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
CANVAS_COLUMN = re.compile(r"^(?P<name>.*?)\s*\((?P<id>\d+)\)$")


NOTHING = "nothing submitted"


def read_grades(graded: Path) -> dict[tuple[str, str], dict]:
    path = graded / "grades.csv"
    if not path.is_file():
        raise ExportError(f"no {path}: grade the class first (python -m autograder grade submitted)")
    with open(path, newline="", encoding="utf-8") as f:
        return {(spreadsheet.text(r["student_id"]), spreadsheet.text(r["assignment_id"])): r for r in csv.DictReader(f)}


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        raise ExportError(f"no roster {path}: download it from the LMS (see instructors.md, 5. Export)")
    with open(path, newline="", encoding="utf-8-sig") as f:  # Excel and the LMSs may add a byte-order mark
        rows = [r for r in csv.reader(f) if r]
    if not rows:
        raise ExportError(f"{path} is empty")
    return rows[0], rows[1:]


def _match_columns(header: list[str], assignments: list[str], mapping: dict[str, str]) -> dict[str, int]:
    """assignment id -> index of its Canvas column ``Title (canvas id)``: named in ``mapping``
    (by Canvas id or the whole title), else the column whose title is the assignment id."""
    columns = {i: CANVAS_COLUMN.match(h.strip()) for i, h in enumerate(header) if i >= len(CANVAS_FIXED)}
    columns = {i: m for i, m in columns.items() if m}
    found = {}
    for assignment in assignments:
        wanted = mapping.get(assignment, assignment)
        hits = [i for i, m in columns.items() if wanted in (m["id"], m["name"], header[i].strip())]
        if len(hits) == 1:
            found[assignment] = hits[0]
        elif assignment in mapping:
            raise ExportError(f"the roster has {'no' if not hits else 'more than one'} assignment column {wanted!r}; "
                              f"its assignment columns: {', '.join(header[i] for i in columns) or 'none'}")
    return found


def _score(row: dict, points: float | None) -> tuple[str, str | None]:
    """The cell for a grades.csv row (its score is final: manual scores and late penalties in),
    scaled to the LMS's points where they differ; and a note when they did."""
    try:
        score, max_score = float(row["score"]), float(row["max_score"] or 0)
    except (TypeError, ValueError):  # a hand-edited grades.csv: this cell stays empty, the rest is written
        return "", f"{row['student_id']}: the score {row['score']!r} in grades.csv is not a number; left empty"
    if points is None or max_score == 0 or abs(points - max_score) < 1e-9:
        return f"{score:g}", None
    return f"{round(score * points / max_score, 2):g}", f"{row['assignment_id']}: scaled from {max_score:g} to {points:g} points"


def _points(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def export_canvas(grades: dict, roster: Path, mapping: dict[str, str], only: str | None = None) -> tuple[str, list[str]]:
    """The Canvas gradebook CSV to import: the roster's student columns and each graded
    assignment's column (matched by title or Canvas id), scores filled in by Canvas user id
    (``ID``); its "Points Possible" row (and any other row without an ID) kept as it is."""
    header, body = _read_csv(roster)
    missing = [c for c in CANVAS_FIXED if c not in header]
    if missing:
        raise ExportError(f"{roster.name} is not a Canvas gradebook export: no column {', '.join(missing)} "
                          "(Grades, Export, Export Entire Gradebook)")
    assignments = sorted({a for _, a in grades} if not only else {only})
    columns = _match_columns(header, assignments, mapping)
    warnings = []
    unmatched = [a for a in assignments if a not in columns]
    if unmatched:
        raise ExportError(f"no column in the roster for {', '.join(unmatched)}: name it with --column "
                          f"{unmatched[0]}=<Canvas assignment id> (the number in the column title, 'Title (id)')")
    id_at = header.index("ID")
    keep = [header.index(c) for c in CANVAS_FIXED] + [columns[a] for a in assignments]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(spreadsheet.row([header[i] for i in keep]))
    points = {}
    seen, notes = set(), set()
    for row in body:
        row = row + [""] * (len(header) - len(row))
        student = row[id_at].strip()
        if not student:  # "Points Possible", the muted / posting-policy row: Canvas's own
            if "Points Possible" in row[0]:
                points = {a: _points(row[columns[a]]) for a in assignments}
            writer.writerow(spreadsheet.row([row[i] for i in keep]))
            continue
        cells = [row[i] for i in keep[:len(CANVAS_FIXED)]]
        for a in assignments:
            graded = grades.get((student, a))
            if graded is None:
                cells.append("")
                continue
            seen.add((student, a))
            cell, note = _score(graded, points.get(a))
            cells.append(cell)
            notes.update([note] if note else [])
        writer.writerow(spreadsheet.row(cells))
    warnings += sorted(notes)
    warnings += _unmatched(grades, seen, assignments, {r[id_at].strip() for r in body if r and r[id_at].strip()})
    return out.getvalue(), warnings


def _unmatched(grades: dict, seen: set, assignments: list[str], roster_ids: set[str]) -> list[str]:
    warnings = []
    for a in assignments:
        absent = sorted(s for s in roster_ids if (s, a) not in grades)
        if absent:
            warnings.append(f"{a}: nothing submitted by {len(absent)} student(s) of the roster, left empty (not 0): "
                            + ", ".join(absent))
        problems = sorted((s, r["status"], r["message"]) for (s, b), r in grades.items()
                          if b == a and (s, b) in seen and r.get("status") != "ok")
        if problems:
            warnings.append(f"{a}: {len(problems)} row(s) not ok, exported with their score (look at them): "
                            + "; ".join(f"{s} {status}: {message[:200]}" for s, status, message in problems))
        strangers = sorted(s for s, b in grades if b == a and (s, b) not in seen)
        if strangers:
            warnings.append(f"{a}: graded but not in the roster (not exported): " + ", ".join(strangers))
    return warnings


MOODLE_ID, MOODLE_GRADE, MOODLE_MAX = "Identifier", "Grade", "Maximum Grade"
MOODLE_PARTICIPANT = re.compile(r"^\D*?(\d+)$")


def export_moodle(grades: dict, worksheet: Path, only: str | None) -> tuple[str, list[str]]:
    """Moodle's grading worksheet (one assignment's), its ``Grade`` column filled in by
    participant id (``Identifier`` = ``Participant <id>``), every other column kept."""
    header, body = _read_csv(worksheet)
    missing = [c for c in (MOODLE_ID, MOODLE_GRADE) if c not in header]
    if missing:
        raise ExportError(f"{worksheet.name} is not a Moodle grading worksheet: no column {', '.join(missing)} "
                          "(the assignment's Submissions, Download grading worksheet)")
    assignments = sorted({a for _, a in grades})
    if only is None and len(assignments) != 1:
        raise ExportError("a Moodle grading worksheet holds one assignment: say which with --assignment ID "
                          f"(graded: {', '.join(assignments)})")
    assignment = only or assignments[0]
    id_at, grade_at = header.index(MOODLE_ID), header.index(MOODLE_GRADE)
    max_at = header.index(MOODLE_MAX) if MOODLE_MAX in header else None
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(spreadsheet.row(header))
    seen, ids, notes = set(), set(), set()
    for row in body:
        row = row + [""] * (len(header) - len(row))
        match = MOODLE_PARTICIPANT.match(row[id_at].strip())
        if match:
            student = match.group(1)
            ids.add(student)
            graded = grades.get((student, assignment))
            if graded is not None:
                seen.add((student, assignment))
                row[grade_at], note = _score(graded, _points(row[max_at]) if max_at is not None else None)
                notes.update([note] if note else [])
        writer.writerow(spreadsheet.row(row))
    return out.getvalue(), sorted(notes) + _unmatched(grades, seen, [assignment], ids)


def export(graded: str, to: str, roster: str, out: str | None, assignment: str | None,
           columns: list[str]) -> tuple[str, list[str]]:
    """Write the file the LMS imports; return where, with the warnings printed by the caller."""
    graded_dir = Path(graded)
    # A row of a student who handed nothing in is exported as no row at all: empty, and listed.
    grades = {k: r for k, r in read_grades(graded_dir).items() if not r.get("message", "").startswith(NOTHING)}
    if assignment:
        grades = {k: v for k, v in grades.items() if k[1] == assignment}
        if not grades:
            raise ExportError(f"grades.csv has no row for assignment {assignment!r}")
    mapping = {}
    for item in columns:
        name, sep, column = item.partition("=")
        if not sep or not name or not column:
            raise ExportError(f"--column {item!r}: expected ASSIGNMENT_ID=CANVAS_ID (or =the column's title)")
        mapping[name] = column
    if to == "canvas":
        text, warnings = export_canvas(grades, Path(roster), mapping, assignment)
    else:
        text, warnings = export_moodle(grades, Path(roster), assignment)
    target = Path(out) if out else graded_dir / f"{to}_import.csv"
    from .grading.worker import atomic_write
    atomic_write(target, text)
    return str(target), warnings


# ----------------------------------------------------------------------------------------------
# Feedback pages back through the LMS
# ----------------------------------------------------------------------------------------------
def feedback_zip(to: str, assignment: str, graded: str = "graded", submitted: str = "submitted",
                 out: str | None = None) -> tuple[str, list[str]]:
    """The zip of every student's feedback page that the LMS files under each student's
    submission: Canvas's Re-Upload Submissions (each file named ``<name>[_LATE]_<user id>_<attachment
    id>_...`` as the download named the student's file: Canvas reads the two numbers and attaches
    the file to that submission as a comment), Moodle's "Upload multiple feedback files in a zip"
    (each page in the student's folder ``<full name>_<participant id>_assignsubmission_file``)."""
    from .collect import CANVAS_ENTRY, MOODLE_ENTRY, read_manifest
    students = read_manifest(Path(submitted), assignment)
    if not students:
        raise ExportError(f"no {submitted}/.lms/{assignment}.csv: collect the download with python -m autograder "
                          f"collect --from {to} DOWNLOAD.zip {assignment} first")
    warnings, count = [], 0
    target = Path(out) if out else Path(graded) / f"{to}_feedback_{assignment}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target.with_suffix(".part"), "w", zipfile.ZIP_DEFLATED) as archive:
        for sid, row in sorted(students.items()):
            if row["lms"] != to:
                raise ExportError(f"{assignment} was collected from {row['lms']}, not {to}")
            pages = sorted((Path(graded) / "feedback" / sid / assignment).glob("*.html"))
            if not pages:
                warnings.append(f"{sid}: no feedback page (grade the class first): not in the zip")
                continue
            entries = [e for e in row["entries"].split("|") if e]
            for page in pages:
                if to == "canvas":
                    # Any of the student's files will do: Canvas checks the attachment is the submission's.
                    entry = next((e for e in entries if e.endswith(".ipynb")), entries[0])
                    m = CANVAS_ENTRY.match(entry)
                    name = f"{m['name']}{m['late'] or ''}_{m['user_id']}_{m['attachment_id']}_feedback_{page.name}"
                else:
                    m = MOODLE_ENTRY.match(entries[0])
                    folder = entries[0] if (m["rest"] or "_") == "_" else f"{m['name']}_{m['user_id']}_{m['plugin']}_"
                    name = f"{folder}/feedback_{page.name}"
                archive.write(page, name)
                count += 1
    target.with_suffix(".part").replace(target)
    return f"wrote {target} ({count} feedback pages)", warnings
