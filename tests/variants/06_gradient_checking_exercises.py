"""Chapter 6: per graded cell, a right answer unlike the solution's code and plausible wrong ones."""
_REL = """def relative_error(a, n):
    if not isinstance(a, torch.Tensor):
        denominator = abs(a) + abs(n)
        return abs(a - n) / denominator if denominator > 0 else 0.0
    denominator = a.abs() + n.abs()
    safe = torch.where(denominator > 0, denominator, torch.ones_like(denominator))
    return torch.where(denominator > 0, (a - n).abs() / safe, torch.zeros_like(denominator))
"""
_NUM = """def numerical_gradients(x, t, weights, biases, h=1e-5):
    def central(params, k, build):
        p = params[k]
        g = torch.zeros_like(p)
        for i in range(p.numel()):
            plus, minus = p.clone(), p.clone()
            plus.view(-1)[i] += h
            minus.view(-1)[i] -= h
            E_plus = error(x, t, *build(params[:k] + [plus] + params[k + 1:]))
            E_minus = error(x, t, *build(params[:k] + [minus] + params[k + 1:]))
            g.view(-1)[i] = (E_plus - E_minus) / (2 * h)
        return g

    weights, biases = list(weights), list(biases)
    dweights = [central(weights, k, lambda ws: (ws, biases)) for k in range(len(weights))]
    dbiases = [central(biases, k, lambda bs: (weights, bs)) for k in range(len(biases))]
    return dweights, dbiases
"""
_IN_PLACE = """def numerical_gradients(x, t, weights, biases, h=1e-5):
    grads = []
    for p in list(weights) + list(biases):
        g = torch.zeros_like(p)
        for i in range(p.numel()):
            p.view(-1)[i] += h
            E_plus = error(x, t, weights, biases)
            p.view(-1)[i] -= 2 * h
            E_minus = error(x, t, weights, biases)
            p.view(-1)[i] += h
            g.view(-1)[i] = (E_plus - E_minus) / (2 * h)
        grads.append(g)
    return grads[:len(weights)], grads[len(weights):]
"""
_DEEP = """def backward_deep(x, t, weights, biases):
    activations = [x]
    for W, b in zip(weights, biases):
        activations.append(torch.sigmoid(activations[-1] @ W.T + b))
    rows = lambda a: a.reshape(-1, a.shape[-1])
    out = activations[-1]
    delta = (out - t) * out * (1 - out)
    dweights, dbiases = [None] * len(weights), [None] * len(weights)
    for k in range(len(weights) - 1, -1, -1):
        dweights[k] = rows(delta).T @ rows(activations[k])
        dbiases[k] = rows(delta).sum(0)
        if k > 0:
            a = activations[k]
            delta = (delta @ weights[k]) * a * (1 - a)
    return dweights, dbiases
"""
_COUNT = """def count_failures(backward_fn, x, t, weights, biases, tol=1e-6, h=1e-5):
    analytic_w, analytic_b = backward_fn(x, t, weights, biases)
    numerical_w, numerical_b = numerical_gradients(x, t, weights, biases, h)
    count = lambda a, n: int((relative_error(a, n) > tol).sum())
    return ([count(a, n) for a, n in zip(analytic_w, numerical_w)],
            [count(a, n) for a, n in zip(analytic_b, numerical_b)])
"""
VARIANTS = {
    "test_relative_error": {
        "right": """def relative_error(a, n):
    if isinstance(a, torch.Tensor):
        d = a.abs() + n.abs()
        return torch.nan_to_num((a - n).abs() / d, nan=0.0)
    a, n = float(a), float(n)
    return 0.0 if a == n == 0 else abs(a - n) / (abs(a) + abs(n))
""",
        "wrong": {
            "epsilon in the denominator": _REL.replace("(a - n).abs() / safe", "(a - n).abs() / (denominator + 1e-12)").replace(
                "abs(a - n) / denominator", "abs(a - n) / (denominator + 1e-12)"),
            "nan at 0/0": "def relative_error(a, n):\n    if isinstance(a, torch.Tensor):\n        return (a - n).abs() / (a.abs() + n.abs())\n"
                          "    return abs(a - n) / (abs(a) + abs(n)) if a or n else float('nan')\n",
            "numbers through torch.tensor (float32)": "def relative_error(a, n):\n    if not isinstance(a, torch.Tensor):\n"
                                                      "        a, n = torch.tensor(a), torch.tensor(n)\n"
                                                      "        return float(torch.nan_to_num((a - n).abs() / (a.abs() + n.abs())))\n"
                                                      "    return torch.nan_to_num((a - n).abs() / (a.abs() + n.abs()))\n",
            "a tensor for numbers": "def relative_error(a, n):\n    a, n = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(n, dtype=torch.float64)\n"
                                    "    return torch.nan_to_num((a - n).abs() / (a.abs() + n.abs()))\n",
            "max in the denominator": _REL.replace("a.abs() + n.abs()", "torch.maximum(a.abs(), n.abs())").replace("abs(a) + abs(n)", "max(abs(a), abs(n))"),
            "float64 always": _REL.replace("    denominator = a.abs() + n.abs()\n", "    a, n = a.double(), n.double()\n    denominator = a.abs() + n.abs()\n"),
        },
    },
    "test_numerical_gradients": {
        "right": _IN_PLACE.replace("            p.view(-1)[i] -= 2 * h\n", "            p.view(-1)[i] = saved - h\n").replace(
            "            p.view(-1)[i] += h\n            g.view", "            p.view(-1)[i] = saved\n            g.view").replace(
            "            p.view(-1)[i] += h\n            E_plus", "            saved = p.view(-1)[i].clone()\n            p.view(-1)[i] = saved + h\n            E_plus"),
        "wrong": {
            "forward differences": _NUM.replace("E_plus - E_minus) / (2 * h)", "E_plus - error(x, t, weights, biases)) / h"),
            "not put back": _IN_PLACE.replace("            p.view(-1)[i] += h\n            g.view", "            g.view"),
            "put back inexactly": _IN_PLACE,
            "step h/2": _NUM.replace("(2 * h)", "h"),
            "its own step": _NUM.replace("def numerical_gradients(x, t, weights, biases, h=1e-5):", "def numerical_gradients(x, t, weights, biases, h=1e-5):\n    h = 1e-5"),
            "weights only": _NUM.replace("dbiases = [central(biases, k, lambda bs: (weights, bs)) for k in range(len(biases))]",
                                         "dbiases = [torch.zeros_like(b) for b in biases]"),
        },
    },
    "test_backward_deep": {
        "right": """def backward_deep(x, t, weights, biases):
    X, T = x.reshape(-1, x.shape[-1]), t.reshape(-1, t.shape[-1])
    acts = [X]
    for W, b in zip(weights, biases):
        acts.append(torch.sigmoid(torch.addmm(b, acts[-1], W.T)))
    delta = (acts[-1] - T) * acts[-1] * (1 - acts[-1])
    dW, db = [], []
    for k in reversed(range(len(weights))):
        dW.insert(0, delta.T @ acts[k])
        db.insert(0, delta.sum(0))
        delta = (delta @ weights[k]) * acts[k] * (1 - acts[k])
    return dW, db
""",
        "wrong": {
            "W transposed": _DEEP.replace("delta @ weights[k])", "delta @ weights[k].T)"),
            "batch mean": _DEEP.replace("rows(delta).T @ rows(activations[k])", "rows(delta).T @ rows(activations[k]) / len(rows(delta))").replace(
                "rows(delta).sum(0)", "rows(delta).mean(0)"),
            "the layer's own output": _DEEP.replace("rows(delta).T @ rows(activations[k])", "rows(delta).T @ rows(activations[k + 1])"),
            "no sigmoid derivative at the output": _DEEP.replace("delta = (out - t) * out * (1 - out)", "delta = out - t"),
            "the next layer's weights": _DEEP.replace("delta @ weights[k])", "delta @ weights[k - 1].T)"),
        },
    },
    "test_count_failures": {
        "right": """def count_failures(backward_fn, x, t, weights, biases, tol=1e-6, h=1e-5):
    analytic = backward_fn(x, t, weights, biases)
    numerical = numerical_gradients(x, t, weights, biases, h=h)
    return tuple([sum(1 for r in relative_error(a, n).flatten().tolist() if r > tol) for a, n in zip(analytic[j], numerical[j])]
                 for j in (0, 1))
""",
        "wrong": {
            "layers, not entries": _COUNT.replace("int((relative_error(a, n) > tol).sum())", "int(bool((relative_error(a, n) > tol).any()))"),
            "absolute error": _COUNT.replace("relative_error(a, n) > tol", "(a - n).abs() > tol"),
            "the worst error": _COUNT.replace("int((relative_error(a, n) > tol).sum())", "float(relative_error(a, n).max())"),
            "its own tolerance": _COUNT.replace("relative_error(a, n) > tol", "relative_error(a, n) > 1e-6"),
            "weights and biases together": _COUNT.replace(
                "    return ([count(a, n) for a, n in zip(analytic_w, numerical_w)],\n            [count(a, n) for a, n in zip(analytic_b, numerical_b)])",
                "    both = [count(a, n) for a, n in zip(analytic_w + analytic_b, numerical_w + numerical_b)]\n    k = len(analytic_w)\n"
                "    return [both[i] + both[i + k] for i in range(k)], [0] * k"),
        },
    },
}
