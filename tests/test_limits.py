"""The per-process memory limit of a kernel (kernel._set_limits): what a notebook may allocate on
top of what the process holds once torch is imported. PyPI's CUDA build of torch holds about
800 MB of private library data without a GPU (measured: VmData 803 MB after `import torch`,
242 MB for the CPU build); an address-space limit made it fail to import ("failed to map segment")."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT

MB = 2**20
PROBE = f"""
import sys
sys.path.insert(0, {str(ROOT / "autograder" / "grading")!r})
import kernel
held = bytearray(300 * {MB})            # as a big library's data would be, before the limit is set
held[::4096] = b"x" * len(held[::4096])
kernel._set_limits(256 * {MB}, 0)
more = bytearray(200 * {MB})            # within the allowance
print("200 MB more: held")
try:
    too_much = bytearray(400 * {MB})
    print("400 MB more: held")
except MemoryError:
    print("400 MB more: MemoryError")
"""


def test_a_notebook_gets_its_memory_on_top_of_what_the_process_holds():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["200 MB more: held", "400 MB more: MemoryError"], done.stdout


def test_why_cgroups_cannot_be_used_is_the_same_line_from_every_process(monkeypatch, tmp_path):
    """The run's first line says why a mechanism is not used; the grader's processes and a test
    compare it, so the probe's per-process name is left out of it."""
    from autograder.grading.limits import cgroup1
    for controller in cgroup1.CONTROLLERS:   # where each probe's cgroup would go is a file: nothing can be made
        base = cgroup1._base(controller).relative_to(cgroup1.ROOT)
        (tmp_path / base).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / base).write_text("")
    monkeypatch.setattr(cgroup1, "ROOT", tmp_path)
    usable, why = cgroup1.available.__wrapped__()
    assert not usable and "probe" in why and not re.search(r"probe-\d", why), why
