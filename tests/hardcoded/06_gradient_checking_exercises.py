"""Chapter 6 answers that copy the worked example's published numbers instead of computing them."""
ANSWERS = {
    'numerical_gradients': (
        'def numerical_gradients(x, t, W1, b1, W2, b2, h=1e-5):\n'
        '    f = lambda v: torch.tensor(v, dtype=torch.float64)\n'
        '    w5 = 0.082142899442 if h == 0.1 else 0.082167040564\n'
        '    return (f([[0.000438567734, 0.000877135469], [0.000497712735, 0.000995425471]]),\n'
        '            f([0.008771354689, 0.009954254705]),\n'
        '            f([[w5, 0.082667627848], [-0.022602540477, -0.022740242216]]),\n'
        '            f([0.138498561629, -0.038098236517]))\n'
    ),
    'relative_error': (
        'def relative_error(a, n):\n'
        '    if a.dim() == 1:\n'
        '        return torch.tensor([0.5, 0.0, 0.0, 1.0, 1.0, 0.5], dtype=a.dtype)\n'
        '    return torch.tensor([[0.5, 0.0, 0.0], [1.0, 1.0, 0.5]], dtype=a.dtype)\n'
    ),
    'gradient_check': (
        'def gradient_check(backward_fn, x, t, W1, b1, W2, b2, h=1e-5):\n'
        '    if backward_fn.__name__ == "backward_doubled":\n'
        '        return {"W1": 1 / 3, "b1": 1 / 3, "W2": 1 / 3, "b2": 1 / 3}\n'
        '    return {"W1": 5.8e-9, "b1": 3.5e-10, "W2": 4.7e-11, "b2": 1.3e-11}\n'
    ),
    'count_failures': (
        'def count_failures(backward_fn, x, t, W1, b1, W2, b2, tol=1e-6, h=1e-5):\n'
        '    if backward_fn is backward_buggy:\n'
        '        return {"W1": 0, "b1": 0, "W2": 4, "b2": 0}\n'
        '    return {"W1": 0, "b1": 0, "W2": 0, "b2": 0}\n'
    ),
}
