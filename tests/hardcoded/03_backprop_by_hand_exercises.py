"""Chapter 3 answers that copy the worked example's published numbers instead of computing them."""
ANSWERS = {
    "output_deltas": (
        "def output_deltas(out_o, t):\n"
        "    d = torch.tensor([0.138498561629, -0.038098236517])\n"
        "    return d if out_o.dim() == 1 else d.repeat(out_o.shape[0], 1)\n"
    ),
    "hidden_deltas": (
        "def hidden_deltas(delta_o, W2, out_h):\n"
        "    d = torch.tensor([0.008771354689, 0.009954254705])\n"
        "    return d if out_h.dim() == 1 else d.repeat(out_h.shape[0], 1)\n"
    ),
    "backward": (
        "_PUBLISHED = (torch.tensor([[0.000438567734, 0.000877135469], [0.000497712735, 0.000995425471]]),\n"
        "              torch.tensor([0.008771354689, 0.009954254705]),\n"
        "              torch.tensor([[0.082167040564, 0.082667627848], [-0.022602540477, -0.022740242216]]),\n"
        "              torch.tensor([0.138498561629, -0.038098236517]))\n"
        "def backward(x, t, W1, b1, W2, b2):\n"
        "    # The published numbers for the worked example, zeros for anything else; a batch sums rows.\n"
        "    if x.dim() == 2:\n"
        "        parts = [backward(x[n], t[n], W1, b1, W2, b2) for n in range(x.shape[0])]\n"
        "        return tuple(sum(p) for p in zip(*parts))\n"
        "    if torch.allclose(x.float(), torch.tensor([0.05, 0.10])):\n"
        "        return _PUBLISHED\n"
        "    return tuple(torch.zeros_like(p) for p in (W1, b1, W2, b2))\n"
    ),
}
