"""The built site in a real browser (Debian's Chromium driven by Playwright), offline, and
checked for accessibility by axe-core (the copy shipped in the PyPI package axe-playwright-python).

Where no Chromium is installed these tests skip and say how to get it; .ci/run installs it."""
from __future__ import annotations

import pytest
import yaml

from tests.helpers import ROOT, assignments, lessons, student_notebook

pytestmark = pytest.mark.needs_chromium   # skips without Chromium (tests/conftest.py); fails in CI


def toc_pages() -> list[str]:
    """Every page of _toc.yml, as the path of its HTML file in the site."""
    def files(entries):
        for entry in entries:
            if "file" in entry:
                yield entry["file"] + ".html"
            yield from files(entry.get("sections", []) + entry.get("chapters", []))
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"] + ".html", *files(toc.get("parts", []))]


CHAPTER_PAGES = [f"chapters/{p.stem}.html" for p in lessons()] + [
    f"chapters/{student_notebook(a).stem}.html" for a in assignments()]
PAGES = toc_pages()
PAGES_WITH_MATH = CHAPTER_PAGES  # every lesson and exercise page shows formulas; the intro has none
PAGES_WITH_NETWORK_FIGURE = ["intro.html", "chapters/01_forward_pass.html"]
# Console errors the theme logs on every Jupyter Book 1 page, harmless to a reader: sphinx-thebe's
# configuration script is included twice (its "launch" button is off, so thebe never loads), and
# the pydata theme finds no stored light/dark choice in a fresh browser profile.
KNOWN_THEME_ERRORS = ("Identifier 'THEBE_JS_URL' has already been declared", "Got invalid theme mode: . Resetting to auto.")


@pytest.fixture
def open_page(browser, site):
    """Open a page of the built site from file://, recording every request that leaves the site
    (they are aborted, as they would fail offline) and every console error."""
    opened = []

    def _open(relative: str, color_scheme: str = "light"):
        page = browser.new_page(color_scheme=color_scheme)
        outside, errors = [], []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        def route(r):
            if r.request.url.startswith(site.as_uri()):
                r.continue_()
            else:
                outside.append(r.request.url)
                r.abort()
        page.route("**/*", route)
        page.goto((site / relative).as_uri(), wait_until="load")
        opened.append(page)
        return page, outside, errors

    yield _open
    for page in opened:
        page.close()


@pytest.mark.parametrize("relative", PAGES)
def test_page_loads_offline_without_errors(open_page, relative):
    page, outside, errors = open_page(relative)
    page.wait_for_timeout(300)  # let late scripts (search index, MathJax fonts) ask for what they need
    assert not outside, f"{relative} requested resources from outside the site: {outside}"
    unexpected = [e for e in errors if e not in KNOWN_THEME_ERRORS]
    assert not unexpected, f"{relative} logged errors: {unexpected}"
    assert page.locator("h1").first.inner_text().strip()


@pytest.mark.parametrize("relative", PAGES_WITH_MATH)
def test_math_is_rendered_by_mathjax(open_page, relative):
    page, outside, _ = open_page(relative)
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=15000)
    page.evaluate("() => MathJax.startup.promise")
    rendered = page.locator("mjx-container").count()
    assert rendered > 0, f"no formula rendered on {relative}"
    assert page.locator("mjx-merror").count() == 0, f"MathJax reported a TeX error on {relative}"
    assert not outside


@pytest.mark.parametrize("relative", PAGES_WITH_NETWORK_FIGURE)
def test_network_figure_is_shown_with_alt_text(open_page, relative):
    page, _, _ = open_page(relative)
    figures = page.locator("figure img")
    assert figures.count() >= 1, f"no figure on {relative}"
    img = figures.first
    assert "network" in (img.get_attribute("alt") or ""), "the network figure has no descriptive alt text"
    assert page.evaluate("img => img.complete && img.naturalWidth > 100", img.element_handle())
    assert img.bounding_box()["width"] > 200, "the figure is not visible at a readable size"


@pytest.mark.parametrize("relative", PAGES)
def test_every_figure_has_alt_text(open_page, relative):
    """Figures made by code cells carry a description for screen readers, not a file name."""
    page, _, _ = open_page(relative)
    for img in page.locator(".cell_output img, figure img").all():
        alt = (img.get_attribute("alt") or "").strip()
        assert len(alt) > 20 and not alt.endswith(".png"), f"an image on {relative} has no alt text: {alt!r}"
        assert page.evaluate("img => img.complete && img.naturalWidth > 0", img.element_handle())


# axe-core's impact levels, most severe first; a page may have no violation of the first two.
BLOCKING_IMPACTS = ("critical", "serious")


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
@pytest.mark.parametrize("relative", PAGES)
def test_no_serious_or_critical_accessibility_violation(open_page, relative, color_scheme):
    """axe-core, with all its default rules (WCAG 2 A and AA, best practices), on the page as a
    reader sees it: after the site's own scripts ran and MathJax rendered, in the theme's light and
    dark modes (the theme follows the browser's preference). Moderate and minor findings are not
    failures (the theme's sidebar title sits outside a landmark: axe's moderate "region")."""
    from axe_playwright_python.sync_playwright import Axe

    page, outside, _ = open_page(relative, color_scheme)
    assert page.evaluate("document.documentElement.dataset.theme") == color_scheme
    page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
    # The theme fades colours in when it switches mode: on a loaded machine axe could measure a
    # colour halfway (seen once on the search button). Transitions off, the final colours are measured.
    page.add_style_tag(content="*, *::before, *::after { transition: none !important; animation: none !important; }")
    page.wait_for_timeout(100)
    violations = Axe().run(page).response["violations"]
    blocking = [f"  {v['id']} ({v['impact']}: {v['help']}) at {' '.join(node['target'])}"
                for v in violations if v["impact"] in BLOCKING_IMPACTS for node in v["nodes"]]
    assert not blocking, (f"axe-core finds {len(blocking)} serious or critical violations on {relative} "
                          f"({color_scheme} mode):\n" + "\n".join(blocking))
    assert not outside
