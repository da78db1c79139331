"""requirements.txt, the lock: what `make lock` makes of requirements.in, and installable on each
Python the README names: Debian 12's 3.11.2, Ubuntu 24.04's 3.12, Debian 13's 3.13 (resolved by uv
for Linux x86-64 from PyPI, wheels only, as `make env` would install them; nothing is installed).
uv reads the system's certificates, as pip does (a proxy's own certificate authority included)."""
from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, run

UV = str(Path(sys.executable).parent / "uv")
PYTHONS = ["3.11.2", "3.12", "3.13"]
# What PyPI's Linux build of torch requires and the lock leaves out (see `make lock`): the CPU build needs none.
TORCH_CUDA = re.compile(r"(nvidia-|cuda-|triton$)")


def pins(text: str) -> dict[str, set[str]]:
    """name -> the versions its `name==version` lines pin (more than one where markers differ)."""
    found = {}
    for name, version in re.findall(r"^([A-Za-z0-9._-]+)==([^\s;]+)", text, re.M):
        found.setdefault(re.sub(r"[-_.]+", "-", name).lower(), set()).add(version)
    return found


def test_the_lock_is_what_make_lock_makes_of_requirements_in(tmp_path):
    lock = tmp_path / "requirements.txt"
    shutil.copy(ROOT / "requirements.txt", lock)   # uv keeps the pins it is given while they still resolve
    done = run(["make", "-s", "lock", f"LOCK={lock}"])
    assert done.returncode == 0, done.stdout
    assert lock.read_text() == (ROOT / "requirements.txt").read_text(), \
        "requirements.txt is not requirements.in resolved: change requirements.in, then `make lock`"


@pytest.mark.parametrize("python", PYTHONS)
def test_the_lock_resolves_for(python):
    done = run([UV, "pip", "compile", "requirements.txt", "--python-version", python, "--python-platform",
                "x86_64-manylinux_2_28", "--only-binary", ":all:", "--no-python-downloads", "--system-certs", "--no-header",
                "--no-annotate", "--quiet"], timeout=300)
    assert done.returncode == 0, done.stdout
    resolved, locked = pins(done.stdout), pins((ROOT / "requirements.txt").read_text())
    assert resolved["torch"] == {"2.13.0"}
    added = {name for name in resolved if name not in locked}
    assert all(TORCH_CUDA.match(name) for name in added), f"not in the lock: {sorted(added)}"
    assert all(versions <= locked[name] for name, versions in resolved.items() if name in locked), \
        "a pin resolved to another version"
