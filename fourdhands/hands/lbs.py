"""Linear blend skinning for MANO-style hand models, in pure torch.

These functions compute what MANO / SMPL define and what smplx and manopth compute:

1. shaped rest mesh   ``v_shaped = v_template + shapedirs . betas``
2. rest joints        ``J = J_regressor @ v_shaped``           (from the *shaped* mesh)
3. pose blend shapes  ``v_posed = v_shaped + posedirs . vec(R_1..R_15 - I)``
4. kinematic chain    ``G_k = G_parent(k) [R_k | J_k - J_parent(k)]``
5. skinning           ``v = sum_k w_k (G_k [I | -J_k]) v_posed``

Everything is batched, differentiable and dtype / device agnostic: every tensor created
inside takes its dtype and device from the inputs, so float32 / float64 and any device
work. Shapes: B batch, V vertices, J joints (16 for MANO), K shape coefficients,
P = 9 (J - 1) pose features (135 for MANO).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

__all__ = [
    "batch_rodrigues",
    "blend_shapes",
    "pose_features",
    "pose_blend_shapes",
    "vertices2joints",
    "batch_rigid_transform",
    "skin_vertices",
    "lbs",
]

# Below this squared angle the Rodrigues coefficients use their Taylor series (the first
# omitted terms are below 1e-10 there, so both branches agree to float64 precision).
_SMALL_ANGLE_SQ = 1e-4


def batch_rodrigues(rot_vecs: Tensor) -> Tensor:
    """Axis-angle vectors to rotation matrices.

    Args:
        rot_vecs: (..., 3) axis-angle (axis times angle, radians).
    Returns:
        (..., 3, 3) rotation matrices ``R = I + a K + b K^2`` with ``K = [r]_x``,
        ``a = sin t / t`` and ``b = (1 - cos t) / t^2`` (``t = |r|``).

    Unlike smplx's version (which adds 1e-8 to the vector before taking the norm) this one
    is exact at every angle: near zero it switches to the Taylor series of ``a`` and
    ``b``, and its gradient is finite at ``r = 0``.
    """
    theta_sq = (rot_vecs * rot_vecs).sum(dim=-1, keepdim=True)
    small = theta_sq < _SMALL_ANGLE_SQ
    safe_sq = torch.where(small, torch.ones_like(theta_sq), theta_sq)
    theta = torch.sqrt(safe_sq)
    half = 0.5 * theta
    a_big = torch.sin(theta) / theta
    b_big = 0.5 * (torch.sin(half) / half) ** 2  # (1 - cos t) / t^2 without cancellation
    a_small = 1.0 - theta_sq / 6.0 + theta_sq * theta_sq / 120.0
    b_small = 0.5 - theta_sq / 24.0 + theta_sq * theta_sq / 720.0
    a = torch.where(small, a_small, a_big).unsqueeze(-1)
    b = torch.where(small, b_small, b_big).unsqueeze(-1)

    x, y, z = rot_vecs.unbind(-1)
    zero = torch.zeros_like(x)
    K = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1)
    K = K.reshape(rot_vecs.shape[:-1] + (3, 3))
    eye = torch.eye(3, dtype=rot_vecs.dtype, device=rot_vecs.device)
    return eye + a * K + b * (K @ K)


def blend_shapes(betas: Tensor, shape_disps: Tensor) -> Tensor:
    """Shape blend shapes: per-vertex displacements from shape coefficients.

    Args:
        betas: (B, K) shape coefficients.
        shape_disps: (V, 3, K) shape directions (MANO's ``shapedirs``; K may be larger than
            ``betas.shape[1]``, then only the first ``betas.shape[1]`` directions are used).
    Returns:
        (B, V, 3) displacements ``sum_k betas[:, k] * shape_disps[:, :, k]``.
    """
    k = betas.shape[-1]
    return torch.einsum("bk,vck->bvc", betas, shape_disps[..., :k])


def pose_features(rot_mats: Tensor) -> Tensor:
    """MANO's pose feature: ``R_j - I`` of the non-root joints, flattened row-major.

    Args:
        rot_mats: (B, J, 3, 3) per-joint local rotations (joint 0 = root).
    Returns:
        (B, 9 (J - 1)) with entry ``9 (j - 1) + 3 r + c`` equal to ``(R_j - I)[r, c]``.
    """
    eye = torch.eye(3, dtype=rot_mats.dtype, device=rot_mats.device)
    return (rot_mats[:, 1:] - eye).reshape(rot_mats.shape[0], -1)


def pose_blend_shapes(rot_mats: Tensor, posedirs: Tensor) -> Tensor:
    """Pose-corrective blend shapes.

    Args:
        rot_mats: (B, J, 3, 3) per-joint local rotations.
        posedirs: (V, 3, P) with P = 9 (J - 1), laid out like MANO's ``posedirs``.
    Returns:
        (B, V, 3) displacements ``posedirs . pose_features(rot_mats)``.
    """
    return torch.einsum("bp,vcp->bvc", pose_features(rot_mats), posedirs)


def vertices2joints(J_regressor: Tensor, vertices: Tensor) -> Tensor:
    """Regress joints from vertices.

    Args:
        J_regressor: (J, V) dense regressor.
        vertices: (B, V, 3).
    Returns:
        (B, J, 3) ``J_regressor @ vertices``.
    """
    return torch.einsum("jv,bvc->bjc", J_regressor, vertices)


def _parent_list(parents: Sequence[int] | Tensor) -> list[int]:
    if isinstance(parents, Tensor):
        return [int(p) for p in parents.tolist()]
    return [int(p) for p in parents]


def _levels(parents: list[int]) -> list[list[int]]:
    """The non-root joints grouped by their depth in the tree (``parents[j] < j``)."""
    depth = [0] * len(parents)
    for j in range(1, len(parents)):
        depth[j] = depth[parents[j]] + 1
    return [[j for j in range(len(parents)) if depth[j] == d] for d in range(1, max(depth, default=0) + 1)]


def batch_rigid_transform(
    rot_mats: Tensor, joints: Tensor, parents: Sequence[int] | Tensor
) -> tuple[Tensor, Tensor]:
    """The rigid kinematic chain.

    Args:
        rot_mats: (B, J, 3, 3) local rotation of each joint (joint 0 = root, rotated
            about its own rest position).
        joints: (B, J, 3) rest joint locations.
        parents: (J,) parent index per joint, ``parents[0] = -1`` and
            ``parents[j] < j`` (kinematic order). A python sequence avoids a device sync;
            a tensor is accepted.
    Returns:
        posed_joints: (B, J, 3) joint locations after posing (``G_j`` applied to joint j).
        rel_transforms: (B, J, 4, 4) ``G_j [I | -J_j]``: the transform taking a *rest*
            point to its posed place when it moves rigidly with joint j (what skinning
            blends).
    """
    plist = _parent_list(parents)
    B, J = joints.shape[:2]
    if len(plist) != J:
        raise ValueError(f"parents has {len(plist)} entries for {J} joints")
    parent_idx = plist[1:]
    rel_joints = torch.cat([joints[:, :1], joints[:, 1:] - joints[:, parent_idx]], dim=1)

    bottom = torch.zeros((B, J, 1, 4), dtype=rot_mats.dtype, device=rot_mats.device)
    bottom[..., 0, 3] = 1.0
    local = torch.cat([torch.cat([rot_mats, rel_joints.unsqueeze(-1)], dim=-1), bottom], dim=-2)

    # one product per depth of the tree (3 for MANO's), not one per joint: fewer and
    # larger operations, for the forward pass and for the gradient through it
    transforms, order = local[:, :1], [0]
    for level in _levels(plist):
        parents_at = [order.index(plist[j]) for j in level]
        transforms = torch.cat([transforms, transforms[:, parents_at] @ local[:, level]], dim=1)
        order += level
    if order != list(range(J)):
        transforms = transforms[:, sorted(range(J), key=order.__getitem__)]  # (B, J, 4, 4)

    posed_joints = transforms[:, :, :3, 3]
    rot_global = transforms[:, :, :3, :3]
    shift = posed_joints - (rot_global @ joints.unsqueeze(-1)).squeeze(-1)
    rel_transforms = torch.cat(
        [torch.cat([rot_global, shift.unsqueeze(-1)], dim=-1), transforms[:, :, 3:]], dim=-2
    )
    return posed_joints, rel_transforms


def skin_vertices(vertices: Tensor, weights: Tensor, rel_transforms: Tensor) -> Tensor:
    """Linear blend skinning of rest-pose (pose-corrected) vertices.

    Args:
        vertices: (B, V, 3) rest vertices (shape and pose blend shapes applied).
        weights: (V, J) skinning weights (rows sum to 1 for MANO), or (B, V, J), one set
            per batch entry.
        rel_transforms: (B, J, 4, 4) from :func:`batch_rigid_transform`.
    Returns:
        (B, V, 3) posed vertices ``sum_j w_vj (R_j v + t_j)``.
    """
    B, J = rel_transforms.shape[:2]
    T = torch.einsum("bvj,bjk->bvk" if weights.dim() == 3 else "vj,bjk->bvk", weights, rel_transforms.reshape(B, J, 16))
    T = T.reshape(B, -1, 4, 4)
    return (T[..., :3, :3] @ vertices.unsqueeze(-1)).squeeze(-1) + T[..., :3, 3]


def lbs(
    betas: Tensor,
    pose: Tensor,
    v_template: Tensor,
    shapedirs: Tensor,
    posedirs: Tensor,
    J_regressor: Tensor,
    parents: Sequence[int] | Tensor,
    lbs_weights: Tensor,
    pose2rot: bool = True,
) -> tuple[Tensor, Tensor]:
    """MANO / SMPL forward kinematics with linear blend skinning (as smplx and manopth).

    Args:
        betas: (B, K) shape coefficients (K <= shapedirs.shape[-1]).
        pose: (B, 3 J) axis-angle of all joints (root first) if ``pose2rot``, else
            (B, J, 3, 3) rotation matrices.
        v_template: (V, 3) rest template.
        shapedirs: (V, 3, K') shape directions.
        posedirs: (V, 3, 9 (J - 1)) pose directions (MANO layout).
        J_regressor: (J, V) dense joint regressor.
        parents: (J,) parent indices (root -1, kinematic order).
        lbs_weights: (V, J) skinning weights.
        pose2rot: whether ``pose`` is axis-angle.
    Returns:
        vertices: (B, V, 3) posed vertices.
        joints: (B, J, 3) posed joints (the kinematic chain's joint locations).
    """
    B = betas.shape[0]
    v_shaped = v_template.unsqueeze(0) + blend_shapes(betas, shapedirs)
    J = vertices2joints(J_regressor, v_shaped)
    if pose2rot:
        rot_mats = batch_rodrigues(pose.reshape(B, -1, 3))
    else:
        rot_mats = pose.reshape(B, -1, 3, 3)
    v_posed = v_shaped + pose_blend_shapes(rot_mats, posedirs)
    joints, rel_transforms = batch_rigid_transform(rot_mats, J, parents)
    vertices = skin_vertices(v_posed, lbs_weights, rel_transforms)
    return vertices, joints
