"""The network figure of the intro page (``intro.md``): the 2-2-2 network with its weights and biases.

The lessons draw their figures with their own code (chapter 1 holds the same drawing as this,
chapter 2 the computational graph), so that a downloaded lesson runs without the course package.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt

_GAP = 1.6  # horizontal distance between layers
_POSITIONS = {"i1": (0, 1), "i2": (0, 0), "h1": (_GAP, 1), "h2": (_GAP, 0), "o1": (2 * _GAP, 1), "o2": (2 * _GAP, 0)}
# Mazur's numbering, and where each weight's label goes: (from, to, fraction along the edge,
# side: +1 left of the edge's direction, -1 right). Crossing edges are labelled near their start,
# each in the triangle above or below the crossing; horizontal edges above (top row) or below.
_EDGES = {"w1": ("i1", "h1", 0.5, +1), "w2": ("i2", "h1", 0.27, -1), "w3": ("i1", "h2", 0.27, +1),
          "w4": ("i2", "h2", 0.5, -1), "w5": ("h1", "o1", 0.5, +1), "w6": ("h2", "o1", 0.27, -1),
          "w7": ("h1", "o2", 0.27, +1), "w8": ("h2", "o2", 0.5, -1)}


def draw_network(weights: dict[str, float], biases: dict[str, float] | None = None,
                 values: dict[str, float] | None = None, title: str = "The 2-2-2 network of the worked example", ax=None):
    """Draw the network with every weight written beside its edge, clear of every line;
    ``biases`` (b1, b2) as short dashed arrows into the neurons they feed; ``values`` maps neuron
    names (i1, h1, o2, ...) to a number printed above (top row) or below (bottom row) the neuron."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5.4))
    for name, (src, dst, f, side) in _EDGES.items():
        (x0, y0), (x1, y1) = _POSITIONS[src], _POSITIONS[dst]
        ax.plot([x0, x1], [y0, y1], color="0.4", lw=1.2, zorder=1)
        length = math.hypot(x1 - x0, y1 - y0)
        nx, ny = -(y1 - y0) / length, (x1 - x0) / length  # unit normal, to the left of the edge
        ax.text(x0 + f * (x1 - x0) + side * 0.1 * nx, y0 + f * (y1 - y0) + side * 0.1 * ny,
                f"{name} = {weights[name]:g}", rotation=math.degrees(math.atan2(y1 - y0, x1 - x0)),
                rotation_mode="anchor", ha="center", va="center", fontsize=10.5, zorder=3)
    for layer, bias in (("h", "b1"), ("o", "b2")):
        if biases is None:
            break
        for neuron, dy in ((layer + "1", +1), (layer + "2", -1)):  # from above the top row, below the bottom
            x, y = _POSITIONS[neuron]
            ax.annotate(f"{bias} = {biases[bias]:g}", xy=(x, y + dy * 0.15), xytext=(x, y + dy * 0.5),
                        ha="center", va="bottom" if dy > 0 else "top", fontsize=10.5,
                        arrowprops=dict(arrowstyle="-|>", color="0.45", ls="--", lw=1))
    colours = {"i": "#cfe2f3", "h": "#d9ead3", "o": "#fce5cd"}
    for name, (x, y) in _POSITIONS.items():
        ax.add_patch(plt.Circle((x, y), 0.14, fc=colours[name[0]], ec="black", zorder=4))
        ax.text(x, y, name, ha="center", va="center", fontsize=12, zorder=5)
        if values and name in values:
            ax.text(x, y + 0.2 if y > 0 else y - 0.2, f"{values[name]:.6f}", ha="center",
                    va="bottom" if y > 0 else "top", fontsize=10.5, color="#1c4587", zorder=5)
    ax.set_xlim(-0.45, 2 * _GAP + 0.45)
    ax.set_ylim(-0.75, 1.75)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title)
    return ax
