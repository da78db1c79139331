# Two commands do all the set-up: `make book` and `make test` (see README.md).
VENV ?= .venv
PYTHON ?= python3
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
# Jupyter's kernels, jupyter-book and nbgrader must all come from the course's environment.
export PATH := $(BIN):$(PATH)

.PHONY: env book test release refresh clean

env: $(STAMP)

# The environment is (re)made whenever the pins or the package metadata change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@# A kernelspec with this environment's absolute python, so every kernel finds torch and the course package.
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (backprop course)" > /dev/null
	touch $(STAMP)

# The site, strict: every page rebuilt, warnings are errors, a failing cell fails the build.
# Executed lessons are cached in _build/.jupyter_cache and re-run when their code changes.
book: $(STAMP)
	jupyter-book build --all -W -n --keep-going .
	@echo "The site is in _build/html: open _build/html/index.html in a browser."

# The whole suite: reference numbers, release sync, nbgrader validate and autograde,
# nbval on every lesson and solution, a clean strict build and the site in headless Chromium.
test: $(STAMP)
	python -m pytest

# Regenerate the student notebooks in chapters/ from solutions/.
release: $(STAMP)
	python -m autograder release

# Re-run the lessons and solutions in place, so the outputs they store (which nbval compares) are current.
refresh: $(STAMP)
	for nb in $$(ls chapters/*.ipynb | grep -v _exercises) solutions/*/*.ipynb; do \
	  jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.record_timing=False "$$nb" || exit 1; done

clean:
	rm -rf _build

# The cgroup v2 tiers (root, and a normal user in a delegated cgroup) in a virtual machine: QEMU
# with Debian's kernel 6.1, emulated (slow: minutes). Needs root; installs QEMU, the kernel and
# virtme-ng itself (tests/vm/setup.sh). Not part of `make test`; .ci/run runs it.
.PHONY: test-vm
test-vm: $(STAMP)
	tests/vm/run.sh
