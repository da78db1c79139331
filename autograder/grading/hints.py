"""The likely mistake behind a wrong value: does it equal a known wrong variant of the right
computation? Every variant is computed here from :mod:`autograder.reference` (no number typed in),
on the network the check used: the worked example for visible checks, the fresh case (found by
its seed and label) for hidden ones.

A check is identified by what its expected value is: the grader computes the reference's
quantities (forward pass, errors, gradients, one update under each bias convention) and finds
those equal to the expected value, then computes the same quantities with each mistake made and
reports the mistake whose value equals the student's.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .. import checks, reference

MATCH = dict(rtol=1e-4, atol=1e-7)   # float32 answers, compared with float64 variants

MISTAKES = {
    "transposed": "transposed weights: W has nn.Linear's shape (out_features, in_features), so a layer computes "
                  "x @ W.T + b (and the error goes back through W, not W.T)",
    "half": "missing 1/2: the course's error is E = 1/2 * sum((t - o)**2), whose derivative is -(t - o)",
    "stale": "stale weights: the hidden layer's gradients must use the output weights of the forward pass, "
             "not the ones already updated",
    "bias": "bias forgotten: the bias is left out of the weighted sum, or not updated",
    "activation": "wrong activation: the network uses the sigmoid 1 / (1 + exp(-z)) in both layers",
    "float32": "float32 where float64 was asked: keep the inputs' dtype (no torch.tensor(...) without dtype, "
               "no .float())",
    "mean": "mean instead of sum: E sums over the outputs and the examples of a batch",
    "copied": "the worked example's numbers: the result does not depend on the inputs (typed in?)",
}


LABELS = {"transposed": "transposed weights", "half": "missing 1/2", "stale": "stale weights",
          "bias": "bias forgotten", "activation": "wrong activation", "float32": "float32 where float64 was asked",
          "mean": "mean instead of sum", "copied": "the worked example's numbers copied"}


def _quantities(net: reference.Network, x, t, lr: float = reference.LEARNING_RATE,
                activation=reference.sigmoid, backward=True) -> dict[str, np.ndarray]:
    x, t = np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64)
    if activation is reference.sigmoid:
        fwd = reference.forward(net, x)
    else:
        net_h = x @ net.W1.T + net.b1
        out_h = activation(net_h)
        net_o = out_h @ net.W2.T + net.b2
        fwd = reference.Forward(net_h, out_h, net_o, activation(net_o))
    q = {"net_h": fwd.net_h, "out_h": fwd.out_h, "net_o": fwd.net_o, "out_o": fwd.out_o,
         "errors": reference.errors(fwd.out_o, t), "E": np.float64(reference.total_error(fwd.out_o, t))}
    if backward and activation is reference.sigmoid:
        g = reference.backward(net, x, t, fwd)
        q.update(_gradient_quantities(g))
        for mode in reference.BIAS_MODES:
            q.update(_update_quantities(reference.apply_update(net, g, lr, mode), mode))
    return q


def _gradient_quantities(g: reference.Gradients) -> dict[str, np.ndarray]:
    return {name: getattr(g, name) for name in ("dW1", "db1", "dW2", "db2", "dE_dout_o", "dout_dnet_o", "delta_o",
                                                "dE_dout_h", "dout_dnet_h", "delta_h")}


def _update_quantities(net: reference.Network, mode: str) -> dict[str, np.ndarray]:
    return {f"step[{mode}].{name}": getattr(net, name) for name in ("W1", "b1", "W2", "b2")}


def _variants(net: reference.Network, x, t, lr: float = reference.LEARNING_RATE):
    """(mistake, quantities) pairs: the same computation with one mistake made."""
    x, t = np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64)
    correct = _quantities(net, x, t, lr)
    square = net.W1.shape[0] == net.W1.shape[1] and net.W2.shape[0] == net.W2.shape[1]
    if square:
        yield "transposed", _quantities(replace(net, W1=net.W1.T, W2=net.W2.T), x, t, lr)
        g = reference.backward(net, x, t)
        through_transposed = reference.backward(net, x, t, W2_for_hidden=net.W2.T)
        q = _gradient_quantities(through_transposed)
        q.update({"dW1": g.dW1.T, "dW2": g.dW2.T} if not np.allclose(g.dW1, through_transposed.dW1) else {})
        yield "transposed", q
    doubled = {k: 2 * v for k, v in correct.items() if not k.startswith("step[") and k not in ("net_h", "out_h", "net_o", "out_o")}
    g = reference.backward(net, x, t)
    for mode in reference.BIAS_MODES:
        doubled.update(_update_quantities(reference.apply_update(net, g, 2 * lr, mode), mode))
    yield "half", doubled
    stale = {}
    for mode in reference.BIAS_MODES:
        stale.update(_update_quantities(reference.step_stale(net, x, t, lr, mode), mode))
    W2_new = net.W2 - lr * g.dW2
    late = reference.backward(net, x, t, W2_for_hidden=W2_new)
    stale.update({k: getattr(late, k) for k in ("dW1", "db1", "delta_h", "dE_dout_h")})
    yield "stale", stale
    no_bias = _quantities(replace(net, b1=np.zeros_like(net.b1), b2=np.zeros_like(net.b2)), x, t, lr)
    for mode in ("per-neuron", "shared"):  # biases left as they were
        no_bias.update({f"step[{mode}].b1": net.b1, f"step[{mode}].b2": net.b2})
    yield "bias", no_bias
    for activation in (np.tanh, lambda z: np.maximum(z, 0.0), lambda z: z):
        yield "activation", _quantities(net, x, t, lr, activation=activation, backward=False)
    n = max(np.asarray(correct["out_o"]).size, 1)
    yield "mean", {"E": correct["E"] / n, "errors": correct["errors"] / n}
    yield "mean", {"E": 2 * correct["E"] / n}


def _close(a, b) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all(np.isfinite(a))) and np.allclose(a, b, **MATCH)


def diagnose(got, expected, net: reference.Network, x, t, worked_example: bool = False) -> str | None:
    """The likely mistake (a key of MISTAKES) when ``got`` equals a wrong variant of what
    ``expected`` is, on this network and example; None if no variant explains it."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape or _close(got, expected):
        return None
    correct = _quantities(net, x, t)
    names = [name for name, value in correct.items() if _close(value, expected)]
    if not names:
        return None
    for mistake, quantities in _variants(net, x, t):
        for name in names:
            if name in quantities and not _close(quantities[name], correct[name]) and _close(quantities[name], got):
                return mistake
    if not worked_example:
        example = _quantities(reference.mazur_network(), reference.INPUTS, reference.TARGETS)
        for name in names:
            value = example.get(name)
            if value is not None and np.shape(value) == got.shape[-np.ndim(value):] and np.ndim(value) \
                    and _close(np.broadcast_to(value, got.shape), got):
                return "copied"
            if value is not None and np.ndim(value) == 0 and got.ndim == 0 and _close(value, got):
                return "copied"
    return None


def case_network(seed: int | None, label: str):
    """The (network, x, t) of the fresh case a hidden check used, from its seed and label."""
    if seed is None or not label:
        return None
    import torch
    for case in checks.fresh_cases(seed, dtypes=(torch.float32, torch.float64)):
        if case.label == label or label.startswith(case.label):
            return case.net, case.x_np, case.t_np
    return None


def worked_example(expected_shape: tuple):
    """The worked example's (network, x, t), as a batch of repeated rows when the visible check
    used one (``torch.stack([x, x])``)."""
    net, x, t = reference.mazur_network(), reference.INPUTS, reference.TARGETS
    if len(expected_shape) == 2 and expected_shape[1] in (net.W1.shape[0], net.W2.shape[0]) and expected_shape[0] > 1:
        k = expected_shape[0]
        return net, np.tile(x, (k, 1)), np.tile(t, (k, 1))
    return net, x, t
