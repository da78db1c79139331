"""From a submission folder to a notebook ready to run: find the notebook (renamed, missing, of
another assignment?), read it (invalid JSON?), restore what the student may not change from the
master copy (locked and test cells, with their hidden tests; points; kernel), as nbgrader's
OverwriteCells does, and lay out the steps the kernel will run."""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearOutput, DeduplicateIds

from .course import Master

MAX_NOTEBOOK_BYTES = 256 * 1024 * 1024


class SubmissionError(Exception):
    """The notebook cannot be graded; the message says why, for the instructor."""


@dataclass
class Step:
    kind: str            # student, locked, visible (run in the kernel), hidden (run by the grader)
    code: str
    cell: int | None = None
    grade_id: str | None = None
    k: int = 0

    @property
    def replayable(self) -> bool:
        return self.kind in ("student", "locked", "visible")


class InstructorNote(str):
    """A note for the instructor's row only, not the student's page (which file was graded, and
    why: the page names the notebook it graded)."""


@dataclass
class Prepared:
    notebook: nbformat.NotebookNode
    path: Path
    notes: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    setup_sources: list = field(default_factory=list)   # the master's locked cells: their imports serve hidden tests


def read_notebook(path: Path) -> nbformat.NotebookNode:
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise SubmissionError(f"{path.name} is {size / 2**20:.0f} MB, over the grader's limit of "
                              f"{MAX_NOTEBOOK_BYTES / 2**20:.0f} MB")
    raw = path.read_bytes()
    if not raw.strip():
        raise SubmissionError(f"{path.name} is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SubmissionError(f"{path.name} is not a notebook (it is not UTF-8 text; a binary file renamed?)") from None
    try:
        json.loads(text)
    except ValueError as error:
        raise SubmissionError(f"{path.name} is not valid JSON ({error}); the file is damaged or was not "
                              "saved from Jupyter") from None
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as error:
        raise SubmissionError(f"{path.name} is JSON but not a Jupyter notebook ({type(error).__name__}: "
                              f"{str(error)[:120]})") from None
    if not isinstance(nb.get("cells"), list):
        raise SubmissionError(f"{path.name} is JSON but not a Jupyter notebook (it has no cells)")
    for cell in nb.cells:  # tolerate hand-edited or truncated cells
        cell.setdefault("metadata", nbformat.NotebookNode())
        if isinstance(cell.get("source"), list):
            cell.source = "".join(cell.source)
        cell.setdefault("source", "")
        if cell.get("cell_type") == "code":
            cell.setdefault("outputs", [])
            cell.setdefault("execution_count", None)
    return nb


def _ids(nb) -> set[str]:
    return {c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells
            if isinstance(c.get("metadata"), dict) and c.metadata.get("nbgrader", {}).get("grade_id")}


def newest_version(notebooks: list[Path], name: str) -> tuple[Path | None, list[Path]]:
    """Of the notebooks named ``name`` or ``name`` with Canvas's resubmission number
    (``stem-1.ipynb``, ``stem-2.ipynb``...), the newest (the highest number) and the older ones.
    The number is the only order that survives zip_collect: it drops the LMS's submission ids and
    times from the names, and extraction resets the files' modification times."""
    pattern = re.compile(re.escape(Path(name).stem) + r"(?:-(\d+))?" + re.escape(Path(name).suffix))
    versions = sorted((int(m.group(1) or 0), p) for p in notebooks if (m := pattern.fullmatch(p.name)))
    if not versions:
        return None, []
    return versions[-1][1], [p for _, p in versions[:-1]]


def locate(folder: Path, master: Master, all_ids: dict[str, set]) -> tuple[Path, nbformat.NotebookNode, list[str]]:
    """The notebook of ``folder`` to grade, read; notes say what was unusual. Raises
    SubmissionError when there is nothing gradable. Of several submissions of the assignment's
    notebook (a resubmission renamed ``-1`` by the LMS), the newest is graded."""
    notes = []
    expected = folder / master.notebook_name
    if not folder.is_dir():
        raise SubmissionError(f"nothing submitted: no folder {folder.parent.name}/{folder.name}")
    # Symbolic links are never followed (they could point at anything the instructor can read).
    links = sorted(p for p in folder.rglob("*") if p.is_symlink())
    if expected.is_symlink():
        raise SubmissionError(f"{expected.name} is a symbolic link; the grader does not follow links: submit the "
                              "notebook itself")
    if links:
        notes.append("not used, symbolic links: " + ", ".join(str(p.relative_to(folder)) for p in links[:5]))
    notebooks = sorted(p for p in folder.iterdir() if p.suffix == ".ipynb" and p.is_file() and not p.is_symlink())
    mine = all_ids.get(master.assignment, set(master.order))
    newest, older = newest_version(notebooks, master.notebook_name)
    if newest is not None and newest != expected:
        notes.append(InstructorNote(f"graded {newest.name}, the newest submission (renamed by the LMS, which "
                                    "numbers resubmissions -1, -2...)"
                     + (f"; older, not graded: {', '.join(p.name for p in older)}" if older else "")))
        expected = newest

    def other_assignment(nb) -> str | None:
        ids = _ids(nb)
        scores = {a: len(ids & s) for a, s in all_ids.items()}
        best = max(scores, key=lambda a: (scores[a], a == master.assignment), default=None)
        if best and best != master.assignment and scores[best] > scores.get(master.assignment, 0):
            return best
        return None

    if expected.is_file():
        nb = read_notebook(expected)
        wrong = other_assignment(nb)
        if wrong:
            raise SubmissionError(f"{expected.name} is the notebook of assignment {wrong}, not {master.assignment}")
        if not _ids(nb) & mine:
            raise SubmissionError(f"{expected.name} has none of the assignment's cells: it was not made from the "
                                  "released notebook, or its cell metadata was lost (copied into a new notebook?)")
        extra = [p.name for p in notebooks if p != expected and p not in older]
        if extra:
            notes.append(f"also submitted, not graded: {', '.join(extra)}")
        return expected, nb, notes

    if not notebooks:
        others = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        found = f" (the folder holds: {', '.join(others[:5])})" if others else " (the folder is empty)"
        raise SubmissionError(f"no notebook submitted: {master.notebook_name} is missing{found}")
    candidates, problems = [], []
    for path in notebooks:
        try:
            nb = read_notebook(path)
        except SubmissionError as error:
            problems.append(str(error))
            continue
        candidates.append((len(_ids(nb) & mine), path, nb))
    candidates.sort(key=lambda c: (-c[0], c[1].name))
    if candidates and candidates[0][0] > 0 and not other_assignment(candidates[0][2]):
        _, path, nb = candidates[0]
        notes.append(InstructorNote(f"graded {path.name}: {master.notebook_name} is missing and {path.name} holds "
                                    "this assignment's cells (renamed?)"))
        return path, nb, notes
    for _, path, nb in candidates:
        wrong = other_assignment(nb)
        if wrong:
            raise SubmissionError(f"{master.notebook_name} is missing; {path.name} is the notebook of assignment "
                                  f"{wrong}, not {master.assignment}")
    if problems:
        raise SubmissionError(f"{master.notebook_name} is missing; {problems[0]}")
    names = ", ".join(p.name for p in notebooks)
    raise SubmissionError(f"{master.notebook_name} is missing, and {names} holds none of this assignment's cells")


def restore(nb: nbformat.NotebookNode, master: Master) -> list[str]:
    """Put back what the student may not change, from the master copy (in place); return notes.

    Locked cells (the set-up and the tests) get the master source, hidden tests included, and
    their metadata; points come from the master; deleted locked or graded cells are re-inserted
    after the cell that precedes them in the source; a deleted answer cell comes back as the
    unanswered stub. The kernel is always the course's Python kernel."""
    notes = []
    nb, _ = ClearOutput().preprocess(nb, {})
    nb, _ = DeduplicateIds().preprocess(nb, {})
    present = {}
    for index, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader")
        if not isinstance(meta, dict) or not meta.get("grade_id"):
            if "nbgrader" in cell.metadata:
                del cell.metadata["nbgrader"]
            continue
        grade_id = meta["grade_id"]
        m = master.cells.get(grade_id)
        if m is None:
            notes.append(f"ignored the grading metadata of a cell with the unknown id {grade_id!r}")
            del cell.metadata["nbgrader"]
            continue
        present[grade_id] = cell
        if cell.cell_type != m["cell_type"]:
            notes.append(f"cell {grade_id} had been changed to {cell.cell_type}; restored as {m['cell_type']}")
            cell.cell_type = m["cell_type"]
            if m["cell_type"] == "code":
                cell.outputs, cell.execution_count = [], None
            else:
                cell.pop("outputs", None)
                cell.pop("execution_count", None)
        if m["locked"]:
            if cell.source != m["released"]:
                what = "test" if m["grade"] else "locked"
                notes.append(f"{what} cell {grade_id} had been edited; restored from the source")
            cell.source = m["source"]
        cell.metadata["nbgrader"] = copy.deepcopy(m["nbgrader"])
        if m["locked"]:
            cell.metadata["editable"] = False
            cell.metadata["deletable"] = False
    # Re-insert missing cells after their predecessor in the source order.
    for position, grade_id in enumerate(master.order):
        if grade_id in present:
            continue
        m = master.cells[grade_id]
        if not (m["locked"] or m["grade"] or m["solution"]):
            continue
        if m["cell_type"] == "code":
            cell = nbformat.v4.new_code_cell(m["source"] if m["locked"] else m["released"])
        else:
            cell = nbformat.v4.new_markdown_cell(m["source"] if m["locked"] else m["released"])
        cell.metadata["nbgrader"] = copy.deepcopy(m["nbgrader"])
        before = [present[g] for g in master.order[:position] if g in present]
        index = nb.cells.index(before[-1]) + 1 if before else 0
        nb.cells.insert(index, cell)
        present[grade_id] = cell
        if m["locked"]:
            what = "test" if m["grade"] else "locked"
            notes.append(f"{what} cell {grade_id} had been deleted; restored from the source")
        else:
            notes.append(f"answer cell {grade_id} had been deleted; graded as unanswered")
    kernel = nb.metadata.get("kernelspec", {}) if isinstance(nb.metadata.get("kernelspec"), dict) else {}
    if master.kernelspec and kernel.get("name") != master.kernelspec.get("name"):
        asked = kernel.get("display_name") or kernel.get("name") or "none"
        notes.append(f"the notebook asked for the kernel {asked!r}; graded with the course's Python kernel")
    nb.metadata["kernelspec"] = copy.deepcopy(master.kernelspec)
    return notes


def lay_out(nb: nbformat.NotebookNode, master: Master) -> tuple[list[Step], list[str]]:
    """The steps to run: every code cell in order; a test cell as its visible part(s), run in the
    kernel as ordinary cells, and its hidden part(s), run by the grader. Also returns the master's
    locked cells' sources (never the student's): the hidden tests' imports come from them."""
    steps = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        meta = cell.metadata.get("nbgrader", {})
        grade_id = meta.get("grade_id")
        m = master.cells.get(grade_id) if grade_id else None
        if m and m["grade"] and not m["solution"]:
            for k, (kind, text) in enumerate(m["segments"]):
                steps.append(Step("visible" if kind == "visible" else "hidden", text, index, grade_id, k))
        elif m and m["locked"]:
            steps.append(Step("locked", cell.source, index, grade_id))
        else:
            steps.append(Step("student", cell.source, index, grade_id))
    setup = [c["source"] for c in master.cells.values() if c["locked"] and not c["grade"] and c["cell_type"] == "code"]
    return steps, setup


def prepare(folder: Path, master: Master, all_ids: dict[str, set]) -> Prepared:
    path, nb, notes = locate(folder, master, all_ids)
    notes += restore(nb, master)
    steps, setup = lay_out(nb, master)
    return Prepared(nb, path, notes, steps, setup)


def prepare_source(master: Master) -> Prepared:
    """The source notebook itself, laid out the same way: the trusted run."""
    nb = nbformat.from_dict(copy.deepcopy(master.source))
    nb, _ = ClearOutput().preprocess(nb, {})
    steps, setup = lay_out(nb, master)
    return Prepared(nb, Path(master.notebook_name), [], steps, setup)
