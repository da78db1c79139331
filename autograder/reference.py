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
    stale-weights bug of an early version of Mazur's script (behind two of the post's numbers) uses it (see :func:`step_stale`).
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
    """The bug of an early version of Mazur's script (mattm/simple-neural-network, fixed in commit
    4b6faac), whose output the post copied for two numbers: the output weights are updated first,
    and the hidden-layer gradients are then computed with the already-updated W2 instead of the
    W2 of the forward pass. (The post's derivation itself uses the original W2.)"""
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


# --- Chapter 6: gradient checks and pitfalls ---
# Numerical gradients by central differences, the relative error, gradient checks of a
# backward pass, the bugs the chapter plants and catches, and the vanishing-gradient chain.

PARAMETERS = ("W1", "b1", "W2", "b2")


def gradient_arrays(grads: Gradients) -> tuple[np.ndarray, ...]:
    """(dW1, db1, dW2, db2) of a :class:`Gradients`, in the order of :data:`PARAMETERS`."""
    return grads.dW1, grads.db1, grads.dW2, grads.db2


def error_in(net: Network, x, target, dtype=np.float64) -> float:
    """E = 1/2 sum (t - o)^2 with every array (parameters, input, target) cast to ``dtype`` and
    every operation done in it; ``np.float32`` mimics torch's default dtype."""
    cast = lambda a: np.asarray(a, dtype=np.float64).astype(dtype)  # noqa: E731
    W1, b1, W2, b2 = (cast(getattr(net, name)) for name in PARAMETERS)
    sig = lambda z: dtype(1) / (dtype(1) + np.exp(-z))  # noqa: E731
    out_o = sig(sig(cast(x) @ W1.T + b1) @ W2.T + b2)
    return float((dtype(0.5) * (cast(target) - out_o) ** 2).sum(dtype=dtype))


def numerical_gradients(net: Network, x, target, h: float = 1e-5, dtype=np.float64) -> tuple[np.ndarray, ...]:
    """Central differences ``(E(p + h) - E(p - h)) / (2h)`` for every entry p of W1, b1, W2, b2,
    one entry at a time, computed in ``dtype`` (the result is returned as float64 arrays)."""
    grads = []
    for name in PARAMETERS:
        p = np.asarray(getattr(net, name), dtype=np.float64).astype(dtype)
        g = np.zeros(p.shape)
        for idx in np.ndindex(p.shape):
            errs = []
            for sign in (1, -1):
                moved = p.copy()
                moved[idx] = p[idx] + dtype(sign * h)
                errs.append(dtype(error_in(replace(net, **{name: moved}), x, target, dtype)))
            g[idx] = float((errs[0] - errs[1]) / dtype(2 * h))
        grads.append(g)
    return tuple(grads)


def relative_error(a, n) -> np.ndarray:
    """Elementwise ``|a - n| / (|a| + |n|)``, and 0 where a = n = 0 (they agree exactly).
    It lies in [0, 1]: 1 when one of them is 0 and the other not, or when their signs differ."""
    a, n = np.asarray(a, dtype=np.float64), np.asarray(n, dtype=np.float64)
    denom = np.abs(a) + np.abs(n)
    out = np.zeros(np.broadcast(a, n).shape)
    return np.divide(np.abs(a - n), denom, out=out, where=denom > 0)


def gradient_check(grads, net: Network, x, target, h: float = 1e-5) -> dict[str, float]:
    """The worst (largest) relative error of each parameter's gradient in ``grads`` (dW1, db1,
    dW2, db2) against central differences with step ``h``, float64."""
    numerical = numerical_gradients(net, x, target, h)
    return {name: float(relative_error(g, n).max()) for name, g, n in zip(PARAMETERS, grads, numerical)}


def count_failures(grads, net: Network, x, target, tol: float = 1e-6, h: float = 1e-5) -> dict[str, int]:
    """How many entries of each parameter's gradient fail the check: relative error above ``tol``."""
    numerical = numerical_gradients(net, x, target, h)
    return {name: int((relative_error(g, n) > tol).sum()) for name, g, n in zip(PARAMETERS, grads, numerical)}


def stale_gradients(net: Network, x, target, lr: float = LEARNING_RATE) -> Gradients:
    """The early script's stale-weights bug as gradients (see :func:`step_stale`): dW2 and db2 are right, dW1 and db1
    are computed with the output weights already updated, ``W2 - lr * dW2``."""
    grads = backward(net, x, target)
    stale = backward(net, x, target, W2_for_hidden=net.W2 - lr * grads.dW2)
    return replace(grads, dW1=stale.dW1, db1=stale.db1, dE_dout_h=stale.dE_dout_h, delta_h=stale.delta_h)


# The bugs the exercises plant in a backward pass (and hidden tests call gradient checks on).
PLANTED_BUGS = ("none", "hidden derivative of out", "dW2 from net_h", "stale W2", "sum without the 1/2",
                "biases averaged over the batch")


def planted_bug_gradients(net: Network, x, target, bug: str) -> tuple[np.ndarray, ...]:
    """(dW1, db1, dW2, db2) of a backward pass with one planted bug:

    * ``"none"``: the correct gradients;
    * ``"hidden derivative of out"``: the hidden layer's sigmoid derivative taken at out_h instead
      of net_h, ``sigmoid(out_h) * (1 - sigmoid(out_h))`` (the lesson's ``backward_buggy``);
    * ``"dW2 from net_h"``: dW2 = delta_o^T net_h, the hidden layer's net input where its output
      belongs (the exercises' ``backward_buggy``);
    * ``"stale W2"``: the early script's stale weights (:func:`stale_gradients`, lr 0.5);
    * ``"sum without the 1/2"``: the gradients of ``sum (t - o)^2``, twice E's;
    * ``"biases averaged over the batch"``: db1, db2 the mean of the deltas over the batch
      instead of their sum (right for one example, wrong for a batch).
    """
    x = np.asarray(x, dtype=np.float64)
    grads = backward(net, x, target)
    rows = lambda a: a.reshape(-1, a.shape[-1])  # noqa: E731
    if bug == "none":
        return gradient_arrays(grads)
    if bug == "hidden derivative of out":
        s = sigmoid(forward(net, x).out_h)
        delta_h = grads.dE_dout_h * s * (1 - s)
        return rows(delta_h).T @ rows(x), rows(delta_h).sum(axis=0), grads.dW2, grads.db2
    if bug == "dW2 from net_h":
        return grads.dW1, grads.db1, rows(grads.delta_o).T @ rows(forward(net, x).net_h), grads.db2
    if bug == "stale W2":
        return gradient_arrays(stale_gradients(net, x, target))
    if bug == "sum without the 1/2":
        return tuple(2 * g for g in gradient_arrays(grads))
    if bug == "biases averaged over the batch":
        return grads.dW1, rows(grads.delta_h).mean(axis=0), grads.dW2, rows(grads.delta_o).mean(axis=0)
    raise ValueError(f"bug must be one of {PLANTED_BUGS}, got {bug!r}")


def transposed_weights_error(net: Network, x, target) -> float:
    """E when both (square) weight matrices are used transposed: w2 and w3 trade places, and w6 and w7."""
    return total_error(forward(replace(net, W1=net.W1.T, W2=net.W2.T), x).out_o, target)


def float32_stored(value: float) -> float:
    """The float64 value of ``value`` after a trip through float32, as when a float32 tensor
    (torch's default) is copied into a float64 parameter."""
    return float(np.float32(value))


# Each activation and its derivative as a function of the net input z.
ACTIVATIONS = {
    "sigmoid": (sigmoid, lambda z: sigmoid(z) * (1 - sigmoid(z))),
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: np.where(np.asarray(z) > 0, 1.0, 0.0)),
}


def chain_gradient(n_layers: int, activation: str = "sigmoid", w: float = 1.0, x: float = 1.0, b: float = 0.0) -> float:
    """dC/dw1 for a chain of ``n_layers`` one-neuron layers a_k = f(w a_{k-1} + b), a_0 = x, every
    weight ``w`` and bias ``b``, and C = a_L^2 / 2, by the chain rule (no autograd):
    dC/dw1 = a_L * f'(z_L) w * f'(z_{L-1}) w * ... * f'(z_1) * x."""
    f, df = ACTIVATIONS[activation]
    a, zs = float(x), []
    for _ in range(n_layers):
        zs.append(w * a + b)
        a = float(f(zs[-1]))
    grad = a  # dC/da_L
    for z in reversed(zs[1:]):
        grad *= float(df(z)) * w  # through layer k: da_k/da_{k-1} = f'(z_k) w
    return grad * float(df(zs[0])) * x  # dz_1/dw_1 = x


# --- chapters 1-2 additions ---
# A forward pass of any depth (chapter 1's `forward_layers` exercise) and the gradients of a
# network whose hidden layer is tanh (chapter 2's `tanh_hidden_gradients` exercise).


def random_layers(seed: int, sizes: tuple[int, ...], scale: float = 1.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """A reproducible list of layers (W, b) for ``sizes`` = (inputs, layer 1, ..., layer L):
    W of shape (out, in) and b of shape (out,), uniform in [-scale, scale]."""
    rng = np.random.default_rng(seed)
    return [(rng.uniform(-scale, scale, size=(n_out, n_in)), rng.uniform(-scale, scale, size=n_out))
            for n_in, n_out in zip(sizes[:-1], sizes[1:])]


def forward_layers(x, layers) -> list[np.ndarray]:
    """The outputs of every layer of a sigmoid network of any depth, ``a_k = sigmoid(a_{k-1} W_k^T + b_k)``
    with ``a_0 = x`` (one example or a batch, one example per row); the last is the network's output."""
    outputs, a = [], np.asarray(x, dtype=np.float64)
    for W, b in layers:
        a = sigmoid(a @ np.asarray(W, dtype=np.float64).T + np.asarray(b, dtype=np.float64))
        outputs.append(a)
    return outputs


def tanh_hidden_gradients(net: Network, x, target) -> tuple[np.ndarray, ...]:
    """(dW1, db1, dW2, db2) of E = 1/2 sum (t - o)^2 for a network whose hidden layer is tanh,
    ``h = tanh(x W1^T + b1)``, and whose outputs are sigmoid, ``o = sigmoid(h W2^T + b2)``,
    with one bias per neuron; by the chain rule (tanh' = 1 - tanh^2), summed over a batch."""
    x = np.asarray(x, dtype=np.float64)
    h = np.tanh(x @ net.W1.T + net.b1)
    o = sigmoid(h @ net.W2.T + net.b2)
    delta_o = -(np.asarray(target, dtype=np.float64) - o) * o * (1 - o)
    delta_h = (delta_o @ net.W2) * (1 - h ** 2)
    rows = lambda a: a.reshape(-1, a.shape[-1])  # noqa: E731
    return (rows(delta_h).T @ rows(x), rows(delta_h).sum(axis=0),
            rows(delta_o).T @ rows(h), rows(delta_o).sum(axis=0))


# --- chapters 3-4 additions
# Chapter 3's transfer exercise: backpropagation through a sigmoid network of any depth, given
# as a list of (W, b) layers (random_layers above). Chapter 4's: gradient descent with momentum.
# Float64 numpy, no autograd; the module's conventions (W of shape (out, in), net = a @ W.T + b).

def backward_layers(layers, x, target) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(dW1, db1), ..., (dWL, dbL)]`` of E = 1/2 sum (t - o)^2 (summed over a batch) for a
    sigmoid network of any depth given as (W, b) layers: :func:`deep_backward`, paired by layer."""
    weights, biases = zip(*layers)
    return list(zip(*deep_backward(weights, biases, x, target)))


def train_momentum(net: Network, x, target, lr: float, momentum: float, steps: int) -> tuple[Network, np.ndarray]:
    """Full-batch gradient descent with momentum, every parameter trained (per-neuron biases), as
    ``torch.optim.SGD(params, lr, momentum=momentum)`` does it (no dampening, no Nesterov): for each
    parameter, ``v <- momentum * v + g`` with ``v`` starting at 0, then ``theta <- theta - lr * v``.
    Returns the final network and the history, ``history[k]`` = E after k updates."""
    names = ("W1", "b1", "W2", "b2")
    velocity = {name: np.zeros_like(getattr(net, name)) for name in names}
    history = np.empty(steps + 1)
    for k in range(steps):
        history[k] = total_error(forward(net, x).out_o, target)
        grads = backward(net, x, target)
        for name in names:
            velocity[name] = momentum * velocity[name] + getattr(grads, "d" + name)
        net = replace(net, **{name: getattr(net, name) - lr * velocity[name] for name in names})
    history[steps] = total_error(forward(net, x).out_o, target)
    return net, history


# --- chapters 5-6 additions
# Sigmoid networks of any depth, given as lists ``weights = [W1, ..., WL]`` (each of shape
# (out, in), as nn.Linear stores it) and ``biases = [b1, ..., bL]``: the new exercises of
# chapters 5 (an nn.Module of any depth, trained with another loss) and 6 (gradient checks of a
# deeper backward pass). Rows are examples: a layer computes ``a @ W.T + b``.


def random_deep_network(seed: int, sizes, scale: float = 1.0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Reproducible weights and biases uniform in [-scale, scale] for layer sizes
    ``(n_in, n_1, ..., n_L)``."""
    rng = np.random.default_rng(seed)
    weights, biases = [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        weights.append(rng.uniform(-scale, scale, size=(n_out, n_in)))
        biases.append(rng.uniform(-scale, scale, size=n_out))
    return weights, biases


def deep_forward(weights, biases, x, logits: bool = False) -> list[np.ndarray]:
    """The activations ``[a_0 = x, a_1, ..., a_L]`` of a network with a sigmoid after every
    layer; with ``logits=True`` the last layer has no sigmoid (a_L is its net input)."""
    a = [np.asarray(x, dtype=np.float64)]
    for k, (W, b) in enumerate(zip(weights, biases)):
        z = a[-1] @ np.asarray(W, dtype=np.float64).T + np.asarray(b, dtype=np.float64)
        a.append(z if logits and k == len(weights) - 1 else sigmoid(z))
    return a


def deep_error(weights, biases, x, target) -> float:
    """E = 1/2 sum (t - o)^2 of the all-sigmoid network of any depth."""
    return total_error(deep_forward(weights, biases, x)[-1], target)


def _deep_gradients(weights, activations, delta_last):
    """BP2 in a loop: from the last layer's delta, every layer's (dW, db), summed over a batch."""
    rows = lambda a: a.reshape(-1, a.shape[-1])  # noqa: E731
    dweights, dbiases = [None] * len(weights), [None] * len(weights)
    delta = delta_last
    for k in range(len(weights) - 1, -1, -1):
        dweights[k] = rows(delta).T @ rows(activations[k])
        dbiases[k] = rows(delta).sum(axis=0)
        if k > 0:
            a = activations[k]
            delta = (delta @ np.asarray(weights[k], dtype=np.float64)) * a * (1 - a)
    return dweights, dbiases


def deep_backward(weights, biases, x, target) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(dweights, dbiases) of E = 1/2 sum (t - o)^2 for the all-sigmoid network, without autograd."""
    acts = deep_forward(weights, biases, x)
    out = acts[-1]
    return _deep_gradients(weights, acts, (out - np.asarray(target, dtype=np.float64)) * out * (1 - out))


def bce_with_logits_sum(z, target) -> float:
    """sum over every element of -(t log sigmoid(z) + (1 - t) log(1 - sigmoid(z))), computed
    stably as max(z, 0) - t z + log(1 + exp(-|z|)): ``nn.BCEWithLogitsLoss(reduction="sum")``."""
    z, t = np.asarray(z, dtype=np.float64), np.asarray(target, dtype=np.float64)
    return float((np.maximum(z, 0) - t * z + np.log1p(np.exp(-np.abs(z)))).sum())


def deep_bce_backward(weights, biases, x, target) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(dweights, dbiases) of the summed binary cross-entropy of a network whose hidden layers
    are sigmoid and whose last layer gives logits: the last delta is sigmoid(z_L) - t."""
    acts = deep_forward(weights, biases, x, logits=True)
    return _deep_gradients(weights, acts, sigmoid(acts[-1]) - np.asarray(target, dtype=np.float64))


def train_bce(weights, biases, x, target, lr: float, steps: int):
    """Full-batch gradient descent on the summed BCE with logits, every parameter trained.
    Returns (weights, biases, history) with history[k] the loss after k updates."""
    weights = [np.asarray(W, dtype=np.float64) for W in weights]
    biases = [np.asarray(b, dtype=np.float64) for b in biases]
    history = np.empty(steps + 1)
    for k in range(steps + 1):
        history[k] = bce_with_logits_sum(deep_forward(weights, biases, x, logits=True)[-1], target)
        if k == steps:
            break
        dweights, dbiases = deep_bce_backward(weights, biases, x, target)
        weights = [W - lr * dW for W, dW in zip(weights, dweights)]
        biases = [b - lr * db for b, db in zip(biases, dbiases)]
    return weights, biases, history


def deep_numerical_gradients(weights, biases, x, target, h: float = 1e-5) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Central differences of :func:`deep_error` for every entry of every weight and bias, float64."""
    params = [np.asarray(p, dtype=np.float64) for p in list(weights) + list(biases)]
    L = len(weights)
    grads = []
    for k, p in enumerate(params):
        g = np.zeros(p.shape)
        for idx in np.ndindex(p.shape):
            errs = []
            for sign in (1, -1):
                moved = [q.copy() for q in params]
                moved[k][idx] = p[idx] + sign * h
                errs.append(deep_error(moved[:L], moved[L:], x, target))
            g[idx] = (errs[0] - errs[1]) / (2 * h)
        grads.append(g)
    return grads[:L], grads[L:]


def deep_count_failures(dweights, dbiases, weights, biases, x, target, tol: float = 1e-6,
                        h: float = 1e-5) -> tuple[list[int], list[int]]:
    """How many entries of each layer's given weight and bias gradients have a relative error
    above ``tol`` against central differences: (per-layer weight counts, per-layer bias counts)."""
    num_w, num_b = deep_numerical_gradients(weights, biases, x, target, h)
    count = lambda g, n: int((relative_error(g, n) > tol).sum())  # noqa: E731
    return ([count(g, n) for g, n in zip(dweights, num_w)], [count(g, n) for g, n in zip(dbiases, num_b)])
