"""Translation of a known 3D shape from its 2D image: the PnP step with the rotation known.

A regressor gives a hand's keypoints ``X_j`` (its own frame, already rotated) and where
they should appear in the image, ``u_j``. The camera-frame translation ``t`` puts them
there: ``u_j = pi(K (X_j + t))``. Multiplying out the projection's denominator makes each
point two equations linear in ``t``:

    f_x t_x + (c_x - u_j) t_z = (u_j - c_x) Z_j - f_x X_j
    f_y t_y + (c_y - v_j) t_z = (v_j - c_y) Z_j - f_y Y_j

solved in least squares. That is exact for noise-free points; with noise it minimises the
reprojection error times each point's depth ``Z_j + t_z``, which varies by a few percent
across a hand, so it starts Gauss-Newton on the true reprojection error right next to its
minimum, and two steps reach it (``tests/test_pnp.py`` compares with a nonlinear solver).
"""

from __future__ import annotations

import torch


def solve_translation(points: torch.Tensor, pixels: torch.Tensor, K: torch.Tensor,
                      weights: torch.Tensor | None = None, rounds: int = 2) -> torch.Tensor:
    """Least-squares translation putting ``points`` at ``pixels``.

    Args:
        points: ``(..., J, 3)`` in the camera's axes, before translation.
        pixels: ``(..., J, 2)`` image pixels.
        K: ``(..., 3, 3)`` intrinsics (no skew).
        weights: ``(..., J)`` non-negative per-point weights (default 1).
        rounds: Gauss-Newton steps after the linear solve (0: the linear solution).

    Returns:
        ``(..., 3)`` translation in the units of ``points``.
    """
    dtype = points.dtype
    points, pixels, K = points.double(), pixels.double(), K.double()
    fx, fy = K[..., 0, 0, None], K[..., 1, 1, None]
    cx, cy = K[..., 0, 2, None], K[..., 1, 2, None]
    u, v = pixels[..., 0], pixels[..., 1]
    X, Y, Z = points.unbind(-1)
    zero = torch.zeros_like(u)
    rows_x = torch.stack([fx.expand_as(u), zero, cx - u], -1)
    rows_y = torch.stack([zero, fy.expand_as(v), cy - v], -1)
    A = torch.cat([rows_x, rows_y], -2)  # (..., 2J, 3)
    b = torch.cat([(u - cx) * Z - fx * X, (v - cy) * Z - fy * Y], -1)  # (..., 2J)
    w = torch.ones_like(u) if weights is None else weights.double().sqrt()
    w = torch.cat([w, w], -1)
    t = _solve(A, b, w)
    for _ in range(rounds):
        x, y = X + t[..., :1], Y + t[..., 1:2]
        depth = (Z + t[..., 2:]).clamp_min(1e-9)
        residual = torch.cat([fx * x / depth + cx - u, fy * y / depth + cy - v], -1)
        jac_x = torch.stack([fx / depth, zero, -fx * x / depth**2], -1)
        jac_y = torch.stack([zero, fy / depth, -fy * y / depth**2], -1)
        t = t - _solve(torch.cat([jac_x, jac_y], -2), residual, w)
    return t.to(dtype)


def _solve(A: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Weighted least squares ``min |w (A t - b)|`` for ``A (..., R, 3)``, ``b, w (..., R)``."""
    A, b = A * w[..., None], b * w
    At = A.transpose(-1, -2)
    return torch.linalg.solve(At @ A, At @ b[..., None])[..., 0]
