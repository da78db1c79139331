"""Chapter 2: per graded cell, a right answer unlike the solution's code and plausible wrong ones."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _liar import liar  # noqa: E402

VARIANTS = {
    "test_sigmoid_derivative": {
        "right": "def sigmoid_derivative(z):\n    e = torch.exp(-z)\n    return e / (1 + e) ** 2\n",
        "wrong": {
            "z instead of sigma(z)": "def sigmoid_derivative(z):\n    return z * (1 - z)\n",
            "mixed": "def sigmoid_derivative(z):\n    return torch.sigmoid(z) * (1 - z)\n",
            "sigma itself": "def sigmoid_derivative(z):\n    return torch.sigmoid(z)\n",
            "plus": "def sigmoid_derivative(z):\n    s = torch.sigmoid(z)\n    return s * (1 + s)\n",
        },
    },
    "test_w5_factors": {
        "right": "def w5_factors(out_h1, out_o1, t1):\n    return [out_o1 - t1, out_o1 - out_o1 ** 2, out_h1 * 1]\n",
        "wrong": {
            "right length, nothing inside": liar("w5_factors", "3", "out_h1, out_o1, t1"),
            "sign": "def w5_factors(out_h1, out_o1, t1):\n    return t1 - out_o1, out_o1 * (1 - out_o1), out_h1\n",
            "hidden neuron's derivative": "def w5_factors(out_h1, out_o1, t1):\n    return out_o1 - t1, out_h1 * (1 - out_h1), out_h1\n",
            "output instead of input": "def w5_factors(out_h1, out_o1, t1):\n    return out_o1 - t1, out_o1 * (1 - out_o1), out_o1\n",
            "product only": "def w5_factors(out_h1, out_o1, t1):\n    return (out_o1 - t1) * out_o1 * (1 - out_o1) * out_h1\n",
            "two factors": "def w5_factors(out_h1, out_o1, t1):\n    return (out_o1 - t1) * out_o1 * (1 - out_o1), out_h1\n",
        },
    },
    "test_output_weight_gradients": {
        "right": "def output_weight_gradients(out_h, out_o, t):\n    d = (out_o - t) * out_o * (1 - out_o)\n    return d[:, None] * out_h[None, :]\n",
        "wrong": {
            "transposed": "def output_weight_gradients(out_h, out_o, t):\n    return torch.outer(out_h, (out_o - t) * out_o * (1 - out_o))\n",
            "sign": "def output_weight_gradients(out_h, out_o, t):\n    return torch.outer((t - out_o) * out_o * (1 - out_o), out_h)\n",
            "no sigmoid derivative": "def output_weight_gradients(out_h, out_o, t):\n    return torch.outer(out_o - t, out_h)\n",
            "elementwise": "def output_weight_gradients(out_h, out_o, t):\n    return ((out_o - t) * out_o * (1 - out_o) * out_h).expand(len(out_o), len(out_h))\n",
        },
    },
    "test_hidden_weight_gradients": {
        "right": "def hidden_weight_gradients(x, out_h, out_o, t, W2):\n    d_o = (out_o - t) * out_o * (1 - out_o)\n"
                 "    d_h = (W2.T @ d_o) * out_h * (1 - out_h)\n    return d_h[:, None] * x[None, :]\n",
        "wrong": {
            "W2 transposed": "def hidden_weight_gradients(x, out_h, out_o, t, W2):\n    d_o = (out_o - t) * out_o * (1 - out_o)\n"
                             "    return torch.outer((d_o @ W2.T) * out_h * (1 - out_h), x)\n",
            "one path only": "def hidden_weight_gradients(x, out_h, out_o, t, W2):\n    d_o = (out_o - t) * out_o * (1 - out_o)\n"
                             "    return torch.outer(d_o[0] * W2[0] * out_h * (1 - out_h), x)\n",
            "no hidden derivative": "def hidden_weight_gradients(x, out_h, out_o, t, W2):\n    d_o = (out_o - t) * out_o * (1 - out_o)\n"
                                    "    return torch.outer(d_o @ W2, x)\n",
            "paths multiplied": "def hidden_weight_gradients(x, out_h, out_o, t, W2):\n    d_o = (out_o - t) * out_o * (1 - out_o)\n"
                                "    return torch.outer((d_o[:, None] * W2).prod(0) * out_h * (1 - out_h), x)\n",
        },
    },
    "test_tanh_hidden_gradients": {
        "right": "def tanh_hidden_gradients(x, t, W1, b1, W2, b2):\n    h = torch.tanh(W1 @ x + b1)\n    o = torch.sigmoid(W2 @ h + b2)\n"
                 "    d_o = (o - t) * o * (1 - o)\n    d_h = (W2.T @ d_o) / torch.cosh(W1 @ x + b1) ** 2\n"
                 "    return d_h[:, None] * x, d_h, d_o[:, None] * h, d_o\n",
        "wrong": {
            "sigmoid's derivative": "def tanh_hidden_gradients(x, t, W1, b1, W2, b2):\n    h = torch.tanh(x @ W1.T + b1)\n    o = torch.sigmoid(h @ W2.T + b2)\n"
                                    "    d_o = (o - t) * o * (1 - o)\n    d_h = (d_o @ W2) * h * (1 - h)\n"
                                    "    return torch.outer(d_h, x), d_h, torch.outer(d_o, h), d_o\n",
            "1 - tanh": "def tanh_hidden_gradients(x, t, W1, b1, W2, b2):\n    h = torch.tanh(x @ W1.T + b1)\n    o = torch.sigmoid(h @ W2.T + b2)\n"
                        "    d_o = (o - t) * o * (1 - o)\n    d_h = (d_o @ W2) * (1 - h)\n"
                        "    return torch.outer(d_h, x), d_h, torch.outer(d_o, h), d_o\n",
            "sigmoid hidden layer": "def tanh_hidden_gradients(x, t, W1, b1, W2, b2):\n    h = torch.sigmoid(x @ W1.T + b1)\n    o = torch.sigmoid(h @ W2.T + b2)\n"
                                    "    d_o = (o - t) * o * (1 - o)\n    d_h = (d_o @ W2) * h * (1 - h)\n"
                                    "    return torch.outer(d_h, x), d_h, torch.outer(d_o, h), d_o\n",
            "bias gradient times input": "def tanh_hidden_gradients(x, t, W1, b1, W2, b2):\n    h = torch.tanh(x @ W1.T + b1)\n    o = torch.sigmoid(h @ W2.T + b2)\n"
                                         "    d_o = (o - t) * o * (1 - o)\n    d_h = (d_o @ W2) * (1 - h ** 2)\n"
                                         "    return torch.outer(d_h, x), d_h * x, torch.outer(d_o, h), d_o * h\n",
        },
    },
}
