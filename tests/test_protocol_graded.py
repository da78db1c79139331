"""Issue 16's protocol attacks graded by `python -m autograder grade`, each before an honest victim
on the same worker (`--workers 1`, students in name order): a kernel object that lies about its
length (16.1), an unreadable frame (16.3), outputs that would run in the instructor's browser
(16.2), a submission folder of 1.2 GB (16.6) and a student id that is a spreadsheet formula (16.7).
The rows say what each attack earned; the victim graded after them all gets every point.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from tests.grade_cases import chapter1
from tests.helpers import (answer, fill_in_solutions, graded_cells, make_course, source_notebook, student_notebook,
                           write_submission)
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
# What would act as the instructor if formgrader showed it unsanitized: outputs of the answer
# (shown in formgrader's test cell, and as text on the feedback page) and a markdown answer cell.
SCRIPT_LAYER = """from IPython.display import HTML, Javascript, display
def layer(x, W, b):
    display(HTML('<p>answer</p><script>window.pwned = "script"</script><img src="x" onerror="window.pwned = \\'img\\'">'))
    display(Javascript('window.pwned = "javascript"'))
    print('<script>window.pwned = "printed"</script>')
    return torch.sigmoid(x @ W.T + b)
"""
SCRIPT_MARKDOWN = ('My answer. <img src="x" onerror="window.pwned = \'markdown img\'">'
                   '<script>window.pwned = "markdown script"</script>')
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
    scripted = answer(nbformat.read(student_notebook(A1), 4), dict(chapter1.RIGHT, layer=SCRIPT_LAYER))
    index = next(i for i, c in enumerate(scripted.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "layer")
    scripted.cells.insert(index + 1, nbformat.v4.new_markdown_cell(SCRIPT_MARKDOWN))
    write_submission(submitted, "3_script", A1, scripted)
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
    w5_points = graded_cells(nbformat.read(source_notebook(A2), 4))["test_w5_factors"]["points"]
    assert row["test_w5_factors"] == "0" and float(row["score"]) == float(row["max_score"]) - w5_points, row


def test_an_unreadable_frame_is_the_submissions_cached_error(attacked):
    row = attacked.rows[("1_deep_frame", A1)]
    assert row["status"] == "error" and "message it cannot read" in row["message"] and row["score"] == "0", row
    cached = attacked.out / ".autograder" / "results" / "1_deep_frame" / f"{A1}.json"
    assert json.loads(cached.read_text())["status"] == "error", "cached as its result, not retried as the grader's"


def test_an_unreadable_message_from_a_kernel_process_is_the_submissions_error_too(tmp_path, monkeypatch):
    """The same attack where each notebook gets a kernel process of its own (no cgroups, or
    AUTOGRADER_KERNELS=cold): a message signed with the kernel's key, whose content nests too deeply."""
    course = make_course(tmp_path)
    full = _full(A1)
    write_submission(course / "submitted", "1_deep_frame", A1, _with_cell(full, "layer", DEEP_FRAME))
    write_submission(course / "submitted", "zz_victim", A1, full)
    monkeypatch.setenv("AUTOGRADER_KERNELS", "cold")
    done = grade(course, "submitted", "--workers", "1", "--timeout", "20")
    rows = _read(course / "graded" / "grades.csv")
    assert done.returncode == 0, done.stdout
    attacker, victim = rows[("1_deep_frame", A1)], rows[("zz_victim", A1)]
    assert attacker["status"] == "error" and "message it cannot read" in attacker["message"], attacker
    assert (victim["status"], victim["score"]) == ("ok", "10"), victim


def test_a_folder_over_the_size_limit_gets_a_row_saying_what(attacked):
    row = attacked.rows[("2_oversize", A1)]
    assert row["status"] == "error" and "holds 400 MB, over the grader's limit of 100 MB" in row["message"], row
    assert "data0.bin (200 MB)" in row["message"]


def test_the_autograded_notebook_keeps_nothing_that_runs(attacked):
    row = attacked.rows[("3_script", A1)]
    assert row["score"] == "10", row
    nb = nbformat.read(attacked.out / "autograded" / "3_script" / A1 / f"{A1}.ipynb", 4)
    # What a browser renders as HTML: outputs' data and the student's markdown (code and streams are
    # shown as text, escaped).
    text = json.dumps([[o.get("data") for o in c.outputs] if c.cell_type == "code" else c.source for c in nb.cells
                       if c.cell_type == "code" or not c.metadata.get("nbgrader", {}).get("locked")])
    assert "<p>answer</p>" in text and "My answer." in text, "the harmless HTML is kept"
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


# --- In the instructor's browser: formgrader and the feedback page, in Chromium ---------------------


@contextlib.contextmanager
def formgrader(folder: Path, log: Path):
    """A Jupyter server with formgrader in ``folder`` (an nbgrader course root), on loopback with
    a token, stopped afterwards; yields (its address, the token)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(log.parent / "runtime"),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    server = subprocess.Popen([str(Path(sys.executable).parent / "jupyter-server"), "--no-browser", "--ip=127.0.0.1",
                               f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
                               *(["--allow-root"] if os.geteuid() == 0 else [])],
                              cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.5)
        yield url, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _ran(browser, url: str, wait_for: str) -> object:
    """What the page's scripts set (window.pwned), once ``wait_for`` shows on it."""
    page = browser.new_page()
    try:
        page.goto(url, wait_until="load")
        page.get_by_text(wait_for).first.wait_for(timeout=30_000)
        page.wait_for_timeout(1000)   # an <img onerror> fires once the image fails to load
        return page.evaluate("window.pwned")
    finally:
        page.close()


@pytest.mark.needs_chromium   # skips without Chromium (tests/conftest.py); fails in CI
def test_nothing_a_student_wrote_runs_in_formgrader_or_on_the_feedback_page(attacked, browser, tmp_path):
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{attacked.out / 'gradebook.db'}") as gb:
        submission = gb.find_submission_notebook(A1, A1, "3_script").id
    manual = f"/formgrader/submissions/{submission}/"
    autograded = attacked.out / "autograded" / "3_script" / A1 / f"{A1}.ipynb"
    feedback = attacked.out / "feedback" / "3_script" / A1 / f"{A1}.html"
    assert _ran(browser, feedback.as_uri(), 'window.pwned = "printed"') is None, "the feedback page ran it"
    with formgrader(attacked.out, tmp_path / "server.log") as (url, token):
        assert _ran(browser, f"{url}{manual}?token={token}", "My answer.") is None, "the manual grading page ran it"

        # The notebook as plain nbgrader keeps it (every output as the kernel sent it): formgrader as
        # the grader configures it still runs none of it...
        raw = nbformat.read(autograded, 4)
        layer_test = next(c for c in raw.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_layer")
        layer_test.outputs = [nbformat.v4.new_output("display_data", data={
            "text/html": '<p>answer</p><img src="x" onerror="window.pwned = \'img\'">',
            "application/javascript": 'window.pwned = "javascript"', "text/plain": "HTML"})]
        markdown = next(c for c in raw.cells if c.source.startswith("My answer."))
        markdown.source = SCRIPT_MARKDOWN
        nbformat.write(raw, autograded)
        assert _ran(browser, f"{url}{manual}?token={token}", "My answer.") is None, "formgrader's own sanitizing failed"

        # "Generate Feedback" is switched off: it fails, saying why, and the grader's page stays.
        request = urllib.request.Request(f"{url}/formgrader/api/assignment/{A1}/3_script/generate_feedback",
                                         method="POST", headers={"Authorization": f"token {token}"}, data=b"")
        said = json.loads(urllib.request.urlopen(request, timeout=120).read())
        assert said["success"] is False and "generate_feedback is switched off" in json.dumps(said), said
        assert feedback.is_file() and "BEGIN HIDDEN" not in feedback.read_text()

    # ...where formgrader with nbgrader's defaults (the same folder, the grader's settings left
    # out) runs it: the control, so the test sees a script that runs.
    config = attacked.out / "nbgrader_config.py"
    ours = config.read_text()
    config.write_text("\n".join(line for line in ours.splitlines() if "Sanitize" not in line and "sanitize" not in line))
    try:
        with formgrader(attacked.out, tmp_path / "plain.log") as (url, token):
            assert _ran(browser, f"{url}{manual}?token={token}", "My answer.") is not None, "control: nothing ran"
    finally:
        config.write_text(ours)
