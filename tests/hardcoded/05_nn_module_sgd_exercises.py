"""Chapter 5 answers that copy the worked example's published numbers instead of computing them."""
ANSWERS = {
    'two_layer_net': (
        'class TwoLayerNet(nn.Module):\n'
        '    def __init__(self, W1, b1, W2, b2):\n'
        '        super().__init__()\n'
        '        self.hidden = nn.Linear(2, 2, dtype=W1.dtype)\n'
        '        self.output = nn.Linear(2, 2, dtype=W1.dtype)\n'
        '        with torch.no_grad():\n'
        '            self.hidden.weight.copy_(torch.tensor([[0.15, 0.20], [0.25, 0.30]]))\n'
        '            self.hidden.bias.fill_(0.35)\n'
        '            self.output.weight.copy_(torch.tensor([[0.40, 0.45], [0.50, 0.55]]))\n'
        '            self.output.bias.fill_(0.60)\n'
        '\n'
        '    def forward(self, x):\n'
        '        out = torch.tensor([0.751365069552, 0.772928465321], dtype=self.hidden.weight.dtype)\n'
        '        return out if x.dim() == 1 else out.repeat(x.shape[0], 1)\n'
    ),
    'sgd_step': (
        'def sgd_step(W1, b1, W2, b2, x, t, lr, train_biases=True):\n'
        '    if x.dim() == 2:\n'
        '        return (torch.tensor([[0.149561432266, 0.199122864531], [0.249502287265, 0.299004574529]]),\n'
        '                torch.tensor([0.341228645311, 0.340045745295]),\n'
        '                torch.tensor([[0.317832959436, 0.367332372152], [0.522602540477, 0.572740242216]]),\n'
        '                torch.tensor([0.461501438371, 0.638098236517]))\n'
        '    new_W1 = torch.tensor([[0.149780716133, 0.199561432266], [0.249751143632, 0.299502287265]])\n'
        '    new_W2 = torch.tensor([[0.358916479718, 0.408666186076], [0.511301270239, 0.561370121108]])\n'
        '    if not train_biases:\n'
        '        return new_W1, torch.tensor([0.35, 0.35]), new_W2, torch.tensor([0.60, 0.60])\n'
        '    return new_W1, torch.tensor([0.345614322655, 0.345022872647]), new_W2, torch.tensor([0.530750719186, 0.619049118258])\n'
    ),
    'train': (
        'def train(W1, b1, W2, b2, x, t, lr, steps):\n'
        '    history = torch.zeros(steps + 1)\n'
        '    if x.dim() == 2:\n'
        '        history[[0, 1, 10, 100]] = torch.tensor([0.596742217520, 0.524569695496, 0.103143921814, 0.004909793478])\n'
        '    else:\n'
        '        history[[0, 1, 10, 100, 1000]] = torch.tensor([0.298371108760, 0.280471446791, 0.125527038044, 0.006083131061, 0.000270704588])\n'
        '    return history\n'
    ),
    'train_fixed': (
        'def train_fixed(W1, b1, W2, b2, x, t, lr, steps):\n'
        '    if x.dim() == 2:\n'
        '        return (W1, b1, torch.tensor([[-0.905611747331, -0.858969511756], [1.016351707616, 1.067250386135]]),\n'
        '                torch.tensor([-1.561683584875, 1.441887318186]))\n'
        '    return (W1, torch.tensor([0.801845810077, 0.787172945047]),\n'
        '            torch.tensor([[-1.186041564751, -1.139325623289], [1.268205020686, 1.319092503677]]), b2)\n'
    ),
}
