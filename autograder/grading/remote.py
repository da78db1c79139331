"""Hidden tests, run by the grader outside the student's kernel.

A hidden test is the instructor's code between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN
TESTS``. Under plain nbgrader it runs in the student's kernel. Here it runs in the grading worker,
with the real :mod:`autograder.checks` and :mod:`autograder.reference`, and every name it takes
from the notebook (the student's functions and classes) bound to a proxy: calling it sends the
arguments to the kernel as data (:mod:`.wire`), the kernel calls the student's function, and the
result comes back as data: plain tensors, numbers and containers, or a proxy for an object that
stays in the kernel (an ``nn.Module``: call it, read its attributes, iterate over it). So the
expected values are computed, and compared, where the student's code cannot reach them; the
kernel never sees the hidden test, the reference or an expected value.

What a hidden test may do with the student's code (``instructors.md`` says it for authors): call
it with data or :class:`autograder.checks.returning` callables, read attributes of what it
returns, iterate over it, take ``len``, index it (all from one answer: :class:`RemoteObject`).
Tensor arguments the student's code changes in place are changed here too after the call;
``torch.no_grad()`` around a call holds in the kernel. A hidden test passes only if it ran at
least one check of :mod:`autograder.checks` and none failed.
"""
from __future__ import annotations

import ast
import builtins
import contextlib
import io
import operator
import time
import types
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import checks
from . import wire
from .kernel import REPLY_MIME
from .runner import Garbled

PLAIN_TENSOR_CLASSES = {"torch.Tensor", "torch.nn.parameter.Parameter"}


class StudentError(Exception):
    """The student's code raised an exception while a hidden test called it."""


class ProtocolError(Exception):
    """The kernel did not answer a request as the grader's runner does: the notebook interfered."""


class HiddenTimeout(Exception):
    pass


class KernelDied(Exception):
    pass


@dataclass
class Observed:
    """What the hidden checks saw, for the feedback (counts, the likely mistake)."""
    seed: int | None = None
    passed: int = 0
    failed: dict | None = None      # the first failing check: kind, name, got, expected, dtype, case, seed
    flags: list = field(default_factory=list)


class RemoteObject:
    """An object that stays in the student's kernel.

    Every answer about it comes from one request, so that two answers cannot disagree: its length,
    its items and indexing by position all come from one ``items`` request (the items as they were
    then; a mapping's keys and values likewise), and an attribute is read once until the
    grader next calls into the kernel (a call may change it, as it would in Python). What would
    need another request that could disagree is refused: its truth value and comparisons."""

    __slots__ = ("_remote", "_id", "_cls", "_label", "_items", "_attributes")

    def __init__(self, remote: "Remote", number: int, cls: str, label: str):
        object.__setattr__(self, "_remote", remote)
        object.__setattr__(self, "_id", number)
        object.__setattr__(self, "_cls", cls)
        object.__setattr__(self, "_label", label)
        object.__setattr__(self, "_items", None)        # (items, {key: value} or None), read once
        object.__setattr__(self, "_attributes", {})     # name -> (calls made before, value)

    @property
    def _wire_ref(self) -> int:
        return self._id

    def __call__(self, *args, **kwargs):
        return self._remote.call(self, args, kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        calls, value = self._attributes.get(name, (None, None))
        if calls != self._remote.calls:
            value = self._remote.ask({"op": "getattr", "id": self._id, "name": name}, f"{self._label}.{name}")
            self._attributes[name] = (self._remote.calls, value)
        return value

    def __setattr__(self, name, value):
        raise TypeError(f"{self._label} is in the student's kernel: the grader does not change it")

    def _read(self) -> tuple[list, dict | None]:
        if self._items is None:
            answer = self._remote.ask({"op": "items", "id": self._id}, f"the items of {self._label}")
            if isinstance(answer, dict) and isinstance(answer.get("pairs"), list):   # a mapping
                pairs = answer["pairs"]
                if not all(isinstance(p, tuple) and len(p) == 2 for p in pairs):
                    raise ProtocolError(f"the items of {self._label}: not key-value pairs")
                try:
                    mapping = dict(pairs)
                except TypeError as error:
                    raise ProtocolError(f"the items of {self._label}: {error}") from None
                object.__setattr__(self, "_items", ([k for k, _ in pairs], mapping))
            elif isinstance(answer, dict) and isinstance(answer.get("items"), list):
                object.__setattr__(self, "_items", (answer["items"], None))
            else:
                raise ProtocolError(f"the items of {self._label}: not a list of items")
        return self._items

    def __iter__(self):
        return iter(list(self._read()[0]))

    def __len__(self):
        return len(self._read()[0])

    def __getitem__(self, key):
        items, mapping = self._read()
        if mapping is not None:
            return mapping[key]
        if isinstance(key, slice):
            return items[key]
        try:
            return items[operator.index(key)]
        except TypeError:
            raise TypeError(f"{self._label} is a sequence: index it with an integer, not {type(key).__name__}") from None

    def __contains__(self, value):
        items, mapping = self._read()
        return value in (items if mapping is None else mapping)

    def __bool__(self):
        raise TypeError(f"the truth value of {self._label}, an object in the student's kernel, is not answered: "
                        "test what it returns (data) instead")

    def _refuse(self, other):
        raise TypeError(f"{self._label} is an object in the student's kernel: the grader does not compare it; "
                        "compare the data it returns")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse
    __hash__ = object.__hash__

    def __repr__(self):
        return f"<{self._cls} in the student's kernel>"


class Remote:
    """Requests to one kernel, within the hidden test's time limit."""

    def __init__(self, kernel, deadline: float, observed: Observed):
        self.kernel, self.deadline, self.observed = kernel, deadline, observed
        self.calls = 0     # calls sent so far: an attribute read before one is read again after it

    def _proxy(self, data: dict, label: str) -> RemoteObject:
        return RemoteObject(self, data["id"], str(data.get("cls", "object")), label)

    def _decode(self, data, label: str):
        self._note_classes(data)
        return wire.decode(data, torch, np, deref=lambda d: self._proxy(d, label))

    def _note_classes(self, data, depth: int = 0) -> None:
        if depth > wire.MAX_DEPTH:
            return
        if isinstance(data, dict):
            if data.get("t") == "tensor" and data.get("cls") not in PLAIN_TENSOR_CLASSES:
                self.observed.flags.append(f"the notebook returned a tensor of its own class {str(data.get('cls'))[:80]}")
            for value in data.values():
                self._note_classes(value, depth + 1)
        elif isinstance(data, list):
            for value in data:
                self._note_classes(value, depth + 1)

    def request(self, message: dict) -> dict:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise HiddenTimeout()
        code = f"__import__('_autograder_kernel').serve({wire.dumps(message)!r})"
        step = self.kernel.execute(code, left, reply_mime=REPLY_MIME)
        if step.status == "timeout":
            raise HiddenTimeout()
        if step.status == "died" or step.killed:
            raise KernelDied(step.exit_code)
        if step.reply is None:
            detail = f" ({step.ename}: {step.evalue})" if step.ename else ""
            raise ProtocolError(f"the kernel did not answer the grader's request{detail}")
        try:
            return wire.loads(step.reply)
        except wire.WireError as error:
            raise ProtocolError(f"the kernel's answer could not be read: {error}") from None

    def answered(self, message: dict, label: str, raised: str) -> dict:
        """The kernel's reply to ``message``; a StudentError if the student's code raised (said
        as ``raised``) or its result could not be sent (said as ``label``)."""
        reply = self.request(message)
        if reply.get("ok") is not True:
            text = str(reply.get("error", "no answer"))[:1000]
            raise StudentError(f"{label}: {text}" if reply.get("wire") else f"{raised} raised {text}")
        return reply

    def ask(self, message: dict, label: str):
        reply = self.answered(message, label, label)
        try:
            return self._decode(reply.get("result"), label)
        except (wire.WireError, RecursionError, ValueError, TypeError) as error:
            raise ProtocolError(f"{label}: the answer could not be read: {error}") from None

    def call(self, target: RemoteObject, args: tuple, kwargs: dict):
        label = f"{target._label}(...)"
        given = wire.tensors_in([list(args), kwargs], torch)
        message = {"op": "call", "id": target._id, "args": wire.encode(list(args), torch, np),
                   "kwargs": wire.encode(dict(kwargs), torch, np), "grad": torch.is_grad_enabled()}
        self.calls += 1
        reply = self.answered(message, target._label, label)
        try:
            result = self._decode(reply.get("result"), label)
            after = [wire.decode(d, torch, np) for d in reply.get("after", [])]
        except (wire.WireError, RecursionError, ValueError, TypeError) as error:
            raise ProtocolError(f"{label}: the answer could not be read: {error}") from None
        if len(after) != len(given):
            raise ProtocolError(f"{label}: the kernel did not report the arguments after the call")
        with torch.no_grad():   # what the student's code did to its arguments, done to ours
            for mine, theirs in zip(given, after):
                if not isinstance(theirs, torch.Tensor):
                    raise ProtocolError(f"{label}: an argument came back as {type(theirs).__name__}")
                if mine.shape == theirs.shape and mine.dtype == theirs.dtype:
                    mine.copy_(theirs)
                else:
                    mine.data = theirs
        return result

    def resolve(self, names: list[str]) -> dict:
        if not names:
            return {}
        reply = self.request({"op": "resolve", "names": names})
        values = reply.get("values") if reply.get("ok") is True else None
        if not isinstance(values, dict):
            raise ProtocolError("the kernel did not say what the notebook defines")
        out = {}
        for name, data in values.items():
            if name in names:
                try:
                    out[name] = self._decode(data, name)
                except (wire.WireError, RecursionError, ValueError, TypeError) as error:
                    raise ProtocolError(f"{name}: could not be read: {error}") from None
        return out


def setup_namespace(sources: list[str]) -> dict:
    """The names a hidden test may use without importing them: the imports of the assignment's
    locked set-up cells (torch, nn, np...), made here, in the grader, from the course's source."""
    namespace: dict = {"__builtins__": builtins, "__name__": "__hidden_tests__"}
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        if imports:
            exec(compile(ast.Module(body=imports, type_ignores=[]), "<set-up imports>", "exec"), namespace)
    return namespace


def _names(code: types.CodeType, found: set) -> set:
    found.update(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _names(const, found)
    return found


class _Observer:
    """Set as ``autograder.checks._observer`` while a hidden test runs here (in the grader)."""

    def __init__(self, observed: Observed):
        self.observed, self.calls = observed, {}

    def __call__(self, kind, **info):
        if kind == "fresh_cases":
            self.observed.seed = info["seed"]
            return None
        if kind == "outcome":
            call = self.calls.pop(info["call"], None)
            if info["ok"]:
                self.observed.passed += 1
            elif self.observed.failed is None and call is not None:
                self.observed.failed = dict(call, message=info["message"])
            return None
        number = len(self.calls) + self.observed.passed + 1
        self.calls[number] = dict(info, kind=kind, seed=self.observed.seed)
        return number


@dataclass
class HiddenResult:
    status: str                 # ok, failed, timeout, died, tampered
    message: str = ""
    observed: Observed = field(default_factory=Observed)
    exit_code: int | None = None


def run_hidden(source: str, label: str, namespace: dict, kernel, time_limit: float) -> HiddenResult:
    """Run one hidden test here, against the notebook in ``kernel``."""
    observed = Observed()
    remote = Remote(kernel, time.monotonic() + time_limit, observed)
    try:
        code = compile(source, f"<hidden tests of {label}>", "exec")
    except SyntaxError as error:
        return HiddenResult("failed", f"the hidden test does not compile: {error}", observed)
    wanted = sorted(_names(code, set()) - set(namespace) - set(vars(builtins)))
    scope = dict(namespace)
    previous = checks._observer
    checks._observer = _Observer(observed)
    sink = io.StringIO()
    try:
        scope.update(remote.resolve(wanted))
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            exec(code, scope)
    except AssertionError as error:
        return HiddenResult("failed", str(error) or "a hidden check failed", observed)
    except StudentError as error:
        return HiddenResult("failed", str(error), observed)
    except HiddenTimeout:
        return HiddenResult("timeout", f"the hidden checks ran past the time limit of {time_limit:g} s", observed)
    except KernelDied as error:
        return HiddenResult("died", "the kernel died while the hidden checks called the notebook's code", observed,
                            exit_code=error.args[0] if error.args else None)
    except ProtocolError as error:
        return HiddenResult("tampered", str(error), observed)
    except NameError as error:
        return HiddenResult("failed", f"{error} (in the notebook, when the hidden checks ran)", observed)
    except Garbled:
        raise       # the kernel's message could not be read: the submission's error (execute.run's caller)
    except Exception as error:  # what the student's results made the test do (len of a float...)
        return HiddenResult("failed", f"{type(error).__name__}: {error}"[:1000], observed)
    finally:
        checks._observer = previous
    # Points for what the checks of autograder.checks compared, and nothing else: a hidden test
    # that ran none (a loop over an empty answer) or caught a failing one does not pass.
    if observed.failed is not None:
        return HiddenResult("failed", str(observed.failed.get("message") or "a hidden check failed"), observed)
    if observed.passed == 0:
        return HiddenResult("failed", "no hidden check ran on the answer (an empty result?)", observed)
    return HiddenResult("ok", "", observed)
