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


# --- Cheap checks of the sources (no build) ---

def test_glossary_states_the_fourfold_bound_along_a_path_only():
    """The vanishing-gradient entry once said "at least fourfold shrinking per layer when |w| <= 1":
    true along one path, not for a layer (a neuron's delta sums over the neurons it feeds)."""
    from tests.helpers import ROOT

    glossary = (ROOT / "glossary.md").read_text()
    entry = " ".join(glossary.split("\nvanishing gradient\n", 1)[1].split("\n\n", 1)[0].split())
    claims = [s for s in entry.replace("; ", ". ").split(". ") if "fourfold" in s]
    assert claims and all("path" in claim for claim in claims), claims
    assert "fan-out" in entry and "ch6-fan-out" in entry


def test_every_lesson_that_cites_the_seed_links_its_page():
    """A student never sees the seed notebook itself: every markdown cell of a lesson that names it
    links the page that describes it (seed.md, in the table of contents)."""
    import nbformat
    import yaml

    from tests.helpers import ROOT

    assert "seed" in yaml.safe_load((ROOT / "_toc.yml").read_text())["parts"][1]["chapters"][1].values()
    unlinked = []
    for lesson in lessons():
        for cell in nbformat.read(lesson, 4).cells:
            if cell.cell_type == "markdown" and re.search(r"\bseed\b", cell.source, re.IGNORECASE):
                if "](../seed.md)" not in cell.source:
                    unlinked.append(f"{lesson.name} {cell.get('id')}")
    assert not unlinked, f"cells that cite the seed without linking seed.md: {unlinked}"


def test_student_notebooks_link_their_lesson_on_the_published_site():
    """Downloaded, a student notebook is away from the site: its link to its lesson is the lesson's
    address on the published site (html.baseurl of _config.yml), named by the lesson's title, and no
    link is a relative file name. While the course has no address, the link is relative and names
    the lesson."""
    import nbformat

    from autograder import release

    address = release.site_address()
    for assignment in assignments():
        student = student_notebook(assignment)
        lesson = student.with_name(student.name.replace("_exercises.ipynb", ".ipynb"))
        text = "\n".join(c.source for c in nbformat.read(student, 4).cells if c.cell_type == "markdown")
        if address:
            assert not release.PAGE_LINK.search(text), f"{student.name} keeps a relative link"
        link = f"]({address}chapters/{lesson.stem}.html)" if address else f"]({lesson.name})"
        assert link in text, f"{student.name} does not link {link}"
        link_text = text.split(link)[0].rsplit("[", 1)[1]
        assert release.page_title(lesson).lower() in link_text.lower(), f"{student.name}: [{link_text}] does not name its lesson"


def test_release_links_pages_on_the_configured_address():
    """Relative links to the book's pages become links on the site, anchors kept, text naming the
    page; links that are not to a page of the book are left alone."""
    import nbformat

    from autograder import release

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "See [chapter 2](02_chain_rule.ipynb#ch2-two-paths), [The forward pass, on the site](01_forward_pass.ipynb), "
        "[notation](../notation.md), [elsewhere](https://example.com/a.ipynb) and [gone](no_such_page.ipynb).")])
    release.link_pages_on_site(nb, "https://course.test/backprop/")
    assert nb.cells[0].source == (
        "See [The chain rule](https://course.test/backprop/chapters/02_chain_rule.html#ch2-two-paths), "
        "[The forward pass, on the site](https://course.test/backprop/chapters/01_forward_pass.html), "
        "[notation](https://course.test/backprop/notation.html), [elsewhere](https://example.com/a.ipynb) "
        "and [gone](no_such_page.ipynb).")
    release.link_pages_on_site(nb := nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "See [chapter 2](02_chain_rule.ipynb#ch2-two-paths).")]), "")
    assert nb.cells[0].source == "See [The chain rule](02_chain_rule.ipynb#ch2-two-paths)."
