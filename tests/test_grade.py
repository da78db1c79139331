"""`python -m autograder grade`: a simulated class graded end to end, checked row by row.

One student per case (tests/grade_cases/chapter1.py): right, partial and wrong answers with the
known mistakes, loops, dying kernels, damaged and misplaced notebooks, edited tests, and attacks
on the tests. Then: feedback pages without hidden tests, nbgrader's gradebook, a second run that
re-grades only what changed, Ctrl-C, bad arguments, and plain nbgrader fooled by the same attacks.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest
import torch
from nbgrader.api import Gradebook

from autograder import checks, reference
from autograder.grading import hints
from autograder.grading.course import Course, split_hidden
from tests.grade_cases import chapter1
from tests.helpers import (LEAK_MARKERS, ROOT, fill_in_solutions, make_course, nbgrader, require, run,
                           source_notebook, student_notebook, write_submission)

A = chapter1.ASSIGNMENT
TIMEOUT = "12"   # generous: the class is graded while other tests may run


def grade(course: Path, *args: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "autograder", "grade", *args], cwd=course, timeout=1200)


def read_rows(path: Path) -> dict[str, dict]:
    with open(path, newline="") as f:
        return {row["student_id"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("class"))
    expect = chapter1.build(course / "submitted", chapter1.other_assignment(course))
    done = grade(course, "submitted", "--workers", "2", "--timeout", TIMEOUT, "--assignment", A, "--memory", "2")
    out = course / "graded"
    return SimpleNamespace(course=course, out=out, expect=expect, done=done, rows=read_rows(out / "grades.csv"))


def test_the_class_is_graded_and_the_command_says_how_it_went(graded):
    assert graded.done.returncode == 0, graded.done.stdout
    assert sorted(graded.expect) == sorted(chapter1.STUDENTS)
    assert sorted(graded.rows) == sorted(chapter1.STUDENTS), "every submission gets a row"
    assert f"{len(chapter1.STUDENTS)}/{len(chapter1.STUDENTS)} graded" in graded.done.stdout
    assert "left" in graded.done.stdout and "elapsed" in graded.done.stdout  # the progress bar's estimate
    with open(graded.out / "grades.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header == ["student_id", "assignment_id", *chapter1.CELLS, "score", "max_score", "late", "late_penalty",
                      "status", "message", "comments"]


@pytest.mark.parametrize("student_id", chapter1.STUDENTS)
def test_row(graded, student_id):
    expect, row = graded.expect[student_id], graded.rows[student_id]
    context = f"{student_id}: {row}"
    assert row["assignment_id"] == A
    allowed = expect["status"] if isinstance(expect["status"], tuple) else (expect["status"],)
    assert row["status"] in allowed, context
    assert float(row["score"]) == expect["score"], context
    assert float(row["max_score"]) == 10, context
    if expect["cells"] is not None:
        assert {cell: float(row[cell]) for cell in chapter1.CELLS} == expect["cells"], context
    for words in expect["message"]:
        assert words in row["message"], context
    if row["status"] == "ok" and not expect["message"]:
        assert "flagged" not in row["message"]


def test_feedback_pages_show_points_and_never_the_hidden_tests(graded):
    source = nbformat.read(source_notebook(A), 4)
    hidden_lines = {line.strip() for cell in source.cells if cell.cell_type == "code"
                    for kind, text in split_hidden(cell.source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
                    if kind == "hidden" for line in text.splitlines() if len(line.strip()) > 12}
    assert hidden_lines
    for student_id in chapter1.STUDENTS:
        page = graded.out / "feedback" / student_id / A / f"{A}.html"
        assert page.is_file(), student_id
        text = page.read_text()
        submitted = graded.course / "submitted" / student_id / A / f"{A}.ipynb"
        own = submitted.read_text(errors="replace") if submitted.is_file() and not submitted.is_symlink() else ""
        for marker in LEAK_MARKERS:
            assert marker not in text, (student_id, marker)
        for line in hidden_lines - {line for line in hidden_lines if line in own}:
            assert line not in text, (student_id, line)
        assert f"{float(graded.rows[student_id]['score']):g} of 10 points" in text


def test_a_syntax_error_is_reported_as_one(graded):
    """The student's page says which answer cell has the syntax error and on which line, and each
    test that needed the missing name says why it is missing (not only "name is not defined")."""
    page = (graded.out / "feedback" / "syntax_error" / A / f"{A}.html").read_text()
    assert "Answer cell layer raised SyntaxError: expected &#x27;:&#x27; (line 1 of the cell)" in page
    assert page.count("`layer` is not defined: the answer cell layer failed with SyntaxError") >= 2


def test_which_file_was_graded_is_told_to_the_instructor_not_the_student(graded):
    assert "renamed" in graded.rows["renamed"]["message"]
    page = (graded.out / "feedback" / "renamed" / A / f"{A}.html").read_text()
    assert "renamed by" not in page and "renamed?" not in page and f"{A}-2.ipynb" in page


def test_student_code_runs_in_a_sandbox(graded):
    """Where bubblewrap works (CI installs it), the course folder does not exist for student code."""
    require("bwrap")
    assert "sandboxed (bubblewrap)" in graded.done.stdout
    from autograder.grading import limits, warm
    kernels = "warm" if warm.wanted() else "cold (AUTOGRADER_KERNELS=cold)"
    assert graded.done.stdout.splitlines()[0] == f"sandbox: bubblewrap; limits: {limits.describe()}; kernels: {kernels}"
    printed = _printed(graded, "attack_read_solutions")
    assert "solutions visible: False" in printed and "could not read the solutions: FileNotFoundError" in printed


def _printed(graded, student_id: str) -> str:
    notebook = graded.out / "autograded" / student_id / A / f"{A}.ipynb"
    return "".join(o.get("text", "") for c in nbformat.read(notebook, 4).cells if c.cell_type == "code"
                   for o in c.outputs)


def test_nothing_secret_is_in_the_students_process(graded):
    """While the hidden tests call it, the notebook searches its whole process from a thread
    (modules, objects, every thread's frames), a child process and the file system, for the
    course package, the hidden tests or the expected values: there is nothing to find."""
    assert "findings: []" in _printed(graded, "attack_introspect")
    assert "gc found the reference: False" in _printed(graded, "attack_gc")
    assert graded.rows["attack_introspect"]["test_layer"] == "0"


def test_what_a_notebook_starts_does_not_outlive_it_or_reach_the_host(graded):
    from autograder.grading import limits
    require("bwrap")
    spinning = subprocess.run(["pgrep", "-f", "autograder-test-spinner"], capture_output=True, text=True)
    assert spinning.stdout.strip() == "", "a process a notebook started outlived it"
    # The working folder is a tmpfs of 256 MB (and no file may pass 256 MB): not the host's disk.
    assert "writing 600 MB failed" in _printed(graded, "disk_filler")
    if limits.chosen().NAME.startswith("cgroup"):   # without cgroups: memory per process only (test_tiers)
        started = int(_printed(graded, "fork_bomb").split("started ")[-1].split()[0])
        assert started < 200
        printed = _printed(graded, "children_memory")
        assert "exit codes: [0, 0, 0]" not in printed, "three children of 800 MB must not all fit in the 2 GB of one submission"
        assert "ran out of memory" in graded.rows["children_memory"]["message"]
    flooded = graded.out / "autograded" / "output_flood" / A / f"{A}.ipynb"
    assert flooded.stat().st_size < 5 * 2**20
    assert graded.rows["output_flood"]["score"] == "10"


def test_feedback_names_the_likely_mistake(graded):
    for student_id, mistake in [("partial", "half"), ("transposed", "transposed"), ("no_bias", "bias"),
                                ("relu", "activation"), ("float32", "float32")]:
        text = (graded.out / "feedback" / student_id / A / f"{A}.html").read_text()
        assert "Likely mistake" in text and hints.MISTAKES[mistake].split(":")[0] in text, student_id
    correct = (graded.out / "feedback" / "correct" / A / f"{A}.html").read_text()
    assert "Likely mistake" not in correct and "layer(x, W1, b1): OK" in correct


def test_gradebook_is_ready_for_formgrader(graded):
    assert (graded.out / "nbgrader_config.py").is_file()
    assert (graded.out / "autograded" / "correct" / A / f"{A}.ipynb").is_file()
    with Gradebook(f"sqlite:///{graded.out / 'gradebook.db'}") as gb:
        for student_id in chapter1.STUDENTS:
            submission = gb.find_submission(A, student_id)
            assert submission.score == graded.expect[student_id]["score"], student_id
            assert not submission.needs_manual_grade, student_id
            notebook = gb.find_submission_notebook(A, A, student_id)
            assert notebook.flagged == (graded.expect[student_id]["status"] == "flagged"), student_id
    exported = nbgrader("export", "--to", "nbgrader_export.csv", cwd=graded.out)
    assert exported.returncode == 0, exported.stdout
    with open(graded.out / "nbgrader_export.csv", newline="") as f:
        scores = {r["student_id"]: float(r["score"]) for r in csv.DictReader(f) if r["assignment"] == A}
    assert scores["correct"] == 10 and scores["blank"] == 0


def test_every_assignment_full_marks_zero_and_zero(tmp_path):
    """Every assignment of solutions/, graded in one run: the solutions get full marks, the
    untouched notebook and the one that copies the published numbers get 0, as with nbgrader."""
    from tests.hardcoded_answers import hardcoded_answers
    from tests.helpers import answer, assignments
    course = make_course(tmp_path)
    for assignment in assignments():
        source = nbformat.read(source_notebook(assignment), 4)
        student = nbformat.read(student_notebook(assignment), 4)
        write_submission(course / "submitted", "full", assignment, fill_in_solutions(student, source))
        write_submission(course / "submitted", "blank", assignment, student)
        write_submission(course / "submitted", "hardcoded", assignment, answer(student, hardcoded_answers(assignment)))
    done = grade(course, "submitted", "--workers", "2")
    assert done.returncode == 0, done.stdout
    with open(course / "graded" / "grades.csv", newline="") as f:
        rows = {(r["student_id"], r["assignment_id"]): r for r in csv.DictReader(f)}
    assert len(rows) == 3 * len(assignments())
    for (student_id, assignment), row in rows.items():
        want = row["max_score"] if student_id == "full" else "0"
        assert (row["score"], row["status"]) == (want, "ok"), (student_id, assignment, row["message"])


def test_plain_nbgrader_is_fooled_where_the_grader_is_not(graded, tmp_path):
    """The attacks are real: nbgrader autograde gives them credit. And it gives 0 to a right
    answer that writes to stderr."""
    course = make_course(tmp_path)
    students = ["attack_patch_checks", "attack_reference", "attack_globals", "attack_frames", "stderr_warning"]
    for student_id in students:
        src = graded.course / "submitted" / student_id / A / f"{A}.ipynb"
        write_submission(course / "submitted", student_id, A, nbformat.read(src, 4))
    assert nbgrader("generate_assignment", A, "--force", cwd=course).returncode == 0
    assert nbgrader("autograde", A, "--force", cwd=course).returncode == 0
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        plain = {s: gb.find_submission(A, s).score for s in students}
        layer = gb.find_grade("test_layer", A, A, "stderr_warning").score
    ours = {s: float(graded.rows[s]["score"]) for s in students}
    # Ours gives each attack only what it computed (its right answers to the other exercises).
    assert plain["attack_patch_checks"] == 10 and ours["attack_patch_checks"] == graded.expect["attack_patch_checks"]["score"] < 10
    for student_id in ("attack_reference", "attack_globals", "attack_frames"):
        assert plain[student_id] > ours[student_id], (student_id, plain, ours)
    assert layer == 0 and graded.rows["stderr_warning"]["test_layer"] == f"{chapter1.POINTS['test_layer']:g}"


def test_a_second_run_regrades_only_what_changed(graded):
    before = (graded.out / "grades.csv").read_text()
    again = grade(graded.course, "submitted", "--workers", "2", "--timeout", TIMEOUT, "--assignment", A, "--memory", "2")
    assert again.returncode == 0, again.stdout
    assert f"grading 0 of {len(chapter1.STUDENTS)} submissions" in again.stdout
    assert (graded.out / "grades.csv").read_text() == before, "same grades"
    source = nbformat.read(source_notebook(A), 4)
    fixed = fill_in_solutions(nbformat.read(student_notebook(A), 4), source)
    write_submission(graded.course / "submitted", "blank", A, fixed)
    third = grade(graded.course, "submitted", "--workers", "2", "--timeout", TIMEOUT, "--assignment", A, "--memory", "2")
    assert f"grading 1 of {len(chapter1.STUDENTS)} submissions" in third.stdout, third.stdout
    rows = read_rows(graded.out / "grades.csv")
    assert rows["blank"]["score"] == "10" and rows["correct"]["score"] == "10"


def test_a_re_run_records_only_new_rows_and_a_deleted_gradebook_gets_them_all(graded):
    """The gradebook remembers which rows it holds: a re-run records only the others (not the
    whole class again); a gradebook deleted since holds none of them, so the next run records all."""
    def gradebook_scores() -> dict:
        with Gradebook(f"sqlite:///{graded.out / 'gradebook.db'}") as gb:
            return {s.student.id: s.score for s in gb.find_assignment(A).submissions}

    rows = read_rows(graded.out / "grades.csv")
    before = gradebook_scores()
    assert before and all(before[s] == float(rows[s]["score"]) for s in before), before
    recorded = json.loads((graded.out / ".autograder" / "gradebook-rows.json").read_text())
    assert sorted(recorded) == sorted(f"{s}/{A}" for s in before)
    (graded.out / "gradebook.db").unlink()
    again = grade(graded.course, "submitted", "--workers", "2", "--timeout", TIMEOUT, "--assignment", A, "--memory", "2")
    assert again.returncode == 0 and f"grading 0 of {len(chapter1.STUDENTS)} submissions" in again.stdout, again.stdout
    assert gradebook_scores() == before


def test_the_gradebook_is_stamped_with_the_schema_revision_nbgrader_stamps(graded):
    """The grader reads the newest revision of nbgrader's database schema with alembic's API, not
    with the `alembic heads` command nbgrader runs: the gradebook gets the same stamp."""
    import sqlite3

    from nbgrader.dbutil import _temp_alembic_ini
    with _temp_alembic_ini("sqlite:////tmp/unused.db") as ini:
        heads = subprocess.run([str(Path(sys.executable).parent / "alembic"), "-c", ini, "heads"],
                               capture_output=True, text=True, check=True).stdout
    with sqlite3.connect(graded.out / "gradebook.db") as db:
        (stamp,), = db.execute("SELECT version_num FROM alembic_version").fetchall()
    assert stamp == heads.split()[0], (stamp, heads)


@pytest.mark.needs_bwrap
def test_ctrl_c_loses_nothing_and_leaves_a_whole_csv(tmp_path):
    course = make_course(tmp_path)
    source = nbformat.read(source_notebook(A), 4)
    student = nbformat.read(student_notebook(A), 4)
    for k in range(6):
        write_submission(course / "submitted", f"s{k}", A, fill_in_solutions(student, source) if k % 2 else student)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "grade", "submitted", "--workers", "1"], cwd=course,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    results = course / "graded" / ".autograder" / "results"
    deadline = time.monotonic() + 300
    while not (results.is_dir() and any(results.rglob("*.json"))) and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group gets SIGINT
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    assert "interrupted" in output
    kept = read_rows(course / "graded" / "grades.csv")
    saved = len(list(results.rglob("*.json")))
    assert 1 <= len(kept) == saved < 6, output
    for row in kept.values():
        assert row["score"] == ("10" if int(row["student_id"][1:]) % 2 else "0"), "an interrupted row is never recorded"
    done = grade(course, "submitted", "--workers", "2")
    assert done.returncode == 0, done.stdout
    assert f"grading {6 - saved} of 6 submissions" in done.stdout
    rows = read_rows(course / "graded" / "grades.csv")
    assert len(rows) == 6 and all(r["status"] == "ok" for r in rows.values())


def test_the_run_fails_only_when_it_cannot_start(tmp_path):
    course = make_course(tmp_path / "course")
    write_submission(course / "submitted", "s1", A, nbformat.read(student_notebook(A), 4))
    assert grade(course, "no_such_folder").returncode == 2
    unknown = grade(course, "submitted", "--assignment", "no_such_assignment")
    assert unknown.returncode == 2 and "no assignment" in unknown.stdout
    assert grade(course, "submitted", "--workers", "0").returncode == 2
    empty = tmp_path / "empty"
    (empty / "submitted" / "s1").mkdir(parents=True)
    no_course = grade(empty, "submitted", "--course", str(empty))
    assert no_course.returncode == 2 and "no course" in no_course.stdout
    inside = grade(course, "submitted", "--out", "submitted/graded")
    assert inside.returncode == 2


# --- The pieces, without kernels ----------------------------------------------------------------

def test_checks_compare_what_a_tensor_holds(monkeypatch):
    class Agreeable(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            if getattr(func, "__name__", "") in ("allclose", "numpy", "__eq__"):
                return True if func.__name__ != "numpy" else np.array([1.0, 2.0])
            return super().__torch_function__(func, types, args, kwargs or {})

    with pytest.raises(AssertionError, match="got"):
        checks.assert_matches("v", torch.zeros(2).as_subclass(Agreeable), [1.0, 2.0], torch.float32)
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(np, "allclose", lambda *a, **k: True)
    with pytest.raises(AssertionError):
        checks.assert_matches("v", torch.zeros(2), [1.0, 2.0], torch.float32)
    checks.assert_matches("v", torch.tensor([1.0, 2.0]), [1.0, 2.0], torch.float32)
    checks.assert_matches("v", torch.nn.Parameter(torch.tensor([1.0, 2.0])), [1.0, 2.0], torch.float32)
    checks.assert_scalar("s", torch.tensor(0.5), 0.5)
    for bad in (True, "0.5", torch.tensor([0.5, 0.5])):
        with pytest.raises(AssertionError):
            checks.assert_scalar("s", bad, 0.5)


def _variant_check(net, x, t, got, expected, mistake):
    assert hints.diagnose(got, expected, net, x, t) == mistake


def test_hints_recognise_each_known_mistake_from_the_reference():
    from dataclasses import replace
    net = reference.random_network(7, (3, 3, 3))
    x, t = reference.random_example(8, 3, 3, batch=4)
    right = reference.forward(net, x)
    grads = reference.backward(net, x, t)
    _variant_check(net, x, t, reference.forward(replace(net, W1=net.W1.T, W2=net.W2.T), x).out_h, right.out_h, "transposed")
    _variant_check(net, x, t, 2 * reference.total_error(right.out_o, t), reference.total_error(right.out_o, t), "half")
    _variant_check(net, x, t, 2 * grads.dW2, grads.dW2, "half")
    for mode in reference.BIAS_MODES:
        stale = reference.step_stale(net, x, t, bias_mode=mode)
        _variant_check(net, x, t, stale.W1, reference.step(net, x, t, bias_mode=mode).W1, "stale")
    _variant_check(net, x, t, reference.forward(replace(net, b1=0 * net.b1, b2=0 * net.b2), x).out_o, right.out_o, "bias")
    _variant_check(net, x, t, reference.step(net, x, t, bias_mode="frozen").b2,
                   reference.step(net, x, t, bias_mode="per-neuron").b2, "bias")
    _variant_check(net, x, t, np.tanh(x @ net.W1.T + net.b1), right.out_h, "activation")
    small = reference.random_network(9, (2, 2, 2))
    xs, ts = reference.random_example(10, 2, 2, batch=3)
    copied = np.tile(reference.forward(reference.mazur_network(), reference.INPUTS).out_h, (3, 1))
    _variant_check(small, xs, ts, copied, reference.forward(small, xs).out_h, "copied")
    assert hints.diagnose(right.out_h + 0.3, right.out_h, net, x, t) is None
    for mistake in hints.MISTAKES:
        assert mistake in hints.LABELS


def test_the_course_finds_every_assignment_and_its_graded_cells():
    course = Course(ROOT)
    master = course.master(A)
    assert [g for g, _ in master.graded] == list(chapter1.CELLS)
    assert master.max_score == 10
    for grade_id, _ in master.graded:
        kinds = [kind for kind, _ in master.cells[grade_id]["segments"]]
        assert kinds[0] == "visible" and "hidden" in kinds


def test_names_that_are_not_utf8_never_stop_the_class(tmp_path):
    """A student folder and a file whose names are not UTF-8, and a message quoting a lone
    surrogate (tests/grade_cases: "surrogate"): rows that say so, the class graded, and a second
    run that still works."""
    course = make_course(tmp_path)
    full = fill_in_solutions(nbformat.read(student_notebook(A), 4), nbformat.read(source_notebook(A), 4))
    write_submission(course / "submitted", "good", A, full)
    write_submission(course / "submitted", os.fsdecode(b"bad\xffname"), A, full)
    (course / "submitted" / "good" / A / os.fsdecode(b"notes\xfe.txt")).write_bytes(b"\xff\xfe")
    for _ in range(2):
        done = grade(course, "submitted", "--workers", "2")
        assert done.returncode == 0, done.stdout
        rows = read_rows(course / "graded" / "grades.csv")
        assert rows["good"]["score"] == "10", rows
        (bad,) = [row for student, row in rows.items() if student.startswith("bad")]
        assert bad["status"] == "error" and "not valid UTF-8" in bad["message"], bad


def test_feedback_titles_have_no_raw_tex():
    from autograder.grading.feedback import plain_math
    assert plain_math(r"the three factors of $\partial E / \partial w_5$ (2 points)") == \
        "the three factors of ∂E / ∂w5 (2 points)"
    assert plain_math(r"$E = \tfrac12 \sum (t - o)^2$") == "E = 1/2 Σ(t - o)²"


def test_the_wire_carries_data_and_nothing_else():
    """What the kernel sends is decoded into plain tensors, numbers and containers, or refused."""
    import base64
    import json
    from autograder.grading import wire
    value = [torch.tensor([[1.0, 2.0]], dtype=torch.float64), torch.tensor([3], dtype=torch.int64), 7, 2.5,
             float("nan"), "s", None, True, {"a": np.arange(3)}, (torch.float32, np.float32(1.5))]
    back = wire.decode(json.loads(json.dumps(wire.encode(value, torch, np))), torch, np)
    assert torch.equal(back[0], value[0]) and back[0].dtype == torch.float64 and type(back[0]) is torch.Tensor
    assert back[2:4] == [7, 2.5] and np.isnan(back[4]) and back[5:8] == ["s", None, True]
    assert np.array_equal(back[8]["a"], np.arange(3)) and back[9] == (torch.float32, np.float32(1.5))
    eight_bytes = base64.b64encode(bytes(8)).decode()
    deep = None
    for _ in range(100):
        deep = {"t": "list", "v": [deep]}
    for bad in ({"t": "tensor", "dtype": "float64", "shape": [3], "data": eight_bytes},     # bytes != shape
                {"t": "tensor", "dtype": "object", "shape": [1], "data": eight_bytes},
                {"t": "ndarray", "dtype": "|O", "shape": [1], "data": eight_bytes},
                {"t": "tensor", "dtype": "float64", "shape": [10**9], "data": ""},
                {"t": "eval", "v": "__import__('os')"}, {"t": "ref", "id": 1}, deep, "text", 3):
        with pytest.raises(wire.WireError):
            wire.decode(bad, torch, np)
    with pytest.raises(wire.WireError, match="only data"):
        wire.encode(lambda: 0, torch, np)   # a hidden test may hand student code no function of its own
    assert wire.encode(checks.returning([1.0]), torch, np)["t"] == "returning"
