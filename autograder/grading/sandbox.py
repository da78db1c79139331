"""Where student code runs: a bubblewrap sandbox when the machine has one.

The grading kernel sees a read-only system (``/usr``, the Python installation, the course's
virtual environment and the ``autograder`` package), a private writable folder (its working
directory and the kernel's sockets) and an empty ``/tmp``; no network, no other process, no
home directory, none of the instructor's environment variables. The course folder (solutions,
hidden tests), the other submissions, the gradebook and the output folder do not exist in it.

Without bubblewrap (``apt-get install bubblewrap``) the kernel runs as an ordinary process of the
instructor's user, with a cleaned environment and the same resource limits; the grader says so
when it starts.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import autograder

PACKAGE_DIR = Path(autograder.__file__).resolve().parent
# The few files of /etc a Python process needs (the dynamic loader, users, time zone).
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "passwd", "group", "nsswitch.conf",
             "host.conf", "hosts", "mime.types")


def kernel_env(home: str) -> dict[str, str]:
    """The kernel's whole environment: nothing of the instructor's (tokens, proxies...)."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home, "TMPDIR": "/tmp", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "MPLCONFIGDIR": f"{home}/.matplotlib", "IPYTHONDIR": f"{home}/.ipython", "MPLBACKEND": "agg",
        "JUPYTER_CONFIG_DIR": f"{home}/.jupyter", "JUPYTER_DATA_DIR": f"{home}/.local/share/jupyter",
        "JUPYTER_RUNTIME_DIR": f"{home}/.local/share/jupyter/runtime", "PYTHONHASHSEED": "0",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
    }


def _read_only_paths() -> list[str]:
    """The Python installation, the environment's packages and the course package."""
    paths = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), str(PACKAGE_DIR)}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path and os.path.isdir(path):
            paths.add(os.path.realpath(path))
    # Drop paths inside others (bwrap binds each once).
    kept = []
    for path in sorted(paths, key=len):
        if not any(path == k or path.startswith(k + os.sep) for k in kept):
            kept.append(path)
    return kept


@functools.lru_cache(maxsize=None)
def bwrap_status() -> tuple[bool, str]:
    """Whether bubblewrap is installed and works here, and why not if it does not."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False, "bubblewrap is not installed (apt-get install bubblewrap)"
    argv = command(["/bin/true"], Path("/nonexistent"), Path("/"), check=True)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"bubblewrap does not start: {error}"
    if done.returncode != 0:
        return False, f"bubblewrap cannot make a sandbox here: {done.stderr.strip()[:300]}"
    return True, "bubblewrap"


def command(argv: list[str], workdir: Path, cwd: Path, check: bool = False) -> list[str]:
    """``argv`` wrapped in bubblewrap: read-only system and Python, writable ``workdir``."""
    home = "/tmp/home"
    cmd = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
           "--ro-bind", "/usr", "/usr"]
    for name in ("bin", "lib", "lib64", "lib32", "sbin"):
        path = Path("/") / name
        if path.is_symlink():
            cmd += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            cmd += ["--ro-bind", str(path), str(path)]
    for name in ETC_FILES:
        if os.path.exists(f"/etc/{name}"):
            cmd += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", home]
    for path in _read_only_paths():
        cmd += ["--ro-bind", path, path]
    if not check:
        cmd += ["--bind", str(workdir), str(workdir)]
    cmd += ["--clearenv"]
    for key, value in kernel_env(home).items():
        cmd += ["--setenv", key, value]
    cmd += ["--chdir", str(cwd), *argv]
    return cmd
