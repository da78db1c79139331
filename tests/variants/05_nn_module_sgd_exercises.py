"""Chapter 5: per graded cell, a right answer unlike the solution's code and plausible wrong ones."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _liar import liar  # noqa: E402

_MLP = """class SigmoidMLP(nn.Module):
    def __init__(self, weights, biases, logits=False):
        super().__init__()
        self.logits = logits
        self.layers = nn.ModuleList()
        for W, b in zip(weights, biases):
            layer = nn.Linear(W.shape[1], W.shape[0], dtype=W.dtype)
            with torch.no_grad():
                layer.weight.copy_(W)
                layer.bias.copy_(b)
            self.layers.append(layer)

    def forward(self, x):
        for k, layer in enumerate(self.layers):
            x = layer(x)
            if not (self.logits and k == len(self.layers) - 1):
                x = torch.sigmoid(x)
        return x
"""
_STEP = """def optimizer_step(W1, b1, W2, b2, x, t, lr, train_biases=True):
    model = TwoLayerNet(W1, b1, W2, b2)
    weights = [model.hidden.weight, model.output.weight]
    biases = [model.hidden.bias, model.output.bias]
    optimizer = torch.optim.SGD(weights + biases if train_biases else weights, lr=lr)
    optimizer.zero_grad()
    loss = 0.5 * nn.MSELoss(reduction="sum")(model(x), t)
    loss.backward()
    optimizer.step()
    return (model.hidden.weight.detach(), model.hidden.bias.detach(),
            model.output.weight.detach(), model.output.bias.detach())
"""
_BCE = """def train_bce(weights, biases, x, t, lr, steps):
    model = SigmoidMLP(weights, biases, logits=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
    history = torch.empty(steps + 1, dtype=x.dtype)
    for k in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(x), t)
        history[k] = loss.item()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        history[steps] = loss_fn(model(x), t)
    return history
"""
_FIXED = """def train_fixed(W1, b1, W2, b2, x, t, lr, steps):
    model = TwoLayerNet(W1, b1, W2, b2)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.MSELoss(reduction="sum")
    for _ in range(steps):
        optimizer.zero_grad()
        loss = 0.5 * loss_fn(model(x), t)
        loss.backward()
        optimizer.step()
    return (model.hidden.weight.detach(), model.hidden.bias.detach(),
            model.output.weight.detach(), model.output.bias.detach())
"""
VARIANTS = {
    "test_sigmoid_mlp": {
        "right": """class SigmoidMLP(nn.Module):
    def __init__(self, weights, biases, logits=False):
        super().__init__()
        self.layers = nn.Sequential(*[nn.Linear(W.shape[1], W.shape[0], dtype=W.dtype) for W in weights])
        self.logits = logits
        for layer, W, b in zip(self.layers, weights, biases):
            layer.weight.data = W.clone()
            layer.bias.data = b.clone()

    def forward(self, x):
        *hidden, last = self.layers
        for layer in hidden:
            x = torch.sigmoid(layer(x))
        x = last(x)
        return x if self.logits else torch.sigmoid(x)
""",
        "wrong": {
            "a plain list": _MLP.replace("self.layers = nn.ModuleList()", "self.layers = []"),
            "another attribute name": _MLP.replace("self.layers", "self.linears"),
            "logits ignored": _MLP.replace("if not (self.logits and k == len(self.layers) - 1):", "if True:"),
            "no sigmoid after the last layer": _MLP.replace("if not (self.logits and k == len(self.layers) - 1):", "if k < len(self.layers) - 1:"),
            "float32 layers": _MLP.replace(", dtype=W.dtype)", ")"),
            "values not copied": _MLP.replace("                layer.weight.copy_(W)\n", ""),
            "in reverse order": _MLP.replace("for k, layer in enumerate(self.layers):", "for k, layer in enumerate(self.layers[::-1]):"),
        },
    },
    "test_optimizer_step": {
        "right": """def optimizer_step(W1, b1, W2, b2, x, t, lr, train_biases=True):
    model = TwoLayerNet(W1, b1, W2, b2)
    if not train_biases:
        model.hidden.bias.requires_grad_(False)
        model.output.bias.requires_grad_(False)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)
    (0.5 * ((model(x) - t) ** 2).sum()).backward()
    optimizer.step()
    return tuple(p.detach().clone() for p in (model.hidden.weight, model.hidden.bias, model.output.weight, model.output.bias))
""",
        "wrong": {
            "right length, nothing inside": liar("optimizer_step", "4", "W1, b1, W2, b2, x, t, lr, train_biases=True"),
            "mean loss": _STEP.replace('0.5 * nn.MSELoss(reduction="sum")(model(x), t)', "nn.MSELoss()(model(x), t)"),
            "no half": _STEP.replace('0.5 * nn.MSELoss(reduction="sum")', 'nn.MSELoss(reduction="sum")'),
            "biases always trained": _STEP.replace("weights + biases if train_biases else weights", "weights + biases"),
            "biases never trained": _STEP.replace("weights + biases if train_biases else weights", "weights"),
            "biases set to zero when frozen": _STEP.replace("    return (", "    if not train_biases:\n        model.hidden.bias.data.zero_()\n        model.output.bias.data.zero_()\n    return ("),
        },
    },
    "test_train_bce": {
        "right": """def train_bce(weights, biases, x, t, lr, steps):
    model = SigmoidMLP(weights, biases, logits=False)   # the sigmoid in the model, BCELoss on o
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.BCELoss(reduction="sum")
    history = []
    for k in range(steps + 1):
        optimizer.zero_grad()
        loss = loss_fn(model(x), t)
        history.append(loss.detach())
        if k < steps:
            loss.backward()
            optimizer.step()
    return torch.stack(history)
""",
        "wrong": {
            "the loss after each update only": _BCE.replace("history[k] = loss.item()", "pass").replace(
                "        optimizer.step()\n", "        optimizer.step()\n        with torch.no_grad():\n            history[k] = loss_fn(model(x), t)\n").replace(
                "        history[steps] = loss_fn(model(x), t)", "        history[steps] = history[steps - 1]"),
            "mean": _BCE.replace('reduction="sum"', 'reduction="mean"'),
            "no zero_grad": _BCE.replace("        optimizer.zero_grad()\n", ""),
            "sigmoid applied twice": _BCE.replace("logits=True", "logits=False"),
            "float32 history": _BCE.replace("dtype=x.dtype", "dtype=torch.float32"),
            "squared error": _BCE.replace('nn.BCEWithLogitsLoss(reduction="sum")', 'lambda z, t: 0.5 * ((torch.sigmoid(z) - t) ** 2).sum()'),
        },
    },
    "test_train_fixed": {
        "right": """def train_fixed(W1, b1, W2, b2, x, t, lr, steps):
    model = TwoLayerNet(W1, b1, W2, b2)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        model.zero_grad()
        (0.5 * ((model(x) - t) ** 2).sum()).backward()
        optimizer.step()
    return tuple(p.detach() for p in (model.hidden.weight, model.hidden.bias, model.output.weight, model.output.bias))
""",
        "wrong": {
            "right length, nothing inside": liar("train_fixed", "4", "W1, b1, W2, b2, x, t, lr, steps"),
            "as given": "def train_fixed(W1, b1, W2, b2, x, t, lr, steps):\n    return train_buggy(W1, b1, W2, b2, x, t, lr, steps)\n",
            "zero_grad only": _FIXED.replace('nn.MSELoss(reduction="sum")', "nn.MSELoss()").replace("0.5 * loss_fn", "loss_fn"),
            "mean kept, halved": _FIXED.replace('nn.MSELoss(reduction="sum")', "nn.MSELoss()"),
            "loss fixed, no zero_grad": _FIXED.replace("        optimizer.zero_grad()\n", ""),
            "sum without the half": _FIXED.replace("0.5 * loss_fn", "loss_fn"),
        },
    },
}
