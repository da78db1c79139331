"""autograder.reference against Mazur's printed numbers, ../shared/REFERENCE.md's facts and torch autograd."""
from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
import torch

from autograder import reference as ref

NET = ref.mazur_network()
FWD = ref.forward(NET, ref.INPUTS)
GRADS = ref.backward(NET, ref.INPUTS, ref.TARGETS)


def assert_printed(value: float, printed: str) -> None:
    """``value`` rounds to ``printed`` at the number of decimals the blog printed."""
    decimals = -Decimal(printed).as_tuple().exponent
    assert abs(value - float(printed)) <= 0.5 * 10.0 ** -decimals + 1e-15, (
        f"expected {printed} to the printed {decimals} decimals, computed {value:.{decimals + 3}f}")


# (quantity, computed value, what the blog prints)
BLOG_FORWARD_AND_GRADIENTS = [
    ("net_h1", FWD.net_h[0], "0.3775"),
    ("out_h1", FWD.out_h[0], "0.593269992"),
    ("out_h2", FWD.out_h[1], "0.596884378"),
    ("net_o1", FWD.net_o[0], "1.105905967"),
    ("out_o1", FWD.out_o[0], "0.75136507"),
    ("out_o2", FWD.out_o[1], "0.772928465"),
    ("E_o1", ref.errors(FWD.out_o, ref.TARGETS)[0], "0.274811083"),
    ("E_o2", ref.errors(FWD.out_o, ref.TARGETS)[1], "0.023560026"),
    ("E_total", ref.total_error(FWD.out_o, ref.TARGETS), "0.298371109"),
    ("dE/dout_o1", GRADS.dE_dout_o[0], "0.74136507"),
    ("dout_o1/dnet_o1", GRADS.dout_dnet_o[0], "0.186815602"),
    ("dE/dw5", GRADS.dW2[0, 0], "0.082167041"),
    ("dE_o1/dnet_o1", GRADS.delta_o[0], "0.138498562"),
    ("dE_o1/dout_h1", GRADS.delta_o[0] * NET.W2[0, 0], "0.055399425"),
    ("dE/dout_h1", GRADS.dE_dout_h[0], "0.036350306"),
    ("dout_h1/dnet_h1", GRADS.dout_dnet_h[0], "0.241300709"),
    ("dE/dw1", GRADS.dW1[0, 0], "0.000438568"),
]


@pytest.mark.parametrize("name, value, printed", BLOG_FORWARD_AND_GRADIENTS, ids=[r[0] for r in BLOG_FORWARD_AND_GRADIENTS])
def test_forward_and_gradients_match_the_blog(name, value, printed):
    assert_printed(value, printed)


def test_blog_dE_o2_dout_h1_is_off_in_its_last_digit():
    """The blog prints -0.019049119; the exact value rounds to -0.019049118."""
    value = GRADS.delta_o[1] * NET.W2[1, 0]
    assert abs(value - -0.019049118258) < 1e-12
    with pytest.raises(AssertionError):
        assert_printed(value, "-0.019049119")


def test_updated_weights_match_the_blog():
    new = ref.step(NET, ref.INPUTS, ref.TARGETS, bias_mode="frozen")
    printed = {(0, 0, 0): "0.149780716", (0, 0, 1): "0.19956143", (0, 1, 0): "0.24975114", (0, 1, 1): "0.29950229",
               (1, 0, 0): "0.35891648", (1, 0, 1): "0.408666186", (1, 1, 0): "0.511301270", (1, 1, 1): "0.561370121"}
    for (layer, row, col), text in printed.items():
        assert_printed((new.W1, new.W2)[layer][row, col], text)


def error_after(network):
    return ref.total_error(ref.forward(network, ref.INPUTS).out_o, ref.TARGETS)


def test_error_after_one_step_in_each_bias_convention():
    after = {mode: error_after(ref.step(NET, ref.INPUTS, ref.TARGETS, bias_mode=mode)) for mode in ref.BIAS_MODES}
    assert after["frozen"] == pytest.approx(0.291027773694, abs=1e-12)
    assert after["per-neuron"] == pytest.approx(0.280471446791, abs=1e-12)
    assert after["shared"] == pytest.approx(0.285750886699, abs=1e-12)


def test_updated_biases_per_neuron():
    new = ref.step(NET, ref.INPUTS, ref.TARGETS, bias_mode="per-neuron")
    np.testing.assert_allclose(new.b1, [0.345614322655, 0.345022872647], atol=1e-12)
    np.testing.assert_allclose(new.b2, [0.530750719186, 0.619049118258], atol=1e-12)


def test_blog_error_after_first_update_is_the_stale_weights_bug():
    """The blog's 0.291027924 is not the correct 0.291027773694: it comes from hidden-layer
    gradients computed with the already-updated output weights."""
    correct = error_after(ref.step(NET, ref.INPUTS, ref.TARGETS, bias_mode="frozen"))
    stale = error_after(ref.step_stale(NET, ref.INPUTS, ref.TARGETS))
    assert_printed(stale, "0.291027924")
    with pytest.raises(AssertionError):
        assert_printed(correct, "0.291027924")
    assert stale == pytest.approx(0.291027923905, abs=1e-12)


@pytest.fixture(scope="module")
def trained():
    """10,000 steps in every variant: (final network, error history)."""
    runs = {mode: ref.train(NET, ref.INPUTS, ref.TARGETS, bias_mode=mode) for mode in ref.BIAS_MODES}
    runs["stale"] = ref.train(NET, ref.INPUTS, ref.TARGETS, bias_mode="frozen", stale=True)
    return runs


def test_training_table(trained):
    expected = {"frozen": (5493, 3.5101878e-05), "per-neuron": (1884, 2.4475622e-06), "shared": (2229, 4.3553211e-06)}
    for mode, (steps, final) in expected.items():
        net, history = trained[mode]
        assert ref.steps_to_reach(history, 1e-4) == steps, mode
        assert history[-1] == pytest.approx(final, rel=1e-7), mode
        assert history[0] == pytest.approx(0.298371108760, abs=1e-12)
    out_frozen = ref.forward(trained["frozen"][0], ref.INPUTS).out_o
    np.testing.assert_allclose(out_frozen, [0.015913620, 0.984064274], atol=1e-9)
    out_nn = ref.forward(trained["per-neuron"][0], ref.INPUTS).out_o
    np.testing.assert_allclose(out_nn, [0.011587527, 0.988458935], atol=1e-9)


def test_blog_outputs_after_training_come_from_the_stale_weights_run(trained):
    """The blog's outputs after 10,000 steps (0.015912196, 0.984065734) are the stale-weights
    run's, to every printed digit; the correct run's differ from the sixth decimal."""
    stale = ref.forward(trained["stale"][0], ref.INPUTS).out_o
    correct = ref.forward(trained["frozen"][0], ref.INPUTS).out_o
    assert_printed(stale[0], "0.015912196")
    assert_printed(stale[1], "0.984065734")
    with pytest.raises(AssertionError):
        assert_printed(correct[0], "0.015912196")
    assert trained["stale"][1][-1] == pytest.approx(3.5084786e-05, rel=1e-7)


def test_steps_to_reach_when_never_reached():
    assert ref.steps_to_reach(np.array([1.0, 0.5, 0.2]), 0.1) is None


def torch_gradients(net: ref.Network, x, t):
    """Gradients of E = 1/2 sum (t - o)^2 by torch autograd, in float64."""
    params = [torch.tensor(getattr(net, n), requires_grad=True) for n in ("W1", "b1", "W2", "b2")]
    W1, b1, W2, b2 = params
    out = torch.sigmoid(torch.sigmoid(torch.tensor(x) @ W1.T + b1) @ W2.T + b2)
    (0.5 * ((torch.tensor(t) - out) ** 2).sum()).backward()
    return [p.grad.numpy() for p in params]


@pytest.mark.parametrize("seed, sizes, batch", [(1, (2, 2, 2), None), (2, (3, 4, 2), None), (3, (3, 4, 2), 5), (4, (5, 1, 3), 2)])
def test_backward_agrees_with_autograd(seed, sizes, batch):
    net = ref.random_network(seed, sizes)
    x, t = ref.random_example(seed, sizes[0], sizes[2], batch)
    grads = ref.backward(net, x, t)
    for mine, theirs in zip((grads.dW1, grads.db1, grads.dW2, grads.db2), torch_gradients(net, x, t)):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-15)


def test_a_batch_gradient_is_the_sum_of_the_examples_gradients():
    net = ref.random_network(7, (3, 4, 2))
    x, t = ref.random_example(7, 3, 2, batch=4)
    whole = ref.backward(net, x, t)
    parts = [ref.backward(net, x[k], t[k]) for k in range(4)]
    np.testing.assert_allclose(whole.dW1, sum(p.dW1 for p in parts), rtol=1e-12)
    np.testing.assert_allclose(whole.db2, sum(p.db2 for p in parts), rtol=1e-12)


def test_unknown_bias_mode_is_refused():
    with pytest.raises(ValueError, match="bias_mode must be one of"):
        ref.step(NET, ref.INPUTS, ref.TARGETS, bias_mode="trained")
