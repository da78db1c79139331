"""The release step: solutions/<assignment>/*.ipynb -> chapters/*.ipynb, through nbgrader.

nbgrader's ``generate_assignment`` strips the solutions and hidden tests and locks the test
cells. It runs into a temporary release folder without touching a gradebook, and the student
notebooks it makes are copied into chapters/, where they are committed and shown on the site.

A student notebook is read away from the site, so its links to the course's pages (relative
file names in the source, such as ``01_forward_pass.ipynb``) are rewritten as the pages' addresses
on the published site, from ``html.baseurl`` in _config.yml, and named by the page's title
(``link_pages_on_site``).

Points have one source of truth, the test cells' nbgrader metadata. The text that states them,
"(N points)" in each exercise's heading and in the lesson's list of exercises, is rewritten from
it before each release (``sync_points``); ``points_disagreements`` names every place that differs.
"""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
CHAPTERS = ROOT / "chapters"


def assignments() -> list[str]:
    """Every assignment: a folder of solutions/ holding a notebook."""
    return sorted(p.name for p in SOLUTIONS.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def generate(assignment: str, out_dir: Path) -> list[Path]:
    """Run nbgrader generate_assignment for one assignment; return the student notebooks made."""
    cmd = [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force", "--no-db",
           f"--CourseDirectory.release_directory={out_dir}", "--log-level=WARN"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{done.stdout}{done.stderr}")
    return sorted((out_dir / assignment).glob("*.ipynb"))


def release(target: Path = CHAPTERS) -> list[Path]:
    """Regenerate every student notebook into ``target``; return the paths written."""
    written = []
    address = site_address()
    with tempfile.TemporaryDirectory() as tmp:
        for assignment in assignments():
            for notebook in generate(assignment, Path(tmp)):
                nb = nbformat.read(notebook, 4)
                link_pages_on_site(nb, address)
                dest = target / notebook.name
                nbformat.write(nb, dest)
                written.append(dest)
    return written


# --- Links: a student notebook names its lesson and links it on the published site ---

# A markdown link whose target is a relative .ipynb or .md file name, with an optional #anchor.
PAGE_LINK = re.compile(r"\[([^\]]*)\]\((?![a-z]+:)([^()\s#]+)\.(ipynb|md)(#[^()\s]*)?\)")


def site_address(root: Path = ROOT) -> str:
    """The address of the published site, ``html.baseurl`` in _config.yml, ending with "/"; "" while
    the course has none (the links then stay relative: they work on the site and name the lesson)."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    address = (config.get("html") or {}).get("baseurl") or ""
    return address.rstrip("/") + "/" if address else ""


def page_title(page: Path) -> str:
    """The first level-1 heading of a notebook's markdown or of a MyST page."""
    texts = ([c.source for c in nbformat.read(page, 4).cells if c.cell_type == "markdown"]
             if page.suffix == ".ipynb" else [page.read_text()])
    for text in texts:
        heading = re.search(r"^# (.+)$", text, re.MULTILINE)
        if heading:
            return heading.group(1).strip()
    raise ValueError(f"{page} has no level-1 heading")


def link_pages_on_site(nb, address: str, root: Path = ROOT) -> None:
    """Make every relative link of ``nb``'s markdown (a notebook of chapters/) to a page of the book
    a link to that page on the site at ``address`` (with no address, the link stays relative). The
    link's text names the page: it is kept if it holds the page's title, and replaced by the title
    otherwise."""
    def on_site(match: re.Match) -> str:
        text, name, suffix, anchor = match.groups()
        page = (root / "chapters" / f"{name}.{suffix}").resolve()
        if not page.is_file() or root.resolve() not in page.parents:
            return match.group(0)
        title = page_title(page)
        text = text if title.lower() in text.lower() else title
        if not address:
            return f"[{text}]({name}.{suffix}{anchor or ''})"
        path = page.relative_to(root.resolve()).with_suffix(".html").as_posix()
        return f"[{text}]({address}{path}{anchor or ''})"

    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = PAGE_LINK.sub(on_site, cell.source)


def out_of_date() -> list[str]:
    """Student notebooks in chapters/ that differ from a fresh release (or are missing)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = release(Path(tmp))
        return [p.name for p in fresh if not (CHAPTERS / p.name).exists()
                or (CHAPTERS / p.name).read_bytes() != p.read_bytes()]


# --- Points: stated in the text, taken from the metadata ---

POINTS = re.compile(r"\((\d+(?:\.\d+)?) points?\)")
HEADING = re.compile(r"^#+ .*$", re.MULTILINE)
EXERCISES_SECTION = re.compile(r"^#+ Exercises\s*$", re.MULTILINE)


def say_points(points: float) -> str:
    return f"({points:g} point{'' if points == 1 else 's'})"


def exercise_headings(nb) -> list[tuple[int, float]]:
    """(index of the markdown cell whose heading is the exercise's, the points of its test cells),
    one per exercise in order: a test cell belongs to the last heading above it."""
    found: dict[int, float] = {}
    heading = None
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and HEADING.search(cell.source):
            heading = index
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and heading is not None:
            found[heading] = found.get(heading, 0.0) + float(meta.get("points", 0) or 0)
    return list(found.items())


def _lesson(root: Path, notebook: Path) -> Path:
    return root / "chapters" / notebook.name.replace("_exercises.ipynb", ".ipynb")


def _exercises_section(lesson) -> int | None:
    return next((i for i, c in enumerate(lesson.cells) if c.cell_type == "markdown"
                 and EXERCISES_SECTION.search(c.source)), None)


def _restate_heading(source: str, points: float) -> str:
    """The cell's first heading line with its "(N points)" made ``points`` (added if missing)."""
    line = HEADING.search(source)
    text = line.group(0)
    new = POINTS.sub(say_points(points), text, count=1) if POINTS.search(text) else f"{text} {say_points(points)}"
    return source[:line.start()] + new + source[line.end():]


def _restate_list(source: str, points: list[float]) -> str:
    """The lesson's list with its k-th "(N points)" made ``points[k]``."""
    stated = iter(points)
    return POINTS.sub(lambda _: say_points(next(stated)), source)


def _heading_problems(nb, where: str, points: list[float]) -> list[str]:
    """The exercise headings of ``nb`` that do not state ``points`` (the source's, in order)."""
    headings = [index for index, _ in exercise_headings(nb)]
    if len(headings) != len(points):
        return [f"{where}: {len(headings)} exercise headings above test cells, the source has {len(points)}"]
    problems = []
    for index, expected in zip(headings, points):
        heading = HEADING.search(nb.cells[index].source).group(0)
        stated = POINTS.search(heading)
        if not stated or float(stated.group(1)) != expected:
            problems.append(f"{where}: heading {heading!r} should state {say_points(expected)}, as its test cells give")
    return problems


def points_disagreements(root: Path = ROOT) -> list[str]:
    """Every place whose stated points differ from the test cells' metadata: the exercise headings
    in solutions/ and in the student notebooks of chapters/, and each lesson's list of exercises."""
    problems = []
    for notebook in sorted((root / "solutions").glob("*/*.ipynb")):
        source = nbformat.read(notebook, 4)
        points = [p for _, p in exercise_headings(source)]
        problems += _heading_problems(source, str(notebook.relative_to(root)), points)
        student = root / "chapters" / notebook.name
        if student.is_file():
            problems += _heading_problems(nbformat.read(student, 4), str(student.relative_to(root)), points)
        lesson_path = _lesson(root, notebook)
        if not lesson_path.is_file():
            continue
        lesson = nbformat.read(lesson_path, 4)
        section = _exercises_section(lesson)
        stated = [] if section is None else [float(n) for n in POINTS.findall(lesson.cells[section].source)]
        if stated != points:
            problems.append(f"{lesson_path.relative_to(root)}: its list of exercises states points "
                            f"{[f'{p:g}' for p in stated]}, the test cells of {notebook.name} give {[f'{p:g}' for p in points]}")
    return problems


def sync_points(root: Path = ROOT) -> list[str]:
    """Rewrite "(N points)" in the exercise headings of solutions/ and in the lessons' lists from the
    test cells' metadata; return what was changed. A lesson whose list does not have one "(N
    points)" per exercise is left alone (its entry in ``points_disagreements`` says so)."""
    changed = []
    for notebook in sorted((root / "solutions").glob("*/*.ipynb")):
        source = nbformat.read(notebook, 4)
        exercises = exercise_headings(source)
        edits = 0
        for index, points in exercises:
            cell = source.cells[index]
            restated = _restate_heading(cell.source, points)
            edits += restated != cell.source
            cell.source = restated
        if edits:
            nbformat.write(source, notebook)
            changed.append(f"{notebook.relative_to(root)}: {edits} exercise heading(s) restated")
        lesson_path = _lesson(root, notebook)
        if not lesson_path.is_file():
            continue
        lesson = nbformat.read(lesson_path, 4)
        section = _exercises_section(lesson)
        if section is None or len(POINTS.findall(lesson.cells[section].source)) != len(exercises):
            continue
        cell = lesson.cells[section]
        restated = _restate_list(cell.source, [points for _, points in exercises])
        if restated != cell.source:
            cell.source = restated
            nbformat.write(lesson, lesson_path)
            changed.append(f"{lesson_path.relative_to(root)}: the points of its list of exercises restated")
    return changed


def main(check: bool = False) -> int:
    """``python -m autograder release [--check]``."""
    if check:
        problems = [f"chapters/{name} differs from a fresh release: run `python -m autograder release`"
                    for name in out_of_date()] + points_disagreements()
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    for change in sync_points():
        print(change)
    for path in release():
        print(f"wrote {path.relative_to(ROOT)}")
    problems = points_disagreements()   # what could not be restated: a lesson's list to edit by hand
    for problem in problems:
        print(problem)
    return 1 if problems else 0
