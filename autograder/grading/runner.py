"""The worker's side of a grading kernel: start it, run code in it with a time limit, read what
it recorded, and survive what a notebook can do to it (loops, exits, floods of output)."""
from __future__ import annotations

import functools
import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import zmq
from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file

from . import sandbox, sanitize
from .kernel import REPLY_MIME

MAX_OUTPUT_CHARS = 100_000          # output kept per step, for the autograded notebook and the feedback
MAX_MESSAGE_BYTES = 12 * 1024 * 1024  # larger iopub messages are dropped by zmq, not read
RECEIVE_QUEUE = 16                    # iopub messages zmq holds for the worker at most
MAX_NOTEBOOK_OUTPUT_CHARS = 2_000_000  # output kept per notebook, all cells, restarts and replays together
INTERRUPT_GRACE = 5.0               # seconds a timed-out cell gets to stop after an interrupt
STARTUP_TIMEOUT = 120.0
IDLE_AFTER_REPLY = 5.0              # seconds to wait for the last outputs once the kernel has replied


class KernelStartError(RuntimeError):
    pass


class Garbled(Exception):
    """The kernel sent a message the grader cannot read (not JSON, bad UTF-8, nested too deeply,
    fields of the wrong types): the notebook interfered with the grader. The submission's error
    (its row, cached), never the grader's: a re-run would read the same message again."""


# What reading a message the kernel made can raise: anything of the kind is Garbled.
UNREADABLE = (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError)


def reading(execute):
    """``execute`` (a kernel's), where a failure of any kind reading and keeping the kernel's
    messages is :class:`Garbled`."""
    @functools.wraps(execute)
    def wrapper(*args, **kwargs):
        try:
            return execute(*args, **kwargs)
        except UNREADABLE as error:
            raise Garbled(f"{type(error).__name__}: {str(error)[:200]}") from None
    return wrapper


def kill_group(proc: subprocess.Popen) -> None:
    """Kill the process group ``proc`` leads (a sandbox: everything in it dies with it) and reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


@dataclass
class StepResult:
    status: str                     # ok, error, timeout, died
    outputs: list = field(default_factory=list)
    ename: str = ""
    evalue: str = ""
    elapsed: float = 0.0
    exit_code: int | None = None    # for died
    killed: bool = False            # the kernel had to be killed (timeout without stopping)
    truncated: bool = False
    reply: str | None = None        # the kernel's answer to a grader's request (see kernel.py)
    hidden: object = None           # remote.HiddenResult, for a hidden test run by the grader
    visible_check: tuple | None = None  # (name, got, expected) of a visible check that failed


class OutputBudget:
    """What a notebook may still print, in characters kept, over all its cells."""

    def __init__(self, chars: int = MAX_NOTEBOOK_OUTPUT_CHARS):
        self.left = chars
        self.exhausted = False


class GradingKernel:
    """One kernel process (sandboxed when possible) for one notebook."""

    def __init__(self, workdir: Path, cwd: Path, launch: dict, use_sandbox: bool, limits=None, outputs=None):
        self.workdir, self.cwd = workdir, cwd
        self.limits = limits                # the submission's limits (limits.chosen().Limits) or None
        self.outputs = outputs if outputs is not None else OutputBudget()
        self.ipc = workdir / "ipc"
        self.launch = launch
        self.use_sandbox = use_sandbox
        self.log_path = self.ipc / "kernel.log"
        self.proc: subprocess.Popen | None = None
        self.client: BlockingKernelClient | None = None
        self.context: zmq.Context | None = None

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self.ipc.mkdir(parents=True, exist_ok=True)
        for old in self.ipc.glob("k-*"):
            old.unlink()
        connection_file = str(self.ipc / "connection.json")
        write_connection_file(connection_file, ip=str(self.ipc / "k"), transport="ipc",
                              key=secrets.token_hex(16).encode())
        launch = dict(self.launch, connection_file=connection_file, seccomp=self.use_sandbox)
        launch_path = self.ipc / "launch.json"
        launch_path.write_text(json.dumps(launch))
        os.chmod(launch_path, 0o600)
        script = sandbox.KERNEL_SCRIPT if self.use_sandbox else sandbox.kernel_source()
        argv = [sandbox.python(), "-I", script, str(launch_path)]
        env = sandbox.kernel_env(str(self.workdir / "home"))
        if self.use_sandbox:
            argv = sandbox.command(argv, self.workdir, self.cwd, files=self.launch.get("files"),
                                   cwd_bytes=self.launch.get("cwd_bytes"))
        else:
            (self.workdir / "home").mkdir(exist_ok=True)
        if self.limits is not None:
            argv = self.limits.wrap(argv)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, cwd=self.cwd if not self.use_sandbox else "/", env=env,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.context = zmq.Context()
        self.client = BlockingKernelClient(context=self.context)
        self.client.load_connection_file(connection_file)
        self.client.start_channels()
        # A notebook printing hundreds of megabytes must not fill the worker's memory: larger
        # messages are dropped by zmq, and at most RECEIVE_QUEUE messages wait to be read.
        self.client.iopub_channel.socket.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        self.client.iopub_channel.socket.setsockopt(zmq.RCVHWM, RECEIVE_QUEUE)
        # Ready when a kernel_info request is answered on the shell channel *and* its status
        # messages arrive on iopub (so the subscription is live and no output can be missed).
        deadline = time.monotonic() + STARTUP_TIMEOUT
        replied = subscribed = False
        while not (replied and subscribed):
            if self.proc.poll() is not None:
                raise KernelStartError(f"the grading kernel exited at start (code {self.proc.returncode}): "
                                       f"{self.log_tail()}")
            if time.monotonic() > deadline:
                raise KernelStartError(f"the grading kernel did not start within {STARTUP_TIMEOUT:.0f} s: "
                                       f"{self.log_tail()}")
            self.client.kernel_info()
            end = time.monotonic() + 0.5
            while time.monotonic() < end and not (replied and subscribed):
                try:
                    if self.client.get_shell_msg(timeout=0.02)["msg_type"] == "kernel_info_reply":
                        replied = True
                except queue.Empty:
                    pass
                try:
                    msg = self.client.get_iopub_msg(timeout=0.02)
                    if msg["parent_header"].get("msg_type") == "kernel_info_request":
                        subscribed = True
                except queue.Empty:
                    pass
        # Drain what is left of the start-up messages.
        while True:
            try:
                self.client.get_iopub_msg(timeout=0.02)
            except queue.Empty:
                break
        while True:
            try:
                self.client.get_shell_msg(timeout=0.0)
            except queue.Empty:
                break

    def log_tail(self, chars: int = 600) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:].strip()
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.client is not None:
            try:
                self.client.stop_channels()
            except Exception:
                pass
            self.client = None
        if self.proc is not None:
            kill_group(self.proc)
        if self.context is not None:
            self.context.destroy(linger=0)
            self.context = None

    def interrupt(self) -> None:
        msg = self.client.session.msg("interrupt_request", {})
        self.client.control_channel.send(msg)

    # -- execution ------------------------------------------------------------------------------
    @reading
    def execute(self, code: str, timeout: float, reply_mime: str | None = None) -> StepResult:
        """Run ``code``; with ``reply_mime``, it is a grader's request: keep the answer, not the output."""
        started = time.monotonic()
        result = StepResult("ok")
        msg_id = self.client.execute(code, silent=False, store_history=True, allow_stdin=False, stop_on_error=False)
        deadline = started + timeout
        interrupted = False
        idle = replied = False
        replied_at = None
        kept = 0
        while not (idle and replied):
            now = time.monotonic()
            if replied and not idle and now - replied_at > IDLE_AFTER_REPLY:
                break  # the idle status was lost: the reply is what counts
            if now > deadline:
                if not interrupted:
                    interrupted = True
                    result.status = "timeout"
                    try:
                        self.interrupt()
                    except Exception:
                        pass
                    deadline = now + INTERRUPT_GRACE
                    continue
                result.killed = True
                self.kill()
                break
            if not self.alive():
                result.status, result.exit_code = "died", self.proc.returncode
                break
            got_something = False
            if not idle:
                try:
                    msg = self.client.get_iopub_msg(timeout=min(0.1, max(deadline - now, 0.001)))
                    got_something = True
                except queue.Empty:
                    msg = None
                if msg is not None and msg["parent_header"].get("msg_id") == msg_id:
                    kind, content = msg["msg_type"], msg["content"]
                    if kind == "status":
                        idle = content.get("execution_state") == "idle"
                    elif kind == "clear_output":
                        result.outputs, kept = [], 0
                    elif kind in ("stream", "display_data", "execute_result", "error"):
                        if kind == "error" and result.status == "ok":
                            result.status, result.ename, result.evalue = "error", str(content.get("ename", "")), str(content.get("evalue", ""))
                        data = content.get("data") if kind == "display_data" else None
                        if isinstance(data, dict) and REPLY_MIME in data:
                            if reply_mime and isinstance(data[REPLY_MIME], str):
                                result.reply = data[REPLY_MIME]
                        elif not reply_mime:
                            kept = self._add_output(result, msg, kept)
            if not replied:
                try:
                    reply = self.client.get_shell_msg(timeout=0 if got_something or not idle else 0.1)
                except queue.Empty:
                    reply = None
                if reply is not None and reply["parent_header"].get("msg_id") == msg_id:
                    replied, replied_at = True, time.monotonic()
                    content = reply["content"]
                    if content.get("status") == "error" and result.status == "ok":
                        result.status, result.ename, result.evalue = "error", str(content.get("ename", "")), str(content.get("evalue", ""))
                    elif content.get("status") == "aborted" and result.status == "ok":
                        result.status, result.ename = "error", "aborted"
        if interrupted and result.status not in ("died",):
            result.status = "timeout"
        result.elapsed = time.monotonic() - started
        return result

    def _add_output(self, result: StepResult, msg: dict, kept: int) -> int:
        return add_output(result, msg, kept, self.outputs)


def not_kept(result: StepResult, outputs: OutputBudget, exhausted: bool) -> None:
    """An output was not kept; ``exhausted``: it was over what the notebook may still print."""
    outputs.exhausted = outputs.exhausted or exhausted
    if not result.truncated:
        result.truncated = True
        result.outputs.append(nbformat.v4.new_output(
            "stream", name="stderr", text="\n[... further output was not kept by the grader ...]\n"))


def add_output(result: StepResult, msg: dict, kept: int, outputs: OutputBudget) -> int:
    """Keep the output of ``msg`` (a Jupyter iopub message) in ``result``, within the step's and
    the notebook's limits; the characters counted for this step so far."""
    try:
        output = nbformat.v4.output_from_msg(msg)
    except Exception:
        return kept
    output = sanitize.output(output)   # nothing that runs in a browser is kept
    if output is None:
        return kept
    size = len(json.dumps(output))
    if kept + size > MAX_OUTPUT_CHARS or size > outputs.left:
        not_kept(result, outputs, exhausted=size > outputs.left)
        return kept + size
    if (output.output_type == "stream" and result.outputs and result.outputs[-1].output_type == "stream"
            and result.outputs[-1].name == output.name):
        result.outputs[-1].text += output.text
    else:
        result.outputs.append(output)
    outputs.left -= size
    return kept + size
