"""The refinement terms: values worked by hand, and gradients against finite differences
(float64, torch.autograd.gradcheck)."""

import math

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck

from fourdhands import refine_terms as terms
from fourdhands.geometry.rotations import axis_angle_to_matrix
from fourdhands.hands.joint_limits import JOINT_BASES, JOINT_LIMITS

F64 = torch.float64


def _rng(seed=0):
    return torch.Generator().manual_seed(seed)


def test_reprojection_is_geman_mcclure_of_the_pixel_residual():
    K = torch.tensor([[[500.0, 0, 100], [0, 500.0, 80], [0, 0, 1]]], dtype=F64)
    kp = torch.zeros(1, 21, 3, dtype=F64)
    kp[..., 2] = 1.0  # every keypoint at (0, 0, 1): pixel (100, 80)
    targets = torch.zeros(1, 1, 21, 2, dtype=F64) + torch.tensor([103.0, 84.0], dtype=F64)  # 5 px off
    weights = torch.ones(1, 1, 21, dtype=F64)
    s = 10.0
    assert float(terms.reprojection(kp, K, targets, weights, s)) == pytest.approx(s * s * 25 / (25 + s * s))
    weights[0, 0, :10] = 0.0  # weights pick what counts, the mean stays per weight
    assert float(terms.reprojection(kp, K, targets, weights, s)) == pytest.approx(s * s * 25 / (25 + s * s))


def test_joint_acceleration_counts_the_wrists_path_and_the_articulation():
    t = torch.arange(6, dtype=F64)
    kp = torch.zeros(6, 21, 3, dtype=F64)
    kp[..., 0] = 0.5 * 0.002 * t[:, None] ** 2  # the whole hand accelerates at 2 mm/frame^2 along x
    mask = torch.ones(6, dtype=torch.bool)
    big = 1e9  # robust scale far away: plain squares
    assert float(terms.joint_acceleration(kp, mask, 0.001, big)) == pytest.approx(4.0)  # (2 mm / 1 mm)^2, wrist
    curl = kp.clone()
    curl[:, 1:, 1] += 0.5 * 0.001 * t[:, None] ** 2  # the fingers also accelerate 1 mm/frame^2 relative to it
    assert float(terms.joint_acceleration(curl, mask, 0.001, big)) == pytest.approx(4.0 + 1.0)
    mask[2] = False  # triples touching frame 2 do not count; the rest are the same
    assert float(terms.joint_acceleration(kp, mask, 0.001, big)) == pytest.approx(4.0)
    # Geman-McClure: c^2 e^2 / (e^2 + c^2) with c = 2 units: 4 * 4 / 8
    assert float(terms.joint_acceleration(kp, torch.ones(6, dtype=torch.bool), 0.001, 2.0)) == pytest.approx(2.0)


def test_rotation_acceleration_is_zero_at_constant_angular_velocity_and_on_so3():
    angles = torch.arange(8, dtype=F64)[:, None] * torch.tensor([0.0, 0.0, 0.4], dtype=F64)
    R = axis_angle_to_matrix(angles)[:, None]  # (8, 1, 3, 3): a steady turn, past pi
    mask = torch.ones(8, dtype=torch.bool)
    assert float(terms.rotation_acceleration(R, mask)) == pytest.approx(0.0, abs=1e-20)
    # a jerk of 0.1 rad at frame 4: chordal change 2 (2 - 2 cos 0.1) ... per triple, by hand
    jerk = angles.clone()
    jerk[4:] += torch.tensor([0.0, 0.0, 0.1], dtype=F64)
    value = float(terms.rotation_acceleration(axis_angle_to_matrix(jerk)[:, None], mask))
    per = 4 * (1 - math.cos(0.1)) * 2  # ||Rz(a) - I||_F^2 = 4 (1 - cos a); twice (frames 3 and 4)
    assert value == pytest.approx(per / 6)


def test_limit_violation_is_the_squared_excess_beyond_the_box():
    pose = torch.zeros(1, 45, dtype=F64)
    mask = torch.ones(1, dtype=torch.bool)
    assert float(terms.limit_violation(pose, "right", mask)) == 0.0
    art = torch.zeros(15, 3, dtype=F64)
    art[1, 0] = float(JOINT_LIMITS[1, 0, 1]) + 0.2  # joint 2 flexed 0.2 rad too far
    bad = torch.einsum("jc,jcd->jd", art, torch.tensor(JOINT_BASES)).reshape(1, 45)
    assert float(terms.limit_violation(bad, "right", mask)) == pytest.approx(0.04)
    from fourdhands.hands.mirror import mirror_pose

    assert float(terms.limit_violation(mirror_pose(bad), "left", mask)) == pytest.approx(0.04)


def test_penetration_is_the_depth_behind_the_plane_of_the_nearest_triangle():
    points = torch.tensor([[[0.0, 0, 0], [5.0, 0, 0]]], dtype=F64)
    # a triangle in the plane y = 3 mm, counter-clockwise seen from +y (its outside)
    surface = torch.tensor([[[0.0, 0.003, 0], [0.0, 0.003, 1.0], [1.0, 0.003, 0], [9.0, 9.0, 9.0]]], dtype=F64)
    frame, point, triangle = torch.tensor([0]), torch.tensor([0]), torch.tensor([[0, 1, 2]])
    # 3 mm behind the plane (the triangle's corners lie far sideways: only the plane counts): (3 mm / 1 mm)^2
    assert float(terms.penetration(points, frame, point, surface, triangle, 0.001)) == pytest.approx(9.0)
    none = torch.zeros(0, dtype=torch.long)
    assert float(terms.penetration(points, none, none, surface, triangle[:0], 0.001)) == 0.0
    flipped = triangle[:, [0, 2, 1]]  # the same triangle facing -y: the point is in front of it
    assert float(terms.penetration(points, frame, point, surface, flipped, 0.001)) == 0.0


@pytest.mark.parametrize("name", ["reprojection", "near", "joints", "rotations", "limits", "penetration"])
def test_gradients_agree_with_finite_differences(name):
    g = _rng(1)
    T = 5
    mask = torch.ones(T, dtype=torch.bool)
    if name == "reprojection":
        K = torch.tensor([[500.0, 0, 100], [0, 500.0, 80], [0, 0, 1]], dtype=F64).expand(T, 3, 3)
        targets = torch.rand(2, T, 21, 2, generator=g, dtype=F64) * 50 + 80
        weights = torch.rand(2, T, 21, generator=g, dtype=F64)
        x = (torch.rand(T, 21, 3, generator=g, dtype=F64) * 0.1 + torch.tensor([0, 0, 0.5], dtype=F64))
        fn = lambda kp: terms.reprojection(kp, K, targets, weights, 12.0)  # noqa: E731
        args = (x.requires_grad_(),)
    elif name == "near":
        args = tuple(torch.randn(T, n, generator=g, dtype=F64).requires_grad_() for n in (3, 45, 3))
        fn = lambda a, b, c: sum(terms.staying_near(a, b, c, mask, 0.01))  # noqa: E731
    elif name == "joints":
        args = (torch.randn(T, 21, 3, generator=g, dtype=F64).requires_grad_(),)
        fn = lambda kp: terms.joint_acceleration(kp, mask, 0.001, 50.0)  # noqa: E731
    elif name == "rotations":
        args = (torch.randn(T, 16, 3, generator=g, dtype=F64).requires_grad_(),)
        fn = lambda w: terms.rotation_acceleration(axis_angle_to_matrix(w), mask)  # noqa: E731
    elif name == "limits":
        args = ((torch.randn(T, 45, generator=g, dtype=F64) * 1.5).requires_grad_(),)
        fn = lambda p: terms.limit_violation(p, "left", mask)  # noqa: E731
    else:
        frame, point = torch.randint(0, T, (25,), generator=g), torch.randint(0, 30, (25,), generator=g)
        triangle = torch.stack([torch.randperm(40, generator=g)[:3] for _ in range(25)])
        args = (torch.randn(T, 30, 3, generator=g, dtype=F64).requires_grad_(),
                torch.randn(T, 40, 3, generator=g, dtype=F64).requires_grad_())
        fn = lambda p, s: terms.penetration(p, frame, point, s, triangle, 0.01)  # noqa: E731
    assert gradcheck(fn, args, eps=1e-6, atol=1e-5, rtol=1e-4)
