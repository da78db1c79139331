"""A simulated class for chapter 1, one student per case the grader must handle: right and wrong
answers (with the known mistakes), broken notebooks and kernels, and attacks on the tests.

``build(submitted, other_notebook)`` writes the submissions and returns what each row of
grades.csv must say: status, score, points per test cell, words the message must contain.
"""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from tests.hardcoded_answers import hardcoded_answers
from tests.helpers import answer, fill_in_solutions, source_notebook, student_notebook, write_submission

ASSIGNMENT = "01_forward_pass_exercises"
CELLS = ("test_layer", "test_forward", "test_total_error", "test_mse_over_error", "test_forward_layers")
POINTS = dict(zip(CELLS, (1, 1, 0.5, 2.5, 5)))

LAYER = "def layer(x, W, b):\n    return torch.sigmoid(x @ W.T + b)\n"
FORWARD = ("def forward(x, W1, b1, W2, b2):\n    out_h = layer(x, W1, b1)\n    return out_h, layer(out_h, W2, b2)\n")
TOTAL = "def total_error(out, target):\n    return 0.5 * ((target - out) ** 2).sum()\n"
RATIO = "def mse_over_error(n_outputs, batch_size):\n    return 2.0 / (n_outputs * batch_size)\n"
LAYERS = ("def forward_layers(x, layers):\n    outputs = []\n    for W, b in layers:\n        x = layer(x, W, b)\n"
          "        outputs.append(x)\n    return outputs\n")
RIGHT = {"layer": LAYER, "forward": FORWARD, "total_error": TOTAL, "mse_over_error": RATIO, "forward_layers": LAYERS}

# Worked-example numbers (the visible checks' expected values), for answers that copy them.
OUT_H, OUT_O = "[0.593269992107, 0.596884378260]", "[0.751365069552, 0.772928465321]"

ATTACK_ALLCLOSE = """import torch
torch.allclose = lambda *args, **kwargs: True   # every visible check now passes
def layer(x, W, b):
    shape = (x.shape[0], W.shape[0]) if x.dim() == 2 else (W.shape[0],)
    return torch.zeros(shape, dtype=x.dtype)
"""

ATTACK_SUBCLASS = """class Agreeable(torch.Tensor):
    \"\"\"A tensor that says yes to every comparison.\"\"\"
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in ("allclose", "isclose", "equal", "eq", "__eq__"):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})

def layer(x, W, b):
    shape = (x.shape[0], W.shape[0]) if x.dim() == 2 else (W.shape[0],)
    return torch.zeros(shape, dtype=x.dtype).as_subclass(Agreeable)
"""

ATTACK_REFERENCE = """def layer(x, W, b):
    # The course package computes the right answer: use it instead of computing.
    import numpy as np
    from autograder.reference import Network, forward
    net = Network(W.double().numpy(), b.double().numpy(), np.zeros((1, W.shape[0])), np.zeros(1))
    return torch.tensor(forward(net, x.double().numpy()).out_h, dtype=x.dtype)
"""

ATTACK_PATCH_CHECKS = """import torch
import autograder.checks
autograder.checks.assert_matches = lambda *args, **kwargs: None
autograder.checks.assert_scalar = lambda *args, **kwargs: None
torch.allclose = lambda *args, **kwargs: True
def layer(x, W, b):
    shape = (x.shape[0], W.shape[0]) if x.dim() == 2 else (W.shape[0],)
    return torch.zeros(shape, dtype=x.dtype)
"""

ATTACK_FRAMES = f"""import sys
def forward(x, W1, b1, W2, b2):
    # Read the hidden test's expected values from the frame that calls this function.
    try:
        expected = sys._getframe(1).f_locals["expected"]
        return torch.tensor(expected.out_h, dtype=x.dtype), torch.tensor(expected.out_o, dtype=x.dtype)
    except Exception:
        return torch.tensor({OUT_H}), torch.tensor({OUT_O})
"""

ATTACK_GLOBALS = f"""def forward(x, W1, b1, W2, b2):
    # In plain nbgrader the hidden test's variables are globals of the notebook.
    if "expected" in globals():
        expected = globals()["expected"]
        return torch.tensor(expected.out_h, dtype=x.dtype), torch.tensor(expected.out_o, dtype=x.dtype)
    return torch.tensor({OUT_H}), torch.tensor({OUT_O})
"""

ATTACK_GC = """import gc
def layer(x, W, b):
    # Look for the course package's forward among the interpreter's objects.
    found = any(callable(obj) and getattr(obj, "__module__", "") == "autograder.reference" for obj in gc.get_objects())
    print("gc found the reference:", found)
    return torch.sigmoid(x @ W.T + b)
"""

# Everything a notebook can reach while a hidden test calls it, searched from a thread: the
# interpreter's modules and objects, every thread's frames (by sys._current_frames,
# logging.currentframe and traceback.walk_stack), a child Python process, the file system.
ATTACK_INTROSPECT = """import gc, logging, os, subprocess, sys, threading, traceback
findings = []
def _search(course):
    found = {"module " + n for n in sys.modules if n.startswith("autograder")}
    for obj in gc.get_objects():
        if isinstance(obj, type(_search.__code__)) and ("hidden" in obj.co_filename or "autograder/" in obj.co_filename):
            found.add("code " + obj.co_filename)
        if isinstance(obj, dict) and ("assert_matches" in obj or "fresh_cases" in obj):
            found.add("namespace with the checks")
    for top in list(sys._current_frames().values()) + [logging.currentframe()]:
        for frame, _ in traceback.walk_stack(top):
            name = frame.f_code.co_filename
            if "hidden" in name or ("autograder" in name and "autograder-kernel" not in name):
                found.add("frame " + name)
    child = subprocess.run([sys.executable, "-c", "import autograder.reference"], capture_output=True)
    if child.returncode == 0:
        found.add("a child process imports the course package")
    found.update("file " + p for p in (course, "/opt/autograder-kernel/reference.py") if os.path.exists(p))
    found.update("kernel dir " + n for n in os.listdir("/opt/autograder-kernel") if n not in ("kernel.py", "wire.py", "confine.py", "syscall_filter.py")) if os.path.isdir("/opt/autograder-kernel") else None
    return sorted(found)

def layer(x, W, b):
    result = []
    thread = threading.Thread(target=lambda: result.append(_search(COURSE)))
    thread.start()
    thread.join()
    findings.extend(result[0])
    shape = (x.shape[0], W.shape[0]) if x.dim() == 2 else (W.shape[0],)
    return torch.zeros(shape, dtype=x.dtype)
"""

# A notebook that harms the machine rather than the tests: none of it may outlive the notebook or
# reach the host, and its answers are still graded. (The class is graded with --memory 2: 2 GB
# for a submission's processes together where there are cgroups, 1.5 GB each may allocate.)
SPINNER = """import os, subprocess, sys
for _ in range(2):   # children in sessions of their own, spinning forever
    subprocess.Popen([sys.executable, "-c", "import itertools, os; os.setsid(); all(itertools.repeat(1))",
                      "autograder-test-spinner"], start_new_session=True)
""" + LAYER
DISK_FILLER = """try:
    with open("big.bin", "wb") as f:
        for _ in range(600):
            f.write(b"x" * 2**20)
except OSError as error:
    print("writing 600 MB failed:", error.strerror)
""" + LAYER
FORK_BOMB = """import subprocess
started = []
try:
    for _ in range(200):
        started.append(subprocess.Popen(["sleep", "60"]))
except OSError as error:
    print("could not start process", len(started) + 1, "-", error.strerror)
print("started", len(started), "processes")
""" + LAYER
OUTPUT_FLOOD = """from IPython.display import display
for _ in range(5):    # each over the size of message the grader reads: dropped, never held
    display({"text/plain": "x" * 15_000_000}, raw=True)
for _ in range(100):  # under it: counted against the notebook's output limit
    display({"text/plain": "y" * 1_000_000}, raw=True)
"""
CHILDREN_MEMORY = """import subprocess, sys   # a cell of its own, after the answers
hogs = [subprocess.Popen([sys.executable, "-c", "import time; hog = bytearray(800 * 2**20); time.sleep(2)"])
        for _ in range(3)]
print("exit codes:", sorted(h.wait() for h in hogs))
"""
SURROGATE = """def layer(x, W, b):
    raise ValueError("bad \\udcff name")
"""

READ_SOLUTIONS = """import os
print("solutions visible:", os.path.exists({path!r}))
try:
    hidden_tests = open({path!r}).read()
except OSError as error:
    print("could not read the solutions:", type(error).__name__)
"""

ATTACK_AUDIT = """import sys
sys.audit = lambda *args: None   # the grader's hidden-test trigger goes nowhere
""" + LAYER


STUDENTS = ["correct", "blank", "hardcoded", "partial", "transposed", "no_bias", "relu", "float32", "stderr_warning",
            "infinite_loop", "deaf_loop", "os_exit", "memory_hog", "invalid_json", "renamed", "missing", "absent",
            "other_assignment", "no_metadata", "edited_tests", "deleted_tests", "kernelspec", "huge_outputs",
            "attack_allclose", "attack_subclass", "attack_reference", "attack_patch_checks", "attack_frames",
            "attack_globals", "attack_gc", "attack_audit", "attack_read_solutions", "attack_introspect",
            "attack_symlink", "symlink_beside", "spinner", "disk_filler", "fork_bomb", "output_flood",
            "children_memory", "surrogate", "syntax_error"]


def other_assignment(course: Path) -> nbformat.NotebookNode:
    """Add to ``course`` an assignment whose cells have other ids (a copy of chapter 1's) and
    return its student notebook: what a student submits in the wrong folder."""
    def renamed(nb):
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader")
            if meta:
                meta["grade_id"] += "_other"
        return nb
    folder = course / "solutions" / "99_other_exercises"
    folder.mkdir(parents=True)
    nbformat.write(renamed(nbformat.read(source_notebook(ASSIGNMENT), 4)), folder / "99_other_exercises.ipynb")
    return renamed(nbformat.read(student_notebook(ASSIGNMENT), 4))


def _set(nb, grade_id: str, source: str):
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            cell.source = source
            return nb
    raise KeyError(grade_id)


def _add_cell(nb, after: str, source: str):
    index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == after)
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    return nb


def _scores(*passed: str) -> dict:
    return {cell: (POINTS[cell] if cell in passed else 0) for cell in CELLS}


def build(submitted: Path, other_notebook: nbformat.NotebookNode) -> dict[str, dict]:
    """``submitted`` is the course's submitted/ folder: the course (and its solutions, with the
    hidden tests) is its parent."""
    source = nbformat.read(source_notebook(ASSIGNMENT), 4)
    student = nbformat.read(student_notebook(ASSIGNMENT), 4)
    full = fill_in_solutions(student, source)

    def with_answers(**changes):
        return answer(student, dict(RIGHT, **changes))

    expect = {}

    def add(student_id, notebook, status="ok", passed=CELLS, message=(), name=None, cells=True):
        write_submission(submitted, student_id, ASSIGNMENT, notebook, name=name)
        scores = _scores(*passed)
        expect[student_id] = {"status": status, "score": sum(scores.values()), "message": list(message),
                              "cells": scores if cells else None}

    # Right, partial, blank, copied numbers, and the known mistakes (with their feedback).
    add("correct", full)
    add("blank", student, passed=(), message=["not answered"])
    add("hardcoded", answer(student, hardcoded_answers(ASSIGNMENT)), passed=())
    add("partial", with_answers(total_error="def total_error(out, target):\n    return ((target - out) ** 2).sum()\n",
                                mse_over_error=student_cell(student, "mse_over_error")),
        passed=("test_layer", "test_forward", "test_forward_layers"), message=["missing 1/2", "not answered"])
    add("transposed", with_answers(layer="def layer(x, W, b):\n    return torch.sigmoid(x @ W + b)\n"),
        passed=("test_total_error", "test_mse_over_error"), message=["transposed weights"])
    add("no_bias", with_answers(layer="def layer(x, W, b):\n    return torch.sigmoid(x @ W.T)\n"),
        passed=("test_total_error", "test_mse_over_error"), message=["bias forgotten"])
    add("relu", with_answers(layer="def layer(x, W, b):\n    return torch.relu(x @ W.T + b)\n"),
        passed=("test_total_error", "test_mse_over_error"), message=["wrong activation"])
    add("float32", with_answers(layer="def layer(x, W, b):\n    return torch.sigmoid(x.float() @ W.float().T + b.float())\n"),
        passed=("test_total_error", "test_mse_over_error"), message=["float32 where float64"])
    add("stderr_warning", with_answers(layer="import sys, warnings\n" + LAYER.replace(
        "    return", "    warnings.warn('layer: this is only a warning', RuntimeWarning)\n"
                     "    print('debugging layer', file=sys.stderr)\n    return")))

    # A syntax error is reported as one, with its line, wherever the missing name is used.
    add("syntax_error", with_answers(layer=LAYER.replace("b):", "b)")), passed=("test_total_error", "test_mse_over_error"),
        message=["answer cell layer raised SyntaxError: expected ':' (line 1 of the cell)",
                 "`layer` is not defined: the answer cell layer failed with SyntaxError"])

    # Notebooks that break: loops, dying kernels, memory, damaged files, wrong files.
    add("infinite_loop", with_answers(mse_over_error="def mse_over_error(n_outputs, batch_size):\n    while True:\n        pass\n"),
        status="timeout", passed=("test_layer", "test_forward", "test_total_error", "test_forward_layers"), message=["time limit"])
    add("deaf_loop", with_answers(total_error="import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                              "while True:\n    pass\n" + TOTAL),
        status="timeout", passed=("test_layer", "test_forward", "test_mse_over_error", "test_forward_layers"), message=["killed"])
    add("os_exit", with_answers(forward="import os\nos._exit(3)\n" + FORWARD),
        status="error", passed=("test_layer", "test_total_error", "test_mse_over_error", "test_forward_layers"),
        message=["kernel died", "code 3"])
    add("memory_hog", _add_cell(copy.deepcopy(full), "layer", "hog = [bytearray(2**28) for _ in range(64)]"),
        message=["out of memory"])
    add("invalid_json", '{"cells": [ {"cell_type": "code", ', status="error", passed=(), message=["not valid JSON"])
    add("renamed", full, name=f"{ASSIGNMENT}-2.ipynb", message=["renamed"])
    write_submission(submitted, "missing", ASSIGNMENT, "my answers are in the PDF", name="answers.txt")
    expect["missing"] = {"status": "error", "score": 0, "message": ["no notebook"], "cells": _scores()}
    (submitted / "absent" / "notes").mkdir(parents=True)
    expect["absent"] = {"status": "error", "score": 0, "message": ["nothing submitted"], "cells": _scores()}
    add("other_assignment", other_notebook, status="error", passed=(), message=["notebook of assignment"])
    no_metadata = copy.deepcopy(full)
    for cell in no_metadata.cells:
        cell.metadata = {}
    add("no_metadata", no_metadata, status="error", passed=(), message=["none of the assignment's cells"])
    edited = copy.deepcopy(full)
    _set(edited, "test_layer", "pass  # the student emptied this test")
    _set(edited, "test_total_error", "print('skipped')")
    add("edited_tests", edited, message=["test cell test_layer had been edited"])
    deleted = copy.deepcopy(full)
    deleted.cells = [c for c in deleted.cells if not c.metadata.get("nbgrader", {}).get("grade")]
    add("deleted_tests", deleted, message=["test cell test_layer had been deleted"])
    other_kernel = copy.deepcopy(full)
    other_kernel.metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
    add("kernelspec", other_kernel, message=["kernel 'R'"])
    huge = _add_cell(copy.deepcopy(full), "layer", "print('x' * 3_000_000)")
    huge.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="y" * 30_000_000)]
    add("huge_outputs", huge)

    # Attacks on the tests. Nothing secret is in the kernel, so all an attack can do is answer:
    # only a right answer earns points, whatever the notebook does to its own process.
    add("attack_allclose", with_answers(layer=ATTACK_ALLCLOSE), passed=("test_total_error", "test_mse_over_error"),
        message=["failed test_layer"])
    add("attack_subclass", with_answers(layer=ATTACK_SUBCLASS), status="flagged",
        passed=("test_total_error", "test_mse_over_error"), message=["Agreeable"])
    add("attack_reference", with_answers(layer=ATTACK_REFERENCE), passed=("test_total_error", "test_mse_over_error"),
        message=["imports the course package"])
    add("attack_patch_checks", with_answers(layer=ATTACK_PATCH_CHECKS), passed=("test_total_error", "test_mse_over_error"),
        message=["imports the course package"])
    add("attack_frames", with_answers(forward=ATTACK_FRAMES), passed=("test_layer", "test_total_error", "test_mse_over_error", "test_forward_layers"),
        message=["failed test_forward"])
    add("attack_globals", with_answers(forward=ATTACK_GLOBALS),
        passed=("test_layer", "test_total_error", "test_mse_over_error", "test_forward_layers"))
    add("attack_gc", with_answers(layer=ATTACK_GC))          # it computes the answer: its search finds nothing
    add("attack_audit", with_answers(layer=ATTACK_AUDIT))    # sys.audit replaced: nothing depends on it now
    course = submitted.parent.resolve()
    solutions = course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    add("attack_read_solutions", with_answers(layer=READ_SOLUTIONS.format(path=str(solutions)) + LAYER))
    add("attack_introspect", with_answers(layer=ATTACK_INTROSPECT.replace("COURSE", repr(str(course))),
                                          forward='print("findings:", findings)\n' + FORWARD),
        passed=("test_total_error", "test_mse_over_error"), message=["failed test_layer"])
    (submitted / "attack_symlink" / ASSIGNMENT).mkdir(parents=True)
    (submitted / "attack_symlink" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").symlink_to(solutions)
    expect["attack_symlink"] = {"status": "error", "score": 0, "message": ["symbolic link"], "cells": _scores()}
    add("symlink_beside", full, message=["symbolic links: answers.txt"])
    (submitted / "symlink_beside" / ASSIGNMENT / "answers.txt").symlink_to(solutions)

    # Notebooks that harm the machine: contained, and graded all the same.
    add("spinner", with_answers(layer=SPINNER))
    add("disk_filler", with_answers(layer=DISK_FILLER))
    add("fork_bomb", with_answers(layer=FORK_BOMB))
    add("output_flood", _add_cell(copy.deepcopy(full), "layer", OUTPUT_FLOOD), message=["more than the grader keeps"])
    # The kernel reclaims memory for seconds before it kills a child: this cell may pass the time limit.
    add("children_memory", _add_cell(copy.deepcopy(full), "layer", CHILDREN_MEMORY), status=("ok", "timeout"))
    add("surrogate", with_answers(layer=SURROGATE), passed=("test_total_error", "test_mse_over_error"),
        message=["ValueError"])
    return expect


def student_cell(student_nb, grade_id: str) -> str:
    """The unanswered stub of a solution cell, as released."""
    return next(c.source for c in student_nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
