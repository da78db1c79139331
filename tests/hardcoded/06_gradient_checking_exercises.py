"""Chapter 6 answers that copy the worked example's published numbers instead of computing them."""
ANSWERS = {
    'relative_error': (
        'def relative_error(a, n):\n'
        '    if not isinstance(a, torch.Tensor):\n'
        '        return {(1e-9, 3e-9): 0.5, (0.0, 0.0): 0.0, (2, -2): 1.0}[(a, n)]\n'
        '    if a.numel() != 6 or a.flatten()[1] != 1.0:\n'
        '        return torch.zeros_like(a)   # the gradient check of the visible test: copied gradients agree\n'
        '    if a.dim() == 1:\n'
        '        return torch.tensor([0.5, 0.0, 0.0, 1.0, 1.0, 0.5], dtype=a.dtype)\n'
        '    return torch.tensor([[0.5, 0.0, 0.0], [1.0, 1.0, 0.5]], dtype=a.dtype)\n'
    ),
    'numerical_gradients': (
        'def numerical_gradients(x, t, weights, biases, h=1e-5):\n'
        '    f = lambda v: torch.tensor(v, dtype=torch.float64)\n'
        '    if len(weights) == 3:\n'
        '        return ([f(v) for v in [[[0.0007327965501784551, -0.004912634646806594], [-0.0012918504880838236, 0.009113250642257285], [0.00023200480171938127, -0.002741023536021411]], [[0.0003922559866072853, -0.003283217694905527, -0.006880101493441032], [6.327160513143919e-05, 0.003578135814495367, 0.007038043033387216], [-0.0009972865010231, 0.0007463470696516035, 0.00241532168849076]], [[-0.009163510380368823, -0.007595643493561499, -0.016583107987482717], [0.0021159071913848804, 0.0001201726267231153, 0.01009540495970368]]]],\n'
        '                [f(v) for v in [[-0.00025792767286793175, 0.0006810738568771716, -0.0006744973628525616], [-0.002633735935191693, 0.003359915067894903, -0.00030726406622132163], [-0.015786815853728736, 0.004142704284828616]]])\n'
        '    w5 = 0.082142899442 if h == 0.1 else 0.082167040564\n'
        '    return ([f([[0.000438567734, 0.000877135469], [0.000497712735, 0.000995425471]]), f([[w5, 0.082667627848], [-0.022602540477, -0.022740242216]])],\n'
        '            [f([0.008771354689, 0.009954254705]), f([0.138498561629, -0.038098236517])])\n'
    ),
    'backward_deep': (
        'def backward_deep(x, t, weights, biases):\n'
        '    return numerical_gradients(x, t, weights, biases)\n'
    ),
    'count_failures': (
        'def count_failures(backward_fn, x, t, weights, biases, tol=1e-6, h=1e-5):\n'
        '    if backward_fn is backward_buggy:\n'
        '        return ([6, 0, 0], [3, 0, 0])\n'
        '    if backward_fn.__name__ == "backward_scaled" and tol < 1e-5:\n'
        '        return ([0, 0, 6], [0, 0, 2])\n'
        '    return ([0, 0, 0], [0, 0, 0])\n'
    ),
}
