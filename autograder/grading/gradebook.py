"""nbgrader's gradebook, written by the main process alone (workers never open it, so parallel
grading cannot meet a "database is locked" error); the output folder made an nbgrader course root
(formgrader, ``nbgrader export`` and ``nbgrader release_feedback`` work there); scores changed by
hand in the gradebook carried into the rows and the feedback pages."""
from __future__ import annotations

import ast
import contextlib
import copy
import datetime
import glob
import io
import json
import logging
import os
import sqlite3
import tempfile
import warnings
from pathlib import Path

from nbgrader.api import (Assignment, BaseCell, Comment, Grade, Gradebook, MissingEntry, Student, SubmittedAssignment,
                          SubmittedNotebook)
from nbgrader.exchange.default.release_feedback import ExchangeReleaseFeedback
from nbgrader.utils import parse_utc

from . import sanitize
from .course import Course

CONFIG_TEMPLATE = '''# Written by `python -m autograder grade` at each run (edit the course's nbgrader_config.py, not
# this file). This folder is an nbgrader course root for reviewing the grades (formgrader: run
# `jupyter lab` here and open the Formgrader tab), exporting them (`nbgrader export --to
# nbgrader_export.csv`; the grader's own table is grades.csv) and releasing feedback (`nbgrader
# release_feedback ASSIGNMENT`). Its paths are relative to this file: the folder can be moved.
import os

c = get_config()  # noqa: F821
here = os.path.dirname(os.path.abspath(__file__))

# The course's own settings (course id, Exchange.root, ...): its nbgrader_config.py while this
# folder is where the grader wrote it, else the copy below, made at the last grading run.
course_config = os.path.join(here, {course_config!r})
if os.path.isfile(course_config):
    load_subconfig(course_config)  # noqa: F821
else:
{snapshot}

# The grader's folders.
c.CourseDirectory.root = here
c.CourseDirectory.course_id = {course_id!r}
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(here, "gradebook.db")
# The course's notebooks and the submissions, where they were at the last grading run.
c.CourseDirectory.source_directory = os.path.normpath(os.path.join(here, {source!r}))
c.CourseDirectory.submitted_directory = os.path.normpath(os.path.join(here, {submitted!r}))
# nbgrader's release_feedback, except that a page of a submission that did not come through the
# exchange (collected from an LMS zip) is skipped with a warning instead of stopping the release.
if "release_feedback" not in c.ExchangeFactory:
    c.ExchangeFactory.release_feedback = "autograder.grading.gradebook.ReleaseFeedback"
# Formgrader shows the autograded notebooks in your browser, where a script would act as you: the
# grader keeps only outputs that run nothing (text, images, cleaned HTML), and formgrader cleans
# them again. Its "Generate Feedback" is switched off: its pages would show the hidden tests, and
# the grader writes the feedback pages (autograder/grading/sanitize.py).
{sanitize}
'''
# Settings of the course's config that the grader's config sets itself.
OWN_SETTINGS = {("CourseDirectory", k) for k in ("root", "course_id", "source_directory", "submitted_directory",
                                                 "autograded_directory", "feedback_directory", "db_url")}
EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")


def _alembic_in_process() -> None:
    """nbgrader stamps a new gradebook with the newest revision of its database schema, which it
    reads by running the ``alembic heads`` command (4 s here, and the ``alembic`` script must be on
    PATH); alembic's own API reads the same revision from the same folder in a millisecond."""
    import nbgrader.api
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    nbgrader.api.get_alembic_version = lambda: ScriptDirectory(ALEMBIC_DIR).get_current_head()


def config_snapshot(config) -> str:
    """The settings of a loaded nbgrader config as Python lines (indented for the template's
    ``else:``); a value that is not a plain literal is named in a comment, not copied."""
    lines = []
    for section, values in sorted(config.items()):
        if not hasattr(values, "items"):
            continue
        for key, value in sorted(values.items()):
            if (section, key) in OWN_SETTINGS:
                continue
            text = repr(value)
            try:
                plain = ast.literal_eval(text) == value
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                plain = False
            lines.append(f"    c.{section}.{key} = {text}" if plain else
                         f"    # not copied (not a plain value): c.{section}.{key}")
    return "\n".join(lines) or "    pass"


def read_timestamp(folder: Path):
    """The submission time nbgrader's collect (or ``python -m autograder collect``) wrote, if any."""
    path = folder / "timestamp.txt"
    if not path.is_file():
        return None
    try:
        return parse_utc(path.read_text().strip())
    except Exception:
        return None


class GradebookWriter:
    def __init__(self, out: Path, course: Course, submissions: Path):
        self.out, self.course, self.submissions = out, course, submissions
        self.db_path = out / "gradebook.db"
        self.db_url = f"sqlite:///{self.db_path}"
        self.state_path = out / ".autograder" / "gradebook.json"
        self.gradebook: Gradebook | None = None
        # The rows this gradebook file holds ("student/assignment" -> the input digest recorded): a
        # re-run records only rows it has not, instead of the whole class again (70 ms a row).
        self.rows_path = out / ".autograder" / "gradebook-rows.json"
        self.recorded = self._load_recorded()

    def _load_recorded(self) -> dict:
        """The rows saved at the last run, those only that the gradebook file still has (a gradebook
        deleted or replaced since has not the others)."""
        try:
            saved = json.loads(self.rows_path.read_text())
            with contextlib.closing(sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)) as db:
                there = {f"{student}/{assignment}" for student, assignment in db.execute(
                    "SELECT s.student_id, a.name FROM submitted_assignment s JOIN assignment a "
                    "ON s.assignment_id = a.id")}
            return {key: digest for key, digest in saved.items() if key in there}
        except (OSError, ValueError, TypeError, AttributeError, sqlite3.Error):
            return {}

    def is_recorded(self, result: dict) -> bool:
        key = f"{result['student_id']}/{result['assignment_id']}"
        return result.get("input_digest") is not None and self.recorded.get(key) == result["input_digest"]

    def write_config(self) -> None:
        def relative(path: Path) -> str:
            return os.path.relpath(path, self.out)

        text = CONFIG_TEMPLATE.format(course_config=relative(self.course.root / "nbgrader_config.py"),
                                      snapshot=config_snapshot(self.course.config), course_id=self.course.course_id,
                                      source=relative(self.course.source_dir), submitted=relative(self.submissions),
                                      sanitize=sanitize.formgrader_config())
        (self.out / "nbgrader_config.py").write_text(text)

    def ensure_assignments(self, masters: list) -> list[str]:
        """Record each assignment in the gradebook with nbgrader's generate_assignment (its
        cells, points and checksums), unless it is there already from the same source. Where
        every assignment of the course needs it, one call does them all (nbgrader takes a
        pattern); else, or if that fails, one at a time: a broken source notebook fails only its own."""
        problems = []
        state = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}
        needed = [m for m in masters if not (state.get(m.assignment) == m.digest and self.db_path.exists())]
        if len(needed) > 1 and {m.assignment for m in needed} == set(self.course.assignments()):
            if self._generate("*") is None:
                state.update({m.assignment: m.digest for m in needed})
                needed = []
        for master in needed:
            failure = self._generate(master.assignment)
            if failure is not None:
                problems.append(f"nbgrader generate_assignment {master.assignment} failed: {failure[-800:]}")
                continue
            state[master.assignment] = master.digest
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        self.state_path.write_text(json.dumps(state))
        return problems

    def _generate(self, pattern: str) -> str | None:
        """nbgrader's generate_assignment, in this process (a separate ``nbgrader`` process spent
        most of its 9 s starting up, on a core the workers need), into a release folder thrown
        away: only the gradebook is kept. None, or what went wrong."""
        from nbgrader.converters import GenerateAssignment
        from nbgrader.coursedir import CourseDirectory

        _alembic_in_process()
        config = copy.deepcopy(self.course.config)
        log = io.StringIO()
        with tempfile.TemporaryDirectory() as release:
            config.CourseDirectory.update(root=str(self.course.root), db_url=self.db_url, release_directory=release,
                                          course_id=self.course.course_id, assignment_id=pattern)
            config.GenerateAssignment.force = True
            # nbgrader changes the working folder to the course's for the call: every path this
            # process uses is absolute.
            converter = GenerateAssignment(coursedir=CourseDirectory(config=config), config=config)
            converter.log = logging.getLogger(f"autograder.generate_assignment.{pattern}")
            converter.log.propagate = False
            converter.log.addHandler(logging.StreamHandler(log))
            try:
                converter.start()
            except Exception as error:
                return (log.getvalue() + f"{type(error).__name__}: {error}").strip()
        return None

    def open(self) -> None:
        # nbgrader's models trigger SQLAlchemy 2 "not in session" warnings on every new submission.
        warnings.filterwarnings("ignore", module="nbgrader.api")
        warnings.filterwarnings("ignore", message=".*not in session.*")
        _alembic_in_process()
        self.gradebook = Gradebook(self.db_url, self.course.course_id)

    def close(self) -> None:
        if self.gradebook is not None:
            self.gradebook.close()
            self.gradebook = None
            self.rows_path.write_text(json.dumps(self.recorded))

    def record(self, result: dict, master) -> None:
        """One row into the gradebook: auto scores, nothing left "needing manual grading" (unless
        an instructor had already graded the cell by hand), flagged if flagged."""
        gb = self.gradebook
        sid, aid = result["student_id"], result["assignment_id"]
        try:
            gb.find_assignment(aid)
        except MissingEntry:
            return
        gb.update_or_create_student(sid)
        timestamp = read_timestamp(self.submissions / sid / aid)
        if timestamp is not None:
            gb.update_or_create_submission(aid, sid, timestamp=timestamp)
        else:
            gb.update_or_create_submission(aid, sid)
        notebook = gb.find_submission_notebook(master.notebook_id, aid, sid)
        scores = result.get("before_manual", result)["scores"]  # the tests' points, never the hand-given ones
        for grade in notebook.grades:
            auto = float(scores.get(grade.name, 0.0))
            if grade.manual_score is None:
                grade.needs_manual_grade = False
            elif grade.auto_score != auto:
                grade.needs_manual_grade = True  # as nbgrader: a score given by hand for other results, to review
            grade.auto_score = auto
        for comment in notebook.comments:
            cell = master.cells.get(comment.name)
            source = result.get("solution_sources", {}).get(comment.name)
            if cell is not None and (source is None or source.strip() == cell["released"].strip()):
                comment.auto_comment = "No response."
            else:
                comment.auto_comment = None
        notebook.flagged = result["status"] == "flagged"
        gb.db.commit()
        self.recorded[f"{sid}/{aid}"] = result.get("input_digest")

    def _per_cell(self, table, value, condition) -> dict:
        """(student_id, assignment_id) -> {cell name: value} of the rows of ``table`` (Grade or
        Comment) that meet ``condition``."""
        query = (self.gradebook.db.query(Student.id, Assignment.name, BaseCell.name, value)
                 .select_from(table)
                 .join(BaseCell, table.cell_id == BaseCell.id)
                 .join(SubmittedNotebook, table.notebook_id == SubmittedNotebook.id)
                 .join(SubmittedAssignment, SubmittedNotebook.assignment_id == SubmittedAssignment.id)
                 .join(Student, SubmittedAssignment.student_id == Student.id)
                 .join(Assignment, SubmittedAssignment.assignment_id == Assignment.id)
                 .filter(condition).order_by(BaseCell.name))
        found: dict = {}
        for student, assignment, cell, found_value in query:
            found.setdefault((student, assignment), {})[cell] = found_value
        return found

    def manual_scores(self) -> dict:
        """(student_id, assignment_id) -> {grade_id: points} of every cell scored by hand (formgrader
        sets a manual score, or extra credit): nbgrader's score of the cell, which is the manual
        score (else the automatic one) plus any extra credit."""
        found = self._per_cell(Grade, Grade.score, Grade.manual_score.isnot(None)
                               | (Grade.extra_credit.isnot(None) & (Grade.extra_credit != 0)))
        return {key: {cell: float(score) for cell, score in cells.items()} for key, cells in found.items()}

    def manual_comments(self) -> dict:
        """(student_id, assignment_id) -> {cell name: text} of every comment typed in formgrader."""
        found = self._per_cell(Comment, Comment.manual_comment,
                               Comment.manual_comment.isnot(None) & (Comment.manual_comment != ""))
        return {key: {cell: text.strip() for cell, text in cells.items()} for key, cells in found.items()}

    def record_lateness(self, results: dict, final) -> None:
        """Each assignment's due date, each submission's extension, each notebook's late penalty and
        each student's name (the roster's) into the gradebook, so that ``nbgrader export`` and
        formgrader agree with grades.csv."""
        from .. import lms
        gb = self.gradebook
        due, extra = lms.due_dates(self.course), lms.extensions(self.course)
        for assignment in gb.db.query(Assignment):
            if assignment.duedate != due.get(assignment.name):
                assignment.duedate = due.get(assignment.name)
        query = (gb.db.query(Student, Assignment.name, SubmittedAssignment, SubmittedNotebook)
                 .select_from(SubmittedNotebook)
                 .join(SubmittedAssignment, SubmittedNotebook.assignment_id == SubmittedAssignment.id)
                 .join(Student, SubmittedAssignment.student_id == Student.id)
                 .join(Assignment, SubmittedAssignment.assignment_id == Assignment.id))
        for person, assignment, submission, notebook in query:
            student = person.id
            result = results.get((student, assignment))
            if result is None:
                continue
            if result.get("student_name"):  # the roster's, for formgrader's lists and nbgrader export
                last, _, first = result["student_name"].partition(", ")  # Canvas: "Doe, John"
                if (person.last_name, person.first_name) != (last, first or None):
                    person.last_name, person.first_name = last, first or None
            penalty = float(result.get("late_penalty") or 0.0)
            if notebook.late_submission_penalty != penalty:
                notebook.late_submission_penalty = penalty
            deadline = extra.get((student, assignment))
            extension = deadline - due[assignment] if deadline and assignment in due else None
            if submission.extension != extension:
                submission.extension = extension
        gb.db.commit()

    def finish_rows(self, results: dict, final=None) -> list[str]:
        """After the gradebook is written: each row takes the scores given by hand and the comments
        typed in formgrader, then its lateness and penalty (``final``, grade.Final); its page shows
        them all, and has beside it the files nbgrader release_feedback reads. A gradebook that
        cannot be read leaves the rows their tests' scores; the pages still agree with grades.csv."""
        problems = []
        try:
            if self.gradebook is None:
                self.open()
            manual, comments = self.manual_scores(), self.manual_comments()
        except Exception as error:
            manual = comments = None
            problems.append(f"the scores and comments given in formgrader could not be read from the gradebook: "
                            f"{type(error).__name__}: {str(error)[:300]}")
        for key, result in results.items():
            if manual is not None:
                apply_manual(result, manual.get(key, {}))
                result["comments"] = comments.get(key, {})
            if final is not None:
                final(key, result)
        if final is not None and manual is not None:
            try:
                self.record_lateness(results, final)
            except Exception as error:  # grades.csv and the pages still have it
                self.gradebook.db.rollback()
                problems.append(f"the late penalties could not be written into the gradebook: {type(error).__name__}: "
                                f"{error}"[:400])
        for key, result in results.items():
            if not result.get("feedback"):
                continue
            page = self.out / result["feedback"]
            try:
                exchange_files(self.submissions / key[0] / key[1], page.parent)
                if result.get("page"):
                    rerender(page, result)
                elif result["manual"]:
                    problems.append(f"the feedback page of {key[0]}/{key[1]} was made by an older grader and does "
                                    "not show the points given by hand: delete "
                                    f"{self.out / '.autograder' / 'results' / key[0]} and grade again")
            except OSError as error:  # this page only; grades.csv has the row
                problems.append(f"the feedback page of {key[0]}/{key[1]} could not be finished: {error}")
        return problems


def apply_manual(result: dict, manual: dict) -> None:
    """The row with the points given by hand in place of the tests' (nbgrader's rule: a manual
    score overrides the automatic one), under "manual" too; the tests' own values are kept under
    "before_manual", so that applying again, or with other scores, starts from them."""
    result.update(result.pop("before_manual", {}))
    result["manual"] = dict(manual)
    if not manual:
        return
    scores = result["scores"]
    result["before_manual"] = {"scores": dict(scores), "score": result["score"], "message": result["message"]}
    # A difference, not a sum: whatever else the score holds (a late penalty) stays.
    result["score"] = result["score"] + sum(p - scores.get(g, 0.0) for g, p in manual.items())
    result["scores"] = {**scores, **manual}
    note = "points given by hand: " + ", ".join(f"{g} {scores.get(g, 0.0):g} -> {p:g}" for g, p in manual.items())
    result["message"] = f"{note}; {result['message']}" if result["message"] else note


def rerender(path: Path, result: dict) -> None:
    """The row's feedback page rendered again (with the points given by hand, the comments, the
    lateness and penalty, the student's name); written only if it changed."""
    from . import feedback
    from .worker import atomic_write
    text = feedback.render_page(result["page"], result)
    if not path.is_file() or path.read_text(encoding="utf-8", errors="replace") != text:
        atomic_write(path, text)


def exchange_files(submission: Path, folder: Path) -> None:
    """Beside a feedback page, the files nbgrader release_feedback reads there: the submission's
    timestamp.txt and submission_secret.txt, which nbgrader collect brings from the exchange.
    A collection from an LMS download (``python -m autograder collect``) writes no secret
    (release_feedback then skips the page: the student cannot fetch it) and a timestamp only
    where the LMS gave the time (Moodle's worksheet); without one, the page gets the time the
    submission's files were last changed in the submissions folder (when they were collected):
    not when the student handed the work in, but no earlier than that."""
    from .worker import atomic_write
    for name in EXCHANGE_FILES:
        source, target = submission / name, folder / name
        data = source.read_bytes() if source.is_file() and not source.is_symlink() else None
        if data is None and name == "timestamp.txt":
            data = arrival_time(submission).encode()
        if data is None:
            target.unlink(missing_ok=True)
        elif not target.is_file() or target.read_bytes() != data:
            atomic_write(target, data)


def arrival_time(submission: Path) -> str:
    """When the submission's newest file was last changed, in nbgrader's timestamp format (UTC)."""
    times = [p.lstat().st_mtime for p in submission.rglob("*") if p.is_file() and not p.is_symlink()]
    when = datetime.datetime.fromtimestamp(max(times, default=0.0), datetime.timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f UTC")


class ReleaseFeedback(ExchangeReleaseFeedback):
    """nbgrader release_feedback (what graded/nbgrader_config.py selects), except that a page
    without a submission_secret.txt beside it (a submission collected from an LMS zip, not
    through the exchange) is skipped with a warning instead of stopping the whole release with a
    FileNotFoundError. nbgrader fetch_feedback finds a student's page by the secret their own
    `nbgrader submit` kept, so a student who never submitted through the exchange could not fetch
    it anyway: such pages go back through the LMS."""

    def copy_files(self):
        excluded = {s for s in (self.coursedir.student_id_exclude or "").split(",") if s}
        skipped = []
        for page in sorted(glob.glob(os.path.join(self.src_path, "*.html"))):
            folder = os.path.dirname(page)
            student = os.path.basename(os.path.dirname(folder))
            missing = [n for n in EXCHANGE_FILES if not os.path.isfile(os.path.join(folder, n))]
            if missing and student not in excluded:
                excluded.add(student)
                skipped.append(page)
                self.log.warning("Not releasing %s: no %s beside it, so %s did not submit through nbgrader's "
                                 "exchange (collected from an LMS zip?) and could not fetch it; hand the page "
                                 "back through your LMS", page, " or ".join(missing), student)
        self.coursedir.student_id_exclude = ",".join(sorted(excluded))
        super().copy_files()
        if skipped:
            self.log.warning("%d feedback page(s) not released (listed above): hand them back through your LMS",
                             len(skipped))
