"""Shared helpers for the suite: paths, running commands, and making simulated submissions."""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"
SOLUTIONS = ROOT / "solutions"
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
LEAK_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def assignments() -> list[str]:
    return sorted(p.name for p in SOLUTIONS.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def source_notebook(assignment: str) -> Path:
    (path,) = (SOLUTIONS / assignment).glob("*.ipynb")
    return path


def student_notebook(assignment: str) -> Path:
    return CHAPTERS / source_notebook(assignment).name


def lessons() -> list[Path]:
    return sorted(p for p in CHAPTERS.glob("*.ipynb") if not p.stem.endswith("_exercises"))


def glued(notebook: Path) -> dict[str, str]:
    """name -> text of every value a notebook glues (myst-nb ``glue``), from its stored outputs.
    nbval checks that the stored outputs are what executing the notebook prints, so tests can
    cross-check these against ``autograder.reference`` without running the lesson again."""
    values = {}
    for cell in nbformat.read(notebook, 4).cells:
        for output in cell.get("outputs", []):
            record = output.get("metadata", {}).get("scrapbook")
            if record:
                values[record["name"]] = output["data"][record["mime_prefix"] + "text/plain"]
    return values


# --- What some tests need from the system besides the README's prerequisites ---------------------
# A test marked needs_bwrap or needs_chromium (or that calls require) skips where the tool is
# missing and, under CI=true, fails; tests/conftest.py ends the run with what was not run.

PACKAGES = {"bwrap": "bubblewrap", "chromium": "chromium"}   # tool -> the Debian package that installs it


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@functools.cache
def missing(tool: str) -> str | None:
    """Why ``tool`` cannot be used here, or None when it can."""
    if tool == "bwrap":
        from autograder.grading import sandbox
        works, why = sandbox.bwrap_status()   # installed and able to make a sandbox here
        return None if works else why
    return None if chromium() else "Chromium is not installed"


def skip_reason(tool: str) -> str:
    return f"needs {PACKAGES[tool]}: {missing(tool)}"


def require(tool: str) -> None:
    """Skip the calling test (or fixture) if ``tool`` is missing; in CI, fail it."""
    if missing(tool) is None:
        return
    if in_ci():
        pytest.fail(f"{skip_reason(tool)} (.ci/run installs it; in CI this test may not skip)", pytrace=False)
    pytest.skip(skip_reason(tool))


def run(cmd: list[str], cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run a command with this environment's scripts first on PATH (nbgrader calls `alembic`,
    jupyter-book starts kernels); return the finished process, stdout and stderr combined.
    `autograder grade` refuses to run student code without its sandbox: the test needs bubblewrap."""
    if cmd[1:4] == ["-m", "autograder", "grade"] and "--no-sandbox" not in cmd:
        require("bwrap")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)


def nbgrader(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "nbgrader", *args], cwd=cwd)


def graded_cells(nb) -> dict[str, dict]:
    """grade_id -> nbgrader metadata of every graded (test) cell."""
    return {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]
            for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")}


def answer(student_nb, answers: dict[str, str]):
    """A copy of the student notebook with the solution cells named in ``answers`` (grade_id ->
    source) filled in: a simulated submission."""
    filled = nbformat.from_dict(student_nb)
    for cell in filled.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and meta["grade_id"] in answers:
            cell.source = answers[meta["grade_id"]]
    return filled


def fill_in_solutions(student_nb, source_nb):
    """The student notebook answered as in the source (the solution code, without nbgrader's
    markers): what a student who got everything right submits."""
    solutions = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source_nb.cells
                 if c.metadata.get("nbgrader", {}).get("solution")}
    return answer(student_nb, {grade_id: "\n".join(l for l in src.splitlines() if l.strip() not in SOLUTION_MARKERS)
                               for grade_id, src in solutions.items()})


def make_course(tmp: Path) -> Path:
    """A throw-away nbgrader course folder holding the repository's solutions and configuration."""
    shutil.copytree(SOLUTIONS, tmp / "solutions")
    shutil.copy(ROOT / "nbgrader_config.py", tmp / "nbgrader_config.py")
    return tmp


# --- Simulated submissions for `python -m autograder grade` (tests/test_grade.py, benchmarks/) ---

def partial_answers(student_nb, source_nb, keep: int):
    """The student notebook with only the first ``keep`` solution cells answered."""
    full = fill_in_solutions(student_nb, source_nb)
    solutions = [c for c in full.cells if c.metadata.get("nbgrader", {}).get("solution")]
    return answer(student_nb, {c.metadata["nbgrader"]["grade_id"]: c.source for c in solutions[:keep]})


def broken_answers(student_nb, source_nb):
    """Answered as in the source, but the first answer cell has a syntax error."""
    full = fill_in_solutions(student_nb, source_nb)
    first = next(c for c in full.cells if c.metadata.get("nbgrader", {}).get("solution"))
    first.source = first.source.replace("def ", "def (", 1)
    return full


def write_submission(submitted: Path, student_id: str, assignment: str, notebook, name: str | None = None) -> Path:
    """Write a simulated submission into nbgrader's submitted layout; ``notebook`` is a notebook
    or the raw text of the file."""
    folder = submitted / student_id / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or student_notebook(assignment).name)
    if isinstance(notebook, str):
        path.write_text(notebook)
    else:
        nbformat.write(notebook, path)
    return path


def simulated_class(submitted: Path, assignment: str, size: int) -> dict[str, str]:
    """``size`` students for one assignment, cycling through correct, partial, blank and broken
    submissions; returns student_id -> kind."""
    source = nbformat.read(source_notebook(assignment), 4)
    student = nbformat.read(student_notebook(assignment), 4)
    n_solutions = sum(1 for c in source.cells if c.metadata.get("nbgrader", {}).get("solution"))
    makers = {"correct": lambda: fill_in_solutions(student, source),
              "partial": lambda: partial_answers(student, source, max(n_solutions // 2, 1)),
              "blank": lambda: student,
              "broken": lambda: broken_answers(student, source)}
    kinds = {}
    for k in range(size):
        kind = list(makers)[k % len(makers)]
        student_id = f"student{k:03d}"
        write_submission(submitted, student_id, assignment, makers[kind]())
        kinds[student_id] = kind
    return kinds
