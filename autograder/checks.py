"""What hidden tests call: fresh networks as torch tensors, and comparisons with the reference.

Hidden tests run inside the grader's kernel, next to the student's functions. They draw
networks the student has never seen (other seeds, other sizes, batches, both float dtypes),
compute the answer with :mod:`autograder.reference` (float64 numpy, no autograd) and compare.

The comparisons read the values a tensor really holds (its storage), not what its class says
about itself, and compare them with plain ndarray arithmetic rather than ``torch.allclose`` or
``np.allclose``: a tensor subclass that makes comparisons true, or a notebook that replaces
``torch.allclose``, changes nothing here. (A notebook can still replace these functions
themselves in a plain ``nbgrader autograde`` run, because nbgrader runs the tests in the
student's kernel. ``python -m autograder grade`` does not rely on the kernel's verdict: it
records the student's values through ``_observer`` and compares them again in the grading
process, see :mod:`autograder.grading`.)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import reference

# Tolerances by the dtype the student's code computes in: float32 carries about 7 digits.
TOLERANCES = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.float64: dict(rtol=1e-9, atol=1e-12)}

# Shapes (inputs, hidden, outputs) and batch sizes of the fresh cases: other sizes than the
# worked example, single examples and batches.
HIDDEN_SHAPES = [((3, 4, 2), None), ((2, 2, 2), 5), ((4, 3, 3), 2), ((1, 5, 1), None)]

# The grading kernel sets this to a callable that records every check (the values the student's
# code produced) for comparison outside the kernel. None in a plain nbgrader run.
_observer = None

_TensorBase = torch._C.TensorBase
_no_torch_function = torch._C.DisableTorchFunctionSubclass
# The classes a student's tensor may have without being reported as a subclass of their own.
_PLAIN_TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter)


@dataclass
class Case:
    """One fresh network and example, in numpy (for the reference) and in torch (for the student)."""

    label: str
    net: reference.Network
    x_np: np.ndarray
    t_np: np.ndarray
    dtype: torch.dtype

    def tensor(self, array) -> torch.Tensor:
        return torch.tensor(np.asarray(array), dtype=self.dtype)

    @property
    def x(self):
        return self.tensor(self.x_np)

    @property
    def t(self):
        return self.tensor(self.t_np)

    def params(self) -> tuple[torch.Tensor, ...]:
        """W1, b1, W2, b2 as tensors of the case's dtype (fresh copies each call)."""
        return tuple(self.tensor(getattr(self.net, name)) for name in ("W1", "b1", "W2", "b2"))


def fresh_cases(seed: int, dtypes=(torch.float32, torch.float64)) -> list[Case]:
    """Reproducible cases for a hidden test; ``seed`` keeps each test's cases its own."""
    cases = []
    for k, ((n_in, n_hidden, n_out), batch) in enumerate(HIDDEN_SHAPES):
        for dtype in dtypes:
            s = seed * 1000 + k
            net = reference.random_network(s, (n_in, n_hidden, n_out))
            x, t = reference.random_example(s + 500, n_in, n_out, batch)
            shape = f"{n_in}-{n_hidden}-{n_out}" + (f", batch of {batch}" if batch else "")
            cases.append(Case(f"{shape} network, {str(dtype).replace('torch.', '')}", net, x, t, dtype))
    if _observer is not None:
        _observer("fresh_cases", seed=seed)
    return cases


class returning:
    """A callable to hand to the student's code in a hidden test (chapter 6's ``count_failures``
    takes a backward pass): it ignores its arguments and returns fresh copies of ``value``.

    Hidden tests pass no other callables: under ``python -m autograder grade`` the hidden test
    runs outside the student's kernel, and this is rebuilt inside the kernel from ``value``
    alone (plain data, never the reference)."""

    _wire_returning = True   # how autograder.grading.wire recognises it

    def __init__(self, value):
        self.value = value

    def __call__(self, *args, **kwargs):
        return _copy(self.value)


def _copy(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(v) for v in value)
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


def tensor_values(got) -> np.ndarray:
    """The numbers a tensor holds, as an ndarray of its own dtype (float32 for half types).

    Read from the tensor's storage with ``__torch_function__`` overrides switched off, so a
    subclass cannot report other numbers than the ones it holds."""
    with _no_torch_function():
        if type(got) in _PLAIN_TENSOR_TYPES:
            plain = _TensorBase.detach(got)
        else:  # a subclass: view its storage through a plain tensor
            plain = torch.empty((0,), dtype=_TensorBase.__dict__["dtype"].__get__(got))
            plain.set_(_TensorBase.untyped_storage(got), _TensorBase.storage_offset(got),
                       _TensorBase.size(got), _TensorBase.stride(got))
        plain = _TensorBase.resolve_neg(_TensorBase.resolve_conj(_TensorBase.cpu(plain)))
        if plain.dtype in (torch.float16, torch.bfloat16):
            plain = _TensorBase.to(plain, torch.float32)
        return np.array(_TensorBase.numpy(plain), copy=True)


def tensor_dtype(got) -> torch.dtype:
    with _no_torch_function():
        return _TensorBase.__dict__["dtype"].__get__(got)


def tensor_shape(got) -> tuple[int, ...]:
    with _no_torch_function():
        return tuple(_TensorBase.__dict__["shape"].__get__(got))


def _allclose(got: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> bool:
    """``np.allclose`` with ndarray arithmetic only (nothing a notebook can replace)."""
    got = np.array(got, dtype=np.float64)
    expected = np.array(expected, dtype=np.float64)
    close = (got == expected) | ((got - expected).__abs__() <= atol + rtol * expected.__abs__())
    return bool(close.all())


def number_value(got):
    """The value of a Python or numpy number, read through its base class (a subclass that
    redefines ``__float__`` cannot change it); None if ``got`` is not a number."""
    kind = type(got)
    if issubclass(kind, (np.integer, np.floating)):
        return float(np.array(got).astype(np.float64).reshape(-1)[0])
    if issubclass(kind, bool):
        return float(int.__int__(got))
    if issubclass(kind, float):
        return float.__float__(got)
    if issubclass(kind, int):
        return float(int.__int__(got))
    return None


def _check_matches(name, got, expected, dtype, case) -> None:
    where = f" on a {case}" if case else ""
    if not isinstance(got, torch.Tensor):
        raise AssertionError(f"{name}{where}: expected a torch.Tensor, got {type(got).__name__}")
    expected = np.asarray(expected, dtype=np.float64)
    shape = tensor_shape(got)
    if shape != expected.shape:
        raise AssertionError(f"{name}{where}: expected shape {expected.shape}, got {shape}")
    if tensor_dtype(got) != dtype:
        raise AssertionError(f"{name}{where}: expected dtype {dtype} (the inputs' dtype), got {tensor_dtype(got)}")
    got_np = tensor_values(got).astype(np.float64)
    if not _allclose(got_np, expected, **TOLERANCES[dtype]):
        raise AssertionError(f"{name}{where}: expected {np.array2string(expected, precision=9)}, "
                             f"got {np.array2string(got_np, precision=9)}")


def _observed(kind: str, check, **info) -> None:
    """Run ``check``; under the grader, report the values it is given and its outcome first
    (the grader compares them again outside the kernel)."""
    call = None if _observer is None else _observer(kind, **info)
    try:
        check()
    except AssertionError as error:
        if call is not None:
            _observer("outcome", call=call, ok=False, message=str(error))
        raise
    if call is not None:
        _observer("outcome", call=call, ok=True, message="")


def assert_matches(name: str, got, expected, dtype: torch.dtype, case: str = "") -> None:
    """Fail with what was expected and what was got, unless ``got`` is a tensor of ``dtype``
    with ``expected``'s shape and values (within the dtype's tolerance)."""
    _observed("assert_matches", lambda: _check_matches(name, got, expected, dtype, case),
              name=name, got=got, expected=expected, dtype=dtype, case=case)


def _check_scalar(name, got, expected, rtol, atol) -> None:
    if isinstance(got, torch.Tensor):
        shape = tensor_shape(got)
        if int(np.prod(shape, dtype=np.int64)) != 1:
            raise AssertionError(f"{name}: expected a single number, got a tensor of shape {shape}")
        if tensor_dtype(got) == torch.bool or tensor_dtype(got).is_complex:
            kind = "bool" if tensor_dtype(got) == torch.bool else "complex"
            raise AssertionError(f"{name}: expected a number, got {kind}")
        value = float(tensor_values(got).astype(np.float64).reshape(-1)[0])
    elif isinstance(got, bool) or not isinstance(got, (int, float, np.integer, np.floating)):
        raise AssertionError(f"{name}: expected a number, got {type(got).__name__}")
    else:
        value = number_value(got)
    if not _allclose(np.float64(value), np.float64(expected), rtol=rtol, atol=atol):
        raise AssertionError(f"{name}: expected {expected:.9g}, got {value:.9g}")


def assert_scalar(name: str, got, expected: float, rtol: float = 1e-9, atol: float = 1e-12) -> None:
    """Fail with what was expected and what was got, unless ``got`` is a real number (a Python
    or numpy number, or a one-element tensor) close to ``expected``."""
    _observed("assert_scalar", lambda: _check_scalar(name, got, expected, rtol, atol),
              name=name, got=got, expected=expected, rtol=rtol, atol=atol)
