"""``python -m autograder collect --from canvas|moodle DOWNLOAD.zip ASSIGNMENT``: an LMS's
download of every student's submission, sorted into nbgrader's submitted layout
(``submitted/<LMS user id>/<assignment>/<file>``), with what the LMS says about each submission
kept in ``submitted/.lms/<assignment>.csv``.

Only the top-level entries of the download name a student: Canvas's files
``<name>[_LATE]_<user id>_<attachment id>_<file>``, Moodle's folders
``<full name>_<participant id>_assignsubmission_file[_]/`` (or, downloaded without folders, files
``<full name>_<participant id>_assignsubmission_file_<file>``). Whatever lies below a student's own
entry is theirs alone: it lands in their folder, where a name never decides anything, and an
archive the student handed in is copied as it is, never extracted.

The formats, from the LMSs' source code: Canvas's ``ContentZipper#get_filename`` and
``#add_upload_submission`` (lib/content_zipper.rb); Moodle's ``assign::download_submissions``
(mod/assign/locallib.php).
"""
from __future__ import annotations

import csv
import io
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path, PurePosixPath

# Canvas: the student's sortable name lower-cased with every non-word character removed (so never
# "_<digits>_"), "_LATE" where Canvas counted the submission late, the user id, the attachment id.
CANVAS_ENTRY = re.compile(r"^(?P<name>\w*?)(?P<late>_LATE)?_(?P<user_id>\d+)_(?P<attachment_id>\d+)_(?P<file>.+)$")
CANVAS_OTHER = re.compile(r"^\w*?_\d+_(?:text|link)\.html$")
# Under anonymous grading Canvas writes "[LATE_]anon_<anonymous id>" instead of name and user id.
CANVAS_ANONYMOUS = re.compile(r"^(?:LATE_)?anon_[^_]*[^\d_][^_]*_")
# Moodle: "<full name>_<participant id>_<plugin type>_<plugin name>[_]", parsed as its own
# feedback importer does (the full name has its "_" replaced by spaces).
MOODLE_ENTRY = re.compile(r"^(?P<name>[^_/]*)_(?P<user_id>\d+)_(?P<plugin>assignsubmission_[a-z]+)(?P<rest>_.*)?$")
MANIFEST = ".lms"
FIELDS = ["student_id", "name", "lms", "entries", "late", "submitted_at", "files"]
ARCHIVES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar")


class CollectError(Exception):
    """Nothing can be collected: the message says what to fix."""


@dataclass
class Student:
    student_id: str
    name: str = ""
    entries: list[str] = field(default_factory=list)   # the download's top-level names, for the bulk return
    late: bool = False                                  # Canvas's _LATE
    submitted_at: str = ""                              # Moodle's time of the submission (UTC)
    files: dict[str, zipfile.ZipInfo] = field(default_factory=dict)  # path in the folder -> entry


def manifest_path(submitted: Path, assignment: str) -> Path:
    return submitted / MANIFEST / f"{assignment}.csv"


def read_manifest(submitted: Path, assignment: str) -> dict[str, dict]:
    """student id -> what the last collect kept of the LMS's names (empty if none)."""
    path = manifest_path(submitted, assignment)
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {r["student_id"]: r for r in csv.DictReader(f)}


def _safe(parts: list[str]) -> str | None:
    """A relative path inside a student's folder, or None for one that could leave it."""
    if not parts or any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts):
        return None
    return "/".join(parts)


def canvas_students(archive: zipfile.ZipFile, warnings: list[str]) -> dict[str, Student]:
    students: dict[str, Student] = {}
    for info in archive.infolist():
        top, *below = PurePosixPath(info.filename).parts or ("",)
        if below or info.is_dir():
            warnings.append(f"{info.filename}: inside a folder, which a Canvas download does not have: skipped")
            continue
        match = None if CANVAS_ANONYMOUS.match(top) else CANVAS_ENTRY.match(top)
        if not match:
            why = ("anonymous grading hides the user ids: turn it off for the download" if CANVAS_ANONYMOUS.match(top)
                   else "a text entry or a URL, not a file" if CANVAS_OTHER.match(top)
                   else "not named <name>[_LATE]_<user id>_<attachment id>_<file>")
            warnings.append(f"{top}: {why}: skipped")
            continue
        student = students.setdefault(match["user_id"], Student(match["user_id"]))
        student.late = student.late or bool(match["late"])
        student.entries.append(top)
        name = _safe([match["file"]])
        if name is None or name in student.files:
            warnings.append(f"{top}: a file name that cannot be used in the student's folder: skipped")
            continue
        student.files[name] = info
    return students


def moodle_students(archive: zipfile.ZipFile, warnings: list[str]) -> dict[str, Student]:
    students: dict[str, Student] = {}
    for info in archive.infolist():
        top, *below = PurePosixPath(info.filename).parts or ("",)
        match = MOODLE_ENTRY.match(top)
        if not match:
            warnings.append(f"{info.filename}: not in a folder <full name>_<participant id>_assignsubmission_file: "
                            "skipped")
            continue
        if match["plugin"] != "assignsubmission_file":
            warnings.append(f"{info.filename}: a {match['plugin']} submission, not a file: skipped")
            continue
        student = students.setdefault(match["user_id"], Student(match["user_id"], name=match["name"]))
        if below:  # Moodle 3.1+: one folder per student, the student's own paths inside
            if top not in student.entries:
                student.entries.append(top)
            path = _safe(below)
        else:  # downloaded without folders: the file name follows the prefix
            rest = (match["rest"] or "")[1:]
            student.entries.append(top)
            path = _safe([rest]) if rest else None
        if info.is_dir():
            continue
        if path is None or path in student.files:
            warnings.append(f"{info.filename}: a path that cannot be used in the student's folder: skipped")
            continue
        student.files[path] = info
    return students


def moodle_times(roster: Path, tz: str | None, warnings: list[str]) -> dict[str, tuple[str, str]]:
    """participant id -> (full name, submission time in UTC) from Moodle's grading worksheet: its
    "Last modified (submission)" is written in the downloading user's time zone, without it."""
    from dateutil import parser, tz as tzmod
    from .lms import MOODLE_ID, MOODLE_PARTICIPANT, _read_csv
    header, body = _read_csv(roster)
    if MOODLE_ID not in header:
        raise CollectError(f"{roster} is not a Moodle grading worksheet: no column {MOODLE_ID}")
    zone = tzmod.gettz(tz) if tz else tzmod.tzlocal()
    if zone is None:
        raise CollectError(f"--timezone {tz!r}: not a time zone (write it as Europe/Berlin)")
    name_at = header.index("Full name") if "Full name" in header else None
    time_at = header.index("Last modified (submission)") if "Last modified (submission)" in header else None
    if time_at is None:
        warnings.append(f"{roster.name} has no column 'Last modified (submission)': no submission times, so nothing "
                        "is late")
    found = {}
    for row in body:
        row = row + [""] * (len(header) - len(row))
        match = MOODLE_PARTICIPANT.match(row[header.index(MOODLE_ID)].strip())
        if not match:
            continue
        when = ""
        text = row[time_at].strip() if time_at is not None else ""
        if text and text != "-":
            try:
                local = parser.parse(text)
            except (ValueError, OverflowError):
                warnings.append(f"participant {match.group(1)}: cannot read the time {text!r}: not late")
            else:
                when = (local if local.tzinfo else local.replace(tzinfo=zone)).astimezone(timezone.utc) \
                    .strftime("%Y-%m-%d %H:%M:%S.%f UTC")
        found[match.group(1)] = (row[name_at].strip() if name_at is not None else "", when)
    return found


def canvas_names(roster: Path) -> dict[str, str]:
    """Canvas user id -> the student's name ("Doe, John") from the gradebook export."""
    from .lms import _read_csv
    header, body = _read_csv(roster)
    if "ID" not in header or "Student" not in header:
        raise CollectError(f"{roster} is not a Canvas gradebook export: no column ID or Student")
    id_at, name_at = header.index("ID"), header.index("Student")
    return {r[id_at].strip(): r[name_at].strip() for r in body if len(r) > id_at and r[id_at].strip()}


def collect(lms: str, download: str, assignment: str, submitted: str = "submitted", roster: str | None = None,
            tz: str | None = None, course=None) -> tuple[list[str], list[str]]:
    """Sort the download into ``submitted``; return (what was done, warnings)."""
    warnings: list[str] = []
    if course is not None and assignment not in course.assignments():
        raise CollectError(f"the course has no assignment {assignment!r} (it has: {', '.join(course.assignments())})")
    try:
        archive = zipfile.ZipFile(download)
    except (OSError, zipfile.BadZipFile) as error:
        raise CollectError(f"cannot read the download {download}: {error}") from None
    with archive:
        students = (canvas_students if lms == "canvas" else moodle_students)(archive, warnings)
        if not students:
            raise CollectError(f"{download} holds no submission named as a {lms} download names them")
        if roster:
            if lms == "canvas":
                names = canvas_names(Path(roster))
                for s in students.values():
                    s.name = names.get(s.student_id, "")
                unknown = sorted(s.student_id for s in students.values() if s.student_id not in names)
            else:
                times = moodle_times(Path(roster), tz, warnings)
                for s in students.values():
                    s.name, s.submitted_at = times.get(s.student_id, (s.name, ""))
                    if s.student_id in times and not s.submitted_at:
                        warnings.append(f"{s.student_id}: the worksheet gives no submission time: not late")
                unknown = sorted(s.student_id for s in students.values() if s.student_id not in times)
            if unknown:
                warnings.append(f"not in the roster {Path(roster).name}: {', '.join(unknown)}")
        elif lms == "canvas":
            warnings.append("no --roster: the feedback pages name each student by Canvas user id only")
        else:
            warnings.append("no --roster (the grading worksheet): no submission times, so nothing is late")
        root = Path(submitted)
        previous = read_manifest(root, assignment)
        for s in students.values():
            folder = root / s.student_id / assignment
            if folder.is_symlink() or folder.is_file():
                folder.unlink()
            elif folder.exists():
                shutil.rmtree(folder)  # the newest download replaces the student's earlier files
            for path, info in s.files.items():
                target = folder / path
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out)
            folder.mkdir(parents=True, exist_ok=True)
            if s.submitted_at:  # nbgrader's own record of the time, as its collect writes it
                (folder / "timestamp.txt").write_text(s.submitted_at)
            archives = [p for p in s.files if p.lower().endswith(ARCHIVES)]
            if archives:
                warnings.append(f"{s.student_id}: handed in an archive ({', '.join(archives)}): not extracted")
            if not any(p.endswith(".ipynb") for p in s.files):
                warnings.append(f"{s.student_id}: no notebook among the files ({', '.join(s.files) or 'none'})")
    kept = sorted(set(previous) - set(students))
    if kept:
        warnings.append(f"collected before but not in this download (their folders are kept): {', '.join(kept)}")
    rows = {sid: r for sid, r in previous.items() if sid in kept}
    for s in students.values():
        rows[s.student_id] = {"student_id": s.student_id, "name": s.name, "lms": lms, "entries": "|".join(s.entries),
                              "late": "LATE" if s.late else "", "submitted_at": s.submitted_at,
                              "files": "|".join(s.files)}
    text = io.StringIO()
    writer = csv.DictWriter(text, FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows[k] for k in sorted(rows))
    path = manifest_path(root, assignment)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.getvalue(), encoding="utf-8")
    late = sum(1 for s in students.values() if s.late)
    done = [f"collected {len(students)} students' submissions of {assignment} into {root}/"
            + (f" ({late} marked late by Canvas)" if late else "")]
    return done, warnings

