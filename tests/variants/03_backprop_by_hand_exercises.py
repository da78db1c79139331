"""Chapter 3: per graded cell, a right answer unlike the solution's code and plausible wrong ones."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _liar import liar  # noqa: E402

_DEEP = """def backward_layers(x, t, layers):
    acts = [x]
    for W, b in layers:
        acts.append(torch.sigmoid(acts[-1] @ W.T + b))
    delta = output_deltas(acts[-1], t)
    rows = lambda a: a.reshape(-1, a.shape[-1])
    grads = []
    for l in range(len(layers) - 1, -1, -1):
        grads.append((rows(delta).T @ rows(acts[l]), rows(delta).sum(0)))
        if l > 0:
            delta = hidden_deltas(delta, layers[l][0], acts[l])
    return grads[::-1]
"""
VARIANTS = {
    "test_output_deltas": {
        "right": "def output_deltas(out_o, t):\n    return (out_o - t) * (out_o - out_o ** 2)\n",
        "wrong": {
            "sign": "def output_deltas(out_o, t):\n    return (t - out_o) * out_o * (1 - out_o)\n",
            "no sigmoid derivative": "def output_deltas(out_o, t):\n    return out_o - t\n",
            "target in the derivative": "def output_deltas(out_o, t):\n    return (out_o - t) * t * (1 - t)\n",
            "summed over outputs": "def output_deltas(out_o, t):\n    return ((out_o - t) * out_o * (1 - out_o)).sum(-1)\n",
        },
    },
    "test_hidden_deltas": {
        "right": "def hidden_deltas(delta_o, W2, out_h):\n    return torch.einsum('...k,kj->...j', delta_o, W2) * out_h * (1 - out_h)\n",
        "wrong": {
            "W2 transposed": "def hidden_deltas(delta_o, W2, out_h):\n    return (delta_o @ W2.T) * out_h * (1 - out_h)\n",
            "no derivative": "def hidden_deltas(delta_o, W2, out_h):\n    return delta_o @ W2\n",
            "one example only": "def hidden_deltas(delta_o, W2, out_h):\n    return (W2.T @ delta_o) * out_h * (1 - out_h)\n",
            "sum over the batch": "def hidden_deltas(delta_o, W2, out_h):\n    d = (delta_o @ W2) * out_h * (1 - out_h)\n    return d.sum(0) if d.dim() == 2 else d\n",
        },
    },
    "test_backward_layers": {
        "right": """def backward_layers(x, t, layers):
    single = x.dim() == 1
    X, T = (x[None], t[None]) if single else (x, t)
    acts = [X]
    for W, b in layers:
        acts.append(torch.sigmoid(acts[-1] @ W.T + b))
    grads = [None] * len(layers)
    delta = output_deltas(acts[-1], T)
    for l in reversed(range(len(layers))):
        grads[l] = (delta.T @ acts[l], delta.sum(0))
        delta = hidden_deltas(delta, layers[l][0], acts[l]) if l else None
    return grads
""",
        "wrong": {
            "right length, nothing inside": liar("backward_layers", "len(layers)", "x, t, layers"),
            "back through the layer's own input weights": _DEEP.replace("layers[l][0], acts[l]", "layers[l - 1][0], acts[l]"),
            "BP4 with the layer's own output": _DEEP.replace("rows(delta).T @ rows(acts[l])", "rows(delta).T @ rows(acts[l + 1])"),
            "batch averaged": _DEEP.replace("rows(delta).T @ rows(acts[l]), rows(delta).sum(0)",
                                            "rows(delta).T @ rows(acts[l]) / len(rows(delta)), rows(delta).mean(0)"),
            "biases not summed": _DEEP.replace("rows(delta).sum(0)", "delta"),
            "last layer first": _DEEP.replace("return grads[::-1]", "return grads"),
            "two layers only": """def backward_layers(x, t, layers):
    (W1, b1), (W2, b2) = layers[0], layers[-1]
    h = torch.sigmoid(x @ W1.T + b1)
    o = torch.sigmoid(h @ W2.T + b2)
    d_o = output_deltas(o, t)
    d_h = hidden_deltas(d_o, W2, h)
    rows = lambda a: a.reshape(-1, a.shape[-1])
    return [(rows(d_h).T @ rows(x), rows(d_h).sum(0)), (rows(d_o).T @ rows(h), rows(d_o).sum(0))]
""",
        },
    },
}
