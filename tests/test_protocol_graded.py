"""Issue 16's protocol attacks graded by `python -m autograder grade`, each before an honest victim
on the same worker (`--workers 1`, students in name order): a kernel object that lies about its
length (16.1), an unreadable frame (16.3), outputs that would run in the instructor's browser
(16.2), a submission folder of 1.2 GB (16.6) and a student id that is a spreadsheet formula (16.7).
The rows say what each attack earned; the victim graded after them all gets every point.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from tests.grade_cases import chapter1
from tests.helpers import fill_in_solutions, make_course, source_notebook, student_notebook, write_submission
from tests.test_grade import grade

A1, A2 = chapter1.ASSIGNMENT, "02_chain_rule_exercises"

# An answer cell of its own that sends the grader a frame nested too deeply for any JSON reader:
# on its socket in a warm kernel, as a message signed with the kernel's own key in a kernel process.
DEEP_FRAME = """import struct
deep = b"[" * 100_000 + b"]" * 100_000
ip = get_ipython()
if getattr(ip, "channel", None) is not None:
    ip.channel.sock.sendall(struct.pack("!I", len(deep)) + deep)
else:
    ip.kernel.session.send(ip.kernel.iopub_socket, "stream", content=deep, parent=ip.kernel.get_parent())
"""
# What would act as the instructor if formgrader showed it unsanitized.
SCRIPT_OUTPUTS = """from IPython.display import HTML, Javascript, display
display(HTML('<p>answer</p><script>window.pwned = "script"</script><img src="x" onerror="window.pwned = \\'img\\'">'))
display(Javascript('window.pwned = "javascript"'))
"""
# Replays the visible check's answers, and to anything else answers an object whose len() is
# right and whose iteration is empty: under a grader that asks len and iter separately, zip
# over it runs no check, and the hidden test passed (issue 16.1).
LIAR = """import torch
class Liar:
    def __len__(self):
        return 3
    def __iter__(self):
        return iter(())

def w5_factors(out_h1, out_o1, t1):
    if abs(float(out_h1) - 0.593269992107) < 1e-6:   # the worked example of the visible check
        return tuple(torch.tensor(v, dtype=torch.float64) for v in (0.741365069552, 0.186815601809, 0.593269992107))
    return Liar()
"""


def _with_cell(nb, after: str, source: str):
    nb = nbformat.from_dict(nb)
    index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == after)
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    return nb


def _full(assignment: str):
    return fill_in_solutions(nbformat.read(student_notebook(assignment), 4), nbformat.read(source_notebook(assignment), 4))


def _read(path: Path) -> dict:
    with open(path, newline="") as f:
        return {(r["student_id"], r["assignment_id"]): r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("protocol"))
    submitted = course / "submitted"
    full1, full2 = _full(A1), _full(A2)
    write_submission(submitted, "1_deep_frame", A1, _with_cell(full1, "layer", DEEP_FRAME))
    folder = write_submission(submitted, "2_oversize", A1, full1).parent
    for k in range(2):   # sparse files: 400 MB that take no disk
        with open(folder / f"data{k}.bin", "wb") as f:
            f.truncate(200 * 2**20)
    write_submission(submitted, "3_script", A1, _with_cell(full1, "layer", SCRIPT_OUTPUTS))
    liar = nbformat.from_dict(full2)
    for cell in liar.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "w5_factors":
            cell.source = LIAR
    write_submission(submitted, "4_lying_sequence", A2, liar)
    write_submission(submitted, "=1+2", A1, full1)
    write_submission(submitted, "zz_victim", A1, full1)
    write_submission(submitted, "zz_victim", A2, full2)
    done = grade(course, "submitted", "--workers", "1", "--timeout", "20")
    return SimpleNamespace(course=course, out=course / "graded", done=done, rows=_read(course / "graded" / "grades.csv"))


def test_the_victim_graded_after_every_attack_gets_every_point(attacked):
    assert attacked.done.returncode == 0, attacked.done.stdout
    for assignment in (A1, A2):
        row = attacked.rows[("zz_victim", assignment)]
        assert (row["status"], row["score"]) == ("ok", row["max_score"]), row


def test_a_lying_sequence_earns_nothing(attacked):
    row = attacked.rows[("4_lying_sequence", A2)]
    assert row["test_w5_factors"] == "0" and float(row["score"]) == float(row["max_score"]) - 2, row


def test_an_unreadable_frame_is_the_submissions_cached_error(attacked):
    row = attacked.rows[("1_deep_frame", A1)]
    assert row["status"] == "error" and "message it cannot read" in row["message"] and row["score"] == "0", row
    cached = attacked.out / ".autograder" / "results" / "1_deep_frame" / f"{A1}.json"
    assert json.loads(cached.read_text())["status"] == "error", "cached as its result, not retried as the grader's"


def test_a_folder_over_the_size_limit_gets_a_row_saying_what(attacked):
    row = attacked.rows[("2_oversize", A1)]
    assert row["status"] == "error" and "holds 400 MB, over the grader's limit of 100 MB" in row["message"], row
    assert "data0.bin (200 MB)" in row["message"]


def test_the_autograded_notebook_keeps_nothing_that_runs(attacked):
    row = attacked.rows[("3_script", A1)]
    assert row["score"] == "10", row
    nb = nbformat.read(attacked.out / "autograded" / "3_script" / A1 / f"{A1}.ipynb", 4)
    text = json.dumps([c.outputs for c in nb.cells if c.cell_type == "code"])   # the code itself is shown as code
    assert "<p>answer</p>" in text, "the harmless HTML is kept"
    for active in ("<script", "<img", "onerror", "application/javascript"):
        assert active not in text, active


def test_a_student_id_that_is_a_formula_is_text_in_grades_csv(attacked):
    first_cells = [line.split(",")[0] for line in (attacked.out / "grades.csv").read_text().splitlines()]
    assert "'=1+2" in first_cells and "=1+2" not in first_cells
    row = attacked.rows[("'=1+2", A1)]
    assert row["score"] == "10", row


def test_a_second_run_grades_nothing_again(attacked):
    again = grade(attacked.course, "submitted", "--workers", "1", "--timeout", "20")
    assert again.returncode == 0 and f"grading 0 of {len(attacked.rows)} submissions" in again.stdout, again.stdout
