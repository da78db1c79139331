"""Command line: ``python -m autograder release [--check]``, ``python -m autograder collect --from canvas|moodle
DOWNLOAD.zip ASSIGNMENT``, ``python -m autograder grade SUBMISSIONS``, ``python -m autograder export --to
canvas|moodle --roster FILE`` and ``python -m autograder return --to canvas|moodle ASSIGNMENT``."""
from __future__ import annotations

import argparse
import sys

from . import release
from .grading.course import CourseError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    rel = commands.add_parser("release", help="restate the points in the text from the test cells, then "
                                              "regenerate the student notebooks in chapters/ from solutions/")
    rel.add_argument("--check", action="store_true",
                     help="write nothing; exit 1 if a committed student notebook differs from a fresh "
                          "release or stated points differ from the test cells'")
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
    grade.add_argument("--max-submission-mb", metavar="MB", type=float, default=None,
                       help="size limit of a submission folder's files together; a larger folder gets an "
                            "error row and nothing of it is read (default: 100)")
    grade.add_argument("--no-sandbox", action="store_true",
                       help="run student code without bubblewrap even where it is available")
    grade.add_argument("--student", metavar="ID", action="append", default=None,
                       help="grade (again) only this student, keeping every other row; repeatable")
    export = commands.add_parser(
        "export", help="write grades.csv's scores into the file Canvas or Moodle imports",
        description="Fill the roster downloaded from the LMS (Canvas: the gradebook export; Moodle: the "
                    "assignment's grading worksheet) with each student's score, by the LMS's user id.")
    export.add_argument("graded", metavar="GRADED_DIR", nargs="?", default="graded",
                        help="the grader's output folder (default: graded)")
    export.add_argument("--to", choices=("canvas", "moodle"), required=True)
    export.add_argument("--roster", metavar="FILE", required=True,
                        help="the CSV downloaded from the LMS: Canvas's gradebook export, Moodle's grading worksheet")
    export.add_argument("--out", metavar="FILE", default=None,
                        help="where to write (default: GRADED_DIR/canvas_import.csv or moodle_import.csv)")
    export.add_argument("--assignment", metavar="ID", default=None, help="export this assignment only")
    export.add_argument("--column", metavar="ASSIGNMENT=CANVAS_ID", action="append", default=[],
                        help="Canvas: the gradebook column of an assignment whose title is not its id; repeatable")
    collect = commands.add_parser(
        "collect", help="sort an LMS's download of every submission into nbgrader's submitted layout",
        description="Put each student's files of DOWNLOAD.zip (Canvas: Download Submissions; Moodle: Download all "
                    "submissions) into SUBMITTED/<LMS user id>/ASSIGNMENT/, by the download's own top-level names "
                    "only; what the LMS marks (Canvas's _LATE, Moodle's submission times from its grading "
                    "worksheet) is kept for grading. A student's earlier files of ASSIGNMENT are replaced.")
    collect.add_argument("download", metavar="DOWNLOAD.zip")
    collect.add_argument("assignment", metavar="ASSIGNMENT", help="the assignment id (its folder under solutions/)")
    collect.add_argument("--from", dest="lms", choices=("canvas", "moodle"), required=True)
    collect.add_argument("--submitted", metavar="DIR", default="submitted",
                         help="the submissions folder (default: submitted)")
    collect.add_argument("--roster", metavar="FILE", default=None,
                         help="Canvas: the gradebook export (students' names for their pages); Moodle: the "
                              "assignment's grading worksheet (names, and the submission times that make work late)")
    collect.add_argument("--timezone", metavar="ZONE", default=None,
                         help="Moodle: the time zone of the worksheet's times, your Moodle profile's (e.g. "
                              "Europe/Berlin; default: this machine's)")
    back = commands.add_parser(
        "return", help="the zip of every feedback page that the LMS files under each student's submission",
        description="Canvas: the zip for the assignment's Re-Upload Submissions; Moodle: the zip for \"Upload "
                    "multiple feedback files in a zip\". Each page is named as the download named that student's "
                    "submission (collect keeps the names).")
    back.add_argument("assignment", metavar="ASSIGNMENT")
    back.add_argument("--to", choices=("canvas", "moodle"), required=True)
    back.add_argument("--graded", metavar="DIR", default="graded", help="the grader's output folder (default: graded)")
    back.add_argument("--submitted", metavar="DIR", default="submitted",
                      help="the folder collect wrote (default: submitted)")
    back.add_argument("--out", metavar="FILE", default=None,
                      help="where to write (default: GRADED/<lms>_feedback_<assignment>.zip)")
    report = commands.add_parser(
        "report", help="write the class report, GRADED/report/<assignment>.html, from what grading left",
        description="A page per assignment for the instructor: each exercise's score distribution, the most common "
                    "likely mistakes, statuses, late work and grading time, from grades.csv and the rows kept in "
                    ".autograder/. Every grading run writes it too.")
    report.add_argument("--out", metavar="DIR", default="graded",
                        help="the grader's output folder, as given to grade --out (default: graded)")
    args = parser.parse_args(argv)

    if args.command == "report":
        from . import report as class_report
        try:
            written = class_report.write(args.out)
        except class_report.ReportError as error:
            print(f"python -m autograder report: {error}", file=sys.stderr)
            return 2
        for path in written:
            print(f"wrote {path}")
        return 0

    if args.command in ("collect", "return"):
        from . import collect as collecting
        from . import lms
        try:
            if args.command == "collect":
                from .grading.course import find_course
                done, warnings = collecting.collect(args.lms, args.download, args.assignment, args.submitted,
                                                    args.roster, args.timezone, course=find_course(None))
            else:
                line, warnings = lms.feedback_zip(args.to, args.assignment, args.graded, args.submitted, args.out)
                done = [line]
        except (collecting.CollectError, lms.ExportError, CourseError) as error:
            print(f"python -m autograder {args.command}: {error}", file=sys.stderr)
            return 2
        for text in warnings:
            print(f"warning: {text}", file=sys.stderr)
        print("\n".join(done))
        return 0

    if args.command == "export":
        from . import lms
        try:
            path, warnings = lms.export(args.graded, args.to, args.roster, args.out, args.assignment, args.column)
        except lms.ExportError as error:
            print(f"python -m autograder export: {error}", file=sys.stderr)
            return 2
        for text in warnings:
            print(f"warning: {text}", file=sys.stderr)
        print(f"wrote {path}")
        return 0

    if args.command == "grade":
        from . import grade as grading
        return grading.run(args.submissions, out=args.out, workers=args.workers, timeout=args.timeout,
                           assignment=args.assignment, course_path=args.course, memory_gb=args.memory,
                           sandbox=not args.no_sandbox, scheduler=args.scheduler, students=args.student,
                           max_submission_mb=args.max_submission_mb)
    if args.command == "release":
        return release.main(check=args.check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
