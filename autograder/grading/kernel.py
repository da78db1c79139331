"""The grading kernel: an IPython kernel that runs one notebook for the grader.

Started by the worker (:mod:`autograder.grading.runner`) as
``python -I -m autograder.grading.kernel LAUNCH.json``, inside the sandbox when there is one.
Before any notebook code runs it

* sets resource limits (address space, file size);
* imports torch, numpy and the course package, keeps private references to
  ``autograder.checks`` and ``autograder.reference`` and removes every ``autograder`` module
  from ``sys.modules``: notebook code cannot import the course package (which computes the
  right answers) or reach the copies the hidden tests use;
* compiles the hidden tests (their source is then forgotten, never put in ``linecache``);
* installs an audit hook (``sys.addaudithook``: it cannot be removed) that refuses, and
  reports, what notebook code has no reason to do while being graded: importing the course
  package or reading its files, grabbing frames (``sys._getframe``, ``tb_frame``...), walking
  the heap (``gc.get_objects``), ``ctypes``, tracing, adding audit hooks, or calling the
  grader's own triggers.

The worker then sends the notebook's cells one at a time. A test cell's hidden part is not sent:
the worker sends a trigger, ``sys.audit("autograder.hidden", grade_id, k)``, and the hook runs
the compiled hidden code in a namespace of its own (a copy of the notebook's globals), so the
student's functions cannot see the hidden tests' variables. ``autograder.checks`` records every
check there (the student's value, read from the tensor's storage, and the kernel's verdict) as
JSON lines in the records file; the worker compares the values again outside the kernel, with
expected values from a clean run of the solutions, so nothing the notebook does to the kernel
can turn a wrong value into credit.

Everything secret lives in closures of :func:`install`; nothing the notebook can reach without
the refused operations above (frames, heap walks) refers to them.
"""
from __future__ import annotations

import base64
import builtins
import json
import os
import resource
import signal
import sys
import types

MAX_RECORDED_ELEMENTS = 1_000_000     # larger values are recorded by shape and dtype only
MAX_STREAM_BYTES_PER_CELL = 1_000_000  # stdout/stderr beyond this, per cell, is dropped

# Attributes a notebook could replace to make a kernel-side comparison lie. Each replacement is
# reported (the grader's own comparison does not use them, so it only flags the submission).
WATCHED = {
    "torch": ["allclose", "isclose", "equal", "eq", "ne", "abs", "all", "any", "tensor", "as_tensor",
              "is_tensor", "sigmoid", "exp", "matmul"],
    "torch.Tensor": ["__eq__", "__ne__", "__bool__", "__float__", "__abs__", "__sub__", "__lt__", "__le__",
                     "__gt__", "__ge__", "allclose", "isclose", "equal", "item", "tolist", "numpy", "detach",
                     "all", "any", "to", "__torch_function__"],
    "numpy": ["allclose", "isclose", "array_equal", "asarray", "array", "abs", "all", "any", "exp"],
    "numpy.testing": ["assert_allclose", "assert_array_almost_equal", "assert_array_equal"],
    "builtins": ["isinstance", "issubclass", "type", "abs", "float", "all", "any", "len", "AssertionError",
                 "__import__", "getattr", "print"],
    "math": ["isclose"],
}

FRAME_ATTRIBUTES = {"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"}
FRAME_WALKERS = ("inspect.py", "traceback.py")
TRIGGER = "autograder."


def _set_limits(memory_bytes: int, file_bytes: int) -> None:
    for limit, value in ((resource.RLIMIT_AS, memory_bytes), (resource.RLIMIT_FSIZE, file_bytes),
                         (resource.RLIMIT_CORE, 0)):
        if value:
            soft, hard = resource.getrlimit(limit)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(limit, (value, hard))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing


def _make_serializer(torch, np):
    """Functions that describe a value a check received (its type and the numbers it holds) as
    JSON. Everything they use is captured here, before notebook code runs: replacing
    ``np.array`` or ``torch.Tensor.detach`` later changes nothing. Tensors are read from their
    storage with ``__torch_function__`` overrides off, so a subclass cannot report other numbers
    than the ones it holds."""
    base = torch._C.TensorBase
    no_torch_function = torch._C.DisableTorchFunctionSubclass
    dtype_of, shape_of = base.__dict__["dtype"].__get__, base.__dict__["shape"].__get__
    detach, cpu, to_dtype, to_numpy, set_storage = base.detach, base.cpu, base.to, base.numpy, base.set_
    storage, storage_offset, size, stride = base.untyped_storage, base.storage_offset, base.size, base.stride
    resolve_neg, resolve_conj = base.resolve_neg, base.resolve_conj
    plain_types, empty, float32 = (torch.Tensor, torch.nn.Parameter), torch.empty, torch.float32
    half_types = (torch.float16, torch.bfloat16)
    np_array, np_asarray, np_float64, np_contiguous = np.array, np.asarray, np.float64, np.ascontiguousarray
    numpy_numbers = (np.integer, np.floating)
    b64encode, _type, _issubclass, _str, _int, _float = base64.b64encode, type, issubclass, str, int, float
    float_value, int_value = float.__float__, int.__int__

    def read_tensor(got):
        with no_torch_function():
            dtype = dtype_of(got)
            if _type(got) in plain_types:
                plain = detach(got)
            else:  # a subclass: view its storage through a plain tensor
                plain = empty((0,), dtype=dtype)
                set_storage(plain, storage(got), storage_offset(got), size(got), stride(got))
            plain = resolve_neg(resolve_conj(cpu(plain)))
            if dtype in half_types:
                plain = to_dtype(plain, float32)
            return np_array(to_numpy(plain), copy=True), dtype

    def number(value):
        kind = _type(value)
        if _issubclass(kind, numpy_numbers):
            return _float(np_float64(value))
        if _issubclass(kind, bool):
            return _float(int_value(value))
        if _issubclass(kind, float):
            return float_value(value)
        if _issubclass(kind, int):
            return _float(int_value(value))
        return None

    def serialize(value):
        kind = _type(value)
        cls = f"{kind.__module__}.{kind.__qualname__}"
        if _issubclass(kind, base):
            try:
                with no_torch_function():
                    shape = [_int(n) for n in shape_of(value)]
                    dtype = dtype_of(value)
                count = 1
                for n in shape:
                    count *= n
                if count > MAX_RECORDED_ELEMENTS:
                    return {"type": "tensor", "cls": cls, "dtype": _str(dtype), "shape": shape, "data": None}
                array, dtype = read_tensor(value)
            except Exception as error:  # no storage (a wrapper subclass), another device...
                return {"type": "unreadable", "cls": cls, "error": f"{_type(error).__name__}: {error}"[:300]}
            return {"type": "tensor", "cls": cls, "dtype": _str(dtype), "shape": shape, "np_dtype": array.dtype.str,
                    "data": b64encode(array.tobytes()).decode("ascii")}
        try:
            value_number = number(value)
        except Exception:
            value_number = None
        if value_number is not None:
            return {"type": "number", "cls": cls, "value": value_number}
        return {"type": "other", "cls": cls, "name": kind.__name__}

    def serialize_expected(expected):
        try:
            array = np_asarray(expected, dtype=np_float64)
        except Exception as error:
            return {"error": f"{_type(error).__name__}: {error}"[:300]}
        if array.size > MAX_RECORDED_ELEMENTS:
            return {"shape": list(array.shape), "data": None}
        return {"shape": list(array.shape), "data": b64encode(np_contiguous(array).tobytes()).decode("ascii")}

    return serialize, serialize_expected


def install(shell, private: dict, launch: dict, torch, np) -> None:
    """Install the guard: the audit hook, the recorder, the hidden-test runner."""
    from ipykernel.compiler import get_file_name, get_tmp_directory

    # Originals, captured before any notebook code runs.
    _getframe, _write, _exec, _type, _str, _dict = sys._getframe, os.write, exec, type, str, dict
    _dumps, _get_ident = json.dumps, __import__("_thread").get_ident
    _fspath, _abspath, _isinstance = os.fspath, os.path.abspath, isinstance
    checks = private["autograder.checks"]
    serialize, serialize_expected = _make_serializer(torch, np)
    builtins_snapshot = _dict(vars(builtins))
    real_import = builtins.__import__

    fd = os.open(launch["records"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    cell_dir = get_tmp_directory() + os.sep
    cwd = os.getcwd() + os.sep
    package_dir = os.path.dirname(private["autograder"].__file__) + os.sep
    # Paths notebook code may not open: the course's (solutions, submissions, output), the course
    # package's files, and the grader's own files of this kernel (the records, the connection file),
    # by their path or through /proc.
    private_dir = os.path.dirname(os.path.abspath(launch["records"]))
    protected = tuple(p.rstrip(os.sep) + os.sep for p in [*launch.get("protected", []), private_dir,
                                                          "/proc/self/fd", f"/proc/{os.getpid()}/fd",
                                                          "/proc/thread-self/fd", "/dev/fd"]) + (package_dir,)
    trusted_files = {get_file_name(src) for src in launch["trusted_sources"]}
    student_files: set = set()   # pseudo file names of code the notebook compiled itself
    hidden_code = {}
    for key, src in launch["hidden"].items():
        grade_id, k = key.rsplit("#", 1)
        hidden_code[(grade_id, int(k))] = compile(src, f"<hidden tests {grade_id}>", "exec")
    launch["hidden"].clear()
    watched = []
    modules = {"torch": torch, "torch.Tensor": torch.Tensor, "numpy": np, "numpy.testing": np.testing,
               "builtins": builtins, "math": __import__("math")}
    for owner_name, names in WATCHED.items():
        owner = modules[owner_name]
        for name in names:
            watched.append((f"{owner_name}.{name}", owner, name, vars(owner).get(name)))
    module_identity = [(name, sys.modules.get(name)) for name in ("torch", "numpy", "builtins", "math", "sys")]

    state = {"seed": None, "current": None, "calls": 0, "reported": set(), "streams": {}}
    busy: set = set()

    def emit(record: dict) -> None:
        _write(fd, (_dumps(record) + "\n").encode())

    def flag(reason: str, severe: bool) -> None:
        key = (reason, state["current"], shell.execution_count)
        if key in state["reported"]:
            return
        state["reported"].add(key)
        emit({"ev": "flag", "reason": reason, "severe": severe, "grade_id": state["current"]})

    def kind_of(filename: str) -> str:
        if filename in trusted_files:
            return "trusted"
        if filename.startswith("<hidden tests "):
            return "hidden"
        if filename in student_files or filename.startswith(cell_dir) or filename.startswith(cwd):
            return "student"
        if filename.startswith(package_dir):
            return "grader"
        return "library"

    def student_on_stack(frame) -> bool:
        while frame is not None:
            if kind_of(frame.f_code.co_filename) == "student":
                return True
            frame = frame.f_back
        return False

    def student_called(frame, walkers: bool = False) -> bool:
        """The operation was done by notebook code itself (or, with ``walkers``, through a
        stack-walking function of inspect or traceback that notebook code called)."""
        if frame is None:
            return False
        if kind_of(frame.f_code.co_filename) == "student":
            return True
        if walkers:
            while frame is not None and frame.f_code.co_filename.endswith(FRAME_WALKERS):
                frame = frame.f_back
            return frame is not None and kind_of(frame.f_code.co_filename) == "student"
        return False

    def integrity_scan() -> None:
        for label, owner, name, original in watched:
            if vars(owner).get(name) is not original:
                flag(f"the notebook replaced {label}", False)
        for name, module in module_identity:
            if sys.modules.get(name) is not module:
                flag(f"the notebook replaced the module {name} in sys.modules", False)

    def first_caller(frame):
        """The nearest frame that is not the grader's or a library's: who really called."""
        while frame is not None and kind_of(frame.f_code.co_filename) in ("grader", "library"):
            frame = frame.f_back
        return kind_of(frame.f_code.co_filename) if frame is not None else "none"

    def guarded(function, label):
        def call(*args, **kwargs):
            if first_caller(_getframe(1)) == "student":
                flag(f"the notebook calls {label}", True)
                raise RuntimeError(f"{label} is not available to notebook code while it is graded")
            return function(*args, **kwargs)
        call.__name__, call.__qualname__, call.__doc__ = function.__name__, function.__qualname__, function.__doc__
        return call

    # What hidden tests import: copies of the course modules whose functions refuse notebook
    # callers (a function a hidden test hands to the student's code exposes the test's
    # namespace through its __globals__, which CPython does not audit).
    proxies = {}
    for name in sorted(private):
        proxies[name] = types.ModuleType(name, private[name].__doc__)
    for name, module in private.items():
        for attr, value in vars(module).items():
            if attr.startswith("__") and attr not in ("__all__", "__file__"):
                continue
            if isinstance(value, types.FunctionType) and value.__module__ == name:
                value = guarded(value, f"{name}.{attr}")
            elif isinstance(value, types.ModuleType) and value.__name__ in proxies:
                value = proxies[value.__name__]
            setattr(proxies[name], attr, value)

    def private_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and (name == "autograder" or name.startswith("autograder.")):
            if name not in proxies:
                raise ImportError(f"No module named {name!r}")
            return proxies[name] if fromlist else proxies["autograder"]
        return real_import(name, globals, locals, fromlist, level)

    hidden_builtins = _dict(builtins_snapshot)
    hidden_builtins["__import__"] = private_import

    def observer(kind, **info):
        if kind == "fresh_cases":
            state["seed"] = info["seed"]
            return None
        if kind == "outcome":
            emit({"ev": "outcome", "call": info["call"], "ok": bool(info["ok"]), "message": _str(info["message"])[:2000]})
            return None
        state["calls"] += 1
        call = state["calls"]
        # Who called the check: it must be hidden-test code, not a wrapper the notebook made.
        frame = _getframe(2)
        while frame is not None and kind_of(frame.f_code.co_filename) == "grader":
            frame = frame.f_back
        caller = kind_of(frame.f_code.co_filename) if frame is not None else "none"
        record = {"ev": "check", "call": call, "kind": kind, "grade_id": state["current"],
                  "name": _str(info["name"]), "case": _str(info.get("case", "")), "seed": state["seed"],
                  "caller": caller, "got": serialize(info["got"]),
                  "expected": serialize_expected(info["expected"])}
        if kind == "assert_matches":
            record["dtype"] = _str(info["dtype"])
        else:
            record["rtol"], record["atol"] = float(info["rtol"]), float(info["atol"])
        emit(record)
        return call

    checks._observer = observer

    def run_hidden(grade_id, k) -> None:
        code = hidden_code.get((grade_id, k))
        if code is None:
            emit({"ev": "hidden_missing", "grade_id": grade_id, "k": k})
            return
        integrity_scan()
        namespace = _dict(shell.user_ns)
        namespace["__builtins__"] = hidden_builtins
        state["current"], state["seed"] = grade_id, None
        emit({"ev": "hidden_start", "grade_id": grade_id, "k": k})
        try:
            _exec(code, namespace)
        except BaseException as error:
            emit({"ev": "hidden_error", "grade_id": grade_id, "k": k, "ename": _type(error).__name__,
                  "evalue": _str(error)[:2000] if not _isinstance(error, KeyboardInterrupt) else ""})
            raise
        else:
            emit({"ev": "hidden_end", "grade_id": grade_id, "k": k})
        finally:
            state["current"] = None
            namespace.clear()

    def wrap_check() -> None:
        original = shell.user_ns.get("check")
        if callable(original) and not getattr(original, "_recorded_by_grader", False):
            shell.user_ns["check"] = _visible_recorder(original, fd, serialize, serialize_expected)

    def trigger(event, args, caller) -> None:
        if caller is None or kind_of(caller.f_code.co_filename) != "trusted":
            flag(f"the notebook called the grader's trigger {event!r}", True)
            return
        if event == "autograder.hidden":
            run_hidden(args[0], args[1])
        elif event == "autograder.wrap_check":
            wrap_check()
        elif event == "autograder.finish":
            integrity_scan()
            emit({"ev": "finish"})

    def hook(event, args):
        tid = _get_ident()
        if tid in busy:
            return
        if event.startswith(TRIGGER):
            busy.add(tid)
            try:
                caller = _getframe(1)
            finally:
                busy.discard(tid)
            return trigger(event, args, caller)
        if event not in HANDLED and not event.startswith("ctypes."):
            return
        busy.add(tid)
        try:
            verdict = check_event(event, args, _getframe(1))
        finally:
            busy.discard(tid)
        if verdict is not None:
            reason, severe, refusal = verdict
            flag(reason, severe)
            if refusal is not None:
                raise refusal

    def check_event(event, args, caller):
        if event == "import":
            name = args[0]
            if _isinstance(name, str) and name.split(".")[0] in ("autograder", "nbgrader"):
                refusal = ImportError(f"No module named {name!r} (the course's grading package is not "
                                      "available to notebook code while it is graded)")
                if student_on_stack(caller):
                    return f"the notebook imports the grading package {name!r}", True, refusal
                raise refusal
            return None
        if event == "open":
            path = args[0]
            if _isinstance(path, int):
                return None
            try:
                path = _abspath(_fspath(path))
            except Exception:
                return None
            if _isinstance(path, bytes):
                path = path.decode(errors="replace")
            if (path + os.sep).startswith(protected) and student_on_stack(caller):
                return (f"the notebook opens the grader's files ({path})", True,
                        PermissionError(13, "Permission denied while grading", path))
            return None
        if event == "compile" or event == "exec":
            if student_called(caller):
                code_or_source = args[0]
                filename = args[1] if event == "compile" and len(args) > 1 else getattr(code_or_source, "co_filename", None)
                if _isinstance(filename, str) and kind_of(filename) == "library":
                    student_files.add(filename)
            return None
        if event == "object.__getattr__":
            if len(args) > 1 and args[1] in FRAME_ATTRIBUTES and student_called(caller):
                return (f"the notebook reads {args[1]} (frames of the code that calls it)", True,
                        AttributeError(f"{args[1]} is not available while grading"))
            return None
        if event == "sys._getframe":
            if student_called(caller, walkers=True):
                return ("the notebook inspects the call stack (sys._getframe / inspect)", True,
                        RuntimeError("frame inspection is not available while grading"))
            return None
        if event in ("gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames"):
            if student_on_stack(caller):
                return (f"the notebook walks the interpreter's objects ({event})", True,
                        RuntimeError(f"{event} is not available while grading"))
            return None
        if event in ("sys.settrace", "sys.setprofile", "sys.addaudithook", "function.__new__", "code.__new__",
                     "sys.setrecursionlimit") or event.startswith("ctypes."):
            if event == "sys.setrecursionlimit":
                return None
            if student_called(caller):
                return (f"the notebook uses {event}", True, RuntimeError(f"{event} is not available while grading"))
            return None
        return None

    HANDLED = {"import", "open", "compile", "exec", "object.__getattr__", "sys._getframe", "gc.get_objects",
               "gc.get_referrers", "gc.get_referents", "sys._current_frames", "sys.settrace", "sys.setprofile",
               "sys.addaudithook", "function.__new__", "code.__new__"}

    _cap_streams(shell, state)
    sys.addaudithook(hook)


def _visible_recorder(original, fd, serialize, serialize_expected):
    """Wrap the notebook's ``check(name, got, expected, ...)`` so the visible checks' values are
    recorded too: they feed the "likely mistake" feedback, never the grade."""
    write, dumps = os.write, json.dumps

    def check(*args, **kwargs):
        __tracebackhide__ = True  # IPython leaves this frame out of tracebacks  # noqa: F841
        if len(args) >= 3:
            try:
                record = {"ev": "visible", "name": str(args[0])[:200], "got": serialize(args[1]),
                          "expected": serialize_expected(args[2])}
                write(fd, (dumps(record) + "\n").encode())
            except Exception:
                pass
        return original(*args, **kwargs)

    check._recorded_by_grader = True
    check.__doc__ = original.__doc__
    return check


def _cap_streams(shell, state) -> None:
    """Keep at most MAX_STREAM_BYTES_PER_CELL of stdout and stderr per cell."""
    for stream in (sys.stdout, sys.stderr):
        write = stream.write

        def capped(text, _write=write, _stream=stream):
            count = shell.execution_count
            used = state["streams"].get((id(_stream), count), 0)
            if used >= MAX_STREAM_BYTES_PER_CELL:
                return len(text) if isinstance(text, str) else 0
            if isinstance(text, str) and used + len(text) > MAX_STREAM_BYTES_PER_CELL:
                text = text[:MAX_STREAM_BYTES_PER_CELL - used] + "\n[... output truncated by the grader ...]\n"
                state["streams"][(id(_stream), count)] = MAX_STREAM_BYTES_PER_CELL
            else:
                state["streams"][(id(_stream), count)] = used + (len(text) if isinstance(text, str) else 0)
            return _write(text)

        stream.write = capped


def main(argv: list[str]) -> None:
    launch_path = argv[1]
    with open(launch_path) as f:
        launch = json.load(f)
    os.unlink(launch_path)
    _set_limits(launch.get("memory_bytes", 0), launch.get("file_bytes", 0))

    import numpy as np
    import torch

    import autograder.checks  # noqa: F401  (and autograder.reference, through it)
    private = {name: module for name, module in sys.modules.items()
               if name == "autograder" or name.startswith("autograder.")}
    for name in private:
        del sys.modules[name]

    from ipykernel.kernelapp import IPKernelApp
    app = IPKernelApp.instance()
    app.initialize(["-f", launch["connection_file"], "--IPKernelApp.capture_fd_output=False",
                    "--HistoryManager.enabled=False", "--InteractiveShell.colors=NoColor"])
    install(app.shell, private, launch, torch, np)
    del private, launch
    sys.path.insert(0, "")  # modules submitted next to the notebook are importable, as in Jupyter
    app.start()


if __name__ == "__main__":
    main(sys.argv)
