# Two commands do all the set-up: `make book` and `make test` (see README.md).
VENV ?= .venv
PYTHON ?= python3
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
# Jupyter's kernels, jupyter-book and nbgrader must all come from the course's environment.
export PATH := $(BIN):$(PATH)

.PHONY: env lock book test check release refresh clean

env: $(STAMP)

# The environment is (re)made whenever the pins or the package metadata change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { echo "Debian and Ubuntu: apt-get install python3-venv"; exit 1; }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@# A kernelspec with this environment's absolute python, so every kernel finds torch and the course package.
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (backprop course)" > /dev/null
	touch $(STAMP)

# requirements.txt from requirements.in: one lock for Python 3.11.2 (Debian 12) and later, with
# markers where a pin must differ (tests/test_lock.py checks that it resolves for 3.11.2, 3.12, 3.13).
# torch's CUDA packages are left out: the CPU build needs none, and PyPI's Linux build pins them itself
# (all but cuda-bindings, a range, and cuda-pathfinder). `make lock LOCK=file` writes elsewhere.
TORCH_CUDA := cuda-bindings cuda-pathfinder cuda-toolkit triton $(addprefix nvidia-,cublas cuda-cupti cuda-nvrtc \
  cuda-runtime cudnn-cu13 cufft cufile curand cusolver cusparse cusparselt-cu13 nccl-cu13 nvjitlink nvshmem-cu13 nvtx)
LOCK ?= requirements.txt
lock:
	$(BIN)/uv pip compile requirements.in --universal --python-version 3.11.2 --custom-compile-command "make lock" --no-python-downloads --system-certs \
	  $(addprefix --no-emit-package ,$(TORCH_CUDA)) --quiet -o $(LOCK)

# The site, strict: every page rebuilt, warnings are errors, a failing cell fails the build.
# Executed lessons are cached in _build/.jupyter_cache and re-run when their code changes.
book: $(STAMP)
	jupyter-book build --all -W -n --keep-going .
	@echo "The site is in _build/html: open _build/html/index.html in a browser."

# The whole suite: reference numbers, release sync, nbgrader validate and autograde,
# nbval on every lesson and solution, a clean strict build and the site in headless Chromium.
test: $(STAMP)
	python -m pytest --durations=20

# The fast lane for a content or reference change (about 2 minutes): the reference numbers, the
# release in sync, the lessons' glued values against the reference, the grader's unit tests.
# Executing notebooks, grading, nbval and the site are left to `make test`.
CHECK := tests/test_reference.py tests/test_reference_pitfalls.py tests/test_release.py tests/test_limits.py \
  tests/test_lessons_ch1_2.py tests/test_lessons_ch3_4.py tests/test_lessons_ch5_6.py \
  $(addprefix tests/test_grade.py::test_,checks_compare_what_a_tensor_holds hints_recognise_each_known_mistake_from_the_reference \
    the_course_finds_every_assignment_and_its_graded_cells feedback_titles_have_no_raw_tex the_wire_carries_data_and_nothing_else)
check: $(STAMP)
	python -m pytest $(CHECK) -k "not lesson_runs and not runs_standalone and not runs_without"

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
# with Debian's kernel 6.1, emulated (slow: 9 to 22 minutes, most of it two warm parents importing
# torch). Needs root; installs QEMU, the kernel and virtme-ng itself (tests/vm/setup.sh). Not part
# of `make test`; .ci/run runs it.
.PHONY: test-vm
test-vm: $(STAMP)
	tests/vm/run.sh
