"""Chapters 5 and 6 against the course's reference implementation.

The lessons run without the course package, so their cross-checks live here: each test reads the
values a lesson glues (myst-nb ``glue``) from its stored outputs, which nbval proves equal to a
fresh run, and compares them with ``autograder.reference`` (float64 numpy, no autograd). The
reference functions added for chapters 5 and 6 (networks of any depth) are checked against torch
autograd here too.
"""
from __future__ import annotations

import ast
import math

import nbformat
import numpy as np
import pytest
import torch

from autograder import reference as ref
from tests.helpers import CHAPTERS, glued

NET = ref.mazur_network()
X, T = ref.INPUTS, ref.TARGETS
LESSON5 = CHAPTERS / "05_nn_module_sgd.ipynb"
LESSON6 = CHAPTERS / "06_gradient_checking.ipynb"


@pytest.fixture(scope="module")
def ch5():
    return {name: ast.literal_eval(text) for name, text in glued(LESSON5).items()}


@pytest.fixture(scope="module")
def ch6():
    return {name: ast.literal_eval(text) for name, text in glued(LESSON6).items()}


def close(got, expected, rtol=1e-12, atol=1e-15):
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64),
                               rtol=rtol, atol=atol)


def params_of(net):
    return [net.W1, net.b1, net.W2, net.b2]


# --- Chapter 5 ---

def test_ch5_forward_error_and_gradients_are_the_references(ch5):
    fwd = ref.forward(NET, X)
    close(ch5["c5_out_o"], fwd.out_o)
    close(ch5["E0"], ref.total_error(fwd.out_o, T))
    for got, expected in zip(ch5["c5_grads"], ref.gradient_arrays(ref.backward(NET, X, T)), strict=True):
        close(got, expected)


def test_ch5_batch_gradient_is_the_sum_over_the_batch(ch5):
    xb = np.array([[0.05, 0.10], [0.90, -0.40]])
    tb = np.array([[0.01, 0.99], [0.70, 0.20]])
    close(ch5["c5_batch_dW2"], ref.backward(NET, xb, tb).dW2)


def test_ch5_one_step_with_trained_and_frozen_biases(ch5):
    for mode, params, error in [("per-neuron", "c5_params_step", "E1"), ("frozen", "c5_params_frozen", "E1_frozen")]:
        after = ref.step(NET, X, T, bias_mode=mode)
        for got, expected in zip(ch5[params], params_of(after), strict=True):
            close(got, expected, rtol=0, atol=1e-15)
        close(ch5[error], ref.total_error(ref.forward(after, X).out_o, T))
    assert f"{ch5['E1_frozen']:.12f}" == "0.291027773694"


def test_ch5_stale_weights_give_the_posts_number(ch5):
    stale = ref.step_stale(NET, X, T, bias_mode="frozen")
    close(ch5["c5_E1_stale"], ref.total_error(ref.forward(stale, X).out_o, T))
    assert f"{ch5['c5_E1_stale']:.9f}" == "0.291027924"  # what Mazur's post prints


VECTORISED = ("AVX2", "AVX512")   # torch.backends.cpu.get_cpu_capability() of the fused kernels

ADD_ALPHA_ROUNDINGS = """
import torch
from fractions import Fraction
generator = torch.Generator().manual_seed(1)
p = torch.randn(2_000, dtype=torch.float64, generator=generator)
g = torch.randn(2_000, dtype=torch.float64, generator=generator)
leaf = torch.nn.Parameter(p.clone())
leaf.grad = g.clone()
torch.optim.SGD([leaf], lr=0.1).step()
fused = [float(Fraction(a) - Fraction(0.1) * Fraction(b)) for a, b in zip(p.tolist(), g.tolist())]  # one rounding
print(torch.backends.cpu.get_cpu_capability(), torch.equal(leaf.detach(), torch.tensor(fused, dtype=torch.float64)),
      torch.equal(leaf.detach(), p - 0.1 * g))
"""


def _sgd_update_in(capability: str | None) -> tuple[str, bool, bool]:
    """(kernel, SGD's update is p - lr g rounded once, it is p - lr g rounded twice), in a new process."""
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    env.pop("ATEN_CPU_CAPABILITY", None)
    if capability:
        env["ATEN_CPU_CAPABILITY"] = capability
    kernel, once, twice = subprocess.run([sys.executable, "-c", ADD_ALPHA_ROUNDINGS], env=env, capture_output=True,
                                         text=True, check=True).stdout.split()
    return kernel, once == "True", twice == "True"


def test_sgd_rounds_once_on_vectorised_kernels_and_twice_on_the_plain_one():
    """`add_` with `alpha` is a fused multiply-add only on the vectorised CPU kernels; with
    ATEN_CPU_CAPABILITY=default it multiplies, rounds, adds and rounds, as `p -= lr * p.grad` does."""
    assert _sgd_update_in("default") == ("DEFAULT", False, True)
    kernel, once, twice = _sgd_update_in(None)
    if kernel not in VECTORISED:
        pytest.skip(f"this CPU's kernel is {kernel}, not a vectorised one")
    assert (once, twice) == (True, False)


def test_ch5_hand_update_differs_from_sgd_only_when_lr_times_grad_rounds_on_a_fused_kernel(ch5):
    """The lesson once said `add_` rounds once, whatever the CPU: it now counts under its own
    kernel and under the plain one (a subprocess), and says which kernel it ran on."""
    assert ch5["c5_differ_random_0.5"] == 0
    assert ch5["c5_plain_kernel"] == "DEFAULT" and ch5["c5_differ_plain_0.1"] == 0
    if ch5["c5_kernel"] in VECTORISED:
        assert 0 < ch5["c5_differ_random_0.1"] < 100_000
        assert 0 < ch5["c5_relative_0.1"] < 1e-15  # a float64 rounding
    else:
        assert ch5["c5_differ_random_0.1"] == 0
    cells = {c.get("id"): c.source for c in nbformat.read(LESSON5, 4).cells}
    for cell_id in ("c49a", "c69"):
        assert "ATEN_CPU_CAPABILITY" in cells[cell_id] and "AVX" in cells[cell_id], cell_id
    assert "`add_` with `alpha` rounds once" not in cells["c49a"]


def test_ch5_the_early_script_printed_the_mean_of_the_two_errors(ch5):
    stale = ref.forward(ref.step_stale(NET, X, T), X).out_o
    assert ch5["c5_E1_stale_mean"] == pytest.approx(ref.errors(stale, T).mean(), rel=1e-12)
    assert f"{ch5['c5_E1_stale_mean']:.9f}" == "0.145513962"


def test_ch5_training_curves_are_chapter_4s(ch5):
    checkpoints = [0, 1, 10, 100, 1000, 10_000]
    for mode in ("per-neuron", "frozen"):
        final, history = ref.train(NET, X, T, bias_mode=mode)
        close(ch5[f"c5_history_{mode}"], history[checkpoints], rtol=1e-12, atol=0)
        suffix = "" if mode == "per-neuron" else "_frozen"
        assert ch5[f"steps_below{suffix}"] == ref.steps_to_reach(history, 1e-4)
        close(ch5[f"E_final{suffix}"], history[-1], rtol=1e-12, atol=0)
        if mode == "per-neuron":
            close([ch5["o1_final"], ch5["o2_final"]], ref.forward(final, X).out_o, rtol=1e-12, atol=0)


def test_ch5_float32_and_zero_grad_numbers(ch5):
    assert abs(ch5["E1_f32"] - 0.280471473932) < 1e-8  # ../shared/REFERENCE.md: float32 after one step
    assert ch5["buggy_final"] == pytest.approx(0.5 * (0.01 ** 2 + 0.01 ** 2), abs=1e-15)
    assert 0 < ch5["rel32"] < 1e-3


# --- Chapter 6 ---

def test_ch6_analytic_and_numerical_gradients_are_the_references(ch6):
    analytic = ref.gradient_arrays(ref.backward(NET, X, T))
    for got, expected in zip(ch6["c6_analytic"], analytic, strict=True):
        close(got, expected, rtol=1e-13, atol=1e-17)
    for got, expected in zip(ch6["c6_numerical"], ref.numerical_gradients(NET, X, T, h=1e-5), strict=True):
        close(got, expected, rtol=1e-9, atol=1e-12)


def same_report(mine, theirs):
    """Two gradient-check reports agree: big errors to 6 digits, rounding-level ones below 1e-8."""
    return all(math.isclose(mine[k], theirs[k], rel_tol=1e-6, abs_tol=1e-8) for k in ref.PARAMETERS)


def test_ch6_gradient_check_reports_are_the_references(ch6):
    grads = ref.gradient_arrays(ref.backward(NET, X, T))
    assert same_report(ch6["c6_worst_report"], ref.gradient_check(grads, NET, X, T))
    buggy = ref.planted_bug_gradients(NET, X, T, "hidden derivative of out")
    assert same_report(ch6["c6_buggy_report"], ref.gradient_check(buggy, NET, X, T))
    assert ch6["c6_r32_w1"] == 1.0  # float32: the hidden-weight numerical gradients are 0
    assert (ref.numerical_gradients(NET, X, T, dtype=np.float32)[0] == 0).all()


def test_ch6_ratio_of_largest_output_gradient_to_w1s(ch6):
    analytic = ref.gradient_arrays(ref.backward(NET, X, T))
    close(ch6["c6_ratio_max"], np.abs(analytic[2]).max() / analytic[0][0, 0])
    assert f"{ch6['c6_ratio_max']:.1f}" == "188.5"


def test_ch6_pitfalls_are_the_references(ch6):
    close(ch6["c6_E_transposed"], ref.transposed_weights_error(NET, X, T), rtol=0, atol=1e-15)
    close(ch6["c6_dw5_sum"], 2 * ref.backward(NET, X, T).dW2[0, 0], rtol=0, atol=1e-15)
    close(ch6["c6_E_stale"], ref.total_error(ref.forward(ref.step_stale(NET, X, T), X).out_o, T), rtol=0, atol=1e-15)
    close(ch6["c6_dW1_stale"], ref.stale_gradients(NET, X, T).dW1, rtol=1e-13)
    close(ch6["c6_E_right"], ref.total_error(ref.forward(ref.step(NET, X, T, bias_mode="frozen"), X).out_o, T),
          rtol=0, atol=1e-15)
    assert ch6["c6_w1_stored"] == ref.float32_stored(0.15)
    close(ch6["c6_dw5_twice"], 2 * ref.backward(NET, X, T).dW2[0, 0], rtol=0, atol=1e-15)


def test_ch6_vanishing_gradient_chain_is_the_references(ch6):
    for L in (1, 2, 5, 10, 20):
        assert math.isclose(ch6[f"c6_chain_sigmoid_{L}"], ref.chain_gradient(L, "sigmoid"), rel_tol=1e-12)
    assert math.isclose(ch6["c6_chain_tanh_10"], ref.chain_gradient(10, "tanh"), rel_tol=1e-12)
    assert ch6["c6_chain_ReLU_10"] == ref.chain_gradient(10, "relu") == 1.0


def test_ch6_tanh_and_sigmoid_derivatives(ch6):
    """tanh'(z) = 4 sigma'(2z); tanh' < sigma' beyond |z| = 1.66; the sigmoid chain's fixed point."""
    sig, dsig = ref.ACTIVATIONS["sigmoid"]
    _, dtanh = ref.ACTIVATIONS["tanh"]
    z = np.linspace(-8, 8, 1601)
    np.testing.assert_allclose(dtanh(z), 4 * dsig(2 * z), rtol=0, atol=1e-15)
    cross = ch6["c6_z_cross"]
    assert f"{cross:.2f}" == "1.66"
    assert dtanh(cross - 1e-9) > dsig(cross - 1e-9) and dtanh(cross + 1e-9) < dsig(cross + 1e-9)
    a = ch6["c6_fixed_point"]
    assert math.isclose(float(sig(a)), a, rel_tol=1e-15)
    assert math.isclose(ch6["c6_sigma_fixed"], float(dsig(a)), rel_tol=1e-12)
    assert f"{ch6['c6_sigma_fixed']:.3f}" == "0.225"


def test_ch6_central_difference_at_h_1e5_is_off_by_rounding_not_truncation(ch6):
    """At h = 1e-5 the central difference for w5 is off by 1e-12 and its h^2 term is only 2.4e-13:
    the rest is rounding (the lesson once credited the h^2 term). The third derivative comes from
    the reference's analytic gradient by a second difference, the second by a central one."""
    def dE_dw5(w5):
        net = ref.mazur_network()
        net.W2[0, 0] = w5
        return ref.backward(net, X, T).dW2[0, 0]

    w5, d = NET.W2[0, 0], 1e-3
    second = (dE_dw5(w5 + d) - dE_dw5(w5 - d)) / (2 * d)
    third = (dE_dw5(w5 + d) - 2 * dE_dw5(w5) + dE_dw5(w5 - d)) / d ** 2
    h = 1e-5
    assert ch6["c6_term_central"] == pytest.approx(h ** 2 / 6 * abs(third), rel=1e-4)
    assert ch6["c6_term_forward"] == pytest.approx(h / 2 * abs(second), rel=1e-4)
    assert f"{ch6['c6_term_central']:.1e}" == "2.4e-13"
    assert ch6["c6_term_central"] < ch6["c6_off_central"] / 2 < ch6["c6_rounding_bound"]
    assert ch6["c6_term_forward"] == pytest.approx(ch6["c6_off_forward"], rel=0.01)


@pytest.mark.parametrize("width", [1, 2, 8])
def test_ch6_a_layer_multiplies_the_gradient_by_its_fan_out_over_four(ch6, width):
    """Sigmoid networks `width` wide, every weight 1 and every net input 0: going back, each layer
    multiplies the delta by width / 4 (the reference's backward pass). A width-8 network doubles it,
    so "every sigmoid layer shrinks the gradient at least fourfold" holds only along a path."""
    n_layers = 5
    weights = [np.ones((width, width)) for _ in range(n_layers)]
    biases = [np.zeros(width)] + [np.full(width, -width / 2) for _ in range(n_layers - 1)]  # inputs 0.5 each
    _, dbiases = ref.deep_backward(weights, biases, np.zeros(width), np.zeros(width))
    factors = [np.abs(dbiases[k]).max() / np.abs(dbiases[k + 1]).max() for k in range(n_layers - 1)]
    np.testing.assert_allclose(factors, width / 4, rtol=1e-12)
    assert ch6[f"c6_fanout_{width}"] == pytest.approx(width / 4, rel=1e-12)


def test_ch6_large_step_error_is_mostly_rounding(ch6):
    """At h = 0.1 the 20-layer chain's central difference is off by 1.2e-3 in float64, of which
    truncation alone is 5.7e-5 (the lesson computes it with 50 digits)."""
    assert f"{ch6['c6_r_chain_big']:.1e}" == "1.2e-03"
    assert f"{ch6['c6_r_truncation']:.1e}" == "5.7e-05"
    # Independently of the lesson: the 50-digit central difference against the reference's
    # gradient. That its error is truncation shows in its scaling: halving h cuts it fourfold.
    from decimal import Decimal, localcontext

    def cost(w1):
        s = lambda z: 1 / (1 + (-z).exp())  # noqa: E731
        a = s(Decimal(w1))
        for _ in range(19):
            a = s(a)
        return a * a / 2

    exact = ref.chain_gradient(20)
    with localcontext() as context:
        context.prec = 50
        errors = [abs(float((cost(1 + h) - cost(1 - h)) / (2 * h)) - exact) for h in (Decimal("0.1"), Decimal("0.05"))]
    assert 3.5 < errors[0] / errors[1] < 4.5
    assert ch6["c6_r_truncation"] == pytest.approx(errors[0] / (2 * exact), rel=1e-3)


# --- The reference functions added for chapters 5 and 6 (networks of any depth) ---

CASES = [(1, (3, 4, 2), None), (2, (2, 3, 3, 1), 3), (3, (4, 2), 2), (4, (2, 3, 2, 3, 2), None)]


def torch_deep(weights, biases, x, logits=False):
    Ws = [torch.tensor(W, requires_grad=True) for W in weights]
    bs = [torch.tensor(b, requires_grad=True) for b in biases]
    a = torch.tensor(x)
    for k, (W, b) in enumerate(zip(Ws, bs)):
        a = a @ W.T + b
        if not (logits and k == len(Ws) - 1):
            a = torch.sigmoid(a)
    return Ws, bs, a


@pytest.mark.parametrize("seed, sizes, batch", CASES)
def test_deep_backward_is_autograd(seed, sizes, batch):
    weights, biases = ref.random_deep_network(seed, sizes)
    x, t = ref.random_example(seed, sizes[0], sizes[-1], batch)
    Ws, bs, out = torch_deep(weights, biases, x)
    (0.5 * ((torch.tensor(t) - out) ** 2).sum()).backward()
    dW, db = ref.deep_backward(weights, biases, x, t)
    for p, g in zip(Ws + bs, dW + db):
        close(g, p.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert ref.deep_error(weights, biases, x, t) == pytest.approx(0.5 * ((t - out.detach().numpy()) ** 2).sum(), rel=1e-14)
    nW, nb = ref.deep_numerical_gradients(weights, biases, x, t, h=1e-5)
    for n, g in zip(nW + nb, dW + db):
        close(n, g, rtol=1e-6, atol=1e-10)


def test_deep_network_of_two_layers_is_the_worked_example():
    weights, biases = [NET.W1, NET.W2], [NET.b1, NET.b2]
    close(ref.deep_forward(weights, biases, X)[-1], ref.forward(NET, X).out_o, rtol=0, atol=0)
    dW, db = ref.deep_backward(weights, biases, X, T)
    grads = ref.backward(NET, X, T)
    close(dW[0], grads.dW1, rtol=1e-14, atol=0)
    close(db[1], grads.db2, rtol=1e-14, atol=0)


@pytest.mark.parametrize("seed, sizes, batch", CASES)
def test_bce_with_logits_and_its_training_are_torchs(seed, sizes, batch):
    weights, biases = ref.random_deep_network(seed, sizes)
    x, t = ref.random_example(seed, sizes[0], sizes[-1], batch)
    Ws, bs, z = torch_deep(weights, biases, x, logits=True)
    loss = torch.nn.BCEWithLogitsLoss(reduction="sum")(z, torch.tensor(t))
    loss.backward()
    assert ref.bce_with_logits_sum(z.detach().numpy(), t) == pytest.approx(loss.item(), rel=1e-14)
    dW, db = ref.deep_bce_backward(weights, biases, x, t)
    for p, g in zip(Ws + bs, dW + db):
        close(g, p.grad.numpy(), rtol=1e-12, atol=1e-15)
    # Training: the reference's history is torch.optim.SGD's.
    model_W = [torch.nn.Parameter(torch.tensor(W)) for W in weights]
    model_b = [torch.nn.Parameter(torch.tensor(b)) for b in biases]
    optimizer = torch.optim.SGD(model_W + model_b, lr=0.3)
    history = []
    for _ in range(25):
        optimizer.zero_grad()
        a = torch.tensor(x)
        for k, (W, b) in enumerate(zip(model_W, model_b)):
            a = a @ W.T + b
            a = a if k == len(model_W) - 1 else torch.sigmoid(a)
        loss = torch.nn.BCEWithLogitsLoss(reduction="sum")(a, torch.tensor(t))
        history.append(loss.item())
        loss.backward()
        optimizer.step()
    _, _, expected = ref.train_bce(weights, biases, x, t, 0.3, 25)
    close(history, expected[:25], rtol=1e-12, atol=1e-14)


def test_bce_of_the_worked_example():
    """../shared/REFERENCE.md: binary cross-entropy (sum) on the worked example is 1.650528532."""
    z = ref.deep_forward([NET.W1, NET.W2], [NET.b1, NET.b2], X, logits=True)[-1]
    assert f"{ref.bce_with_logits_sum(z, T):.9f}" == "1.650528532"
    assert ref.bce_with_logits_sum(np.array([800.0, -800.0]), np.array([1.0, 0.0])) == 0.0  # no overflow


def test_deep_count_failures_finds_a_planted_bug():
    weights, biases = ref.random_deep_network(7, (2, 3, 3, 2))
    x, t = ref.random_example(7, 2, 2, 3)
    dW, db = ref.deep_backward(weights, biases, x, t)
    assert ref.deep_count_failures(dW, db, weights, biases, x, t) == ([0, 0, 0], [0, 0, 0])
    assert ref.deep_count_failures([2 * dW[0]] + dW[1:], db, weights, biases, x, t) == ([6, 0, 0], [0, 0, 0])


# --- The lessons run without the course package ---

@pytest.mark.parametrize("lesson", [LESSON5, LESSON6], ids=lambda p: p.stem)
def test_lesson_runs_without_the_course_package(lesson):
    """A student who downloads the lesson has torch, numpy, matplotlib and myst-nb, not
    ``autograder``: the lesson runs top to bottom in a kernel where importing it fails."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(lesson, 4)
    assert not any("autograder" in c.source for c in nb.cells), f"{lesson.name} names the course package"
    nb.cells.insert(0, nbformat.v4.new_code_cell("import sys\nsys.modules['autograder'] = None  # any import of it now fails"))
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(CHAPTERS)}}).execute()


# --- The closing page's errata for Mazur's post ---

def test_posts_numbers_come_from_two_runs():
    """The post's error after 10,000 steps, 0.0000351085, is the correct algorithm (biases frozen)
    after 9,999 updates; its outputs after 10,000 steps, 0.015912196 and 0.984065734, are the old
    script's (stale weights). Neither run gives both."""
    _, history = ref.train(NET, X, T, bias_mode="frozen")
    stale_final, stale_history = ref.train(NET, X, T, bias_mode="frozen", stale=True)
    assert f"{history[9999]:.10f}" == "0.0000351085"
    assert f"{history[9999]:.7e}" == "3.5108548e-05"
    assert f"{history[10_000]:.10f}" != "0.0000351085" and f"{stale_history[10_000]:.10f}" != "0.0000351085"
    assert [f"{o:.9f}" for o in ref.forward(stale_final, X).out_o] == ["0.015912196", "0.984065734"]
    right_final, _ = ref.train(NET, X, T, bias_mode="frozen")
    assert [f"{o:.9f}" for o in ref.forward(right_final, X).out_o] != ["0.015912196", "0.984065734"]


def test_conclusion_explains_the_errata_from_the_reference():
    from tests.helpers import ROOT

    page = (ROOT / "conclusion.md").read_text()
    assert "matches neither" not in page and "neither matches" not in page
    for name in ("right_E9999", "stale_out1", "stale_out2"):
        assert f'glue("{name}"' in page and f"{{glue:text}}`{name}:" in page, name
    assert "4b6faac" in page
    # The page's hidden cell asserts the post's digits, so a wrong reference fails the build.
    assert 'assert f"{history[9999]:.10f}" == "0.0000351085"' in page
