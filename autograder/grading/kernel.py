"""The grading kernel: an IPython kernel that runs one notebook for the grader, and knows nothing
of the course.

Started by the worker (:mod:`autograder.grading.runner`) as ``python -I KERNEL_DIR/kernel.py
LAUNCH.json``, inside the sandbox when there is one. The sandbox shows it this file and
``wire.py`` and nothing else of the course: not :mod:`autograder.reference`, not the solutions,
not the hidden tests, no expected value. Before any notebook code runs it sets resource limits,
imports torch and numpy (one thread) and copies the files submitted next to the notebook into its
working folder.

The worker sends the notebook's cells (the student's, the locked set-up, the visible part of each
test) as code to run. A hidden test runs in the worker, outside: where it uses the student's
functions, the worker sends requests instead, ``_autograder_kernel.serve(MESSAGE)``: call this
function of the notebook with these arguments, read this attribute of what it returned. The answer
goes back as data (:mod:`wire`), in a display message of its own type that the worker reads and
never shows. Nothing here needs protecting: a notebook that replaces this module, or sends
messages of its own, can only change the answers it gives; the grader computes the right answers
and compares, outside.
"""
from __future__ import annotations

import itertools
import json
import os
import resource
import shutil
import signal
import sys
import traceback
import types

REPLY_MIME = "text/x-autograder-reply"
MAX_STREAM_BYTES_PER_CELL = 1_000_000  # stdout/stderr beyond this, per cell, is dropped here already


def _set_limits(memory_bytes: int, file_bytes: int) -> None:
    for limit, value in ((resource.RLIMIT_AS, memory_bytes), (resource.RLIMIT_FSIZE, file_bytes),
                         (resource.RLIMIT_CORE, 0)):
        if value:
            soft, hard = resource.getrlimit(limit)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(limit, (value, hard))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing


def _copy_files(source: str | None, cwd: str) -> None:
    """The files submitted next to the notebook, into the (private, size-limited) working folder."""
    if source and os.path.isdir(source):
        shutil.copytree(source, cwd, dirs_exist_ok=True, symlinks=True)


def make_server(shell, wire, torch, np):
    """The module notebook requests go to: ``serve(message)`` answers one request."""
    kept: dict[int, object] = {}
    counter = itertools.count(1)

    def keep(obj) -> int:
        number = next(counter)
        kept[number] = obj
        return number

    def deref(data):
        if data["id"] not in kept:
            raise wire.WireError(f"no object number {data['id']}")
        return kept[data["id"]]

    def copy(value):
        if isinstance(value, torch.Tensor):
            return value.detach().clone().requires_grad_(value.requires_grad)
        if isinstance(value, (list, tuple)):
            return type(value)(copy(v) for v in value)
        if isinstance(value, dict):
            return {k: copy(v) for k, v in value.items()}
        return value

    def decode(data):
        return wire.decode(data, torch, np, deref, copy)

    def encode(value):
        return wire.encode(value, torch, np, keep)

    recorded: list = []

    def recorder(function):
        """``function`` (the notebook's ``check(name, got, expected, ...)``), keeping its last
        failing call's values: the grader names the likely mistake from them."""
        def check(*args, **kwargs):
            __tracebackhide__ = True  # IPython leaves this frame out of tracebacks  # noqa: F841
            try:
                return function(*args, **kwargs)
            except AssertionError:
                recorded[:] = [args[:3]]
                raise
        check.__doc__, check.__wrapped__ = function.__doc__, function
        return check

    def answer(request: dict) -> dict:
        op = request.get("op")
        if op == "record":   # wrap the notebook's function of this name (see recorder)
            name = str(request.get("name"))
            if callable(shell.user_ns.get(name)) and not hasattr(shell.user_ns[name], "__wrapped__"):
                shell.user_ns[name] = recorder(shell.user_ns[name])
            return {"ok": True}
        if op == "recorded":
            values, recorded[:] = list(recorded), []
            return {"ok": True, "result": encode(values[0] if values else None)}
        if op == "resolve":
            values = {}
            for name in request.get("names", [])[:1000]:
                if isinstance(name, str) and name in shell.user_ns:
                    values[name] = encode(shell.user_ns[name])
            return {"ok": True, "values": values}
        target = deref(request)
        if op == "call":
            args, kwargs = decode(request["args"]), decode(request["kwargs"])
            with torch.set_grad_enabled(bool(request.get("grad", True))):
                result = target(*args, **kwargs)
            after = [encode(t) for t in wire.tensors_in([args, kwargs], torch)]
            return {"ok": True, "result": encode(result), "after": after}
        if op == "getattr":
            return {"ok": True, "result": encode(getattr(target, str(request["name"])))}
        if op == "iter":
            items = list(itertools.islice(iter(target), wire.MAX_ITEMS + 1))
            if len(items) > wire.MAX_ITEMS:
                raise wire.WireError(f"more than {wire.MAX_ITEMS} items")
            return {"ok": True, "result": encode(items)}
        if op == "len":
            return {"ok": True, "result": encode(len(target))}
        if op == "getitem":
            return {"ok": True, "result": encode(target[decode(request["key"])])}
        raise wire.WireError(f"unknown request {op!r}")

    def serve(message: str) -> None:
        from IPython.display import publish_display_data
        try:
            request = wire.loads(message)
            reply = answer(request)
        except KeyboardInterrupt:
            raise   # the worker's time limit: the cell stops, the worker knows why
        except BaseException as error:  # the student's code failed: say how, as the notebook would
            try:
                text = f"{type(error).__name__}: {error}"[:2000]
                tb = "".join(traceback.format_exception(error)[-8:])[-4000:]
            except BaseException:
                text, tb = type(error).__name__, ""
            reply = {"ok": False, "error": text, "traceback": tb, "wire": isinstance(error, wire.WireError)}
        try:
            payload = wire.dumps(reply)
        except BaseException as error:
            payload = wire.dumps({"ok": False, "error": f"the answer cannot be sent: {error}"[:2000], "wire": True})
        publish_display_data({REPLY_MIME: payload})

    module = types.ModuleType("_autograder_kernel", "Answers the grader's requests; see kernel.py.")
    module.serve = serve
    return module


def _cap_streams(shell) -> None:
    """Keep at most MAX_STREAM_BYTES_PER_CELL of stdout and stderr per cell (the worker also
    limits what it keeps, whatever this process sends)."""
    used: dict = {}
    for stream in (sys.stdout, sys.stderr):
        write = stream.write

        def capped(text, _write=write, _stream=stream):
            key = (id(_stream), shell.execution_count)
            count = used.get(key, 0)
            if not isinstance(text, str) or count >= MAX_STREAM_BYTES_PER_CELL:
                return len(text) if isinstance(text, str) else 0
            if count + len(text) > MAX_STREAM_BYTES_PER_CELL:
                text = text[:MAX_STREAM_BYTES_PER_CELL - count] + "\n[... output truncated by the grader ...]\n"
            used[key] = count + len(text)
            return _write(text)

        stream.write = capped


def main(argv: list[str]) -> None:
    launch_path = argv[1]
    with open(launch_path) as f:
        launch = json.load(f)
    os.unlink(launch_path)
    _set_limits(launch.get("memory_bytes", 0), launch.get("file_bytes", 0))
    _copy_files(launch.get("files"), os.getcwd())

    sys.dont_write_bytecode = True   # -I ignores PYTHONDONTWRITEBYTECODE; write nothing beside the runner
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    import wire
    sys.path.remove(here)
    del sys.modules["wire"]
    import numpy as np
    import torch
    torch.set_num_threads(1)

    from ipykernel.kernelapp import IPKernelApp
    app = IPKernelApp.instance()
    app.initialize(["-f", launch["connection_file"], "--IPKernelApp.capture_fd_output=False",
                    "--HistoryManager.enabled=False", "--InteractiveShell.colors=NoColor"])
    sys.modules["_autograder_kernel"] = make_server(app.shell, wire, torch, np)
    _cap_streams(app.shell)
    sys.path.insert(0, "")  # modules submitted next to the notebook are importable, as in Jupyter
    app.start()


if __name__ == "__main__":
    main(sys.argv)
