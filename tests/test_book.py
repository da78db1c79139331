"""The built site: every page there, nothing from the solutions, downloads in place."""
from __future__ import annotations

import re

from tests.helpers import LEAK_MARKERS, assignments, lessons, student_notebook


def test_every_lesson_and_exercise_page_is_built(site):
    for lesson in lessons():
        assert (site / "chapters" / f"{lesson.stem}.html").is_file()
    for assignment in assignments():
        assert (site / "chapters" / f"{student_notebook(assignment).stem}.html").is_file()
    assert (site / "intro.html").is_file() and (site / "index.html").is_file()


def test_site_contains_no_solution_or_hidden_test(site):
    for path in site.rglob("*"):
        if path.is_file() and path.suffix in {".html", ".ipynb", ".txt", ".js", ".md"}:
            text = path.read_text(errors="replace")
            for marker in LEAK_MARKERS:
                assert marker not in text, f"{path.relative_to(site)} contains {marker!r}"


def test_each_lesson_links_to_a_downloadable_exercise_notebook(site):
    for assignment in assignments():
        name = student_notebook(assignment).name
        downloads = list((site / "_downloads").rglob(name))
        assert downloads, f"{name} is not among the site's downloads"
        assert downloads[0].read_bytes() == student_notebook(assignment).read_bytes()
        lesson_html = (site / "chapters" / name.replace("_exercises.ipynb", ".html")).read_text()
        assert re.search(rf'href="[^"]*_downloads/[^"]*/{re.escape(name)}"', lesson_html), "no download link in the lesson"
        assert f'href="{name.replace(".ipynb", ".html")}"' in lesson_html, "no link to the exercise page"


def test_exercise_pages_are_shown_unexecuted(site):
    """The student notebooks are pages with their stubs, not run (they would raise)."""
    for assignment in assignments():
        html = (site / "chapters" / f"{student_notebook(assignment).stem}.html").read_text()
        assert "YOUR CODE HERE" in html and "NotImplementedError" in html
        assert "Traceback" not in html


def test_math_is_served_from_the_site(site):
    assert (site / "_static" / "mathjax" / "tex-chtml.js").is_file()
    page = (site / "chapters" / "01_forward_pass.html").read_text()
    assert re.search(r'<script[^>]+src="[^"]*_static/mathjax/tex-chtml\.js', page)


def test_points_stated_in_each_lesson_are_the_assignments_points():
    """Every "(N points)" of the text, in each exercise's heading (solutions/ and the student
    notebooks) and in each lesson's list of exercises, is the nbgrader points of its test cells."""
    from autograder import release

    assert release.points_disagreements() == [], "run `python -m autograder release`"


def test_changed_points_are_restated_everywhere_and_the_feedback_shows_them_once(tmp_path):
    """Give a test cell other points: every place that states them is named, `sync_points` (the first
    step of `python -m autograder release`) restates the headings and the lesson's list, and the
    feedback page's title for the exercise carries no stale "(N points)"."""
    import shutil

    import nbformat

    from autograder import release
    from autograder.grading.course import Course
    from tests.helpers import CHAPTERS, ROOT, source_notebook

    assignment = assignments()[0]
    shutil.copytree(ROOT / "solutions", tmp_path / "solutions")
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    shutil.copytree(CHAPTERS, tmp_path / "chapters", ignore=shutil.ignore_patterns("_*", ".*"))
    path = tmp_path / source_notebook(assignment).relative_to(ROOT)
    nb = nbformat.read(path, 4)
    test_cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade"))
    test_cell.metadata.nbgrader.points += 1
    nbformat.write(nb, path)
    lesson = f"chapters/{path.name.replace('_exercises.ipynb', '.ipynb')}"

    named = "\n".join(release.points_disagreements(tmp_path))
    for place in [path.relative_to(tmp_path), f"chapters/{path.name}", lesson]:
        assert str(place) in named, f"{place} is not named:\n{named}"
    changed = "\n".join(release.sync_points(tmp_path))
    assert str(path.relative_to(tmp_path)) in changed and lesson in changed, changed
    assert release.sync_points(tmp_path) == [], "a second sync has nothing left to change"
    left = release.points_disagreements(tmp_path)
    assert len(left) == 1 and left[0].startswith(f"chapters/{path.name}: "), left  # release regenerates it

    master = Course(tmp_path).master(assignment)
    grade_id, points = master.graded[0]
    assert points == test_cell.metadata.nbgrader.points
    assert "point" not in master.titles[grade_id] and master.titles[grade_id].startswith("Exercise 1"), master.titles
