"""Limited-memory BFGS (Nocedal and Wright, *Numerical Optimization*, 2nd ed., algorithms
7.4 and 7.5) with a backtracking line search, on one flat tensor of variables.

Clip-level refinement (:mod:`fourdhands.refine`) runs a few dozen steps of it per window.
``torch.optim.LBFGS`` would do, but constructing any ``torch.optim`` optimiser imports
``torch._dynamo`` (1.3 s on this CPU, more than refining a 121-frame clip takes), and
SciPy's L-BFGS-B wakes OpenBLAS's threads, which then compete with torch's for the same
cores (every evaluation of the energy took twice as long beside it).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

ARMIJO = 1e-4  # sufficient decrease: f(x + t d) <= f(x) + ARMIJO t g.d


def minimise(f: Callable[[Tensor], tuple[Tensor, Tensor]], x: Tensor, steps: int, evaluations: int,
             history: int = 10) -> Tensor:
    """``x`` `(N,)` after at most ``steps`` L-BFGS iterations and ``evaluations`` calls of
    ``f`` (which returns the value `()` and the gradient `(N,)` at a point), fewer when
    the gradient vanishes or no step along the search direction decreases the value.

    Each iteration tries the quasi-Newton step (the first one, with no curvature known
    yet, the gradient scaled to at most unit L1 length, as ``torch.optim.LBFGS`` does) and halves it
    until the value falls by the Armijo condition; a pair of differences enters the
    ``history`` only when it has positive curvature, so the inverse Hessian stays
    positive definite."""
    value, grad = f(x)
    used = 1
    pairs: list[tuple[Tensor, Tensor, float]] = []  # (s, y, 1 / y.s)
    for _ in range(steps):
        direction = -_inverse_hessian_times(grad, pairs)
        slope = float(grad @ direction)
        if not slope < 0:
            break
        t = 1.0 if pairs else min(1.0, 1.0 / float(grad.abs().sum().clamp_min(1e-30)))
        while True:
            trial = x + t * direction
            trial_value, trial_grad = f(trial)
            used += 1
            if trial_value <= value + ARMIJO * t * slope or used >= evaluations:
                break
            t *= 0.5
        if not trial_value < value:
            break  # the evaluations ran out before a decrease
        s, y = trial - x, trial_grad - grad
        curvature = float(y.double() @ s.double())
        if curvature > 1e-10:
            pairs = (pairs + [(s, y, 1.0 / curvature)])[-history:]
        x, value, grad = trial, trial_value, trial_grad
        if used >= evaluations:
            break
    return x


def _inverse_hessian_times(grad: Tensor, pairs: list) -> Tensor:
    """The two-loop recursion: the L-BFGS inverse Hessian times ``grad`` `(N,)`, with
    the initial matrix ``(s.y / y.y) I`` of the newest pair (identity without pairs)."""
    q = grad.clone()
    alphas = []
    for s, y, rho in reversed(pairs):
        a = rho * float(s @ q)
        q -= a * y
        alphas.append(a)
    if pairs:
        s, y, rho = pairs[-1]
        q *= 1.0 / (rho * float(y @ y))
    for (s, y, rho), a in zip(pairs, reversed(alphas)):
        q += (a - rho * float(y @ q)) * s
    return q
