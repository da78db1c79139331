"""The release step: solutions/<assignment>/*.ipynb -> chapters/*.ipynb, through nbgrader.

nbgrader's ``generate_assignment`` strips the solutions and hidden tests and locks the test
cells. It runs into a temporary release folder without touching a gradebook, and the student
notebooks it makes are copied into chapters/, where they are committed and shown on the site.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

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
    with tempfile.TemporaryDirectory() as tmp:
        for assignment in assignments():
            for notebook in generate(assignment, Path(tmp)):
                dest = target / notebook.name
                dest.write_bytes(notebook.read_bytes())
                written.append(dest)
    return written


def out_of_date() -> list[str]:
    """Student notebooks in chapters/ that differ from a fresh release (or are missing)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = release(Path(tmp))
        return [p.name for p in fresh if not (CHAPTERS / p.name).exists()
                or (CHAPTERS / p.name).read_bytes() != p.read_bytes()]
