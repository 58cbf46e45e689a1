"""The terms of clip-level refinement (:mod:`fourdhands.refine`), as pure functions of
tensors, each a scalar to be weighted (:class:`~fourdhands.refine.RefineConfig`).

Shapes: ``T`` frames of one hand; masks `(T,)` say where the hand is present; every term
is a mean over what it counts, so that its weight does not depend on the clip's length.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .hands.joint_limits import JOINT_BASES, JOINT_LIMITS
from .hands.mirror import mirror_pose


def _mean(x: Tensor, weights: Tensor) -> Tensor:
    return (x * weights).sum() / weights.sum().clamp_min(1e-12)


def project(points: Tensor, K: Tensor) -> Tensor:
    """Pixels `(T, N, 2)` of camera-frame ``points`` `(T, N, 3)` through ``K`` `(T, 3, 3)`."""
    p = points @ K.transpose(-1, -2)
    return p[..., :2] / p[..., 2:].clamp_min(1e-6)


def reprojection(keypoints: Tensor, K: Tensor, targets: Tensor, weights: Tensor, scale_px: float) -> Tensor:
    """Robust reprojection error to 2D evidence: Geman-McClure ``s^2 r^2 / (r^2 + s^2)``
    (px^2) of the residual ``r`` between the projected ``keypoints`` `(T, 21, 3)` and each
    source of ``targets`` `(S, T, 21, 2)`, weighted by ``weights`` `(S, T, 21)` (a source's
    weight times its confidence; zero where it has nothing)."""
    r2 = ((project(keypoints, K)[None] - targets) ** 2).sum(-1)
    s2 = scale_px ** 2
    return _mean(s2 * r2 / (r2 + s2), weights)


def staying_near(rotation_change: Tensor, pose_change: Tensor, transl_change: Tensor, mask: Tensor,
                 transl_scale: float) -> tuple[Tensor, Tensor]:
    """How far the parameters moved from the network's: ``(rotations, translation)``, the
    squared angle (rad^2) of the root's turn ``rotation_change`` `(T, 3)` and of the 15
    finger changes ``pose_change`` `(T, 45)`, mean over the 16 joints and the frames, and
    the mean squared ``transl_change`` `(T, 3)` in units of ``transl_scale`` metres."""
    m = mask.to(rotation_change.dtype)
    rot = _mean(((rotation_change ** 2).sum(-1) + (pose_change ** 2).sum(-1)) / 16, m)
    return rot, _mean(((transl_change / transl_scale) ** 2).sum(-1), m)


def _triples(mask: Tensor) -> Tensor:
    """`(T - 2,)` where frames t - 1, t and t + 1 are all present."""
    return (mask[:-2] & mask[1:-1] & mask[2:]).to(torch.get_default_dtype())


def joint_acceleration(keypoints: Tensor, mask: Tensor, scale: float, robust: float) -> Tensor:
    """Second differences over present triples of frames of the wrist, plus the mean of
    those of the other keypoints relative to it (``keypoints`` `(T, 21, 3)`: the hand's
    path and its articulation count alike), squared in units of ``scale`` metres per
    frame^2, robust (Geman-McClure, saturating past ``robust`` such units: a tracking
    jump, as a hand the network lost behind the other, is left alone rather than smoothed
    by bending the hand)."""
    if len(keypoints) < 3:
        return keypoints.sum() * 0.0
    parts = torch.cat([keypoints[:, :1], keypoints[:, 1:] - keypoints[:, :1]], dim=1)
    acc = parts[2:] - 2 * parts[1:-1] + parts[:-2]
    e2, c2 = ((acc / scale) ** 2).sum(-1), robust ** 2
    rho = c2 * e2 / (e2 + c2)
    return _mean(rho[:, 0] + rho[:, 1:].mean(-1), _triples(mask).to(keypoints.dtype))


def rotation_acceleration(rotmats: Tensor, mask: Tensor) -> Tensor:
    """Temporal smoothness of rotations on SO(3): the change of each joint's frame-to-frame
    rotation, ``|| R_{t+1} R_t^T - R_t R_{t-1}^T ||_F^2`` (chordal, so defined everywhere
    and with no axis-angle wrap-around), mean over joints and present triples;
    ``rotmats`` `(T, J, 3, 3)`."""
    if len(rotmats) < 3:
        return rotmats.sum() * 0.0
    step = rotmats[1:] @ rotmats[:-1].transpose(-1, -2)  # (T - 1, J, 3, 3)
    change = ((step[1:] - step[:-1]) ** 2).sum((-1, -2)).mean(-1)
    return _mean(change, _triples(mask).to(rotmats.dtype))


def limit_violation(hand_pose: Tensor, side: str, mask: Tensor) -> Tensor:
    """Mean squared excess (rad^2) of the finger articulation (flexion, abduction, twist
    of :mod:`fourdhands.hands.joint_limits`) beyond its limits; ``hand_pose`` `(T, 45)`
    of a ``side`` hand (a left hand is judged as its mirror)."""
    pose = hand_pose if side == "right" else mirror_pose(hand_pose)
    bases = torch.tensor(JOINT_BASES, dtype=pose.dtype, device=pose.device)
    limits = torch.tensor(JOINT_LIMITS, dtype=pose.dtype, device=pose.device)
    a = torch.einsum("tjd,jcd->tjc", pose.reshape(-1, 15, 3), bases)
    excess = torch.relu(a - limits[..., 1]) + torch.relu(limits[..., 0] - a)
    return _mean((excess ** 2).sum((-1, -2)), mask.to(pose.dtype))


def penetration(points: Tensor, frame: Tensor, point: Tensor, surface: Tensor, triangle: Tensor,
                scale: float) -> Tensor:
    """Interpenetration of one hand's ``points`` `(T, N, 3)` into the other hand, whose
    ``surface`` points are `(T, M, 3)`: for the points inside it, ``point`` `(K,)` in
    ``frame`` `(K,)`, their depth behind the plane of the other hand's nearest triangle,
    whose corners are ``triangle`` `(K, 3)` (indices into ``surface``, counter-clockwise
    seen from outside): ``relu((a - p) . n)`` with ``n`` the triangle's unit normal at the
    current positions. Squared in units of ``scale`` metres, summed over the points, mean
    over frames. Both hands move: the inner point out, the other surface back."""
    if len(frame) == 0:
        return points.sum() * 0.0
    a, b, c = (surface[frame, triangle[:, k]] for k in range(3))
    normal = torch.nn.functional.normalize(torch.linalg.cross(b - a, c - a), dim=-1)
    depth = torch.relu(((a - points[frame, point]) * normal).sum(-1))
    return (depth ** 2).sum() / scale ** 2 / len(points)
