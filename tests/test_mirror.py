"""Right <-> left mirroring: geometric identities on an exactly mirrored model pair."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from _mano_fixture import random_mano_data

from fourdhands.hands.lbs import batch_rodrigues
from fourdhands.hands.mirror import (
    mirror_model_data,
    mirror_params,
    mirror_points,
    mirror_pose,
    mirror_rotmats,
)
from fourdhands.hands.model import HandModel

M = np.diag([-1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def pair():
    right = random_mano_data(seed=21)
    left = mirror_model_data(right)
    return right, left


def _params(seed, B=3):
    rng = np.random.default_rng(seed)
    return {
        "global_orient": torch.as_tensor(rng.normal(size=(B, 3))),
        "hand_pose": torch.as_tensor(rng.normal(scale=0.6, size=(B, 45))),
        "betas": torch.as_tensor(rng.normal(scale=1.5, size=(B, 10))),
        "transl": torch.as_tensor(rng.normal(scale=0.3, size=(B, 3))),
    }


def test_mirror_pose_is_the_conjugated_rotation():
    rng = np.random.default_rng(0)
    pose = rng.normal(size=(5, 48))
    mirrored = mirror_pose(pose)
    assert isinstance(mirrored, np.ndarray)
    R = Rotation.from_rotvec(pose.reshape(-1, 3)).as_matrix()
    Rm = Rotation.from_rotvec(mirrored.reshape(-1, 3)).as_matrix()
    np.testing.assert_allclose(Rm, M @ R @ M, atol=1e-14)
    np.testing.assert_array_equal(mirror_pose(mirrored), pose)  # an involution
    t = torch.as_tensor(pose)
    torch.testing.assert_close(mirror_pose(t), torch.as_tensor(mirrored))
    torch.testing.assert_close(mirror_rotmats(batch_rodrigues(t.reshape(-1, 3))), torch.as_tensor(Rm))
    np.testing.assert_array_equal(mirror_points(np.array([[1.0, 2.0, 3.0]])), [[-1.0, 2.0, 3.0]])
    with pytest.raises(ValueError):
        mirror_pose(np.zeros(4))


@pytest.mark.parametrize("flat", [True, False])
@pytest.mark.parametrize("seed", [1, 2])
def test_mirrored_right_hand_equals_left_hand_with_mirrored_params(pair, flat, seed):
    right_data, left_data = pair
    right = HandModel(right_data, "right", flat_hand_mean=flat, dtype=torch.float64)
    left = HandModel(left_data, "left", flat_hand_mean=flat, dtype=torch.float64)
    p = _params(seed)
    r = right(**p)
    q = mirror_params(p)
    torch.testing.assert_close(q["betas"], p["betas"], atol=0, rtol=0)
    torch.testing.assert_close(q["transl"], p["transl"] * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))
    lo = left(**q)
    for name in ("vertices", "joints", "keypoints"):
        torch.testing.assert_close(mirror_points(getattr(r, name)), getattr(lo, name), atol=1e-12, rtol=0)
    # with explicit models the J0 offset is zero for an exact mirror: same answer
    q2 = mirror_params(p, source=right, target=left)
    torch.testing.assert_close(q2["transl"], q["transl"], atol=1e-15, rtol=0)
    torch.testing.assert_close(q2["hand_pose"], q["hand_pose"], atol=1e-15, rtol=0)
    # and back: left -> right
    back = mirror_params(q2, source=left, target=right)
    torch.testing.assert_close(right(**back).vertices, r.vertices, atol=1e-12, rtol=0)
    # the mirrored mesh keeps outward normals thanks to the reversed winding
    fr, fl = right.faces, left.faces
    vr, vl = r.vertices[0], lo.vertices[0]
    nr = torch.cross(vr[fr[:, 1]] - vr[fr[:, 0]], vr[fr[:, 2]] - vr[fr[:, 0]], dim=-1)
    nl = torch.cross(vl[fl[:, 1]] - vl[fl[:, 0]], vl[fl[:, 2]] - vl[fl[:, 0]], dim=-1)
    torch.testing.assert_close(nl, mirror_points(nr), atol=1e-12, rtol=0)


def test_rotmats_mirror(pair):
    right_data, left_data = pair
    right = HandModel(right_data, "right", dtype=torch.float64)
    left = HandModel(left_data, "left", dtype=torch.float64)
    p = _params(3)
    R = batch_rodrigues(torch.cat([p["global_orient"], p["hand_pose"]], 1).reshape(3, 16, 3)).reshape(3, 16, 3, 3)
    src = {"rotmats": R, "betas": p["betas"], "transl": p["transl"]}
    out = left(**mirror_params(src))
    torch.testing.assert_close(mirror_points(right(**src).vertices), out.vertices, atol=1e-12, rtol=0)


@pytest.mark.parametrize("flat", [True, False])
def test_joint0_offset_for_a_left_model_that_is_not_an_exact_mirror(pair, flat):
    """A left model displaced by c (its wrist at M J0_R + c): only the model-aware mirror is exact."""
    right_data, left_data = pair
    shifted = dict(left_data)
    c = np.array([0.013, -0.021, 0.008])
    shifted["v_template"] = left_data["v_template"] + c
    rng = np.random.default_rng(4)
    shifted["hands_mean"] = left_data["hands_mean"] + rng.normal(scale=0.1, size=45)  # not the mirror
    right = HandModel(right_data, "right", flat_hand_mean=flat, dtype=torch.float64)
    left = HandModel(shifted, "left", flat_hand_mean=flat, dtype=torch.float64)
    p = _params(5)
    target = mirror_points(right(**p).vertices)

    naive = left(**mirror_params(p)).vertices
    assert (naive - target).abs().max() > 5e-3

    exact = mirror_params(p, source=right, target=left)
    torch.testing.assert_close(left(**exact).vertices, target, atol=1e-12, rtol=0)
    # without a transl in the input, the offset alone is returned as transl
    no_t = {k: v for k, v in p.items() if k != "transl"}
    out = mirror_params(no_t, source=right, target=left)
    torch.testing.assert_close(left(**out).vertices, mirror_points(right(**no_t).vertices), atol=1e-12, rtol=0)


def test_numpy_params_stay_numpy(pair):
    right_data, left_data = pair
    right = HandModel(right_data, "right", dtype=torch.float64)
    left = HandModel(left_data, "left", dtype=torch.float64)
    p = {k: v.numpy() for k, v in _params(6).items()}
    q = mirror_params(p, source=right, target=left)
    assert all(isinstance(v, np.ndarray) for v in q.values())
    np.testing.assert_allclose(q["transl"], p["transl"] * [-1, 1, 1], atol=1e-15)
    with pytest.raises(ValueError):
        mirror_params(p, source=right)
