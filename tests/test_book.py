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
    """The lesson lists each exercise with its points; they must be the nbgrader points."""
    import nbformat

    from tests.helpers import graded_cells, source_notebook

    for assignment in assignments():
        lesson = source_notebook(assignment).name.replace("_exercises.ipynb", ".ipynb")
        text = "\n".join(c.source for c in nbformat.read(student_notebook(assignment).parent / lesson, 4).cells if c.cell_type == "markdown")
        stated = [int(n) for n in re.findall(r"\((\d+) points?\)", text)]
        graded = [cell["points"] for cell in graded_cells(nbformat.read(source_notebook(assignment), 4)).values()]
        assert stated == graded, f"{lesson} states points {stated}, the assignment gives {graded}"
