"""The L-BFGS of clip-level refinement against independent computations: the two-loop
recursion against the explicit inverse-Hessian update in float64, and the minimiser
against known minima (a quadratic solved directly, Rosenbrock's valley) within its
evaluation budget."""

import numpy as np
import torch

from fourdhands.lbfgs import _inverse_hessian_times, minimise


def test_the_two_loop_recursion_is_the_bfgs_inverse_hessian_update():
    rng = np.random.default_rng(0)
    n = 6
    A = rng.normal(size=(n, n))
    A = A @ A.T + n * np.eye(n)  # the pairs of a convex quadratic: y = A s, positive curvature
    pairs, H = [], None
    for _ in range(4):
        s = rng.normal(size=n)
        y = A @ s
        pairs.append((torch.tensor(s), torch.tensor(y), 1.0 / (y @ s)))
    s, y, _ = pairs[-1]
    H = (s @ y).item() / (y @ y).item() * np.eye(n)  # the initial matrix of the newest pair
    for s, y, rho in pairs:
        s, y = s.numpy(), y.numpy()
        V = np.eye(n) - rho * np.outer(y, s)
        H = V.T @ H @ V + rho * np.outer(s, s)
    g = rng.normal(size=n)
    np.testing.assert_allclose(_inverse_hessian_times(torch.tensor(g), pairs).numpy(), H @ g, rtol=1e-10)
    np.testing.assert_allclose(_inverse_hessian_times(torch.tensor(g), []).numpy(), g)


def _counted(f):
    calls = []

    def wrapped(x):
        calls.append(x.clone())
        return f(x)
    return wrapped, calls


def test_a_quadratic_reaches_its_solved_minimum():
    rng = np.random.default_rng(1)
    n = 20
    Q = np.linalg.qr(rng.normal(size=(n, n)))[0]
    A = Q @ np.diag(np.logspace(0, 2, n)) @ Q.T  # condition number 100
    b = rng.normal(size=n)
    best = np.linalg.solve(A, b)
    At, bt = torch.tensor(A), torch.tensor(b)
    f, calls = _counted(lambda x: (0.5 * x @ At @ x - bt @ x, At @ x - bt))
    x = minimise(f, torch.zeros(n, dtype=torch.float64), steps=100, evaluations=150)
    np.testing.assert_allclose(x.numpy(), best, atol=1e-6 * np.abs(best).max())
    assert len(calls) <= 150


def test_rosenbrocks_valley_and_the_budget():
    def rosenbrock(x):
        a, b = x[0], x[1]
        value = (1 - a) ** 2 + 100 * (b - a * a) ** 2
        grad = torch.stack([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])
        return value, grad
    f, calls = _counted(rosenbrock)
    x = minimise(f, torch.tensor([-1.2, 1.0], dtype=torch.float64), steps=200, evaluations=400)
    np.testing.assert_allclose(x.numpy(), [1.0, 1.0], atol=1e-4)
    assert len(calls) <= 400

    f, calls = _counted(rosenbrock)
    x = minimise(f, torch.tensor([-1.2, 1.0], dtype=torch.float64), steps=200, evaluations=7)
    assert len(calls) <= 7 and float(rosenbrock(x)[0]) < 24.2  # f(x0) = 24.2
