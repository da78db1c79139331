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


# The computational graph: one node per quantity, an edge where one quantity feeds the next.
_GRAPH_NODES = {
    "w1": (0, 3.0), "w2": (0, 2.2), "w3": (0, 0.8), "w4": (0, 0.0),
    "net_h1": (1.2, 2.6), "net_h2": (1.2, 0.4), "out_h1": (2.4, 2.6), "out_h2": (2.4, 0.4),
    "w5": (3.1, 3.9), "w6": (4.1, 3.9), "w7": (3.1, -0.9), "w8": (4.1, -0.9),
    "net_o1": (3.6, 2.6), "net_o2": (3.6, 0.4), "out_o1": (4.8, 2.6), "out_o2": (4.8, 0.4),
    "E_o1": (6.0, 2.6), "E_o2": (6.0, 0.4), "E": (7.2, 1.5),
}
_GRAPH_EDGES = [
    ("w1", "net_h1"), ("w2", "net_h1"), ("w3", "net_h2"), ("w4", "net_h2"),
    ("net_h1", "out_h1"), ("net_h2", "out_h2"),
    ("out_h1", "net_o1"), ("out_h2", "net_o1"), ("out_h1", "net_o2"), ("out_h2", "net_o2"),
    ("w5", "net_o1"), ("w6", "net_o1"), ("w7", "net_o2"), ("w8", "net_o2"),
    ("net_o1", "out_o1"), ("net_o2", "out_o2"), ("out_o1", "E_o1"), ("out_o2", "E_o2"),
    ("E_o1", "E"), ("E_o2", "E"),
]


def paths_to_error(start: str) -> list[list[str]]:
    """Every path through the computational graph from ``start`` to E."""
    if start == "E":
        return [["E"]]
    return [[start, *rest] for src, dst in _GRAPH_EDGES if src == start for rest in paths_to_error(dst)]


def draw_computational_graph(highlight: str | None = None, title: str = "The computational graph of E", ax=None):
    """Draw the graph from the weights to E (inputs and biases sit inside the net nodes);
    with ``highlight``, colour every path from that weight to E."""
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 4.8))
    on_path = {(p[k], p[k + 1]) for p in (paths_to_error(highlight) if highlight else []) for k in range(len(p) - 1)}
    for src, dst in _GRAPH_EDGES:
        lit = (src, dst) in on_path
        ax.annotate("", xy=_GRAPH_NODES[dst], xytext=_GRAPH_NODES[src],
                    arrowprops=dict(arrowstyle="-|>", color="#cc4125" if lit else "0.6", lw=2.4 if lit else 1.0,
                                    shrinkA=17, shrinkB=17), zorder=2 if lit else 1)
    for name, (x, y) in _GRAPH_NODES.items():
        lit = highlight is not None and any(name in p for p in paths_to_error(highlight))
        colour = "#cfe2f3" if name.startswith("w") else "#fce5cd" if name.startswith("E") else "#d9ead3"
        ax.text(x, y, name, ha="center", va="center", fontsize=10, zorder=3,
                bbox=dict(boxstyle="round,pad=0.35", fc=colour, ec="#cc4125" if lit else "black", lw=2 if lit else 1))
    ax.set_xlim(-0.5, 7.7)
    ax.set_ylim(-1.4, 4.4)
    ax.axis("off")
    ax.set_title(title)
    return ax
