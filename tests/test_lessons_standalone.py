"""Every lesson runs on a student's machine: top to bottom, without the course package.

A student downloads a lesson from the site (`chapters/NN_topic.ipynb`) and runs it in their own
Jupyter, with the packages the intro lists and nothing of this repository. Each lesson is
executed here in a kernel where `import autograder` fails, in an empty working folder, and must
import nothing but the standard library and those packages."""
from __future__ import annotations

import ast
import re
import sys

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.helpers import ROOT, lessons

LESSONS = lessons()
# The packages intro.md tells a student to install (their import names), and IPython, which
# Jupyter brings. A lesson importing anything else would not run on the student's machine.
STUDENT_PACKAGES = {"torch", "numpy", "matplotlib", "myst_nb", "IPython"}
# The same, as the intro's `pip install` line names them (jupyterlab brings Jupyter and IPython).
INTRO_INSTALLS = {"torch": "torch", "numpy": "numpy", "matplotlib": "matplotlib", "myst-nb": "myst_nb",
                  "jupyterlab": "IPython"}
BLOCK_COURSE_PACKAGE = "import sys\nsys.modules['autograder'] = None  # any import of the course package now fails"


def test_there_are_lessons():
    assert LESSONS, "no lesson found in chapters/"


def test_the_intro_tells_a_student_to_install_these_packages():
    (line,) = [line for line in (ROOT / "intro.md").read_text().splitlines() if line.startswith("pip install ")]
    named = set(line.split("#")[0].split()[2:])
    assert named == set(INTRO_INSTALLS), f"intro.md's install line names {sorted(named)}; this test knows {sorted(INTRO_INSTALLS)}"
    assert set(INTRO_INSTALLS.values()) == STUDENT_PACKAGES


def imported_modules(notebook) -> set[str]:
    """Top-level names of every module a notebook's code cells import (IPython magics skipped)."""
    names = set()
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        code = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_lesson_imports_only_what_a_student_installs(lesson):
    outside = imported_modules(nbformat.read(lesson, 4)) - STUDENT_PACKAGES - set(sys.stdlib_module_names)
    assert not outside, (f"{lesson.name} imports {sorted(outside)}, which a student does not have: the intro "
                         f"lists {sorted(STUDENT_PACKAGES)}")


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_lesson_runs_without_the_course_package(lesson, tmp_path):
    """nbclient runs the lesson as Jupyter would, in a kernel whose first cell makes every
    import of `autograder` raise ImportError, from an empty folder (no repository files)."""
    nb = nbformat.read(lesson, 4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(BLOCK_COURSE_PACKAGE))
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except CellExecutionError as raised:
        error = raised  # reported below, outside the handler, without a Python traceback of the test
    else:
        return
    failed = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code"
                  and any(o.output_type == "error" for o in c.get("outputs", [])))
    cell = nb.cells[failed]
    traceback = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(
        line for o in cell.outputs if o.output_type == "error" for line in o.traceback))
    # IPython marks the line that raised, in this cell and in any function it called, with an arrow.
    marked = [line.strip() for line in traceback.splitlines() if re.match(r"\s*-+> ", line)]
    pytest.fail(f"{lesson.name}: cell {failed - 1} (id {cell.get('id')}) raised {error.ename}: {error.evalue}\n"
                + "".join(f"  {line}\n" for line in marked), pytrace=False)
