"""Run a prepared notebook's steps in a grading kernel, cell after cell, surviving loops (per-cell
time limit, interrupt, then kill), kernels that die (restart, replay what ran before, go on) and
floods of output."""
from __future__ import annotations

import shutil
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .prepare import Prepared
from .runner import GradingKernel, KernelStartError, StepResult

MAX_RESTARTS = 3
MAX_COPIED_BYTES = 20 * 1024 * 1024   # files submitted next to the notebook, copied into its working folder


@dataclass
class Execution:
    results: list                                  # StepResult or None (not run), aligned with steps
    events: list = field(default_factory=list)     # what went wrong, for the message: (step index, text)
    start_error: str | None = None


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


def make_workdir(submission: Path | None, extra_files: Path | None, tmp_root: str | None = None) -> tuple[Path, Path]:
    """A private folder for one kernel: ``cwd`` holds the files submitted next to the notebook
    (not notebooks) and, over them, the assignment's own files, as nbgrader's autograde does."""
    workdir = Path(tempfile.mkdtemp(prefix="agr-", dir=tmp_root or "/tmp"))
    workdir.chmod(0o700)
    cwd = workdir / "cwd"
    cwd.mkdir()
    copied = 0
    for folder in (submission, extra_files):
        if folder is None or not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.suffix == ".ipynb" or any(p.startswith(".") for p in path.relative_to(folder).parts):
                continue
            size = path.stat().st_size
            if copied + size > MAX_COPIED_BYTES:
                continue
            dest = cwd / path.relative_to(folder)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
            copied += size
    return workdir, cwd


def run(prepared: Prepared, launch: dict, timeout: float, use_sandbox: bool, workdir: Path, cwd: Path) -> Execution:
    steps = prepared.steps
    results: list[StepResult | None] = [None] * len(steps)
    execution = Execution(results)
    launch = dict(launch, trusted_sources=prepared.trusted_sources, hidden=dict(prepared.hidden))
    kernel = GradingKernel(workdir, cwd, launch, use_sandbox)
    try:
        kernel.start()
    except KernelStartError as error:
        kernel.kill()
        execution.start_error = str(error)
        return execution
    restarts = 0
    done: list[int] = []   # steps to replay after a restart
    i = 0
    try:
        failed_tests = set()   # a test cell whose visible part failed stops there, as in nbgrader
        while i < len(steps):
            step = steps[i]
            if step.kind in ("visible", "hidden") and step.grade_id in failed_tests:
                results[i] = StepResult("skipped")
                i += 1
                continue
            result = kernel.execute(step.code, timeout)
            if step.kind in ("visible", "hidden") and result.status != "ok":
                failed_tests.add(step.grade_id)
            results[i] = result
            broken = result.status == "died" or result.killed
            if result.status == "timeout":
                what = "was stopped" if not result.killed else "did not stop when interrupted and the kernel was killed"
                execution.events.append((i, f"ran past the time limit of {timeout:g} s and {what}"))
            if result.status == "died":
                execution.events.append((i, f"the kernel died: {describe_exit(result.exit_code)}"))
            if not broken:
                if step.replayable:
                    done.append(i)
                i += 1
                continue
            # The kernel is gone: start another, replay what ran before, and go on after this step.
            kernel.kill()
            restarts += 1
            if restarts > MAX_RESTARTS:
                execution.events.append((i, f"gave up after {MAX_RESTARTS} restarts of the kernel; the rest was not run"))
                break
            launch["hidden"] = dict(prepared.hidden)
            offset = kernel._offset
            kernel = GradingKernel(workdir, cwd, launch, use_sandbox)
            kernel._offset = offset
            try:
                kernel.start()
                for j in done:
                    replay = kernel.execute(steps[j].code, timeout)
                    if replay.status in ("died",) or replay.killed:
                        raise KernelStartError(f"replaying the cells before it failed: {replay.status}")
                kernel.read_records()  # what the replay recorded is not evidence
            except KernelStartError as error:
                execution.events.append((i, f"could not restart the kernel ({error}); the rest was not run"))
                break
            i += 1
    finally:
        kernel.kill()
    return execution
