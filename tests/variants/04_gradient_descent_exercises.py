"""Chapter 4: per graded cell, a right answer unlike the solution's code and plausible wrong ones."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _liar import liar  # noqa: E402

_TRAIN = """def train(x, t, W1, b1, W2, b2, lr, steps, train_biases=True):
    history = [error(x, t, W1, b1, W2, b2)]
    for _ in range(steps):
        dW1, db1, dW2, db2 = gradients(x, t, W1, b1, W2, b2)
        if train_biases:
            W1, b1, W2, b2 = sgd_step((W1, b1, W2, b2), (dW1, db1, dW2, db2), lr)
        else:
            W1, W2 = sgd_step((W1, W2), (dW1, dW2), lr)
        history.append(error(x, t, W1, b1, W2, b2))
    return torch.stack(history).detach()
"""
_MOMENTUM = """def train_momentum(x, t, W1, b1, W2, b2, lr, momentum, steps):
    params = [W1, b1, W2, b2]
    velocity = [torch.zeros_like(p) for p in params]
    history = [error(x, t, *params)]
    for _ in range(steps):
        grads = gradients(x, t, *params)
        velocity = [momentum * v + g for v, g in zip(velocity, grads)]
        params = [p - lr * v for p, v in zip(params, velocity)]
        history.append(error(x, t, *params))
    return torch.stack(history).detach()
"""
_FIXED = """def fixed_gradients(x, t, W1, b1, W2, b2, lr):
    h = torch.sigmoid(x @ W1.T + b1)
    o = torch.sigmoid(h @ W2.T + b2)
    delta_o = (o - t) * o * (1 - o)
    dW2 = torch.outer(delta_o, h)
    delta_h = (delta_o @ W2) * h * (1 - h)
    dW1 = torch.outer(delta_h, x)
    return dW1, dW2
"""
VARIANTS = {
    "test_sgd_step": {
        "right": "def sgd_step(params, grads, lr):\n    new = []\n    for k in range(len(params)):\n        new.append(torch.add(params[k], grads[k], alpha=-lr))\n    return new\n",
        "wrong": {
            "right length, nothing inside": liar("sgd_step", "4", "params, grads, lr"),
            "sign": "def sgd_step(params, grads, lr):\n    return [p + lr * g for p, g in zip(params, grads)]\n",
            "in place": "def sgd_step(params, grads, lr):\n    for p, g in zip(params, grads):\n        p -= lr * g\n    return list(params)\n",
            "no learning rate": "def sgd_step(params, grads, lr):\n    return [p - g for p, g in zip(params, grads)]\n",
            "the steps, not the parameters": "def sgd_step(params, grads, lr):\n    return [lr * g for g in grads]\n",
        },
    },
    "test_train": {
        "right": """def train(x, t, W1, b1, W2, b2, lr, steps, train_biases=True):
    params = [W1, b1, W2, b2]
    history = torch.empty(steps + 1, dtype=x.dtype)
    history[0] = error(x, t, *params)
    for k in range(1, steps + 1):
        grads = list(gradients(x, t, *params))
        if not train_biases:
            grads[1], grads[3] = torch.zeros_like(b1), torch.zeros_like(b2)
        params = sgd_step(params, grads, lr)
        history[k] = error(x, t, *params)
    return history
""",
        "wrong": {
            "no error before training": _TRAIN.replace("history = [error(x, t, W1, b1, W2, b2)]", "history = []"),
            "the error before each update only": _TRAIN.replace("        history.append(error(x, t, W1, b1, W2, b2))\n",
                                                                "        history.append(error(x, t, W1, b1, W2, b2)) if _ < steps - 1 else None\n"),
            "biases always trained": _TRAIN.replace("if train_biases:", "if True:"),
            "biases never trained": _TRAIN.replace("if train_biases:", "if False:"),
            "float32 history": _TRAIN.replace("return torch.stack(history).detach()", "return torch.tensor([float(e) for e in history])"),
            "stale gradients": _TRAIN.replace("    for _ in range(steps):\n        dW1, db1, dW2, db2 = gradients(x, t, W1, b1, W2, b2)\n",
                                              "    dW1, db1, dW2, db2 = gradients(x, t, W1, b1, W2, b2)\n    for _ in range(steps):\n"),
        },
    },
    "test_fixed_gradients": {
        "right": """def fixed_gradients(x, t, W1, b1, W2, b2, lr):
    W2_used = W2.clone()
    dW1, dW2 = early_script_gradients(x, t, W1, b1, W2, b2, 0.0)   # no update: the bug cannot act
    return dW1, dW2
""",
        "wrong": {
            "the early script": "def fixed_gradients(x, t, W1, b1, W2, b2, lr):\n    return early_script_gradients(x, t, W1, b1, W2, b2, lr)\n",
            "both from the updated W2": _FIXED.replace("    dW2 = torch.outer(delta_o, h)\n", "    W2 = W2 - lr * torch.outer(delta_o, h)\n    dW2 = torch.outer(delta_o, h)\n"),
            "swapped": _FIXED.replace("return dW1, dW2", "return dW2, dW1"),
            "W2 transposed": _FIXED.replace("delta_o @ W2)", "delta_o @ W2.T)"),
        },
    },
    "test_train_momentum": {
        "right": """def train_momentum(x, t, W1, b1, W2, b2, lr, momentum, steps):
    params = [W1, b1, W2, b2]
    step = [0.0] * 4                      # lr * v, kept instead of v
    history = [error(x, t, *params)]
    for _ in range(steps):
        step = [momentum * s + lr * g for s, g in zip(step, gradients(x, t, *params))]
        params = [p - s for p, s in zip(params, step)]
        history.append(error(x, t, *params))
    return torch.stack(history).detach()
""",
        "wrong": {
            "dampened": _MOMENTUM.replace("momentum * v + g", "momentum * v + (1 - momentum) * g"),
            "velocity not kept": _MOMENTUM.replace("momentum * v + g for v, g in zip(velocity, grads)", "g for g in grads"),
            "steps along the gradient": _MOMENTUM.replace("p - lr * v for p, v in zip(params, velocity)", "p - lr * g for p, g in zip(params, grads)"),
            "momentum on the sum": _MOMENTUM.replace("momentum * v + g", "momentum * (v + g)"),
            "nesterov": _MOMENTUM.replace("p - lr * v for p, v in zip(params, velocity)", "p - lr * (g + momentum * v) for p, g, v in zip(params, grads, velocity)"),
            "in place": _MOMENTUM.replace("params = [p - lr * v for p, v in zip(params, velocity)]",
                                          "[p.sub_(lr * v) for p, v in zip(params, velocity)]"),
        },
    },
}
