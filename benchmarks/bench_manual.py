"""What carrying scores given by hand costs a re-run of `python -m autograder grade` on an unchanged
class: every row is cached, the gradebook is written again, then each row takes its scores given
by hand and its page is rendered again (written only if it changed) with the exchange's files
beside it (GradebookWriter.finish_rows).

Two students are graded for real; the class is then made of copies of their cached rows (and
submission folders), so that a large class costs no grading. Timings, never asserted in tests:

    .venv/bin/python benchmarks/bench_manual.py --students 400 --manual 40
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nbgrader.api import Gradebook  # noqa: E402

from autograder import grade  # noqa: E402
from autograder.grading import gradebook as gradebook_module  # noqa: E402
from tests.helpers import make_course, simulated_class  # noqa: E402

A = "01_forward_pass_exercises"


def rerun(course: Path) -> tuple[float, float]:
    """Wall time of a grading run and of its finish_rows step, in seconds."""
    spent = []
    original = gradebook_module.GradebookWriter.finish_rows

    def timed(self, *args):
        started = time.perf_counter()
        try:
            return original(self, *args)
        finally:
            spent.append(time.perf_counter() - started)

    gradebook_module.GradebookWriter.finish_rows = timed
    cwd = os.getcwd()
    os.chdir(course)
    try:
        started = time.perf_counter()
        assert grade.run("submitted", workers=2, timeout=12, stream=open(os.devnull, "w")) == 0
        return time.perf_counter() - started, spent[0]
    finally:
        os.chdir(cwd)
        gradebook_module.GradebookWriter.finish_rows = original


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=400)
    parser.add_argument("--manual", type=int, default=40, help="rows with a score given by hand")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        course = make_course(Path(tmp))
        simulated_class(course / "submitted", A, 2)
        assert grade.run(str(course / "submitted"), str(course / "graded"), workers=2, timeout=12,
                         course_path=str(course), stream=open(os.devnull, "w")) == 0
        results = course / "graded" / ".autograder" / "results"
        for k in range(2, args.students):
            model = f"student{k % 2:03d}"
            student = f"student{k:03d}"
            shutil.copytree(course / "submitted" / model, course / "submitted" / student)
            row = json.loads((results / model / f"{A}.json").read_text())
            row["student_id"] = row["page"]["student_id"] = student
            row["feedback"] = row["feedback"].replace(model, student)
            (results / student).mkdir()
            (results / student / f"{A}.json").write_text(json.dumps(row))
        first, _ = rerun(course)  # records the copies in the gradebook and writes their pages
        unchanged, finish_unchanged = rerun(course)
        with Gradebook(f"sqlite:///{course / 'graded' / 'gradebook.db'}", "backprop-step-by-step") as gb:
            for k in range(args.manual):
                gb.find_grade("test_layer", A, A, f"student{k:03d}").manual_score = 1.5
            gb.db.commit()
        manual, finish_manual = rerun(course)
        with open(course / "graded" / "grades.csv", newline="") as f:
            changed = [row for row in csv.DictReader(f) if "points given by hand" in row["message"]]
        assert len(changed) == args.manual and all(row["test_layer"] == "1.5" for row in changed)
        pages = course / "graded" / "feedback"
        assert sum("changed by your instructor" in (pages / f"student{k:03d}" / A / f"{A}.html").read_text()
                   for k in range(args.students)) == args.manual
    print(f"{args.students} rows, {args.manual} with a score given by hand")
    print(f"| unchanged class, no score by hand | {unchanged:.1f} s | finish_rows {finish_unchanged * 1000:.0f} ms |")
    print(f"| after {args.manual} scores given by hand | {manual:.1f} s | finish_rows {finish_manual * 1000:.0f} ms |")
    print(f"(the run that first recorded the copied rows: {first:.1f} s)")


if __name__ == "__main__":
    main()
