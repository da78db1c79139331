"""Where student code runs: a bubblewrap sandbox when the machine has one.

The grading kernel sees a read-only system (``/usr``, the Python installation and the course's
virtual environment, with the ``autograder`` package masked if it is installed there), the four
files of the kernel runner (``kernel.py``, ``wire.py``, ``confine.py``, ``syscall_filter.py``: no course knowledge), its working folder
and ``/tmp`` as size-limited tmpfs (memory, not the host's disk), and the folder of the kernel's
sockets; no network, no other process, no home directory, none of the instructor's environment
variables. The course folder (solutions, hidden tests, reference), the other submissions, the
gradebook and the output folder do not exist in it. The kernel is PID 1's child in a PID namespace
of its own: when the grader kills it, everything it started dies with it (``setsid`` or not).

Where the machine has cgroups the grader can write (v1 as root, as on the course's CI machines),
each submission also gets a cgroup of its own (:class:`Limits`): memory for all its processes
together, a number of processes, one CPU. Without a working bubblewrap (``apt-get install
bubblewrap``; :func:`bwrap_status` confines a warm child to check) the grader refuses to grade;
with ``--no-sandbox`` the kernel runs as an ordinary process of the instructor's user, with a
cleaned environment and per-process limits only, and every row says so.
"""
from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import autograder

PACKAGE_DIR = Path(autograder.__file__).resolve().parent
RUNNER_DIR = "/opt/autograder-kernel"            # where the sandbox shows the kernel runner
KERNEL_SCRIPT = f"{RUNNER_DIR}/kernel.py"
RUNNER_FILES = ("kernel.py", "wire.py", "confine.py", "syscall_filter.py")
WARM_DIR = "/run/autograder"                     # where a warm parent's sandbox shows its folder
TMP_BYTES = 64 * 2**20                           # /tmp in the sandbox
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
            cwd_bytes: int | None = None, warm: bool = False) -> list[str]:
    """``argv`` wrapped in bubblewrap: read-only system and Python; ``cwd`` a tmpfs of
    ``cwd_bytes``; ``files`` (submitted next to the notebook) read-only, for the runner to copy;
    the rest of ``workdir`` (the kernel's sockets) writable. ``warm``: the sandbox of a warm
    parent (``kernel.py --warm``), which outlives its submissions: ``workdir`` (where each submission's
    files arrive) read-only at WARM_DIR, the root read-only, and the two capabilities the parent
    needs to give each child namespaces of its own (``confine.py``; the child drops them)."""
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
    cmd += ["--proc", "/proc", "--dev", "/dev", "--size", str(TMP_BYTES), "--tmpfs", "/tmp", "--dir", home]
    bound = _read_only_paths()
    for path in bound:
        cmd += ["--ro-bind", path, path]
    if any(str(PACKAGE_DIR).startswith(path + os.sep) for path in bound):
        cmd += ["--tmpfs", str(PACKAGE_DIR)]   # installed into the environment: hide it
    for name in RUNNER_FILES:
        cmd += ["--ro-bind", str(PACKAGE_DIR / "grading" / name), f"{RUNNER_DIR}/{name}"]
    if not check:
        inside = WARM_DIR if warm else str(workdir)   # not below /tmp or /dev, which a warm child replaces
        cwd = Path(inside) / cwd.relative_to(workdir) if warm else cwd
        cmd += ["--ro-bind" if warm else "--bind", str(workdir), inside]
        if files:
            cmd += ["--ro-bind", files, files]
        cmd += ["--size", str(cwd_bytes or 256 * 2**20), "--tmpfs", str(cwd)]
    if warm:
        cmd += ["--remount-ro", "/", "--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETPCAP"]
    cmd += ["--clearenv"]
    for key, value in kernel_env(home).items():
        cmd += ["--setenv", key, value]
    cmd += ["--chdir", str(cwd), *argv]
    return cmd


class Limits:
    """A cgroup (v1) per submission: memory, processes and CPU for all its processes together,
    and a way to kill every one of them. ``Limits.available()`` says whether this machine lets
    the grader make them (root, cgroup v1 controllers mounted, as on the course's CI machines)."""

    CONTROLLERS = ("memory", "pids", "cpu")
    ROOT = Path("/sys/fs/cgroup")

    def __init__(self, name: str, memory_bytes: int, pids: int = 128, cpus: float = 1.0):
        self.paths = []
        for controller in self.CONTROLLERS:
            path = self._base(controller) / name
            path.mkdir(parents=True, exist_ok=True)
            self.paths.append(path)
        memory, pid_limit, cpu = self.paths
        (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
        swap = memory / "memory.memsw.limit_in_bytes"
        if swap.exists():
            try:
                swap.write_text(str(memory_bytes))
            except OSError:
                pass
        (pid_limit / "pids.max").write_text(str(pids))
        period = int((cpu / "cpu.cfs_period_us").read_text())
        (cpu / "cpu.cfs_quota_us").write_text(str(int(period * cpus)))

    @classmethod
    def existing(cls, name: str) -> "Limits":
        """The cgroup ``name`` as it is (made by another process), to kill what it holds and remove it."""
        limits = cls.__new__(cls)
        limits.paths = [cls._base(controller) / name for controller in cls.CONTROLLERS]
        return limits

    @classmethod
    def _base(cls, controller: str) -> Path:
        """Our own cgroup of ``controller`` (the grader's limits stay inside its own)."""
        own = ""
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            number, names, path = line.split(":", 2)
            if controller in names.split(","):
                own = path
        return cls.ROOT / controller / own.lstrip("/") / "autograder"

    @classmethod
    @functools.lru_cache(maxsize=None)
    def available(cls) -> tuple[bool, str]:
        try:
            probe = cls(f"probe-{os.getpid()}", 2**30)
            probe.remove()
        except (OSError, ValueError) as error:
            return False, f"no cgroup v1 controllers the grader can write ({type(error).__name__}: {error})"
        return True, "cgroups (memory, pids, cpu) per submission"

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv``, started inside the cgroup: it joins before it runs, so everything it starts
        (bubblewrap's sandbox included) is in it from the first instruction."""
        join = " && ".join(f"echo $$ > '{path}/cgroup.procs'" for path in self.paths)
        return ["/bin/sh", "-c", f'{join} && exec "$@"', "sh", *argv]

    def join(self, pid: int) -> None:
        """Move the process ``pid`` (not yet running student code) into this cgroup."""
        for path in self.paths:
            (path / "cgroup.procs").write_text(str(pid))

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.paths[1] / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def kill_all(self) -> None:
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)

    def oom_killed(self) -> bool:
        try:
            return "oom_kill 0" not in (self.paths[0] / "memory.oom_control").read_text()
        except OSError:
            return False

    def remove(self) -> None:
        self.kill_all()
        for path in self.paths:
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


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
    stale = set()
    for controller in Limits.CONTROLLERS:
        try:
            stale.update(p.name for p in Limits._base(controller).iterdir() if p.is_dir())
        except OSError:
            continue
    for name in sorted(n for n in stale if _dead_owner(n, namespace)):
        Limits.existing(name).remove()
        removed.append(name)
    return removed
