"""Command line: ``python -m autograder release [--check]`` and ``python -m autograder grade SUBMISSIONS``."""
from __future__ import annotations

import argparse
import sys

from . import release


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    rel = commands.add_parser("release", help="regenerate the student notebooks in chapters/ from solutions/")
    rel.add_argument("--check", action="store_true",
                     help="write nothing; exit 1 if a committed student notebook differs from a fresh release")
    grade = commands.add_parser(
        "grade", help="grade a class: SUBMISSIONS/<student_id>/<assignment_id>/<notebook>.ipynb",
        description="Grade every submission in parallel, sandboxed, with a time limit per cell; write grades.csv, "
                    "a feedback page per student and nbgrader's gradebook. A second run re-grades only what changed.")
    grade.add_argument("submissions", metavar="SUBMISSIONS",
                       help="nbgrader's submitted layout: SUBMISSIONS/<student_id>/<assignment_id>/<notebook>.ipynb")
    grade.add_argument("--out", metavar="DIR", default=None,
                       help="output folder (default: graded/ in the current folder)")
    grade.add_argument("--workers", metavar="N", type=int, default=None,
                       help="submissions graded at once (default: the number of CPUs)")
    grade.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="grade on this dask cluster (tcp://HOST:8786, or a scheduler file) instead of on "
                            "worker processes made on this machine")
    grade.add_argument("--timeout", metavar="SECONDS", type=float, default=None,
                       help="time limit per cell (default: nbgrader's Execute.timeout, 30)")
    grade.add_argument("--assignment", metavar="ID", default=None,
                       help="grade this assignment only (default: every assignment folder found)")
    grade.add_argument("--course", metavar="DIR", default=None,
                       help="the course folder (default: the current folder if it is one, else this repository)")
    grade.add_argument("--memory", metavar="GB", type=float, default=4.0,
                       help="memory limit of each student's kernel (default: 4)")
    grade.add_argument("--no-sandbox", action="store_true",
                       help="run student code without bubblewrap even where it is available")
    args = parser.parse_args(argv)

    if args.command == "grade":
        from . import grade as grading
        return grading.run(args.submissions, out=args.out, workers=args.workers, timeout=args.timeout,
                           assignment=args.assignment, course_path=args.course, memory_gb=args.memory,
                           sandbox=not args.no_sandbox, scheduler=args.scheduler)
    if args.command == "release":
        if args.check:
            stale = release.out_of_date()
            for name in stale:
                print(f"chapters/{name} differs from a fresh release: run `python -m autograder release`")
            return 1 if stale else 0
        for path in release.release():
            print(f"wrote {path.relative_to(release.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
