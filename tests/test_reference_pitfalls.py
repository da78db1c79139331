"""Chapter 6's reference functions (gradient checks, planted bugs, pitfalls, vanishing gradients)
against ../shared/REFERENCE.md's facts and torch."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch.autograd.gradcheck import GradcheckError

from autograder import checks
from autograder import reference as ref

NET = ref.mazur_network()
X, T = ref.INPUTS, ref.TARGETS
ANALYTIC = ref.gradient_arrays(ref.backward(NET, X, T))


def torch_error(x, t, W1, b1, W2, b2):
    out_o = torch.sigmoid(torch.sigmoid(x @ W1.T + b1) @ W2.T + b2)
    return 0.5 * ((t - out_o) ** 2).sum()


def torch_params(dtype, requires_grad=False):
    return tuple(torch.tensor(getattr(NET, name), dtype=dtype).requires_grad_(requires_grad) for name in ref.PARAMETERS)


def test_central_differences_agree_to_5_8e_9_in_float64():
    report = ref.gradient_check(ANALYTIC, NET, X, T, h=1e-5)
    worst = max(report.values())
    assert f"{worst:.1e}" == "5.8e-09", report
    assert max(report, key=report.get) == "W1"  # the smallest gradients carry the largest relative error


def test_numerical_gradients_are_the_central_difference_of_the_error():
    net = ref.random_network(1, (3, 4, 2))
    x, t = ref.random_example(1, 3, 2, batch=3)
    numerical = ref.numerical_gradients(net, x, t, h=1e-3)
    W2_plus, W2_minus = net.W2.copy(), net.W2.copy()
    W2_plus[1, 2] += 1e-3
    W2_minus[1, 2] -= 1e-3
    by_hand = (ref.error_in(ref.Network(net.W1, net.b1, W2_plus, net.b2), x, t)
               - ref.error_in(ref.Network(net.W1, net.b1, W2_minus, net.b2), x, t)) / 2e-3
    assert numerical[2][1, 2] == pytest.approx(by_hand, rel=1e-12)
    for mine, exact in zip(numerical, ref.gradient_arrays(ref.backward(net, x, t))):
        np.testing.assert_allclose(mine, exact, rtol=1e-5, atol=1e-9)


def test_float32_hidden_weight_numerical_gradients_are_zero():
    """In float32 with h = 1e-5, moving a hidden weight changes E by less than float32's gap."""
    numerical32 = ref.numerical_gradients(NET, X, T, h=1e-5, dtype=np.float32)
    assert (numerical32[0] == 0).all()
    assert (ref.relative_error(ANALYTIC[0], numerical32[0]) == 1.0).all()
    # The same in torch, as the lesson computes it.
    x, t = torch.tensor(X, dtype=torch.float32), torch.tensor(T, dtype=torch.float32)
    W1, b1, W2, b2 = torch_params(torch.float32)
    for i in range(4):
        plus, minus = W1.clone(), W1.clone()
        plus.view(-1)[i] += 1e-5
        minus.view(-1)[i] -= 1e-5
        assert torch_error(x, t, plus, b1, W2, b2) == torch_error(x, t, minus, b1, W2, b2)


def test_gradcheck_passes_in_float64_and_fails_in_float32():
    x, t = torch.tensor(X), torch.tensor(T)
    assert torch.autograd.gradcheck(lambda *p: torch_error(x, t, *p), torch_params(torch.float64, True))
    x32, t32 = x.float(), t.float()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gradcheck warns that the inputs are not float64
        with pytest.raises(GradcheckError, match="with respect to input 0"):
            torch.autograd.gradcheck(lambda *p: torch_error(x32, t32, *p), torch_params(torch.float32, True))


def test_relative_error_convention():
    a = np.array([0.0, 0.0, 1.0, 2.0, -1.0, 1e-9])
    n = np.array([0.0, 1.0, 1.0, 1.0, 1.0, 3e-9])
    np.testing.assert_allclose(ref.relative_error(a, n), [0.0, 1.0, 0.0, 1 / 3, 1.0, 0.5], rtol=1e-15)
    with np.errstate(all="raise"):  # no 0/0 evaluated on the way
        ref.relative_error(np.zeros((2, 3)), np.zeros((2, 3)))


def test_transposed_weights_give_0_303658314():
    assert round(ref.transposed_weights_error(NET, X, T), 9) == 0.303658314


def test_sum_without_the_half_doubles_every_gradient():
    doubled = ref.planted_bug_gradients(NET, X, T, "sum without the 1/2")
    assert round(doubled[2][0, 0], 9) == 0.164334081
    # torch's nn.MSELoss(reduction='sum') gives the same
    W2 = torch.tensor(NET.W2, requires_grad=True)
    out_o = torch.sigmoid(torch.sigmoid(torch.tensor(X) @ torch.tensor(NET.W1).T + torch.tensor(NET.b1)) @ W2.T + torch.tensor(NET.b2))
    torch.nn.MSELoss(reduction="sum")(out_o, torch.tensor(T)).backward()
    assert W2.grad[0, 0].item() == pytest.approx(doubled[2][0, 0], rel=1e-13)
    report = ref.gradient_check(doubled, NET, X, T)
    assert all(r == pytest.approx(1 / 3, abs=1e-8) for r in report.values())


def test_two_backward_passes_without_zero_grad_double_grad():
    x, t = torch.tensor(X), torch.tensor(T)
    params = torch_params(torch.float64, True)
    for _ in range(2):
        torch_error(x, t, *params).backward()
    assert round(params[2].grad[0, 0].item(), 9) == 0.164334081


def test_float32_literal_in_a_float64_parameter():
    assert f"{ref.float32_stored(0.15):.11f}" == "0.15000000596"
    layer = torch.nn.Linear(2, 2, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.15, 0.20], [0.25, 0.30]]))
    assert layer.weight[0, 0].item() == ref.float32_stored(0.15)


def test_stale_gradients_are_the_old_scripts_and_a_gradient_check_catches_them():
    """The bug of an earlier version of Mazur's script (fixed in mattm/simple-neural-network,
    commit 4b6faac), whose error after one step the post printed; the post's derivation is right."""
    stale = ref.stale_gradients(NET, X, T)
    after = ref.apply_update(NET, stale, ref.LEARNING_RATE, bias_mode="frozen")
    assert ref.total_error(ref.forward(after, X).out_o, T) == pytest.approx(0.291027923905, abs=1e-12)
    stale_net = ref.step_stale(NET, X, T)
    np.testing.assert_array_equal(after.W1, stale_net.W1)
    report = ref.gradient_check(ref.gradient_arrays(stale), NET, X, T)
    assert report["W1"] > 1e-2 and report["b1"] > 1e-2
    assert report["W2"] < 1e-9 and report["b2"] < 1e-9


@pytest.mark.parametrize("bug, spoiled", [
    ("hidden derivative of out", {"W1", "b1"}),
    ("dW2 from net_h", {"W2"}),
    ("stale W2", {"W1", "b1"}),
    ("sum without the 1/2", {"W1", "b1", "W2", "b2"}),
    ("biases averaged over the batch", {"b1", "b2"}),
])
def test_each_planted_bug_spoils_the_gradients_it_should(bug, spoiled):
    net = ref.random_network(5, (3, 4, 2))
    x, t = ref.random_example(5, 3, 2, batch=3)  # a batch, so that averaging is a bug
    report = ref.gradient_check(ref.planted_bug_gradients(net, x, t, bug), net, x, t)
    assert {name for name, r in report.items() if r > 1e-4} == spoiled, report
    counts = ref.count_failures(ref.planted_bug_gradients(net, x, t, bug), net, x, t)
    sizes = {name: getattr(net, name).size for name in ref.PARAMETERS}
    assert counts == {name: sizes[name] if name in spoiled else 0 for name in ref.PARAMETERS}


def test_unknown_planted_bug_is_refused():
    with pytest.raises(ValueError, match="bug must be one of"):
        ref.planted_bug_gradients(NET, X, T, "typo")


def test_the_hidden_tests_cases_are_far_from_every_threshold():
    """The hidden tests of exercises 3 and 4 (seeds 63, 64) compare the student's gradient check,
    built on torch, with this one, built on numpy. Their numerical gradients (h = 1e-5) differ by
    rounding, below 5e-12 in absolute value (measured); allow 2e-11, which moves an entry's
    relative error by up to 2e-11 / (|a| + |n|). No entry may be moved across a threshold the tests
    use: exercise 3's atol of 1e-6 (a correct check) and exercise 4's tol of 1e-6 and 1e-2."""
    for seed in (63, 64):
        for case in checks.fresh_cases(seed, dtypes=(torch.float64,)):
            numerical = ref.numerical_gradients(case.net, case.x_np, case.t_np)
            for bug in ref.PLANTED_BUGS:
                grads = ref.planted_bug_gradients(case.net, case.x_np, case.t_np, bug)
                r = np.concatenate([ref.relative_error(a, n).ravel() for a, n in zip(grads, numerical)])
                size = np.concatenate([(np.abs(a) + np.abs(n)).ravel() for a, n in zip(grads, numerical)])
                noise = 2e-11 / size
                where = f"{case.label}, bug {bug!r}"
                assert (noise < 1e-6 / 2).all(), where  # a correct entry stays within exercise 3's atol
                for tol in (1e-6, 1e-2):
                    assert (np.abs(r - tol) > 2 * noise).all(), (where, tol)


@pytest.mark.parametrize("n_layers, expected", [(1, 0.1437348), (2, 0.0291138), (5, 3.204783e-4),
                                                (10, 1.835290e-7), (20, 6.023091e-14)])
def test_vanishing_gradients_through_sigmoid_layers(n_layers, expected):
    assert ref.chain_gradient(n_layers, "sigmoid") == pytest.approx(expected, rel=5e-7)


def test_tanh_and_relu_chains_of_ten():
    assert ref.chain_gradient(10, "tanh") == pytest.approx(1.457492e-2, rel=5e-7)
    assert ref.chain_gradient(10, "relu") == 1.0


@pytest.mark.parametrize("activation, f", [("sigmoid", torch.sigmoid), ("tanh", torch.tanh), ("relu", torch.relu)])
def test_chain_gradient_equals_autograd(activation, f):
    for n_layers in (1, 3, 7):
        for w, x, b in ((1.0, 1.0, 0.0), (0.8, -0.5, 0.3)):
            weights = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for _ in range(n_layers)]
            a = torch.tensor(x, dtype=torch.float64)
            for weight in weights:
                a = f(weight * a + b)
            (a ** 2 / 2).backward()
            assert ref.chain_gradient(n_layers, activation, w, x, b) == pytest.approx(weights[0].grad.item(), rel=1e-12, abs=1e-300)
