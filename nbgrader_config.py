# nbgrader reads this file when it runs from the repository root.
import os
import sys

c = get_config()  # noqa: F821  (nbgrader provides get_config)

# nbgrader runs `alembic` by name when it creates a gradebook: put this environment's scripts first
# on PATH, so `.venv/bin/nbgrader ...` works without an activated environment.
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")

c.CourseDirectory.course_id = "backprop-step-by-step"
# The instructor's notebooks (solutions, visible and hidden tests) live in solutions/<assignment>/.
c.CourseDirectory.source_directory = "solutions"
# What a student's stub cell says: the student notebooks are pages of the site, shown unexecuted.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
