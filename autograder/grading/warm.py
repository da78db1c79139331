"""Warm kernels: each worker process keeps a preloaded parent (``kernel.py --warm``) in a sandbox of its
own, and each submission runs in a child forked from it, under the submission's limits and in
namespaces of its own (``confine.py``: the child cannot see or address the parent).

The worker's side: :class:`Parent` starts the sandboxed parent and asks it for children;
:class:`WarmKernel` drives one child with the interface of :class:`runner.GradingKernel` (start,
execute with a time limit, interrupt, kill), so :mod:`execute` and :mod:`remote` treat both
alike. Warm kernels need bubblewrap; the submission's limits (:mod:`limits`: its cgroup, or
without cgroups its processes, in the child's own PID namespace) are what kills everything it
started (double-forked, ``setsid``) before the next child is forked. Without bubblewrap the
grader refuses to grade; with ``--no-sandbox`` it starts one kernel process per submission
(``AUTOGRADER_KERNELS=cold`` asks for that anyway, for comparison).
"""
from __future__ import annotations

import atexit
import json
import multiprocessing.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from . import limits, sandbox
from .kernel import REPLY_MIME
from .runner import Garbled, KernelStartError, OutputBudget, StepResult, add_output, kill_group, not_kept, reading
from .runner import INTERRUPT_GRACE, MAX_MESSAGE_BYTES, STARTUP_TIMEOUT
from .kernel import HEADER

CONTROL_TIMEOUT = 30.0      # seconds the parent gets to answer fork, wait and clean


def wanted() -> bool:
    """Warm kernels unless ``AUTOGRADER_KERNELS=cold`` (one kernel process per submission)."""
    return os.environ.get("AUTOGRADER_KERNELS", "warm").strip().lower() != "cold"


class ParentDied(RuntimeError):
    pass


def parse_frame(data: bytes) -> dict:
    """A frame's message, or ``{"t": "garbled"}`` for one that is not a JSON object whatever the
    reason (bad UTF-8, nesting deep enough for a RecursionError...): the caller makes it the
    submission's error (:class:`runner.Garbled`), never the grader's."""
    try:
        message = json.loads(data)
    except (ValueError, RecursionError) as error:
        return {"t": "garbled", "error": f"{type(error).__name__}: {str(error)[:200]}"}
    return message if isinstance(message, dict) else {"t": "garbled", "error": f"a {type(message).__name__}"}


class Frames:
    """Length-prefixed JSON messages from a socket, read with time limits; frames over the
    size limit are skipped, not read into memory."""

    def __init__(self, sock: socket.socket):
        self.sock, self.buffer, self.skip, self.eof = sock, bytearray(), 0, False
        self.pending: list[dict] = []

    def read(self, timeout: float) -> list[dict]:
        """The messages that arrive within ``timeout`` (at least one if any); EOFError at the end."""
        if self.pending:
            messages, self.pending = self.pending, []
            return messages
        if self.eof:
            raise EOFError
        self.sock.settimeout(max(timeout, 0.0))
        try:
            chunk = self.sock.recv(1 << 20)
        except (TimeoutError, socket.timeout, BlockingIOError):
            return []
        except OSError:
            chunk = b""
        if not chunk:
            self.eof = True
            raise EOFError
        self.buffer += chunk
        messages = []
        while True:
            if self.skip:
                dropped = min(self.skip, len(self.buffer))
                del self.buffer[:dropped]
                self.skip -= dropped
                if self.skip:
                    break
            if len(self.buffer) < HEADER.size:
                break
            size = HEADER.unpack(self.buffer[:HEADER.size])[0]
            if size > MAX_MESSAGE_BYTES:
                del self.buffer[:HEADER.size]
                self.skip = size
                messages.append({"t": "dropped", "bytes": size})
                continue
            if len(self.buffer) < HEADER.size + size:
                break
            data = bytes(self.buffer[HEADER.size:HEADER.size + size])
            del self.buffer[:HEADER.size + size]
            messages.append(parse_frame(data))
        return messages

    def one(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            if self.pending:
                return self.pending.pop(0)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.pending.extend(self.read(min(left, 0.5)))


def _send(sock: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    sock.settimeout(CONTROL_TIMEOUT)
    sock.sendall(HEADER.pack(len(data)) + data)
    if fds:
        socket.send_fds(sock, [b"f"], fds)


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _ns_pids(pid: int) -> list[int]:
    """The pid of ``pid`` in each PID namespace it is in, the host's first."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return [int(n) for n in line.split()[1:]]
    except OSError:
        pass
    return []


def _find(root: int, ns_pid: int) -> int | None:
    """The host pid of the process numbered ``ns_pid`` in its own (innermost) namespace, below ``root``."""
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid != root and _ns_pids(pid)[-1:] == [ns_pid]:
            return pid
        todo += _children(pid)
    return None


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"


class Parent:
    """The preloaded parent of one worker process, in its sandbox; one submission at a time."""

    def __init__(self, launch: dict, tmp_root: str | None):
        self.launch = launch
        root = tmp_root or ("/dev/shm" if os.access("/dev/shm", os.W_OK) else "/tmp")
        self.dir = Path(tempfile.mkdtemp(prefix=f"agr-warm-{sandbox.owner_tag()}-", dir=root))
        self.dir.chmod(0o700)
        self.cwd, self.inbox = self.dir / "cwd", self.dir / "inbox"
        self.cwd.mkdir()
        self.inbox.mkdir()
        self.proc: subprocess.Popen | None = None
        self.control: socket.socket | None = None
        self.frames: Frames | None = None
        self.pid: int | None = None     # the parent's pid on the host
        self.starts = 0
        self.lock = threading.Lock()    # one submission at a time

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and self.pid is not None and _state(self.pid) not in "ZX"

    def start(self) -> None:
        self.stop()
        self.starts += 1
        ours, theirs = socket.socketpair()
        launch_path = self.dir / "launch.json"
        launch_path.write_text(json.dumps(dict(self.launch, tmp_bytes=sandbox.TMP_BYTES)))
        argv = [sandbox.python(), "-I", sandbox.KERNEL_SCRIPT, "--warm", self.inside(launch_path), str(theirs.fileno())]
        user = limits.chosen().sandbox_user()
        if user is not None:   # its folder: the sandbox's uid (its group) reads it, no other
            os.chown(self.dir, -1, user)
            self.dir.chmod(0o750)
        argv = sandbox.command(argv, self.dir, self.cwd, cwd_bytes=self.launch.get("cwd_bytes"), warm=True, user=user)
        log = open(self.dir / "parent.log", "wb")
        try:
            self.proc = subprocess.Popen(argv, cwd="/", env=sandbox.kernel_env("/tmp/home"), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, pass_fds=(theirs.fileno(),),
                                         start_new_session=True)
        finally:
            theirs.close()
            log.close()
        self.control, self.frames = ours, Frames(ours)
        try:
            ready = self.frames.one(STARTUP_TIMEOUT)
        except (TimeoutError, EOFError):
            tail = (self.dir / "parent.log").read_text(errors="replace")[-600:].strip()
            self.stop()
            raise KernelStartError(f"the warm parent did not start: {tail}") from None
        if ready.get("tasks") != 1:   # forking a process with threads is not safe
            self.stop()
            raise KernelStartError(f"the warm parent has {ready.get('tasks')} threads, not 1")
        self.pid = _find(self.proc.pid, ready.get("pid", 2))
        if self.pid is None:
            self.stop()
            raise KernelStartError("the warm parent's process is not found")

    def inside(self, path: Path) -> str:
        """``path``, in this parent's folder, as the sandbox shows it."""
        return str(Path(sandbox.WARM_DIR) / Path(path).relative_to(self.dir))

    def ask(self, message: dict, fds: list[int] | None = None) -> dict:
        if not self.alive():
            raise ParentDied("the warm parent is not running")
        try:
            _send(self.control, message, fds)
            answer = self.frames.one(CONTROL_TIMEOUT)
        except (OSError, EOFError, TimeoutError) as error:
            self.stop()
            raise ParentDied(f"the warm parent did not answer ({type(error).__name__})") from None
        if answer.get("t") == "garbled":
            self.stop()
            raise ParentDied(f"the warm parent's answer could not be read ({answer.get('error')})")
        return answer

    def fork(self) -> tuple[int, int, socket.socket]:
        """A new child: its pid in the sandbox, on the host, and the worker's end of its socket."""
        ours, theirs = socket.socketpair()
        try:
            answer = self.ask({"op": "fork"}, [theirs.fileno()])
        except ParentDied:
            ours.close()
            raise
        finally:
            theirs.close()
        level = len(_ns_pids(self.pid)) - 1   # the child's pid in the parent's namespace (it is 1 in its own)
        host = next((pid for pid in _children(self.pid) if _ns_pids(pid)[level:level + 1] == [answer["pid"]]), None)
        if host is None:
            ours.close()
            raise KernelStartError("the forked child is not found")
        return answer["pid"], host, ours

    def stop(self) -> None:
        if self.control is not None:
            self.control.close()
            self.control = None
        if self.proc is not None:
            kill_group(self.proc)
        self.pid = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


_parents: dict[tuple, Parent] = {}


def parent_for(launch: dict, tmp_root: str | None) -> Parent:
    """This worker process's parent for these limits (started as the run starts, by
    :func:`worker.prestart`, or else when first needed)."""
    names = ("memory_bytes", "file_bytes", "cwd_bytes", "processes")
    key = (*(launch.get(k) for k in names), tmp_root)
    if key not in _parents:
        for old in _parents.values():
            old.remove()
        _parents.clear()
        _parents[key] = Parent({k: launch.get(k) for k in names}, tmp_root)
        multiprocessing.util.Finalize(_parents[key], _parents[key].remove, exitpriority=10)
    return _parents[key]


def _remove_parents() -> None:
    for parent in _parents.values():
        parent.remove()


# At exit, the sandbox dies with this process anyway (bwrap --die-with-parent); this removes its
# folder too. A multiprocessing worker ends without atexit, but runs the finalizers registered in
# it (see parent_for).
atexit.register(_remove_parents)


class WarmKernel:
    """One forked child of the warm parent, for one submission (or one restart of it)."""

    def __init__(self, parent: Parent, limits, files: str, outputs: OutputBudget | None = None):
        self.parent, self.limits, self.files = parent, limits, files
        self.outputs = outputs if outputs is not None else OutputBudget()
        self.sock: socket.socket | None = None
        self.frames: Frames | None = None
        self.ns_pid = self.pid = None
        self.exit_code = None
        self.seq = 0

    def start(self) -> None:
        """Fork; put the child under the submission's limits; only then let it run."""
        self.ns_pid, self.pid, self.sock = self.parent.fork()
        self.frames = Frames(self.sock)
        try:
            self.limits.join(self.pid)
            _send(self.sock, {"op": "start", "files": self.parent.inside(self.files)})
            ready = self.frames.one(STARTUP_TIMEOUT)
        except (OSError, EOFError, TimeoutError) as error:
            self.kill()
            raise KernelStartError(f"the forked kernel did not start ({type(error).__name__}: {error})") from None
        if ready.get("t") != "ready":
            self.kill()
            raise KernelStartError("the forked kernel did not start")

    def alive(self) -> bool:
        return self.sock is not None and not self.frames.eof and _state(self.pid) not in "ZX"

    def interrupt(self) -> None:
        if _state(self.pid) not in "ZX":
            os.kill(self.pid, signal.SIGINT)

    def kill(self) -> None:
        """Kill the child and everything it started (its limits'), and learn its exit code."""
        if self.sock is None:
            return
        self.sock.close()
        self.sock = None
        self.limits.kill_all()
        try:
            self.exit_code = self.parent.ask({"op": "wait", "pid": self.ns_pid, "timeout": 5})["code"]
        except ParentDied:
            pass

    def _died(self, result: StepResult) -> None:
        try:
            self.exit_code = self.parent.ask({"op": "wait", "pid": self.ns_pid, "timeout": 2})["code"]
        except ParentDied:
            self.exit_code = None
        result.status, result.exit_code = "died", self.exit_code

    @reading
    def execute(self, code: str, timeout: float, reply_mime: str | None = None) -> StepResult:
        """As :meth:`runner.GradingKernel.execute`."""
        started = time.monotonic()
        result = StepResult("ok")
        self.seq += 1
        deadline = started + timeout
        interrupted = False
        kept = 0
        try:
            _send(self.sock, {"op": "run", "code": code, "seq": self.seq})
        except OSError:
            self._died(result)
            return result
        done = False
        while not done:
            now = time.monotonic()
            if now > deadline:
                if not interrupted:
                    interrupted, result.status = True, "timeout"
                    self.interrupt()
                    deadline = now + INTERRUPT_GRACE
                    continue
                result.killed = True
                self.kill()
                break
            try:
                messages = self.frames.read(min(0.1, max(deadline - now, 0.001)))
            except EOFError:
                self._died(result)
                break
            if not messages and _state(self.pid) in "ZX":
                self._died(result)
                break
            for message in messages:
                if message.get("t") == "garbled":
                    raise Garbled(message.get("error"))
                if message.get("t") == "done" and message.get("seq") == self.seq:
                    if message.get("status") == "error" and result.status == "ok":
                        result.status, result.ename, result.evalue = "error", str(message.get("ename", "")), str(
                            message.get("evalue", ""))
                    done = True
                    break
                if message.get("t") == "dropped" and not reply_mime:   # too large to send: over any budget
                    not_kept(result, self.outputs, exhausted=True)
                if message.get("t") != "out" or not isinstance(message.get("content"), dict):
                    continue
                kind, content = message.get("msg_type"), message["content"]
                if kind == "clear_output":
                    result.outputs, kept = [], 0
                elif kind in ("stream", "display_data", "execute_result", "error"):
                    if kind == "error" and result.status == "ok":
                        result.status, result.ename, result.evalue = "error", str(content.get("ename", "")), str(
                            content.get("evalue", ""))
                    data = content.get("data") if kind == "display_data" else None
                    if isinstance(data, dict) and REPLY_MIME in data:
                        if reply_mime and isinstance(data[REPLY_MIME], str):
                            result.reply = data[REPLY_MIME]
                    elif not reply_mime:
                        kept = add_output(result, {"msg_type": kind, "content": content, "header": {"msg_type": kind}},
                                          kept, self.outputs)
        if interrupted and result.status != "died":
            result.status = "timeout"
        result.elapsed = time.monotonic() - started
        return result


def clean(parent: Parent, limits) -> None:
    """After a submission (or a restart): no process of it is left; what it wrote or queued was in
    its child's own mounts and IPC namespace, gone with it (the parent reaps the child)."""
    limits.kill_all()
    if limits.pids():
        parent.stop()
        return
    try:
        parent.ask({"op": "clean"})
    except ParentDied:
        pass
