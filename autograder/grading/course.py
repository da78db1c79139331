"""The course being graded: its nbgrader configuration and, for each assignment, the "master"
copy of its notebook (what nbgrader's gradebook holds: every graded, locked and solution cell,
test cells with their hidden tests), from which submissions are restored and graded."""
from __future__ import annotations

import copy
import functools
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader import utils as nbutils
from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

import autograder

class CourseError(RuntimeError):
    """The run cannot proceed: no course, no assignment, a broken source notebook."""


@functools.lru_cache(maxsize=None)
def grader_digest() -> str:
    """The grader's own code (this package's files it grades with): a change to it re-grades everything."""
    h = hashlib.sha256()
    package = Path(autograder.__file__).resolve().parent
    for path in [package / "checks.py", package / "reference.py", *sorted((package / "grading").glob("*.py"))]:
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def load_config(root: Path) -> Config:
    path = root / "nbgrader_config.py"
    if not path.is_file():
        return Config()
    loader = PyFileConfigLoader(path.name, path=str(root))
    return loader.load_config()


def find_course(path: Path | None) -> "Course":
    """The course at ``path``; by default the current folder if it is one (it holds an
    nbgrader_config.py or the source folder), else the repository this package belongs to."""
    candidates = [Path(path)] if path else [Path.cwd(), Path(autograder.__file__).resolve().parent.parent]
    for root in candidates:
        root = root.resolve()
        course = Course(root)
        if course.source_dir.is_dir() and course.assignments():
            return course
    where = ", ".join(str(c) for c in candidates)
    raise CourseError(f"no course found in {where}: a course folder holds nbgrader_config.py and the source "
                      "folder it names (solutions/ here), with one folder of notebooks per assignment")


@dataclass
class Master:
    """One assignment's notebook as the instructor made it (plain data, sent to workers)."""

    assignment: str
    notebook_name: str                     # file name, e.g. 01_forward_pass_exercises.ipynb
    source: dict                           # the source notebook (solutions, hidden tests)
    cells: dict                            # grade_id -> description, see _describe
    order: list                            # grade_ids in source order
    graded: list                           # [(grade_id, points)] of the graded cells, in order
    titles: dict                           # grade_id of a graded cell -> exercise title
    kernelspec: dict
    digest: str                            # source notebook and grader code: keys the caches
    begin_hidden: str = "BEGIN HIDDEN TESTS"
    end_hidden: str = "END HIDDEN TESTS"
    problems: list = field(default_factory=list)

    @property
    def max_score(self) -> float:
        return float(sum(points for _, points in self.graded))

    @property
    def notebook_id(self) -> str:
        return Path(self.notebook_name).stem


def split_hidden(source: str, begin: str, end: str) -> list[tuple[str, str]]:
    """A test cell's source as [("visible" | "hidden", text)] segments, in order; the
    delimiter lines belong to neither (as nbgrader's ClearHiddenTests drops them)."""
    segments: list[list] = []
    kind = "visible"
    for line in source.split("\n"):
        if begin in line:
            kind = "hidden"
            continue
        if end in line:
            kind = "visible"
            continue
        if segments and segments[-1][0] == kind:
            segments[-1][1].append(line)
        else:
            segments.append([kind, [line]])
    return [(k, "\n".join(lines)) for k, lines in segments if "\n".join(lines).strip()]


class Course:
    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.config = load_config(self.root)
        course_dir = self.config.get("CourseDirectory", {})
        self.course_id = course_dir.get("course_id", "") or self.root.name
        self.source_dir = self.root / course_dir.get("source_directory", "source")
        self.timeout = self.config.get("Execute", {}).get("timeout", 30) or 30
        self._masters: dict[str, Master] = {}

    def assignments(self) -> list[str]:
        if not self.source_dir.is_dir():
            return []
        return sorted(p.name for p in self.source_dir.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))

    def master(self, assignment: str) -> Master:
        if assignment not in self._masters:
            self._masters[assignment] = self._make_master(assignment)
        return self._masters[assignment]

    def _make_master(self, assignment: str) -> Master:
        notebooks = sorted((self.source_dir / assignment).glob("*.ipynb"))
        if len(notebooks) != 1:
            raise CourseError(f"{self.source_dir.name}/{assignment} holds {len(notebooks)} notebooks; "
                              "the grader handles assignments of exactly one notebook")
        path = notebooks[0]
        raw = path.read_bytes()
        source = nbformat.reads(raw.decode("utf-8"), as_version=4)
        released = self.release(source)
        hidden_cfg = self.config.get("ClearHiddenTests", {})
        begin = hidden_cfg.get("begin_test_delimeter", "BEGIN HIDDEN TESTS")
        end = hidden_cfg.get("end_test_delimeter", "END HIDDEN TESTS")
        cells, order, graded, titles = {}, [], [], {}
        title = ""
        for index, (cell, out) in enumerate(zip(source.cells, released.cells)):
            if cell.cell_type == "markdown":
                heading = re.search(r"^#+\s*(.+)$", cell.source, re.MULTILINE)
                if heading:  # markdown's code and math marks read badly in a plain title; the page
                    # shows the points itself, so a "(N points)" in the heading is left out
                    title = re.sub(r"[`$*]", "", heading.group(1))
                    title = re.sub(r"\s*\(\d+(?:\.\d+)? points?\)\s*$", "", title).strip()
            meta = cell.metadata.get("nbgrader", {})
            grade_id = meta.get("grade_id")
            if not grade_id:
                continue
            is_grade, is_solution = nbutils.is_grade(cell), nbutils.is_solution(cell)
            locked = bool(meta.get("locked")) or (is_grade and not is_solution)
            cells[grade_id] = {
                "index": index, "cell_type": cell.cell_type, "locked": locked, "grade": is_grade,
                "solution": is_solution, "task": bool(meta.get("task")),
                "points": float(meta.get("points", 0) or 0), "source": cell.source, "released": out.source,
                "nbgrader": dict(out.metadata.get("nbgrader", meta)),
                "segments": split_hidden(cell.source, begin, end) if is_grade and cell.cell_type == "code" else [],
            }
            order.append(grade_id)
            if is_grade:
                graded.append((grade_id, float(meta.get("points", 0) or 0)))
                titles[grade_id] = title or grade_id
        digest = hashlib.sha256(raw + grader_digest().encode()).hexdigest()
        return Master(assignment=assignment, notebook_name=path.name, source=copy.deepcopy(dict(source)),
                      cells=cells, order=order, graded=graded, titles=titles,
                      kernelspec=dict(source.metadata.get("kernelspec", {})), digest=digest,
                      begin_hidden=begin, end_hidden=end)

    def release(self, source):
        """The student version of a source notebook, made by nbgrader's own preprocessors
        (what generate_assignment writes, minus the gradebook)."""
        released = copy.deepcopy(source)
        resources = {}
        released, resources = ClearSolutions(config=self.config).preprocess(released, resources)
        released, resources = ClearHiddenTests(config=self.config).preprocess(released, resources)
        return released

    def grade_ids(self) -> dict[str, str]:
        """grade_id -> assignment, for every cell of every assignment (to recognise a notebook
        submitted in the wrong folder). Ids shared by several assignments are left out."""
        seen: dict[str, str | None] = {}
        for assignment in self.assignments():
            try:
                master = self.master(assignment)
            except CourseError:
                continue
            for grade_id in master.order:
                seen[grade_id] = assignment if grade_id not in seen else None
        return {k: v for k, v in seen.items() if v}
