"""Answers that copy the worked example's published numbers instead of computing them.

They pass every visible check (which uses the worked example) and must score nothing once the
hidden tests call them on fresh networks. Each assignment has tests/hardcoded/<assignment>.py
defining ANSWERS, a dict grade_id -> source of the solution cell.
"""
from __future__ import annotations

import runpy
from pathlib import Path

FOLDER = Path(__file__).parent / "hardcoded"


def hardcoded_answers(assignment: str) -> dict[str, str]:
    path = FOLDER / f"{assignment}.py"
    if not path.is_file():
        raise AssertionError(f"{path} is missing: every assignment needs answers that copy its published numbers")
    return runpy.run_path(str(path))["ANSWERS"]
