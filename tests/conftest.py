from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.helpers import PACKAGES, ROOT, chromium, in_ci, missing, require, run, skip_reason


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The book built from scratch, strictly, into a temporary folder; returns its html folder.

    A clean output folder (so no execution cache and no stale page), `--all`, warnings as
    errors (-W -n), and `raise_on_error` from _config.yml: any failing lesson cell fails it."""
    out = tmp_path_factory.mktemp("book")
    jb = str(Path(sys.executable).parent / "jupyter-book")
    done = run([jb, "build", "--all", "-W", "-n", "--keep-going", "--path-output", str(out), str(ROOT)], timeout=1800)
    assert done.returncode == 0, f"strict book build failed:\n{done.stdout[-6000:]}"
    return out / "_build" / "html"


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, driven by Playwright (tests marked needs_chromium)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """needs_bwrap, needs_chromium: checked before any fixture starts something."""
    for tool in PACKAGES:
        if item.get_closest_marker(f"needs_{tool}"):
            require(tool)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter):
    """After pytest's summaries, just before its closing counts: one line saying how many tests did
    not run for want of what, and the command that installs it."""
    result = yield
    counts = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
        for tool in PACKAGES:
            if missing(tool) and skip_reason(tool) in reason:
                counts[tool] = counts.get(tool, 0) + 1
    if counts and not in_ci():
        what = ", ".join(f"{n} {'test' if n == 1 else 'tests'} needing {PACKAGES[tool]}" for tool, n in counts.items())
        terminalreporter.write_line(f"Not run here: {what}; to run them: sudo apt-get install "
                                    f"{' '.join(PACKAGES[tool] for tool in counts)}", yellow=True, bold=True)
    return result
