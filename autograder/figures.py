"""Figures the lessons share: the 2-2-2 network drawn with its weights (and, optionally, values)."""
from __future__ import annotations

import matplotlib.pyplot as plt

# Where each neuron sits: three columns (inputs, hidden, outputs), biases below the columns.
_POSITIONS = {
    "i1": (0.0, 1.0), "i2": (0.0, 0.0),
    "h1": (1.0, 1.0), "h2": (1.0, 0.0),
    "o1": (2.0, 1.0), "o2": (2.0, 0.0),
    "b1": (0.5, -0.75), "b2": (1.5, -0.75),
}
# Mazur's numbering: w1 i1->h1, w2 i2->h1, w3 i1->h2, w4 i2->h2, w5 h1->o1, ... w8 h2->o2.
_EDGES = [("i1", "h1"), ("i2", "h1"), ("i1", "h2"), ("i2", "h2"),
          ("h1", "o1"), ("h2", "o1"), ("h1", "o2"), ("h2", "o2")]


def draw_network(weights: dict[str, float], biases: dict[str, float], values: dict[str, float] | None = None,
                 title: str = "The 2-2-2 network of the worked example", ax=None):
    """Draw the network with every weight on its edge and every bias; ``values`` maps neuron
    names (i1, h1, o2, ...) to a number printed under the neuron (for example its ``out``)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 5))
    for k, (src, dst) in enumerate(_EDGES, 1):
        (x0, y0), (x1, y1) = _POSITIONS[src], _POSITIONS[dst]
        ax.plot([x0, x1], [y0, y1], color="0.55", zorder=1)
        # Straight edges are labelled at their middle, crossing ones near their start, apart.
        f = 0.5 if y0 == y1 else 0.22
        lx, ly = x0 + (x1 - x0) * f, y0 + (y1 - y0) * f
        ax.text(lx, ly + (0.07 if y0 == y1 else 0.0), f"w{k} = {weights[f'w{k}']:g}", ha="center", fontsize=9,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none"), zorder=3)
    for layer, bias in (("h", "b1"), ("o", "b2")):
        bx, by = _POSITIONS[bias]
        for n in (f"{layer}1", f"{layer}2"):
            ax.plot([bx, _POSITIONS[n][0]], [by, _POSITIONS[n][1]], color="0.8", ls="--", zorder=1)
        ax.text(bx, by - 0.2, f"{bias} = {biases[bias]:g}", ha="center", fontsize=9)
    for name, (x, y) in _POSITIONS.items():
        colour = {"i": "#cfe2f3", "h": "#d9ead3", "o": "#fce5cd", "b": "#eeeeee"}[name[0]]
        ax.add_patch(plt.Circle((x, y), 0.13, fc=colour, ec="black", zorder=4))
        ax.text(x, y, name, ha="center", va="center", fontsize=11, zorder=5)
        if values and name in values:  # above the top row, below the bottom row
            ax.text(x, y + (0.2 if y > 0.5 else -0.27), f"{values[name]:.6f}", ha="center", fontsize=9, color="#1c4587",
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none"), zorder=5)
    ax.set_xlim(-0.4, 2.4)
    ax.set_ylim(-1.1, 1.45)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title)
    return ax
