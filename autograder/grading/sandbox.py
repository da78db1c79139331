"""Where student code runs: a bubblewrap sandbox when the machine has one.

The grading kernel sees a read-only system (``/usr``, the Python installation and the course's
virtual environment, with the ``autograder`` package masked if it is installed there), the four
files of the kernel runner (``kernel.py``, ``wire.py``, ``confine.py``, ``syscall_filter.py``: no course knowledge), its working folder
and ``/tmp`` as size-limited tmpfs (memory, not the host's disk), and the folder of the kernel's
sockets; no network, no other process, no home directory, none of the instructor's environment
variables. The course folder (solutions, hidden tests, reference), the other submissions, the
gradebook and the output folder do not exist in it. The kernel is PID 1's child in a PID namespace
of its own: when the grader kills it, everything it started dies with it (``setsid`` or not).

Each submission's processes, memory and CPU are limited by the best mechanism the machine offers
(:mod:`limits`: a cgroup v2 or v1 per submission, or without cgroups the kernel's per-process and
per-user-namespace limits). Without a working bubblewrap (``apt-get install bubblewrap``;
:func:`bwrap_status` confines a warm child to check) the grader refuses to grade; with
``--no-sandbox`` the kernel runs as an ordinary process of the instructor's user, with a cleaned
environment and per-process limits only, and every row says so.
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

from . import limits

PACKAGE_DIR = Path(autograder.__file__).resolve().parent
RUNNER_DIR = "/opt/autograder-kernel"            # where the sandbox shows the kernel runner
KERNEL_SCRIPT = f"{RUNNER_DIR}/kernel.py"
RUNNER_FILES = ("kernel.py", "wire.py", "confine.py", "syscall_filter.py")
WARM_DIR = "/run/autograder"                     # where a warm parent's sandbox shows its folder
TMP_BYTES = 64 * 2**20                           # /tmp in the sandbox, and /dev/shm
# The few files of /etc a Python process needs (the dynamic loader, users, time zone).
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "passwd", "group", "nsswitch.conf",
             "host.conf", "hosts", "mime.types")


def python() -> str:
    """This environment's Python, by the environment's real path: the sandbox shows the environment
    there only (a `.venv` that is a symbolic link, or a path through one, does not exist inside)."""
    return os.path.join(os.path.realpath(sys.prefix), "bin", os.path.basename(sys.executable))


def kernel_env(home: str) -> dict[str, str]:
    """The kernel's whole environment: nothing of the instructor's (tokens, proxies...)."""
    return {
        "PATH": f"{Path(python()).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home, "TMPDIR": "/tmp", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "MPLCONFIGDIR": f"{home}/.matplotlib", "IPYTHONDIR": f"{home}/.ipython", "MPLBACKEND": "agg",
        "JUPYTER_CONFIG_DIR": f"{home}/.jupyter", "JUPYTER_DATA_DIR": f"{home}/.local/share/jupyter",
        "JUPYTER_RUNTIME_DIR": f"{home}/.local/share/jupyter/runtime", "PYTHONHASHSEED": "0",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
    }


def kernel_source() -> str:
    """The kernel runner's path outside a sandbox."""
    return str(PACKAGE_DIR / "grading" / "kernel.py")


def _read_only_paths() -> list[str]:
    """The Python installation and the environment's packages."""
    paths = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)}
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
    # The warm parent's sandbox, confining a child as it will confine each submission's.
    argv = command([python(), "-I", KERNEL_SCRIPT, "--check"], Path("/nonexistent"), Path("/"), check=True, warm=True)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"bubblewrap does not start: {error}"
    if done.returncode != 0:
        return False, f"bubblewrap cannot make a sandbox here: {(done.stderr + done.stdout).strip()[-600:]}"
    return True, "bubblewrap"


def command(argv: list[str], workdir: Path, cwd: Path, check: bool = False, files: str | None = None,
            cwd_bytes: int | None = None, warm: bool = False, user: int | None = None) -> list[str]:
    """``argv`` wrapped in bubblewrap: read-only system and Python; ``cwd`` a tmpfs of
    ``cwd_bytes``; ``files`` (submitted next to the notebook) read-only, for the runner to copy;
    the rest of ``workdir`` (the kernel's sockets) writable. ``warm``: the sandbox of a warm
    parent (``kernel.py --warm``), which outlives its submissions: ``workdir`` (where each submission's
    files arrive) read-only at WARM_DIR, the root read-only, and the two capabilities the parent
    needs to give each child namespaces of its own (``confine.py``; the child drops them).
    ``user``: a uid for ``argv`` (the grader being root; :func:`limits.rlimits.sandbox_user`): no
    user namespace then (its root would be uid 0), and ``setpriv`` drops to it before ``argv``
    runs, keeping for a warm parent those two capabilities, now the host's own."""
    home = "/tmp/home"
    if user is None:
        cmd = ["bwrap", "--unshare-all", "--cap-drop", "ALL"]
        # bubblewrap grants capabilities to uid 0 only: a warm parent is root of its user
        # namespace (for a normal user too; the child drops root's every power, confine.py).
        cmd += ["--uid", "0", "--gid", "0"] if warm else []
    else:
        cmd = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
               "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        # A warm parent keeps the two capabilities it gives each child namespaces with (ambient:
        # through the exec, as uid ``user``); nothing else, now or later (bounding set).
        keep = ["+sys_admin", "+setpcap"] if warm else []
        caps = [f"--inh-caps={','.join(['-all', *keep])}", f"--bounding-set={','.join(['-all', *keep])}"]
        caps += [f"--ambient-caps={','.join(keep)}"] if keep else []
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *caps,
                "--no-new-privs", "--", *argv]
    cmd += ["--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"]
    for name in ("bin", "lib", "lib64", "lib32", "sbin"):
        path = Path("/") / name
        if path.is_symlink():
            cmd += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            cmd += ["--ro-bind", str(path), str(path)]
    cmd += ["--perms", "0755", "--dir", "/etc"]   # readable by another uid (``user``; see below)
    for name in ETC_FILES:
        if os.path.exists(f"/etc/{name}"):
            cmd += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    # Writable by every uid: the sandbox's may not be the grader's (``user``; then the kernel
    # makes its home itself, to be able to empty /tmp).
    cmd += ["--proc", "/proc", "--dev", "/dev", "--perms", "01777", "--size", str(TMP_BYTES), "--tmpfs", "/dev/shm",
            "--perms", "01777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp"] + (["--dir", home] if user is None else [])
    bound = _read_only_paths()
    # The folders bubblewrap makes on the way to what it binds are 0700 as root: readable by
    # another uid (``user``) only made first, 0755 (below /tmp too: an environment in /tmp/ci).
    inside = WARM_DIR if warm else str(workdir)   # not below /tmp or /dev, which a warm child replaces
    cwd = Path(inside) / cwd.relative_to(workdir) if warm and not check else cwd
    targets = [*bound, KERNEL_SCRIPT] + ([] if check else [inside, str(cwd)])
    for folder in sorted({str(p) for t in targets for p in Path(t).parents if str(p) not in ("/", "/tmp", "/dev")}):
        if not folder.startswith(("/usr/", "/dev/")):
            cmd += ["--perms", "0755", "--dir", folder]
    for path in bound:
        cmd += ["--ro-bind", path, path]
    if any(str(PACKAGE_DIR).startswith(path + os.sep) for path in bound):
        cmd += ["--tmpfs", str(PACKAGE_DIR)]   # installed into the environment: hide it
    for name in RUNNER_FILES:
        cmd += ["--ro-bind", str(PACKAGE_DIR / "grading" / name), f"{RUNNER_DIR}/{name}"]
    if not check:
        cmd += ["--ro-bind" if warm else "--bind", str(workdir), inside]
        if files:
            cmd += ["--ro-bind", files, files]
        cmd += ["--perms", "01777", "--size", str(cwd_bytes or 256 * 2**20), "--tmpfs", str(cwd)]
    if warm:
        cmd += ["--remount-ro", "/", "--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETPCAP"]
    cmd += ["--clearenv"]
    for key, value in kernel_env(home).items():
        cmd += ["--setenv", key, value]
    cmd += ["--chdir", str(cwd), *argv]
    return cmd


# ----------------------------------------------------------------------------------------------
# What a worker killed mid-task leaves behind
# ----------------------------------------------------------------------------------------------
# A worker that is killed (dask then grades its task elsewhere) cannot remove its folders (its
# task's files, its kernels' working folders, its warm parent's folder: /dev/shm is memory) or its
# submissions' cgroups. Their names carry their owner (owner_tag()); the next worker on the machine
# removes those whose owner is no longer running.

def _start_time(pid: int | str) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _pid_namespace() -> str:
    return os.readlink("/proc/self/ns/pid").split("[")[-1].rstrip("]")


@functools.lru_cache(maxsize=None)
def _owner_tag(pid: int) -> str:
    return f"{_pid_namespace()}.{pid}.{_start_time('self')}"


def owner_tag() -> str:
    """This process, as the names of its folders and cgroups carry it: pid namespace, pid and start
    time (a pid alone is reused; a pid of another namespace is not ours to judge)."""
    return _owner_tag(os.getpid())


def _dead_owner(name: str, namespace: str) -> bool:
    parts = name.split("-")
    for part in parts:
        fields = part.split(".")
        if len(fields) == 3 and all(f.isdigit() for f in fields):
            return fields[0] == namespace and _start_time(fields[1]) != fields[2]
    return False


def sweep_leftovers(roots: list[str]) -> list[str]:
    """Remove the grader's folders in ``roots`` and its cgroups whose owner has died; what was removed."""
    namespace, removed = _pid_namespace(), []
    for root in dict.fromkeys(roots):
        try:
            entries = list(Path(root).iterdir())
        except OSError:
            continue
        for path in entries:
            if path.name.startswith("agr-") and path.is_dir() and not path.is_symlink() and _dead_owner(path.name, namespace):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(str(path))
    mechanism = limits.chosen()
    for name in sorted(n for n in mechanism.names() if _dead_owner(n, namespace)):
        mechanism.Limits.existing(name).remove()
        removed.append(name)
    return removed
