"""Chapters 1 and 2: the lessons' numbers against the course's reference, the lessons without the
course package, their network figure, and the reference functions the chapters' new exercises use.

The lessons glue the numbers they state (myst-nb ``glue``); nbval proves the stored outputs are
what a fresh run prints, so these tests read the stored values instead of running the lessons.
"""
from __future__ import annotations

import math

import matplotlib
import nbformat
import numpy as np
import pytest
import torch
from nbclient import NotebookClient

from autograder import checks, reference
from tests.helpers import CHAPTERS, glued

matplotlib.use("Agg")

CH1 = CHAPTERS / "01_forward_pass.ipynb"
CH2 = CHAPTERS / "02_chain_rule.ipynb"


def values(notebook) -> dict[str, float]:
    return {name: float(text) for name, text in glued(notebook).items()}


# --- the lessons' numbers are the reference's ---

def test_chapter1_forward_pass_and_error_are_the_references():
    got = values(CH1)
    fwd = reference.forward(reference.mazur_network(), reference.INPUTS)
    expected = {"net_h1": fwd.net_h[0], "net_h2": fwd.net_h[1], "out_h1": fwd.out_h[0], "out_h2": fwd.out_h[1],
                "net_o1": fwd.net_o[0], "net_o2": fwd.net_o[1], "out_o1": fwd.out_o[0], "out_o2": fwd.out_o[1],
                "E_o1": reference.errors(fwd.out_o, reference.TARGETS)[0],
                "E_total": reference.total_error(fwd.out_o, reference.TARGETS)}
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=0, abs=1e-15), name


def test_chapter1_float32_numbers():
    got = values(CH1)
    # numpy in float32 computes the same operations as the lesson's torch float32 forward pass.
    E32 = reference.error_in(reference.mazur_network(), reference.INPUTS, reference.TARGETS, np.float32)
    assert got["E32"] == pytest.approx(E32, rel=float(np.finfo(np.float32).eps))
    assert got["E32"] != pytest.approx(got["E_total"], rel=1e-12, abs=0), "float32 must differ from float64"
    assert got["digits32"] == pytest.approx(-math.log10(torch.finfo(torch.float32).eps))
    # The lesson states the graded checks' float32 tolerance without importing the course package:
    # both terms of |got - expected| <= atol + rtol |expected| (it once gave only the relative one),
    # and where the absolute term takes over.
    assert got["rtol32"] == checks.TOLERANCES[torch.float32]["rtol"]
    assert got["atol32"] == checks.TOLERANCES[torch.float32]["atol"]
    assert got["tol_crossover"] == pytest.approx(got["atol32"] / got["rtol32"])


def _markdown(notebook, cell_id: str) -> str:
    (cell,) = [c for c in nbformat.read(notebook, 4).cells if c.get("id") == cell_id]
    return cell.source


def sentences_with(text: str, word: str) -> list[str]:
    flat = " ".join(text.split())
    return [s for s in flat.replace("; ", ". ").split(". ") if word in s]


def test_chapter2_says_the_fourfold_bound_holds_along_a_path():
    """A layer is not a path: a neuron's delta sums over the neurons it feeds, so "every sigmoid
    layer shrinks the gradient at least fourfold" is wrong for a layer (a width-8 network with
    weights 1 doubles it, chapter 6). Each sentence that states the bound says "path"."""
    text = _markdown(CH2, "c12")
    claims = sentences_with(text, "fourfold")
    assert claims and all("path" in claim for claim in claims), claims
    assert "ch6-fan-out" in text, "chapter 2 should point to chapter 6's wide network"


def test_chapter2_factors_deltas_and_gradients_are_the_references():
    got = values(CH2)
    grads = reference.backward(reference.mazur_network(), reference.INPUTS, reference.TARGETS)
    expected = {"dE_dout_o1": grads.dE_dout_o[0], "dout_o1_dnet_o1": grads.dout_dnet_o[0],
                "dE_dw5": grads.dW2[0, 0], "dE_dw1": grads.dW1[0, 0],
                "dEo1_dout_h1": grads.delta_o[0] * reference.mazur_network().W2[0, 0],
                "dEo2_dout_h1": grads.delta_o[1] * reference.mazur_network().W2[1, 0],
                "dE_dout_h1": grads.dE_dout_h[0],
                "delta_o1": grads.delta_o[0], "delta_o2": grads.delta_o[1],
                "delta_h1": grads.delta_h[0], "delta_h2": grads.delta_h[1]}
    expected.update({f"grad_w{k}": g for k, g in enumerate(np.r_[grads.dW1.ravel(), grads.dW2.ravel()], 1)})
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=0, abs=1e-15), name
    assert got["one_path_ratio"] == pytest.approx(got["dEo1_dout_h1"] / got["dE_dout_h1"], rel=1e-15)


# --- the lessons run without the course package ---

@pytest.mark.parametrize("lesson", [CH1, CH2], ids=lambda p: p.stem)
def test_lesson_runs_where_the_course_package_cannot_be_imported(lesson):
    nb = nbformat.read(lesson, 4)
    assert not any("autograder" in cell.source for cell in nb.cells), f"{lesson.name} mentions the course package"
    nb.cells.insert(0, nbformat.v4.new_code_cell("import sys\nsys.modules['autograder'] = None  # any import of it now fails"))
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()


@pytest.mark.parametrize("lesson", [CH1, CH2], ids=lambda p: p.stem)
def test_every_figure_cell_has_alt_text(lesson):
    for cell in nbformat.read(lesson, 4).cells:
        if cell.cell_type == "code" and "plt.show()" in cell.source:
            alt = cell.metadata.get("mystnb", {}).get("image", {}).get("alt", "")
            assert len(alt) > 40, f"a figure of {lesson.name} has no alt text: {cell.source[:80]!r}"


# --- the network figure: no label sits on a line ---

def _draw_network_from_lesson():
    """Run the lesson's own drawing code and return the axes of the network figure."""
    import matplotlib.pyplot as plt

    source = next(c.source for c in nbformat.read(CH1, 4).cells if "def draw_network" in c.source)
    namespace = {"math": math, "plt": plt, "i1": 0.05, "i2": 0.10,
                 **dict(zip(["w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8"], reference.WEIGHTS.values())),
                 **reference.BIASES}
    plt.close("all")
    exec(source.replace("plt.show()", ""), namespace)  # defines draw_network and draws the figure once
    return plt.gcf().axes[0]


def _outline(label, renderer):
    """The label's text box as drawn, rotated with the text, as a closed path in display units."""
    from matplotlib.path import Path
    from matplotlib.transforms import Affine2D

    angle = label.get_rotation()
    label.set_rotation(0)
    box = label.get_window_extent(renderer)  # unrotated; rotation_mode="anchor" turns it about the anchor
    label.set_rotation(angle)
    anchor = label.get_transform().transform(label.get_position())
    corners = [(box.x0, box.y0), (box.x1, box.y0), (box.x1, box.y1), (box.x0, box.y1), (box.x0, box.y0)]
    turn = Affine2D().rotate_deg_around(*anchor, angle)
    return Path(turn.transform(corners), closed=True)


def _draw_network_for_intro():
    """autograder.figures.draw_network, which the intro page still uses."""
    import matplotlib.pyplot as plt

    from autograder.figures import draw_network
    plt.close("all")
    return draw_network(reference.WEIGHTS, reference.BIASES)


@pytest.mark.parametrize("draw", [_draw_network_from_lesson, _draw_network_for_intro], ids=["chapter1", "intro"])
def test_network_figure_labels_are_clear_of_every_line(draw):
    from matplotlib.path import Path

    ax = draw()
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.texts if t.get_text().startswith(("w", "b")) and "=" in t.get_text()]
    assert sorted(t.get_text().split(" =")[0] for t in labels) == sorted(
        ["w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8", "b1", "b1", "b2", "b2"])
    edges = [Path(ax.transData.transform(line.get_xydata())) for line in ax.lines]
    assert len(edges) == 8
    outlines = {id(t): _outline(t, renderer) for t in labels}
    for label in labels:
        for edge in edges:
            assert not outlines[id(label)].intersects_path(edge, filled=True), f"{label.get_text()!r} sits on an edge"
        for other in labels:
            if other is not label:
                assert not outlines[id(label)].intersects_path(outlines[id(other)], filled=True), (
                    f"{label.get_text()!r} overlaps {other.get_text()!r}")


def test_the_overlap_test_can_fail():
    """A label moved onto its own edge is caught (the test above is not vacuous)."""
    from matplotlib.path import Path

    ax = _draw_network_from_lesson()
    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    w2 = next(t for t in ax.texts if t.get_text().startswith("w2"))
    w2.set_position((0.5, 0.5 / 1.6))  # on the edge from i2 (0, 0) to h1 (1.6, 1)
    edges = [Path(ax.transData.transform(line.get_xydata())) for line in ax.lines]
    assert any(_outline(w2, renderer).intersects_path(edge, filled=True) for edge in edges)


# --- reference functions of the chapters' new exercises ---

@pytest.mark.parametrize("sizes, batch", [((2, 2, 2), None), ((3, 4, 2), 5), ((4,), None), ((2, 5, 3, 1), 3), ((1, 3), 2)])
def test_forward_layers_equals_a_torch_sequential(sizes, batch):
    layers = reference.random_layers(7, sizes) if len(sizes) > 1 else []
    x, _ = reference.random_example(8, sizes[0], 1, batch)
    got = reference.forward_layers(x, layers)
    assert len(got) == len(sizes) - 1
    a = torch.tensor(x)
    for (W, b), out in zip(layers, got):
        a = torch.sigmoid(a @ torch.tensor(W).T + torch.tensor(b))
        assert out.shape == tuple(a.shape)
        np.testing.assert_allclose(out, a.numpy(), rtol=1e-13, atol=1e-15)


def test_forward_layers_of_two_layers_is_forward():
    net = reference.random_network(3, (3, 4, 2))
    x, _ = reference.random_example(4, 3, 2, 6)
    h, o = reference.forward_layers(x, [(net.W1, net.b1), (net.W2, net.b2)])
    fwd = reference.forward(net, x)
    np.testing.assert_array_equal(h, fwd.out_h)
    np.testing.assert_array_equal(o, fwd.out_o)


def test_random_layers_shapes_and_reproducibility():
    layers = reference.random_layers(5, (3, 4, 2, 1))
    assert [(W.shape, b.shape) for W, b in layers] == [((4, 3), (4,)), ((2, 4), (2,)), ((1, 2), (1,))]
    again = reference.random_layers(5, (3, 4, 2, 1))
    assert all(np.array_equal(W, W2) and np.array_equal(b, b2) for (W, b), (W2, b2) in zip(layers, again))
    assert not np.array_equal(layers[0][0], reference.random_layers(6, (3, 4, 2, 1))[0][0])


@pytest.mark.parametrize("seed, sizes, batch", [(0, (2, 2, 2), None), (1, (3, 4, 2), None), (2, (4, 3, 3), 5)])
def test_tanh_hidden_gradients_equal_autograd(seed, sizes, batch):
    net = reference.random_network(seed, sizes)
    x, t = reference.random_example(seed + 500, sizes[0], sizes[2], batch)
    params = [torch.tensor(getattr(net, n), requires_grad=True) for n in ("W1", "b1", "W2", "b2")]
    W1, b1, W2, b2 = params
    o = torch.sigmoid(torch.tanh(torch.tensor(x) @ W1.T + b1) @ W2.T + b2)
    (0.5 * ((torch.tensor(t) - o) ** 2).sum()).backward()
    for got, p in zip(reference.tanh_hidden_gradients(net, x, t), params):
        assert got.shape == tuple(p.shape)
        np.testing.assert_allclose(got, p.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_tanh_hidden_gradients_differ_from_the_sigmoid_ones():
    """The exercise would be pointless if the sigmoid network's gradients passed its test."""
    net = reference.mazur_network()
    tanh = reference.tanh_hidden_gradients(net, reference.INPUTS, reference.TARGETS)
    sig = reference.gradient_arrays(reference.backward(net, reference.INPUTS, reference.TARGETS))
    for a, b in zip(tanh, sig):
        assert not np.allclose(a, b, rtol=1e-3)


def test_chapter2_graph_has_the_paths_the_lesson_names():
    """The lesson's graph code: one path from w5 to E, two from w1 (through o1 and o2)."""
    import matplotlib.pyplot as plt

    source = next(c.source for c in nbformat.read(CH2, 4).cells if "def paths_to_error" in c.source)
    namespace = {"plt": plt}
    exec(source.replace("plt.show()", ""), namespace)
    plt.close("all")
    paths = namespace["paths_to_error"]
    assert paths("w5") == [["w5", "net_o1", "out_o1", "E_o1", "E"]]
    assert sorted(paths("w1")) == [["w1", "net_h1", "out_h1", "net_o1", "out_o1", "E_o1", "E"],
                                   ["w1", "net_h1", "out_h1", "net_o2", "out_o2", "E_o2", "E"]]
    assert all(len(paths(f"w{k}")) == (2 if k <= 4 else 1) for k in range(1, 9))
