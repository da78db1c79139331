"""The protocol between the grader and the student's kernel cannot be lied to (issue 16).

A hidden test runs in the grader and reaches the student's objects through requests
(autograder/grading/remote.py) that the kernel's server answers (kernel.make_server). Here the
server runs in this process, behind a kernel that only forwards the requests, so each case is
exact and fast; tests/test_grade.py's attack class does the same through real kernels.
"""
from __future__ import annotations

import ast
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from autograder.grading import kernel, remote, wire
from autograder.grading.runner import StepResult


class InProcessKernel:
    """A kernel whose requests are answered by the real server, here, over ``user_ns``."""

    def __init__(self, user_ns: dict, monkeypatch):
        self.server = kernel.make_server(SimpleNamespace(user_ns=user_ns), wire, torch, np)
        self.requests: list[dict] = []
        self.published: list = []
        import IPython.display
        monkeypatch.setattr(IPython.display, "publish_display_data", self.published.append)

    def execute(self, code: str, timeout: float, reply_mime: str | None = None) -> StepResult:
        message = ast.literal_eval(ast.parse(code).body[0].value.args[0])
        self.requests.append(wire.loads(message))
        self.server.serve(message)
        return StepResult("ok", reply=self.published.pop()[kernel.REPLY_MIME])

    def ops(self) -> list[str]:
        return [r["op"] for r in self.requests]


# A hidden test as the course's were written (chapter 2's test_w5_factors): it checks the length
# of the answer, then walks it with zip. (Its own copy: the course's tests may change.)
ZIP_TEST = """
from autograder.checks import assert_scalar
got = w5_factors(torch.tensor(0.6), torch.tensor(0.7), torch.tensor(1.0))
assert len(got) == 3, f"w5_factors: expected 3 factors, got {len(got)}"
for name, g, e in zip(["dE/dout_o1", "dout_o1/dnet_o1", "dnet_o1/dw5"], got, [-(1.0 - 0.7), 0.7 * 0.3, 0.6]):
    assert_scalar(name, g, e, rtol=1e-5, atol=1e-6)
"""


# What the student's notebook defines: w5_factors returning an object of its own (not data), so
# that it stays in the kernel and the hidden test reaches it through requests.
STUDENT = '''
import torch

class Liar:
    """Says it has three factors; iterating over it gives none."""
    def __len__(self):
        return 3
    def __iter__(self):
        return iter(())

class Factors(list):
    """An honest list of its own class (not plain data): it stays in the kernel."""

def w5_factors(out_h1, out_o1, target_o1):
    return LIAR_OR_FACTORS
'''
RIGHT = "Factors([-(target_o1 - out_o1), out_o1 * (1 - out_o1), out_h1])"


def student(answer: str) -> dict:
    namespace: dict = {}
    exec(STUDENT.replace("LIAR_OR_FACTORS", answer), namespace)
    return namespace


def run(monkeypatch, answer: str, source: str = ZIP_TEST):
    fake = InProcessKernel(student(answer), monkeypatch)
    return remote.run_hidden(source, "test_w5_factors", remote.setup_namespace(["import torch"]), fake, 60), fake


def test_a_sequence_is_read_once_and_its_length_is_its_items(monkeypatch):
    """The object whose len() is right and whose iteration is empty (issue 16.1) fails the hidden
    test; the honest object of the same kind (the control) passes it: the fix is not a refusal of
    objects that stay in the kernel."""
    lying, fake = run(monkeypatch, "Liar()")
    assert lying.status == "failed" and "expected 3 factors, got 0" in lying.message, lying
    assert "len" not in fake.ops() and "iter" not in fake.ops() and fake.ops().count("items") == 1, fake.ops()
    honest, fake = run(monkeypatch, RIGHT)
    assert honest.status == "ok" and honest.observed.passed == 3, honest
    assert fake.ops().count("items") == 1, "one items request per object returned, whatever the test does with it"


def test_a_hidden_test_that_ran_no_check_fails(monkeypatch):
    no_length_check = "\n".join(line for line in ZIP_TEST.splitlines() if "assert len" not in line)
    empty, _ = run(monkeypatch, "[]", no_length_check)
    assert empty.status == "failed" and "no hidden check ran" in empty.message, empty
    control, _ = run(monkeypatch, RIGHT, no_length_check)
    assert control.status == "ok", control
    caught = ("from autograder.checks import assert_scalar\n"
              "got = w5_factors(torch.tensor(0.5), torch.tensor(0.5), torch.tensor(1.0))\n"
              "try:\n    assert_scalar('dE/dout_o1', got[0], 123.0)\nexcept AssertionError:\n    pass\n"
              "assert_scalar('a check that passes', 1.0, 1.0)\n")
    wrong, _ = run(monkeypatch, RIGHT, caught)
    assert wrong.status == "failed" and "expected" in wrong.message, "a failing check counts even if caught"


def test_truth_value_comparisons_and_attributes_come_from_one_answer_or_are_refused(monkeypatch):
    code = '''
class Counter:
    """Answers each read of .value with a new number."""
    reads = 0
    @property
    def value(self):
        Counter.reads += 1
        return Counter.reads
    def bump(self):
        return None
counter = Counter()
'''
    namespace: dict = {}
    exec(code, namespace)
    fake = InProcessKernel(namespace, monkeypatch)
    proxy = remote.Remote(fake, float("inf"), remote.Observed()).resolve(["counter"])["counter"]
    assert (proxy.value, proxy.value) == (1, 1), "an attribute read twice is one answer"
    proxy.bump()
    assert proxy.value == 2, "after a call into the kernel it is read again (the call may change it)"
    for refused in (lambda: bool(proxy), lambda: proxy == 1, lambda: proxy != 1, lambda: proxy < 1):
        with pytest.raises(TypeError, match="student's kernel"):
            refused()


# --- Frames from a warm kernel that cannot be read (issue 16.3's RecursionError) ---------------------

def test_a_frame_that_cannot_be_read_is_the_submissions_error_not_the_graders():
    import socket

    from autograder.grading import warm
    from autograder.grading.kernel import HEADER
    deep = b"[" * 100_000 + b"]" * 100_000
    for bad in (deep, b'{"t": "out", "text": "\xff\xfe"}', b"[1, 2]", b"not json"):
        assert warm.parse_frame(bad)["t"] == "garbled", bad[:20]
    assert warm.parse_frame(b'{"t": "done", "seq": 1}') == {"t": "done", "seq": 1}
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(HEADER.pack(len(deep)) + deep + HEADER.pack(8) + b'{"t": 1}')
        frames, got = warm.Frames(ours), []
        while len(got) < 2:
            got += frames.read(5)
    assert [m["t"] for m in got] == ["garbled", 1] and "RecursionError" in got[0]["error"]


def test_outputs_of_the_wrong_types_are_dropped_and_nothing_that_runs_is_kept():
    import nbformat

    from autograder.grading import runner, sanitize
    result, budget = runner.StepResult("ok"), runner.OutputBudget()
    for content in ({"name": "stdout", "text": ["not", "a", "string"]}, {"name": "stdout", "text": "kept\n"}):
        runner.add_output(result, {"msg_type": "stream", "content": content, "header": {"msg_type": "stream"}}, 0, budget)
    assert [o.text for o in result.outputs] == ["kept\n"]
    html = ('<b>bold</b><script>window.ran = 1</script><img src="x" onerror="window.ran = 2">'
            '<a href="javascript:alert(1)">link</a>')
    out = sanitize.output(nbformat.v4.new_output("display_data", data={
        "text/html": html, "application/javascript": "window.ran = 3", "image/svg+xml": "<svg onload='x()'/>",
        "text/plain": "text"}))
    assert out.data["text/plain"] == "text" and set(out.data) == {"text/plain", "text/html"}
    cleaned = out.data["text/html"]
    assert "<b>bold</b>" in cleaned and "<script" not in cleaned and "onerror" not in cleaned
    assert "javascript:" not in cleaned and "<img" not in cleaned
    only_js = sanitize.output(nbformat.v4.new_output("display_data", data={"application/javascript": "x()"}))
    assert only_js.data == {"text/plain": "[output of type application/javascript: not kept by the grader]"}
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("<img src=x onerror='window.ran = 4'> *answer*")])
    assert "onerror" not in sanitize.notebook(nb).cells[0].source and "*answer*" in nb.cells[0].source


def test_csv_cells_a_spreadsheet_would_run_are_text():
    from autograder import spreadsheet
    for formula in ("=1+2", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "=HYPERLINK(\"x\")"):
        assert spreadsheet.cell(formula) == "'" + formula and spreadsheet.text(spreadsheet.cell(formula)) == formula
    for number in ("-2", "-0.5", "+3", "1e-3", "-1.5e2", "10"):
        assert spreadsheet.cell(number) == number, "the grader's own numbers stay numbers"
    for text in ("Doe, John", "O'Brien", "student-1", "", "'quoted", "-"):
        assert spreadsheet.cell(text) == text and spreadsheet.text(text) == text


def test_the_lms_imports_copy_no_formula_from_the_roster(tmp_path):
    import csv
    import io

    from autograder import lms
    from tests.test_lms import CASES, write_grades
    roster = tmp_path / "roster.csv"
    roster.write_text((CASES / "canvas_roster.csv").read_text().replace('"Lee, Kim"', '"=HYPERLINK(""http://x"",""Lee"")"'))
    graded = write_grades(tmp_path / "graded", [("1004", "essay", "-2", "10"), ("1001", "essay", "8", "10")])
    text, _ = lms.export_canvas(lms.read_grades(graded), roster, {"essay": "70002"})
    rows = {r[1]: r for r in csv.reader(io.StringIO(text))}
    assert rows["1004"][0] == "'=HYPERLINK(\"http://x\",\"Lee\")" and rows["1004"][5] == "-1", "text neutralised, numbers kept"
    worksheet = tmp_path / "worksheet.csv"
    worksheet.write_text((CASES / "moodle_worksheet.csv").read_text().replace('"Jane Roe",jroe@', '"@SUM(1+1)",jroe@'))
    graded = write_grades(tmp_path / "moodle", [("2001", "a1", "7", "10")])
    text, _ = lms.export_moodle(lms.read_grades(graded), worksheet, None)
    (row,) = [r for r in csv.reader(io.StringIO(text)) if r[0] == "Participant 2001"]
    assert row[1] == "'@SUM(1+1)" and row[4] == "70" and row[8] == "-", row


def test_a_submission_folder_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    from autograder import grade
    folder = tmp_path / "s1" / "a1"
    folder.mkdir(parents=True)
    (folder / "a1.ipynb").write_text("{}")
    assert grade.too_large(folder, 100 * 2**20) is None
    for k in range(6):   # sparse: 1.2 GB that take no disk and are never read
        with open(folder / f"big{k}.ipynb", "wb") as f:
            f.truncate(200 * 2**20)
    why = grade.refused(tmp_path, "s1", "a1", 100 * 2**20)
    assert "holds 1200 MB, over the grader's limit of 100 MB" in why and "big0.ipynb (200 MB)" in why, why
