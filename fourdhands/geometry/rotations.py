"""Rotation representations and the conversions between them.

Conventions (every function here follows them):

- Rotation matrices ``R`` of shape ``(..., 3, 3)`` act on column vectors,
  ``x' = R @ x``, and are proper (``det R = +1``).
- Axis-angle ``r`` of shape ``(..., 3)`` is the unit rotation axis times the angle in
  radians, right-hand rule (MANO / SMPL ``global_orient`` and ``hand_pose``). Outputs
  have their angle in ``[0, pi]``; at exactly ``pi``, ``r`` and ``-r`` are the same
  rotation and either may be returned.
- Quaternions ``q`` of shape ``(..., 4)`` are ordered ``(w, x, y, z)``, scalar first
  (SciPy's default is scalar last). Inputs need not have unit norm but must be nonzero;
  outputs are unit with ``w >= 0``.
- The continuous 6D representation (Zhou et al., CVPR 2019) ``d`` of shape ``(..., 6)``
  is the first two COLUMNS of ``R``, column after column::

      d = [R00, R10, R20, R01, R11, R21]

  i.e. ``d[..., 0:3]`` is the first column and ``d[..., 3:6]`` the second. Note that the
  row-major flattening of the ``3x2`` block ``R[..., :, :2]``, which some codebases use,
  interleaves the two columns instead.

All functions are batched over arbitrary leading dimensions, keep the input's dtype and
device, and have finite gradients everywhere the mathematics allows (including the zero
rotation and angles near ``pi``).
"""

import torch
import torch.nn.functional as F

# Below these squared arguments the truncated series are exact to float64 rounding; above
# them the closed forms lose no accuracy, but at 0 their sqrt has an infinite slope.
_SINC_SERIES_BELOW = 1e-2
_ATAN_SERIES_BELOW = 1e-4


def _sinc_of_sqrt(x2: torch.Tensor) -> torch.Tensor:
    """``sin(x) / x`` evaluated from ``x2 = x**2``: ``(...) -> (...)``.

    Taking the square keeps the function smooth at ``x = 0``, where a sqrt would give an
    infinite (NaN after the chain rule) gradient.
    """
    small = x2 < _SINC_SERIES_BELOW
    x = torch.where(small, torch.ones_like(x2), x2).sqrt()
    series = 1 - x2 / 6 * (1 - x2 / 20 * (1 - x2 / 42 * (1 - x2 / 72)))
    return torch.where(small, series, torch.sin(x) / x)


def _with_nonnegative_w(q: torch.Tensor) -> torch.Tensor:
    """Pick the representative with ``w >= 0`` of ``q`` and ``-q``: ``(..., 4) -> (..., 4)``."""
    return torch.where(q[..., :1] < 0, -q, q)


def axis_angle_to_quaternion(axis_angle: torch.Tensor) -> torch.Tensor:
    """Axis-angle to unit quaternion ``(w, x, y, z)``, ``w >= 0``: ``(..., 3) -> (..., 4)``."""
    angle2 = (axis_angle * axis_angle).sum(-1, keepdim=True)
    # cos(a/2) = 1 - 2 sin^2(a/4) keeps w a smooth function of the squared angle.
    w = 1 - angle2 / 8 * _sinc_of_sqrt(angle2 / 16) ** 2
    xyz = 0.5 * _sinc_of_sqrt(angle2 / 4) * axis_angle
    return _with_nonnegative_w(torch.cat([w, xyz], dim=-1))


def quaternion_to_axis_angle(quaternion: torch.Tensor) -> torch.Tensor:
    """Quaternion ``(w, x, y, z)`` (any nonzero norm) to axis-angle with angle in ``[0, pi]``.

    ``(..., 4) -> (..., 3)``.
    """
    q = _with_nonnegative_w(quaternion)
    w, xyz = q[..., :1], q[..., 1:]
    n2 = (xyz * xyz).sum(-1, keepdim=True)
    # r = 2 atan2(|v|, w) / |v| * v; for small |v| / w use the series of atan(y) / y in
    # y^2, because the closed form's gradient is 0/0 at v = 0. Both branches see only
    # safe inputs so that masked-out gradients are 0, not NaN.
    small = n2 < _ATAN_SERIES_BELOW * w * w
    w_safe = torch.where(small, w, torch.ones_like(w))
    y2 = torch.where(small, n2, torch.zeros_like(n2)) / (w_safe * w_safe)
    series = (1 - y2 * (1 / 3 - y2 * (1 / 5 - y2 * (1 / 7 - y2 / 9)))) / w_safe
    n = torch.where(small, torch.ones_like(n2), n2).sqrt()
    closed = torch.atan2(n, w) / n
    return 2 * torch.where(small, series, closed) * xyz


def quaternion_to_matrix(quaternion: torch.Tensor) -> torch.Tensor:
    """Quaternion ``(w, x, y, z)`` (any nonzero norm) to rotation matrix: ``(..., 4) -> (..., 3, 3)``."""
    w, x, y, z = quaternion.unbind(-1)
    # Dividing by |q|^2 here is the same as normalising q first.
    s = 2 / (quaternion * quaternion).sum(-1)
    return torch.stack(
        [
            1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w),
            s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w),
            s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y),
        ],
        dim=-1,
    ).unflatten(-1, (3, 3))


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrix to unit quaternion ``(w, x, y, z)`` with ``w >= 0``: ``(..., 3, 3) -> (..., 4)``.

    For a slightly non-orthonormal input the result is a nearby unit quaternion.
    """
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = matrix.flatten(-2).unbind(-1)
    # Row k below equals 4 q_k q for a rotation; its k-th entry 4 q_k^2 comes from the
    # diagonal. Using the row with the largest q_k^2 (>= 1/4) avoids dividing by a small
    # component, which is what breaks the trace-only formula near angle pi.
    rows = torch.stack(
        [
            torch.stack([1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01], -1),
            torch.stack([m21 - m12, 1 + m00 - m11 - m22, m10 + m01, m02 + m20], -1),
            torch.stack([m02 - m20, m10 + m01, 1 - m00 + m11 - m22, m12 + m21], -1),
            torch.stack([m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22], -1),
        ],
        dim=-2,
    )
    best = rows.diagonal(dim1=-2, dim2=-1).argmax(-1)
    row = rows.gather(-2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    return _with_nonnegative_w(F.normalize(row, dim=-1))


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Axis-angle to rotation matrix (Rodrigues): ``(..., 3) -> (..., 3, 3)``.

    ``R = cos(t) I + sinc(t) [r]_x + (1 - cos t) / t^2 r r^T`` for ``r`` of angle ``t``,
    with ``(1 - cos t) / t^2 = sinc(t / 2)^2 / 2`` and ``cos t = 1 - t^2`` times that, so
    that every factor is a smooth function of ``t^2`` (exact, and differentiable at 0).
    Written out entry by entry: it runs in fewer operations than through a quaternion,
    which matters to refinement's many small evaluations."""
    t2 = (axis_angle * axis_angle).sum(-1)
    a = _sinc_of_sqrt(t2)
    b = 0.5 * _sinc_of_sqrt(t2 / 4) ** 2
    c = 1 - t2 * b
    x, y, z = axis_angle.unbind(-1)
    bx, by, bz = b * x, b * y, b * z
    ax, ay, az = a * x, a * y, a * z
    return torch.stack([c + bx * x, bx * y - az, bx * z + ay,
                        bx * y + az, c + by * y, by * z - ax,
                        bx * z - ay, by * z + ax, c + bz * z], dim=-1).unflatten(-1, (3, 3))


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrix to axis-angle with angle in ``[0, pi]``: ``(..., 3, 3) -> (..., 3)``."""
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def rot6d_to_matrix(rot6d: torch.Tensor) -> torch.Tensor:
    """6D representation to rotation matrix by Gram-Schmidt: ``(..., 6) -> (..., 3, 3)``.

    With ``a1 = rot6d[..., 0:3]`` and ``a2 = rot6d[..., 3:6]`` the columns are
    ``b1 = a1 / |a1|``, ``b2`` = the part of ``a2`` orthogonal to ``b1``, normalised, and
    ``b3 = b1 x b2``. Any 6 numbers with ``a1``, ``a2`` linearly independent are valid.
    """
    a1, a2 = rot6d[..., :3], rot6d[..., 3:]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rot6d(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrix to its 6D representation ``[R00, R10, R20, R01, R11, R21]``.

    ``(..., 3, 3) -> (..., 6)``.
    """
    return matrix[..., :, :2].transpose(-1, -2).flatten(-2)
