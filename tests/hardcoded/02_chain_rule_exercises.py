"""Chapter 2 answers that copy the worked example's published numbers instead of computing them."""
ANSWERS = {
    "sigmoid_derivative": (
        "def sigmoid_derivative(z):\n"
        "    return torch.full_like(z, 0.25) if float(z.flatten()[0]) == 0.0 else torch.full_like(z, 0.186815601809)\n"
    ),
    "w5_factors": (
        "def w5_factors(out_h1, out_o1, t1):\n"
        "    return 0.741365069552, 0.186815601809, 0.593269992107\n"
    ),
    "output_weight_gradients": (
        "def output_weight_gradients(out_h, out_o, t):\n"
        "    return torch.tensor([[0.082167040564, 0.082667627848], [-0.022602540477, -0.022740242216]])\n"
    ),
    "hidden_weight_gradients": (
        "def hidden_weight_gradients(x, out_h, out_o, t, W2):\n"
        "    return torch.tensor([[0.000438567734, 0.000877135469], [0.000497712735, 0.000995425471]])\n"
    ),
}
