# The student notebooks are not run by nbval: their stubs raise NotImplementedError by design.
# tests/test_nbgrader.py checks them instead (every graded test must fail on them).
collect_ignore_glob = ["chapters/*_exercises.ipynb", "_build/*", ".venv/*"]
