from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, run


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
