"""Chapter 1: per graded cell, a right answer unlike the solution's code and plausible wrong ones."""
VARIANTS = {
    "test_layer": {
        "right": "def layer(x, W, b):\n    return 1 / (1 + torch.exp(-(torch.matmul(x, W.transpose(0, 1)) + b)))\n",
        "wrong": {
            "no bias": "def layer(x, W, b):\n    return torch.sigmoid(x @ W.T)\n",
            "W not transposed": "def layer(x, W, b):\n    return torch.sigmoid(x @ W + b)\n",
            "no sigmoid": "def layer(x, W, b):\n    return x @ W.T + b\n",
            "tanh": "def layer(x, W, b):\n    return torch.tanh(x @ W.T + b)\n",
            "one example only": "def layer(x, W, b):\n    return torch.sigmoid(W @ x + b)\n",
        },
    },
    "test_forward": {
        "right": "def forward(x, W1, b1, W2, b2):\n    h = torch.sigmoid(torch.addmm(b1, x.reshape(-1, x.shape[-1]), W1.T)).reshape(*x.shape[:-1], -1)\n"
                 "    return h, torch.sigmoid(h @ W2.T + b2)\n",
        "wrong": {
            "swapped": "def forward(x, W1, b1, W2, b2):\n    h = layer(x, W1, b1)\n    return layer(h, W2, b2), h\n",
            "output layer on x": "def forward(x, W1, b1, W2, b2):\n    return layer(x, W1, b1), layer(x, W2, b2)\n",
            "output only": "def forward(x, W1, b1, W2, b2):\n    return layer(layer(x, W1, b1), W2, b2)\n",
            "weights swapped": "def forward(x, W1, b1, W2, b2):\n    h = layer(x, W2, b1)\n    return h, layer(h, W1, b2)\n",
        },
    },
    "test_total_error": {
        "right": "def total_error(out, target):\n    d = (out - target).flatten()\n    return (d @ d) / 2\n",
        "wrong": {
            "no half": "def total_error(out, target):\n    return ((target - out) ** 2).sum()\n",
            "mean": "def total_error(out, target):\n    return 0.5 * ((target - out) ** 2).mean()\n",
            "per example": "def total_error(out, target):\n    return 0.5 * ((target - out) ** 2).sum(-1)\n",
            "a Python float": "def total_error(out, target):\n    return float(0.5 * ((target - out) ** 2).sum())\n",
            "not squared": "def total_error(out, target):\n    return 0.5 * (target - out).abs().sum()\n",
        },
    },
    "test_mse_over_error": {
        "right": "def mse_over_error(n_outputs, batch_size):\n    return 1 / (0.5 * n_outputs * batch_size)\n",
        "wrong": {
            "always 1": "def mse_over_error(n_outputs, batch_size):\n    return 1.0\n",
            "n/(2B)": "def mse_over_error(n_outputs, batch_size):\n    return n_outputs / (2 * batch_size)\n",
            "B*n/2": "def mse_over_error(n_outputs, batch_size):\n    return batch_size * n_outputs / 2\n",
            "outputs only": "def mse_over_error(n_outputs, batch_size):\n    return 2 / n_outputs\n",
            "batch only": "def mse_over_error(n_outputs, batch_size):\n    return 1 / batch_size\n",
            "no factor 2": "def mse_over_error(n_outputs, batch_size):\n    return 1 / (n_outputs * batch_size)\n",
            "inverted": "def mse_over_error(n_outputs, batch_size):\n    return n_outputs * batch_size / 2\n",
        },
    },
    "test_forward_layers": {
        "right": "def forward_layers(x, layers):\n    if not layers:\n        return []\n    W, b = layers[0]\n    a = layer(x, W, b)\n"
                 "    return [a] + forward_layers(a, layers[1:])\n",
        "wrong": {
            "last output only": "def forward_layers(x, layers):\n    for W, b in layers:\n        x = layer(x, W, b)\n    return [x]\n",
            "input included": "def forward_layers(x, layers):\n    outs = [x]\n    for W, b in layers:\n        outs.append(layer(outs[-1], W, b))\n    return outs\n",
            "no sigmoid on the last layer": "def forward_layers(x, layers):\n    outs = []\n    for k, (W, b) in enumerate(layers):\n"
                                             "        x = x @ W.T + b\n        x = x if k == len(layers) - 1 else torch.sigmoid(x)\n        outs.append(x)\n    return outs\n",
            "every layer on the input": "def forward_layers(x, layers):\n    return [layer(x, W, b) for W, b in layers]\n",
            "reversed": "def forward_layers(x, layers):\n    outs = []\n    for W, b in layers:\n        x = layer(x, W, b)\n        outs.insert(0, x)\n    return outs\n",
        },
    },
}
