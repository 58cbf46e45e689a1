"""Rotation conversions against SciPy (float64), hand-worked cases and gradient checks."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from fourdhands.geometry.rotations import (
    axis_angle_to_matrix,
    axis_angle_to_quaternion,
    matrix_to_axis_angle,
    matrix_to_quaternion,
    matrix_to_rot6d,
    quaternion_to_axis_angle,
    quaternion_to_matrix,
    rot6d_to_matrix,
)

ANGLES = [0.0, 1e-12, 1e-8, 1e-4, 0.05, 0.3, 1.0, 2.0, 3.0, math.pi - 1e-4, math.pi - 1e-8]


def axis_angles(seed: int = 0) -> torch.Tensor:
    """(len(ANGLES) * 8, 3) float64: random axes at every angle of ANGLES."""
    rng = np.random.default_rng(seed)
    axes = rng.normal(size=(8, 3))
    axes /= np.linalg.norm(axes, axis=-1, keepdims=True)
    return torch.from_numpy((np.array(ANGLES)[:, None, None] * axes).reshape(-1, 3))


def scipy_quat_wxyz(rotvec: np.ndarray) -> np.ndarray:
    q = Rotation.from_rotvec(rotvec).as_quat()  # x, y, z, w
    q = np.concatenate([q[..., 3:], q[..., :3]], -1)
    return np.where(q[..., :1] < 0, -q, q)


def test_axis_angle_to_matrix_matches_scipy():
    r = axis_angles()
    expected = Rotation.from_rotvec(r.numpy()).as_matrix()
    np.testing.assert_allclose(axis_angle_to_matrix(r).numpy(), expected, atol=1e-15)


def test_axis_angle_to_matrix_beyond_pi_matches_scipy():
    r = torch.from_numpy(np.random.default_rng(1).normal(size=(50, 3)) * 4.0)
    expected = Rotation.from_rotvec(r.numpy()).as_matrix()
    np.testing.assert_allclose(axis_angle_to_matrix(r).numpy(), expected, atol=1e-14)


def test_axis_angle_to_matrix_hand_worked():
    # 90 degrees about z turns x into y.
    R = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64))
    expected = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(R, expected, atol=1e-15, rtol=0)


def test_matrix_to_axis_angle_round_trip_from_zero_to_near_pi():
    r = axis_angles()
    recovered = matrix_to_axis_angle(axis_angle_to_matrix(r))
    # Relative accuracy also at tiny angles, where an absolute check would be blind.
    torch.testing.assert_close(recovered, r, atol=1e-300, rtol=1e-12)
    np.testing.assert_allclose(
        matrix_to_axis_angle(torch.from_numpy(Rotation.from_rotvec(r.numpy()).as_matrix())).numpy(),
        r.numpy(), atol=1e-13, rtol=1e-12,
    )


def test_matrix_to_axis_angle_at_exactly_pi():
    rng = np.random.default_rng(2)
    axes = rng.normal(size=(20, 3))
    axes /= np.linalg.norm(axes, axis=-1, keepdims=True)
    R = torch.from_numpy(Rotation.from_rotvec(math.pi * axes).as_matrix())
    r = matrix_to_axis_angle(R)
    np.testing.assert_allclose(r.norm(dim=-1).numpy(), math.pi, atol=1e-12)
    # r and -r are the same rotation at pi: compare the rotations.
    torch.testing.assert_close(axis_angle_to_matrix(r), R, atol=1e-12, rtol=0)


def test_matrix_to_axis_angle_returns_angle_at_most_pi():
    r = torch.from_numpy(np.random.default_rng(3).normal(size=(200, 3)) * 3.0)
    recovered = matrix_to_axis_angle(axis_angle_to_matrix(r))
    assert (recovered.norm(dim=-1) <= math.pi + 1e-12).all()
    np.testing.assert_allclose(recovered.numpy(), Rotation.from_rotvec(r.numpy()).as_rotvec(), atol=1e-12)


def test_float32_accuracy_near_zero_and_pi():
    # Skip the exact zero (relative error undefined) and pi - 1e-8, which is pi in float32
    # where r and -r are the same rotation.
    r64 = axis_angles()[8:-8]
    r32 = r64.float()
    recovered = matrix_to_axis_angle(axis_angle_to_matrix(r32))
    assert recovered.dtype == torch.float32
    angle_error = (recovered.double() - r64).norm(dim=-1)
    assert (angle_error <= 1e-6 * r64.norm(dim=-1) + 1e-6).all()
    small = r64.norm(dim=-1) < 1e-3
    # Near zero the result must be relatively accurate, not merely close to zero.
    assert (angle_error[small] <= 1e-6 * r64.norm(dim=-1)[small]).all()


def test_quaternion_matches_scipy_and_is_canonical():
    r = axis_angles()
    expected = scipy_quat_wxyz(r.numpy())
    np.testing.assert_allclose(axis_angle_to_quaternion(r).numpy(), expected, atol=1e-15)
    q = matrix_to_quaternion(axis_angle_to_matrix(r))
    np.testing.assert_allclose(q.numpy(), expected, atol=1e-15)
    assert (q[:, 0] >= 0).all()
    np.testing.assert_allclose(q.norm(dim=-1).numpy(), 1.0, atol=1e-15)


def test_quaternion_hand_worked_order_is_wxyz():
    q = axis_angle_to_quaternion(torch.tensor([math.pi / 2, 0.0, 0.0], dtype=torch.float64))
    s = math.sqrt(0.5)
    torch.testing.assert_close(q, torch.tensor([s, s, 0.0, 0.0], dtype=torch.float64))


def test_quaternion_to_matrix_accepts_any_norm_and_sign():
    rng = np.random.default_rng(4)
    q = torch.from_numpy(rng.normal(size=(30, 4)))
    expected = Rotation.from_quat(np.concatenate([q[:, 1:], q[:, :1]], -1)).as_matrix()
    np.testing.assert_allclose(quaternion_to_matrix(q).numpy(), expected, atol=1e-14)
    np.testing.assert_allclose(quaternion_to_matrix(-3 * q).numpy(), expected, atol=1e-14)


def test_quaternion_to_axis_angle_matches_scipy_for_any_norm_and_sign():
    rng = np.random.default_rng(5)
    q = torch.from_numpy(rng.normal(size=(30, 4)))
    expected = Rotation.from_quat(np.concatenate([q[:, 1:], q[:, :1]], -1)).as_rotvec()
    np.testing.assert_allclose(quaternion_to_axis_angle(q).numpy(), expected, atol=1e-14)
    np.testing.assert_allclose(quaternion_to_axis_angle(-0.1 * q).numpy(), expected, atol=1e-14)
    r = axis_angles()
    torch.testing.assert_close(quaternion_to_axis_angle(axis_angle_to_quaternion(r)), r, atol=1e-300, rtol=1e-12)


def test_axis_angle_to_quaternion_beyond_two_pi_is_canonical():
    r = torch.tensor([0.0, 0.0, 2 * math.pi + 0.5], dtype=torch.float64)
    q = axis_angle_to_quaternion(r)
    assert q[0] > 0
    torch.testing.assert_close(q, axis_angle_to_quaternion(torch.tensor([0.0, 0.0, 0.5], dtype=torch.float64)))


def test_rot6d_layout_is_first_two_columns():
    R = torch.from_numpy(Rotation.from_rotvec([0.3, -1.2, 0.7]).as_matrix())
    d = matrix_to_rot6d(R)
    expected = torch.stack([R[0, 0], R[1, 0], R[2, 0], R[0, 1], R[1, 1], R[2, 1]])
    torch.testing.assert_close(d, expected, atol=0, rtol=0)
    torch.testing.assert_close(rot6d_to_matrix(d), R, atol=1e-15, rtol=0)


def test_rot6d_gram_schmidt_hand_worked():
    d = torch.tensor([[2.0, 0.0, 0.0, 1.0, 3.0, 0.0], [0.0, 0.0, 5.0, 1.0, 0.0, 1.0]], dtype=torch.float64)
    expected = torch.tensor(
        [
            [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            # columns (0,0,1), (1,0,0), (0,0,1) x (1,0,0) = (0,1,0)
            [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(rot6d_to_matrix(d), expected, atol=1e-15, rtol=0)


def test_rot6d_to_matrix_of_arbitrary_input_matches_qr():
    d = torch.from_numpy(np.random.default_rng(6).normal(size=(40, 6)))
    R = rot6d_to_matrix(d).numpy()
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-14)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-14)
    # Gram-Schmidt of [a1 a2] is the QR factorisation with a positive diagonal of R.
    a = np.stack([d[:, :3].numpy(), d[:, 3:].numpy()], -1)
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[:, None, :]
    np.testing.assert_allclose(R[..., :2], q, atol=1e-14)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_batched_shapes_and_dtypes(dtype):
    r = torch.randn(2, 3, 5, 3, generator=torch.Generator().manual_seed(7), dtype=dtype)
    R = axis_angle_to_matrix(r)
    assert R.shape == (2, 3, 5, 3, 3) and R.dtype == dtype
    q = matrix_to_quaternion(R)
    assert q.shape == (2, 3, 5, 4) and q.dtype == dtype
    assert matrix_to_axis_angle(R).shape == (2, 3, 5, 3)
    assert quaternion_to_axis_angle(q).shape == (2, 3, 5, 3)
    d = matrix_to_rot6d(R)
    assert d.shape == (2, 3, 5, 6) and d.dtype == dtype
    tol = dict(atol=1e-5, rtol=0) if dtype == torch.float32 else dict(atol=1e-13, rtol=0)
    torch.testing.assert_close(rot6d_to_matrix(d), R, **tol)
    torch.testing.assert_close(quaternion_to_matrix(q), R, **tol)
    # Each batch element is converted independently of the others.
    torch.testing.assert_close(R[1, 2, 3], axis_angle_to_matrix(r[1, 2, 3]))


def near(angle: float, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    axis = rng.normal(size=3)
    return torch.from_numpy(angle * axis / np.linalg.norm(axis)).requires_grad_()


@pytest.mark.parametrize("angle", [0.0, 1e-9, 1e-3, 0.1, 1.5, math.pi - 1e-3, math.pi + 0.2, 7.0])
def test_gradcheck_axis_angle_to_matrix_and_quaternion(angle):
    r = near(angle, 8)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (r,))
    assert torch.autograd.gradcheck(axis_angle_to_quaternion, (r,))


@pytest.mark.parametrize("angle", [0.0, 1e-9, 1e-3, 0.1, 1.5, 3.0, math.pi - 1e-3])
def test_gradcheck_matrix_to_axis_angle_and_quaternion(angle):
    R = axis_angle_to_matrix(near(angle, 9).detach()).requires_grad_()
    assert torch.autograd.gradcheck(matrix_to_axis_angle, (R,))
    assert torch.autograd.gradcheck(matrix_to_quaternion, (R,))
    q = matrix_to_quaternion(R.detach()).requires_grad_()
    assert torch.autograd.gradcheck(quaternion_to_axis_angle, (q,))


def test_gradient_at_zero_rotation_is_the_generator():
    # dR/dr_i at r = 0 is the cross-product matrix of e_i.
    r = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    jac = torch.autograd.functional.jacobian(axis_angle_to_matrix, r)
    for i in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[i] = 1.0
        skew = torch.linalg.cross(e.expand(3, 3), torch.eye(3, dtype=torch.float64), dim=-1).T
        torch.testing.assert_close(jac[..., i], skew)
    # The round trip's Jacobian is the identity, also at zero and in float32.
    for dtype in (torch.float32, torch.float64):
        r = torch.zeros(3, dtype=dtype, requires_grad=True)
        jac = torch.autograd.functional.jacobian(lambda x: matrix_to_axis_angle(axis_angle_to_matrix(x)), r)
        torch.testing.assert_close(jac, torch.eye(3, dtype=dtype))


def test_gradient_near_pi_is_finite_in_float32():
    r = near(math.pi - 1e-3, 10).detach().float().requires_grad_()
    out = matrix_to_axis_angle(axis_angle_to_matrix(r))
    (grad,) = torch.autograd.grad(out.sum(), r)
    assert torch.isfinite(grad).all()
    torch.testing.assert_close(grad, torch.ones(3), atol=2e-2, rtol=0)


def test_rot6d_gradcheck():
    d = torch.from_numpy(np.random.default_rng(11).normal(size=(4, 6))).requires_grad_()
    assert torch.autograd.gradcheck(rot6d_to_matrix, (d,))
