"""Augmentation keeps targets consistent: after a flip or a rotation the 3D keypoints are
still what the hand model gives for the new parameters, and the 2D keypoints still their
projection with the new camera."""

import numpy as np
import pytest
import torch

from fourdhands.data.augment import crop_affines, crop_boxes, flip_window, rotate_window
from fourdhands.data.sample import window_frames
from fourdhands.geometry.crop import apply_affine, box_to_crop_affine
from fourdhands.hands import load_hand_model

W, H = 320, 240
K = np.array([[300.0, 0.0, 165.0], [0.0, 300.0, 118.0], [0.0, 0.0, 1.0]])


@pytest.fixture(scope="module")
def models():
    return {s: load_hand_model("open", s, dtype=torch.float64) for s in ("right", "left")}


def project(points, K):
    p = points @ K.T
    return p[..., :2] / p[..., 2:]


def targets_from_params(params, models, K):
    """(T, 2, ...) targets of a window from per-slot parameters."""
    kp = np.stack([models[s](**{k: torch.as_tensor(v[:, i]) for k, v in params.items()}).keypoints.numpy()
                   for i, s in enumerate(("right", "left"))], 1)
    t = len(kp)
    kp2d = project(kp, K)
    lo, hi = kp2d.min(2), kp2d.max(2)
    out = dict(params, keypoints_3d=kp, keypoints_2d=kp2d, present=np.ones((t, 2), bool),
               visible=np.ones((t, 2, 21), bool), boxes=np.concatenate([(lo + hi) / 2, hi - lo], -1))
    out["v"] = kp[:, 1, 0] - kp[:, 0, 0]
    return out


@pytest.fixture
def window(models):
    rng = np.random.default_rng(0)
    t = 3
    params = {"global_orient": rng.normal(0, 0.5, (t, 2, 3)), "hand_pose": rng.normal(0, 0.3, (t, 2, 45)),
              "betas": rng.normal(0, 1, (t, 2, 10)),
              "transl": np.array([[-0.05, 0.0, 0.5], [0.12, 0.02, 0.6]]) + rng.normal(0, 0.01, (t, 2, 3))}
    return targets_from_params(params, models, K)


def assert_consistent(out, models, K2):
    params = {k: out[k] for k in ("global_orient", "hand_pose", "betas", "transl")}
    again = targets_from_params(params, models, K2)
    np.testing.assert_allclose(out["keypoints_3d"], again["keypoints_3d"], atol=1e-10)
    np.testing.assert_allclose(out["keypoints_2d"], again["keypoints_2d"], atol=1e-7)
    np.testing.assert_allclose(out["v"], again["v"], atol=1e-10)


def test_flip_swaps_hands_and_stays_consistent(window, models):
    out, K2, P = flip_window(window, K, (W, H), models)
    assert_consistent(out, models, K2)
    # the new right hand is the old left hand seen in a mirror
    np.testing.assert_allclose(out["keypoints_2d"][:, 0, :, 0], W - window["keypoints_2d"][:, 1, :, 0], atol=1e-7)
    np.testing.assert_allclose(P @ [10.0, 20.0, 1.0], [W - 10.0, 20.0, 1.0])
    # flipping twice gives the window back
    back, K3, _ = flip_window(out, K2, (W, H), models)
    np.testing.assert_allclose(back["keypoints_3d"], window["keypoints_3d"], atol=1e-10)
    np.testing.assert_allclose(back["hand_pose"], window["hand_pose"], atol=1e-12)
    np.testing.assert_allclose(K3, K)


@pytest.mark.parametrize("angle", [0.3, -0.5])
def test_rotation_about_the_optical_axis_stays_consistent(window, models, angle):
    out, P = rotate_window(window, K, (W, H), angle, models)
    assert_consistent(out, models, K)
    # the image map turns the old 2D keypoints into the new ones
    old = np.concatenate([window["keypoints_2d"], np.ones((*window["keypoints_2d"].shape[:-1], 1))], -1)
    np.testing.assert_allclose((old @ P.T)[..., :2], out["keypoints_2d"], atol=1e-7)
    # boxes still hold every keypoint
    lo = out["boxes"][..., None, :2] - out["boxes"][..., None, 2:] / 2 - 1e-9
    hi = out["boxes"][..., None, :2] + out["boxes"][..., None, 2:] / 2 + 1e-9
    assert ((out["keypoints_2d"] >= lo) & (out["keypoints_2d"] <= hi)).all()


def test_crop_maps_compose_the_augmentation_with_the_box(window):
    boxes = crop_boxes(window["boxes"], window["present"], (64, 48), 1.3)
    np.testing.assert_allclose(boxes[..., 2] / boxes[..., 3], 48 / 64)
    assert (boxes[..., 2:] >= 1.3 * window["boxes"][..., 2:] - 1e-9).all()
    P = np.array([[0.0, -1.0, 300.0], [1.0, 0.0, 5.0], [0.0, 0.0, 1.0]])
    A = crop_affines(boxes, P, (64, 48))
    point = torch.tensor([[[40.0, 70.0]]], dtype=torch.float64)
    moved = torch.tensor([[[300.0 - 70.0, 40.0 + 5.0]]], dtype=torch.float64)
    direct = apply_affine(moved, box_to_crop_affine(torch.as_tensor(boxes[0, 0]), (64, 48)))
    torch.testing.assert_close(apply_affine(point, A[0, 0]), direct)


def test_window_frames_bounce_off_the_ends():
    assert window_frames(0, 10, 5, 2).tolist() == [4, 2, 0, 2, 4]
    assert window_frames(9, 10, 5, 2).tolist() == [5, 7, 9, 7, 5]
    # -16 -11 -6 -1 4 9 14 19 24, reflected at 0 and 9
    assert window_frames(4, 10, 9, 5).tolist() == [2, 7, 6, 1, 4, 9, 4, 1, 6]
    assert window_frames(0, 1, 9, 5).tolist() == [0] * 9
    assert window_frames(3, 7, 1, 5).tolist() == [3]
