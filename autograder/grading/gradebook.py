"""nbgrader's gradebook, written by the main process alone (workers never open it, so parallel
grading cannot meet a "database is locked" error), and the output folder made an nbgrader
course root: formgrader, ``nbgrader export`` and ``nbgrader generate_feedback`` work there."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.utils import parse_utc

from .course import Course

CONFIG_TEMPLATE = '''# Written by `python -m autograder grade`: this folder is an nbgrader course root for reviewing the
# grades (formgrader: run `jupyter lab` here and open the Formgrader tab), exporting them
# (`nbgrader export --to nbgrader_export.csv`; the grader's own table is grades.csv) and
# releasing feedback. Regenerated at each run.
c = get_config()  # noqa: F821
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = {course_id!r}
c.CourseDirectory.source_directory = {source!r}
c.CourseDirectory.submitted_directory = {submitted!r}
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = {db_url!r}
'''


def read_timestamp(folder: Path):
    """The submission time nbgrader's collect (or zip_collect) wrote, if any."""
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

    def write_config(self) -> None:
        text = CONFIG_TEMPLATE.format(root=str(self.out), course_id=self.course.course_id,
                                      source=str(self.course.source_dir), submitted=str(self.submissions),
                                      db_url=self.db_url)
        (self.out / "nbgrader_config.py").write_text(text)

    def ensure_assignments(self, masters: list) -> list[str]:
        """Record each assignment in the gradebook with nbgrader's generate_assignment (its
        cells, points and checksums), unless it is there already from the same source."""
        problems = []
        state = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}
        for master in masters:
            if state.get(master.assignment) == master.digest and self.db_path.exists():
                continue
            with tempfile.TemporaryDirectory() as release:
                cmd = [sys.executable, "-m", "nbgrader", "generate_assignment", master.assignment, "--force",
                       f"--CourseDirectory.db_url={self.db_url}", f"--CourseDirectory.release_directory={release}",
                       f"--CourseDirectory.course_id={self.course.course_id}", "--log-level=WARN"]
                env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
                done = subprocess.run(cmd, cwd=self.course.root, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                problems.append(f"nbgrader generate_assignment {master.assignment} failed: "
                                f"{(done.stdout + done.stderr).strip()[-800:]}")
                continue
            state[master.assignment] = master.digest
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        self.state_path.write_text(json.dumps(state))
        return problems

    def open(self) -> None:
        # nbgrader's models trigger SQLAlchemy 2 "not in session" warnings on every new submission.
        warnings.filterwarnings("ignore", module="nbgrader.api")
        warnings.filterwarnings("ignore", message=".*not in session.*")
        self.gradebook = Gradebook(self.db_url, self.course.course_id)

    def close(self) -> None:
        if self.gradebook is not None:
            self.gradebook.close()
            self.gradebook = None

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
        for grade in notebook.grades:
            grade.auto_score = float(result["scores"].get(grade.name, 0.0))
            grade.needs_manual_grade = grade.manual_score is not None
        for comment in notebook.comments:
            cell = master.cells.get(comment.name)
            source = result.get("solution_sources", {}).get(comment.name)
            if cell is not None and (source is None or source.strip() == cell["released"].strip()):
                comment.auto_comment = "No response."
            else:
                comment.auto_comment = None
        notebook.flagged = result["status"] == "flagged"
        gb.db.commit()
