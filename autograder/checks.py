"""What hidden tests call: fresh networks as torch tensors, and comparisons with the reference.

Hidden tests run inside the grader's kernel, next to the student's functions. They draw
networks the student has never seen (other seeds, other sizes, batches, both float dtypes),
compute the answer with :mod:`autograder.reference` (float64 numpy, no autograd) and compare.
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
    return cases


def assert_matches(name: str, got, expected, dtype: torch.dtype, case: str = "") -> None:
    """Fail with what was expected and what was got, unless ``got`` is a tensor of ``dtype``
    with ``expected``'s shape and values (within the dtype's tolerance)."""
    where = f" on a {case}" if case else ""
    if not isinstance(got, torch.Tensor):
        raise AssertionError(f"{name}{where}: expected a torch.Tensor, got {type(got).__name__}")
    expected = np.asarray(expected, dtype=np.float64)
    if tuple(got.shape) != expected.shape:
        raise AssertionError(f"{name}{where}: expected shape {expected.shape}, got {tuple(got.shape)}")
    if got.dtype != dtype:
        raise AssertionError(f"{name}{where}: expected dtype {dtype} (the inputs' dtype), got {got.dtype}")
    got_np = got.detach().to(torch.float64).numpy()
    if not np.allclose(got_np, expected, **TOLERANCES[dtype]):
        raise AssertionError(f"{name}{where}: expected {np.array2string(expected, precision=9)}, "
                             f"got {np.array2string(got_np, precision=9)}")


def assert_scalar(name: str, got, expected: float, rtol: float = 1e-9, atol: float = 1e-12) -> None:
    """Fail with what was expected and what was got, unless ``got`` is a real number (a Python
    or numpy number, or a one-element tensor) close to ``expected``."""
    if isinstance(got, torch.Tensor):
        if got.numel() != 1:
            raise AssertionError(f"{name}: expected a single number, got a tensor of shape {tuple(got.shape)}")
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, (int, float, np.integer, np.floating)):
        raise AssertionError(f"{name}: expected a number, got {type(got).__name__}")
    if not np.isclose(float(got), expected, rtol=rtol, atol=atol):
        raise AssertionError(f"{name}: expected {expected:.9g}, got {float(got):.9g}")
