"""The LBS building blocks against independent numpy / scipy computations."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from _mano_fixture import MANO_PARENTS, random_mano_data
from fourdhands.hands.lbs import (
    batch_rigid_transform,
    batch_rodrigues,
    blend_shapes,
    lbs,
    pose_blend_shapes,
    pose_features,
    skin_vertices,
    vertices2joints,
)


def test_rodrigues_matches_scipy_at_all_angles():
    rng = np.random.default_rng(0)
    axes = rng.normal(size=(40, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.concatenate([[0.0, 1e-12, 1e-8, 1e-5, 9e-3, 1.1e-2], rng.uniform(0, np.pi, 34)])
    rv = axes * angles[:, None]
    ours = batch_rodrigues(torch.as_tensor(rv)).numpy()
    ref = Rotation.from_rotvec(rv).as_matrix()
    np.testing.assert_allclose(ours, ref, atol=1e-15, rtol=0)
    # float32, batched with extra leading dims
    ours32 = batch_rodrigues(torch.as_tensor(rv, dtype=torch.float32).reshape(4, 10, 3))
    assert ours32.dtype == torch.float32 and ours32.shape == (4, 10, 3, 3)
    np.testing.assert_allclose(ours32.reshape(40, 3, 3).numpy(), ref, atol=1e-6)


def test_rodrigues_gradient_is_finite_at_zero():
    r = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    batch_rodrigues(r).sum().backward()
    assert torch.isfinite(r.grad).all()
    # d R / d r at 0 is the cross-product generator: sum of entries of [e_i]_x is 0
    r2 = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    batch_rodrigues(r2)[0, 2, 1].backward()  # R[2, 1] ~ r_x
    np.testing.assert_allclose(r2.grad.numpy(), [[1.0, 0.0, 0.0]], atol=1e-12)


def test_blend_shapes_and_joint_regression():
    rng = np.random.default_rng(1)
    betas = rng.normal(size=(3, 10))
    dirs = rng.normal(size=(50, 3, 10))
    ref = np.zeros((3, 50, 3))
    for b in range(3):
        for k in range(10):
            ref[b] += betas[b, k] * dirs[:, :, k]
    out = blend_shapes(torch.as_tensor(betas), torch.as_tensor(dirs)).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-13)
    # fewer betas than directions use the first ones
    out4 = blend_shapes(torch.as_tensor(betas[:, :4]), torch.as_tensor(dirs)).numpy()
    np.testing.assert_allclose(out4, np.einsum("bk,vck->bvc", betas[:, :4], dirs[..., :4]), atol=1e-13)

    reg = rng.uniform(size=(16, 50))
    verts = rng.normal(size=(3, 50, 3))
    joints = vertices2joints(torch.as_tensor(reg), torch.as_tensor(verts)).numpy()
    for b in range(3):
        np.testing.assert_allclose(joints[b], reg @ verts[b], atol=1e-13)


def test_pose_feature_layout_is_row_major_r_minus_i():
    rng = np.random.default_rng(2)
    R = Rotation.from_rotvec(rng.normal(size=(2 * 16, 3))).as_matrix().reshape(2, 16, 3, 3)
    feat = pose_features(torch.as_tensor(R)).numpy()
    assert feat.shape == (2, 135)
    for b in range(2):
        for j in range(1, 16):
            for r in range(3):
                for c in range(3):
                    expected = R[b, j, r, c] - (1.0 if r == c else 0.0)
                    assert feat[b, 9 * (j - 1) + 3 * r + c] == pytest.approx(expected, abs=1e-15)
    posedirs = rng.normal(size=(7, 3, 135))
    out = pose_blend_shapes(torch.as_tensor(R), torch.as_tensor(posedirs)).numpy()
    ref = np.zeros((2, 7, 3))
    for b in range(2):
        for p in range(135):
            ref[b] += posedirs[:, :, p] * feat[b, p]
    np.testing.assert_allclose(out, ref, atol=1e-13)


def _chain_reference(R, J, parents):
    """World transforms of each joint by an explicit recursion (no batching)."""
    G = [None] * len(parents)
    for j, p in enumerate(parents):
        local = np.eye(4)
        local[:3, :3] = R[j]
        local[:3, 3] = J[j] - (J[p] if p >= 0 else 0.0)
        G[j] = local if p < 0 else G[p] @ local
    return G


def test_batch_rigid_transform_against_explicit_chain():
    rng = np.random.default_rng(3)
    B = 3
    R = Rotation.from_rotvec(rng.normal(scale=0.7, size=(B * 16, 3))).as_matrix().reshape(B, 16, 3, 3)
    J = rng.normal(scale=0.05, size=(B, 16, 3)) + 0.1
    posed, rel = batch_rigid_transform(torch.as_tensor(R), torch.as_tensor(J), MANO_PARENTS)
    posed_t, rel_t = batch_rigid_transform(
        torch.as_tensor(R), torch.as_tensor(J), torch.as_tensor(MANO_PARENTS)
    )
    assert torch.equal(posed, posed_t) and torch.equal(rel, rel_t)
    for b in range(B):
        G = _chain_reference(R[b], J[b], MANO_PARENTS)
        for j in range(16):
            np.testing.assert_allclose(posed[b, j].numpy(), G[j][:3, 3], atol=1e-14)
            unpose = np.eye(4)
            unpose[:3, 3] = -J[b, j]
            np.testing.assert_allclose(rel[b, j].numpy(), G[j] @ unpose, atol=1e-14)
            # the rest joint itself goes to its posed place
            x = rel[b, j].numpy() @ np.append(J[b, j], 1.0)
            np.testing.assert_allclose(x[:3], G[j][:3, 3], atol=1e-14)


def test_skinning_is_weighted_sum_of_rigid_motions():
    rng = np.random.default_rng(4)
    T = np.tile(np.eye(4), (2, 16, 1, 1))
    T[:, :, :3, :3] = Rotation.from_rotvec(rng.normal(size=(32, 3))).as_matrix().reshape(2, 16, 3, 3)
    T[:, :, :3, 3] = rng.normal(size=(2, 16, 3))
    W = rng.uniform(size=(9, 16))
    W /= W.sum(1, keepdims=True)
    v = rng.normal(size=(2, 9, 3))
    out = skin_vertices(torch.as_tensor(v), torch.as_tensor(W), torch.as_tensor(T)).numpy()
    for b in range(2):
        for i in range(9):
            ref = sum(W[i, j] * (T[b, j, :3, :3] @ v[b, i] + T[b, j, :3, 3]) for j in range(16))
            np.testing.assert_allclose(out[b, i], ref, atol=1e-13)


def test_lbs_zero_pose_zero_shape_is_the_template():
    d = random_mano_data(seed=6, num_vertices=40, num_faces=10)
    t = {k: torch.as_tensor(np.asarray(v, dtype=np.float64)) for k, v in d.items()}
    verts, joints = lbs(
        torch.zeros(2, 10, dtype=torch.float64),
        torch.zeros(2, 48, dtype=torch.float64),
        t["v_template"], t["shapedirs"], t["posedirs"], t["J_regressor"],
        MANO_PARENTS, t["weights"],
    )  # fmt: skip
    np.testing.assert_allclose(verts[1].numpy(), d["v_template"], atol=1e-15)
    np.testing.assert_allclose(joints[0].numpy(), d["J_regressor"] @ d["v_template"], atol=1e-15)
