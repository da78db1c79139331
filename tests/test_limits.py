"""The per-process memory limit of a kernel (kernel._set_limits): what a notebook may allocate on
top of what the process holds once torch is imported. PyPI's CUDA build of torch holds about
800 MB of private library data without a GPU (measured: VmData 803 MB after `import torch`,
242 MB for the CPU build); an address-space limit made it fail to import ("failed to map segment")."""
from __future__ import annotations

import subprocess
import sys

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
