"""The worked example's numbers, computed from first principles.

Everything here is float64 numpy, with no autograd, so it can serve as the ground truth for
lessons, visible tests and hidden tests alike.

Conventions (the same as ``torch.nn.Linear``):

* a layer's weight matrix ``W`` has shape ``(out_features, in_features)`` and a layer computes
  ``net = x @ W.T + b``; ``x`` is one example of shape ``(in,)`` or a batch ``(batch, in)``;
* the error is ``E = 1/2 * sum((t - o)**2)``, summed over outputs and over the batch;
* ``W1 = [[w1, w2], [w3, w4]]`` and ``W2 = [[w5, w6], [w7, w8]]`` in Mazur's numbering.

Three bias conventions appear in the course (``BIAS_MODES``):

* ``"frozen"``: Mazur's blog, one bias per layer that is never updated;
* ``"per-neuron"``: ``nn.Linear`` and the seed notebook, one bias per neuron, each trained;
* ``"shared"``: one trainable bias per layer, whose gradient is the sum of the layer's deltas.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

# The worked example: Matt Mazur, "A Step by Step Backpropagation Example" (2015).
INPUTS = np.array([0.05, 0.10])
TARGETS = np.array([0.01, 0.99])
LEARNING_RATE = 0.5
WEIGHTS = {f"w{k}": w for k, w in enumerate([0.15, 0.20, 0.25, 0.30, 0.40, 0.45, 0.50, 0.55], 1)}
BIASES = {"b1": 0.35, "b2": 0.60}
BIAS_MODES = ("frozen", "per-neuron", "shared")


@dataclass(frozen=True)
class Network:
    """A two-layer sigmoid network: hidden ``sigmoid(x W1^T + b1)``, output ``sigmoid(h W2^T + b2)``."""

    W1: np.ndarray  # (hidden, inputs)
    b1: np.ndarray  # (hidden,)
    W2: np.ndarray  # (outputs, hidden)
    b2: np.ndarray  # (outputs,)

    @property
    def sizes(self) -> tuple[int, int, int]:
        return self.W1.shape[1], self.W1.shape[0], self.W2.shape[0]


def mazur_network() -> Network:
    """The 2-2-2 network of the worked example, with one bias value per neuron."""
    w = [WEIGHTS[f"w{k}"] for k in range(1, 9)]
    return Network(
        W1=np.array([[w[0], w[1]], [w[2], w[3]]]),
        b1=np.full(2, BIASES["b1"]),
        W2=np.array([[w[4], w[5]], [w[6], w[7]]]),
        b2=np.full(2, BIASES["b2"]),
    )


def random_network(seed: int, sizes: tuple[int, int, int] = (2, 2, 2), scale: float = 1.0) -> Network:
    """A reproducible random network for hidden tests: weights and biases uniform in [-scale, scale]."""
    n_in, n_hidden, n_out = sizes
    rng = np.random.default_rng(seed)
    draw = lambda *shape: rng.uniform(-scale, scale, size=shape)  # noqa: E731
    return Network(W1=draw(n_hidden, n_in), b1=draw(n_hidden), W2=draw(n_out, n_hidden), b2=draw(n_out))


def random_example(seed: int, n_in: int, n_out: int, batch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Reproducible inputs in [-1, 1] and targets in (0, 1); a batch when ``batch`` is given."""
    rng = np.random.default_rng(seed)
    shape_in, shape_out = ((n_in,), (n_out,)) if batch is None else ((batch, n_in), (batch, n_out))
    return rng.uniform(-1, 1, size=shape_in), rng.uniform(0.01, 0.99, size=shape_out)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@dataclass(frozen=True)
class Forward:
    """Every intermediate value of one forward pass, named as in Mazur's post."""

    net_h: np.ndarray
    out_h: np.ndarray
    net_o: np.ndarray
    out_o: np.ndarray


def forward(net: Network, x) -> Forward:
    x = np.asarray(x, dtype=np.float64)
    net_h = x @ net.W1.T + net.b1
    out_h = sigmoid(net_h)
    net_o = out_h @ net.W2.T + net.b2
    return Forward(net_h, out_h, net_o, sigmoid(net_o))


def errors(out, target) -> np.ndarray:
    """Per-output errors ``1/2 (t - o)^2`` (E_o1, E_o2, ... in Mazur's notation)."""
    return 0.5 * (np.asarray(target, dtype=np.float64) - out) ** 2


def total_error(out, target) -> float:
    """``E = 1/2 * sum((t - o)**2)`` over every output (and every example of a batch)."""
    return float(errors(out, target).sum())


@dataclass(frozen=True)
class Gradients:
    """dE/d(parameter) for every parameter, and the partials Mazur prints on the way.

    For a batch the weight and bias gradients are summed over the examples (E is a sum);
    the per-example partials keep a leading batch axis.
    """

    dW1: np.ndarray
    db1: np.ndarray
    dW2: np.ndarray
    db2: np.ndarray
    dE_dout_o: np.ndarray      # -(t - o)
    dout_dnet_o: np.ndarray    # o (1 - o), the sigmoid's derivative
    delta_o: np.ndarray        # dE/dnet_o
    dE_dout_h: np.ndarray      # delta_o @ W2: every output's contribution, summed
    dout_dnet_h: np.ndarray
    delta_h: np.ndarray        # dE/dnet_h


def backward(net: Network, x, target, fwd: Forward | None = None, W2_for_hidden: np.ndarray | None = None) -> Gradients:
    """Backpropagation by the four equations, without autograd.

    ``W2_for_hidden`` replaces W2 when the error is sent back to the hidden layer; only the
    blog's stale-weights bug uses it (see :func:`step_stale`).
    """
    x = np.asarray(x, dtype=np.float64)
    fwd = fwd or forward(net, x)
    dE_dout_o = -(np.asarray(target, dtype=np.float64) - fwd.out_o)
    dout_dnet_o = fwd.out_o * (1 - fwd.out_o)
    delta_o = dE_dout_o * dout_dnet_o
    W2 = net.W2 if W2_for_hidden is None else W2_for_hidden
    dE_dout_h = delta_o @ W2
    dout_dnet_h = fwd.out_h * (1 - fwd.out_h)
    delta_h = dE_dout_h * dout_dnet_h
    rows = lambda a: a.reshape(-1, a.shape[-1])  # noqa: E731  (one example per row, batch or not)
    return Gradients(
        # dE/dW = delta^T @ input: the outer product for one example, summed over a batch.
        dW1=rows(delta_h).T @ rows(x), db1=rows(delta_h).sum(axis=0),
        dW2=rows(delta_o).T @ rows(fwd.out_h), db2=rows(delta_o).sum(axis=0),
        dE_dout_o=dE_dout_o, dout_dnet_o=dout_dnet_o, delta_o=delta_o,
        dE_dout_h=dE_dout_h, dout_dnet_h=dout_dnet_h, delta_h=delta_h,
    )


def apply_update(net: Network, grads: Gradients, lr: float, bias_mode: str = "per-neuron") -> Network:
    """One gradient-descent update ``theta <- theta - lr * dE/dtheta``, biases as ``bias_mode`` says."""
    if bias_mode not in BIAS_MODES:
        raise ValueError(f"bias_mode must be one of {BIAS_MODES}, got {bias_mode!r}")
    new = replace(net, W1=net.W1 - lr * grads.dW1, W2=net.W2 - lr * grads.dW2)
    if bias_mode == "per-neuron":
        new = replace(new, b1=net.b1 - lr * grads.db1, b2=net.b2 - lr * grads.db2)
    elif bias_mode == "shared":  # one scalar per layer: its gradient sums the layer's deltas
        new = replace(new, b1=net.b1 - lr * grads.db1.sum(), b2=net.b2 - lr * grads.db2.sum())
    return new


def step(net: Network, x, target, lr: float = LEARNING_RATE, bias_mode: str = "per-neuron") -> Network:
    return apply_update(net, backward(net, x, target), lr, bias_mode)


def step_stale(net: Network, x, target, lr: float = LEARNING_RATE, bias_mode: str = "frozen") -> Network:
    """The blog's bug: the output weights are updated first, and the hidden-layer gradients are
    then computed with the already-updated W2 instead of the W2 of the forward pass."""
    grads = backward(net, x, target)
    W2_new = net.W2 - lr * grads.dW2
    stale = backward(net, x, target, W2_for_hidden=W2_new)
    return apply_update(net, replace(grads, dW1=stale.dW1, db1=stale.db1), lr, bias_mode)


def train(net: Network, x, target, lr: float = LEARNING_RATE, steps: int = 10_000,
          bias_mode: str = "per-neuron", stale: bool = False) -> tuple[Network, np.ndarray]:
    """Full-batch gradient descent. Returns the final network and the error history:
    ``history[k]`` is E after k updates, so ``history[0]`` is the initial error."""
    update = step_stale if stale else step
    history = np.empty(steps + 1)
    for k in range(steps):
        history[k] = total_error(forward(net, x).out_o, target)
        net = update(net, x, target, lr, bias_mode)
    history[steps] = total_error(forward(net, x).out_o, target)
    return net, history


def steps_to_reach(history: np.ndarray, threshold: float) -> int | None:
    """The first number of updates after which E < threshold, or None if it never gets there."""
    below = np.flatnonzero(history < threshold)
    return int(below[0]) if below.size else None
