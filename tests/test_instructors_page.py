"""The instructors' page is tested: every command it tells an instructor to type runs as written.

Each command block of `instructors.md` (fenced ```bash) is preceded by a MyST comment line that
names its scenario, `% test: SCENARIO`, or why no test here runs it, `% not run: REASON` (a server
that runs until Ctrl-C, the site build that `tests/test_book.py` makes). A scenario is a story an
instructor lives through (release with the exchange, collect a Canvas zip, grade, export, return
feedback): its blocks run in the page's order, each in a fresh `bash -e` from the root of a scratch
copy of the repository, with a PATH that does not hold the course's environment and a HOME of its
own, so a command that forgets `.venv/bin/` fails here as it would for the instructor.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT

PAGE = ROOT / "instructors.md"
TAGGED = re.compile(r"^% (test|not run): (.+)\n```bash\n(.*?)^```$", re.MULTILINE | re.DOTALL)
FRESH_PATH = "/usr/local/bin:/usr/bin:/bin"


def blocks() -> list[tuple[str, str, str]]:
    """(kind, scenario or reason, commands) of every command block, in the page's order."""
    text = PAGE.read_text()
    found = [(m.group(1), m.group(2).strip(), m.group(3)) for m in TAGGED.finditer(text)]
    assert len(found) == text.count("```bash"), (
        "every ```bash block of instructors.md needs a line `% test: SCENARIO` or `% not run: REASON` "
        "right before it")
    return found


def scenario_blocks(name: str) -> list[str]:
    return [commands for kind, tag, commands in blocks() if kind == "test" and tag == name]


def scratch_course(tmp: Path) -> Path:
    """A copy of the repository as an instructor has it, with the course's environment linked in
    (modification times kept, so `make` sees the environment as up to date)."""
    root = tmp / "course"
    root.mkdir()
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in tracked.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, root / name)
    (root / ".venv").symlink_to(ROOT / ".venv")
    (tmp / "home").mkdir()
    return root


def type_in(root: Path, commands: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    """Run one block as the instructor would type it: a fresh shell at the repository root."""
    env = {"PATH": FRESH_PATH, "HOME": str(root.parent / "home"), "LANG": "C.UTF-8", "TERM": "dumb"}
    for name in ("CI", "TMPDIR"):
        if name in os.environ:
            env[name] = os.environ[name]
    return subprocess.run(["bash", "-e", "-c", commands], cwd=root, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)


def run_scenario(root: Path, name: str) -> list[str]:
    """Every block of the scenario, in order; returns their outputs (a failing block fails the test)."""
    commands = scenario_blocks(name)
    assert commands, f"instructors.md has no block `% test: {name}`"
    outputs = []
    for block in commands:
        done = type_in(root, block)
        assert done.returncode == 0, f"instructors.md's block\n{block}\nfailed ({done.returncode}):\n{done.stdout[-4000:]}"
        outputs.append(done.stdout)
    return outputs


def test_every_command_block_is_tested_or_says_why_not():
    found = blocks()
    assert found, "instructors.md has no command block"
    for kind, tag, commands in found:
        assert commands.strip(), f"empty block ({tag})"
        if kind == "not run":
            assert len(tag) > 20, f"say why this block is not run, and what covers it: {commands}"
    untested = {tag for kind, tag, _ in found if kind == "test"} - set(SCENARIOS)
    assert not untested, f"scenarios without a test here: {sorted(untested)}"


SCENARIOS: dict = {}
