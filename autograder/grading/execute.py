"""Run a prepared notebook's steps in a grading kernel, cell after cell, surviving loops (per-cell
time limit, interrupt, then kill), kernels that die (restart, replay what ran before, go on) and
floods of output."""
from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import remote, sandbox, warm
from .prepare import Prepared
from .runner import GradingKernel, KernelStartError, OutputBudget, StepResult

MAX_RESTARTS = 3
BUDGET_CELLS = 5                      # a notebook's time budget: this many cells' time limits
MAX_COPIED_BYTES = 20 * 1024 * 1024   # files submitted next to the notebook, copied into its working folder


@dataclass
class Execution:
    results: list                                  # StepResult or None (not run), aligned with steps
    events: list = field(default_factory=list)     # what went wrong, for the message: (step index, text)
    start_error: str | None = None
    oom: bool = False
    output_exhausted: bool = False


def describe_exit(code: int | None) -> str:
    if code is None:
        return "it stopped responding"
    if code < 0 or code > 128:
        number = -code if code < 0 else code - 128
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        hint = " (out of memory?)" if number == signal.SIGKILL else ""
        return f"it was killed by {name}{hint}"
    return f"it exited with code {code} (os._exit, sys.exit in a thread, or a crash)"


def work_root(tmp_root: str | None = None) -> str:
    return tmp_root or ("/dev/shm" if os.access("/dev/shm", os.W_OK) else "/tmp")


def make_workdir(submission: Path | None, extra_files: Path | None, tmp_root: str | None = None) -> tuple[Path, Path]:
    """A private folder for one kernel: ``files/`` holds the files submitted next to the notebook
    (not notebooks, never through a symlink) and, over them, the assignment's own files, as
    nbgrader's autograde does; the kernel copies them into its working folder ``cwd/`` (in the
    sandbox a size-limited tmpfs). Under /dev/shm where there is one: what the kernel writes to
    its sockets' folder is memory (charged to its cgroup where it has one), not the host's disk."""
    workdir = Path(tempfile.mkdtemp(prefix=f"agr-{sandbox.owner_tag()}-", dir=work_root(tmp_root)))
    workdir.chmod(0o700)
    cwd, files = workdir / "cwd", workdir / "files"
    cwd.mkdir()
    files.mkdir()
    copied = 0
    for folder in (submission, extra_files):
        if folder is None or not folder.is_dir() or folder.is_symlink():
            continue
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if (path.is_symlink() or any(parent.is_symlink() for parent in path.parents if folder in parent.parents)
                    or not path.is_file() or path.suffix == ".ipynb" or any(p.startswith(".") for p in relative.parts)):
                continue
            size = path.stat().st_size
            if copied + size > MAX_COPIED_BYTES:
                continue
            dest = files / relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest, follow_symlinks=False)
            copied += size
    return workdir, cwd


def _hidden_status(hidden) -> StepResult:
    status = {"ok": "ok", "failed": "error", "timeout": "timeout", "died": "died", "tampered": "error"}[hidden.status]
    return StepResult(status, ename="AssertionError" if hidden.status == "failed" else "", evalue=hidden.message,
                      exit_code=hidden.exit_code, hidden=hidden)


def run(prepared: Prepared, launch: dict, timeout: float, use_sandbox: bool, workdir: Path, cwd: Path,
        budget: float | None = None, limits=None) -> Execution:
    """Run every step; hidden tests run here, in the grader, asking the kernel for answers. The
    notebook's whole run (cells, restarts, replays) gets ``budget`` seconds.

    In a child of this worker's warm parent (:mod:`warm`), under the submission's ``limits``
    (:mod:`limits`), where there is a sandbox and warm kernels are wanted; otherwise in a kernel
    process of its own. If the warm parent dies during the run, or a child of it does not start, a
    new parent is started and the notebook graded again, once: what breaks a parent never costs a
    student a row."""
    if not (use_sandbox and limits is not None and warm.wanted()):
        return _run(prepared, timeout, budget, limits,
                    lambda outputs: GradingKernel(workdir, cwd, dict(launch, files=str(workdir / "files")),
                                                  use_sandbox, limits=limits, outputs=outputs))
    parent = warm.parent_for(launch, str(workdir.parent))
    with parent.lock:
        files = parent.inbox / "files"
        shutil.rmtree(files, ignore_errors=True)
        os.rename(workdir / "files", files)
        try:
            for attempt in range(2):
                if not parent.alive():
                    try:
                        parent.start()
                    except KernelStartError as error:
                        return Execution([None] * len(prepared.steps), start_error=str(error))
                starts = parent.starts

                def child(outputs):
                    return warm.WarmKernel(parent, limits, str(files), outputs)
                execution = _run(prepared, timeout, budget, limits, child)
                if parent.alive() and parent.starts == starts and not execution.start_error:
                    return execution
                parent.stop()
            return execution
        finally:
            shutil.rmtree(files, ignore_errors=True)


def _run(prepared: Prepared, timeout: float, budget: float | None,
         limits, make_kernel) -> Execution:
    steps = prepared.steps
    results: list[StepResult | None] = [None] * len(steps)
    execution = Execution(results)
    budget = budget or max(BUDGET_CELLS * timeout, 60.0)
    end = time.monotonic() + budget
    outputs = OutputBudget()
    namespace = remote.setup_namespace(prepared.setup_sources)

    # The notebook's visible checks go through its ``check`` helper: the kernel keeps the values of
    # the last one that failed, for the "likely mistake" of the feedback (never for points).
    recorder = "check" if any(re.search(r"^def check\(", src, re.M) for src in prepared.setup_sources) else None

    def diagnose(kernel, step, result) -> None:
        if recorder is None:
            return
        helper = remote.Remote(kernel, time.monotonic() + 5.0, remote.Observed())
        try:
            if step.kind == "locked" and result.status == "ok":
                helper.ask({"op": "record", "name": recorder}, recorder)
            elif step.kind == "visible" and result.ename == "AssertionError":
                values = helper.ask({"op": "recorded"}, recorder)
                if isinstance(values, tuple) and len(values) == 3:
                    result.visible_check = values
        except (remote.StudentError, remote.ProtocolError, remote.HiddenTimeout, remote.KernelDied):
            pass

    def new_kernel():
        return make_kernel(outputs)

    def kill(kernel) -> None:
        kernel.kill()
        if isinstance(kernel, warm.WarmKernel):
            warm.clean(kernel.parent, limits)
        elif limits is not None:
            limits.kill_all()

    kernel = new_kernel()
    try:
        kernel.start()
    except (KernelStartError, warm.ParentDied) as error:
        kill(kernel)
        execution.start_error = str(error)
        return execution
    restarts = 0
    done: list[int] = []   # steps to replay after a restart
    i = 0
    try:
        while i < len(steps):
            step = steps[i]
            left = end - time.monotonic()
            if left <= 0:
                execution.events.append((i, f"the notebook ran past its time budget of {budget:g} s (cells, restarts "
                                            "and replays together); the rest was not run"))
                break
            if step.kind == "hidden":
                result = _hidden_status(remote.run_hidden(step.code, step.grade_id, namespace, kernel,
                                                          min(timeout, left)))
                result.killed = not kernel.alive()
            else:
                result = kernel.execute(step.code, min(timeout, left))
                if kernel.alive() and not result.killed:
                    diagnose(kernel, step, result)
            results[i] = result
            broken = result.status == "died" or result.killed
            if result.status == "timeout":
                what = "was stopped" if not result.killed else "did not stop when interrupted and the kernel was killed"
                execution.events.append((i, f"ran past the time limit of {min(timeout, left):g} s and {what}"))
            if result.status == "died":
                execution.events.append((i, f"the kernel died: {describe_exit(result.exit_code)}"))
            if not broken:
                if step.replayable:
                    done.append(i)
                i += 1
                continue
            # The kernel is gone: start another, replay what ran before, and go on after this step.
            kill(kernel)
            restarts += 1
            if restarts > MAX_RESTARTS:
                execution.events.append((i, f"gave up after {MAX_RESTARTS} restarts of the kernel; the rest was not run"))
                break
            kernel = new_kernel()
            try:
                kernel.start()
                for j in done:
                    left = end - time.monotonic()
                    replay = kernel.execute(steps[j].code, min(timeout, left))
                    if replay.status in ("died", "timeout") or replay.killed:
                        raise KernelStartError(f"replaying the cells before it failed: {replay.status}")
                    diagnose(kernel, steps[j], replay)
            except (KernelStartError, warm.ParentDied) as error:
                execution.events.append((i, f"could not restart the kernel ({error}); the rest was not run"))
                break
            i += 1
    finally:
        kill(kernel)
        execution.output_exhausted = outputs.exhausted
    return execution
