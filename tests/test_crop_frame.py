"""The crop's own camera frame: exact round trips, and rotated targets on the rotated crop."""

import math

import numpy as np
import pytest
import torch

from fourdhands.geometry.camera import intrinsics, project
from fourdhands.geometry.crop import apply_affine, box_to_crop_affine
from fourdhands.geometry.crop_frame import camera_to_crop, crop_frame_rotation, crop_to_camera, upright_angle
from fourdhands.geometry.rotations import axis_angle_to_matrix
from fourdhands.hands import load_hand_model


def _K():
    return intrinsics(torch.tensor(500.0, dtype=torch.float64), torch.tensor([320.0, 240.0], dtype=torch.float64))


def test_upright_angle_hand_worked():
    w = torch.tensor([[0.0, 0.0]] * 4, dtype=torch.float64)
    k = torch.tensor([[0.0, -1.0], [1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    torch.testing.assert_close(upright_angle(w, k), torch.tensor([0.0, math.pi / 2, math.pi, -math.pi / 4],
                                                                 dtype=torch.float64))


def test_frame_is_a_rotation_looking_at_the_crop_centre():
    K = _K()
    centres = torch.tensor([[320.0, 240.0], [40.0, 400.0], [600.0, 10.0]], dtype=torch.float64)
    angles = torch.tensor([0.0, 0.7, -2.5], dtype=torch.float64)
    R = crop_frame_rotation(centres, angles, K)
    torch.testing.assert_close(R[0], torch.eye(3, dtype=torch.float64))  # image centre, unturned
    torch.testing.assert_close(R.transpose(-1, -2) @ R, torch.eye(3, dtype=torch.float64).expand(3, 3, 3))
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(3, dtype=torch.float64))
    # the optical axis of the crop camera projects to the crop centre
    torch.testing.assert_close(project(R[..., :, 2][:, None] * 2.0, K)[:, 0], centres)


def test_camera_crop_round_trip_is_exact():
    g = torch.Generator().manual_seed(0)
    orient = axis_angle_to_matrix(torch.randn(5, 3, generator=g, dtype=torch.float64))
    transl = torch.randn(5, 3, generator=g, dtype=torch.float64) + torch.tensor([0, 0, 2.0], dtype=torch.float64)
    root = torch.randn(5, 3, generator=g, dtype=torch.float64) * 0.05
    frame = crop_frame_rotation(torch.rand(5, 2, generator=g, dtype=torch.float64) * 600,
                                torch.randn(5, generator=g, dtype=torch.float64), _K())
    o2, t2 = crop_to_camera(*camera_to_crop(orient, transl, root, frame), root, frame)
    torch.testing.assert_close(o2, orient, atol=1e-12, rtol=0)
    torch.testing.assert_close(t2, transl, atol=1e-12, rtol=0)


@pytest.mark.parametrize("offset, angle, tolerance", [(0.0, 0.0, 0.5), (0.0, 0.6, 0.5), (0.0, -2.2, 0.5),
                                                      (0.12, 0.6, 0.03 * 224)])
def test_targets_in_the_crop_frame_land_on_the_hand_in_the_turned_crop(offset, angle, tolerance):
    """A hand's parameters turned into the crop frame, seen by the crop's virtual camera,
    land where the turned crop shows the hand: on the optical axis to the hand's own
    depth relief (< 0.5 px of 224), and 11 degrees off it within the perspective
    difference between the virtual camera and an affine cut of the image (< 3 %)."""
    model = load_hand_model("open", "right", dtype=torch.float64)
    go = torch.tensor([[0.3, -1.2, 0.4]], dtype=torch.float64)
    pose = torch.zeros(1, 45, dtype=torch.float64)
    centroid = model(global_orient=go, hand_pose=pose).keypoints[0].mean(0)
    transl = torch.tensor([[offset, 0.0, 0.6]], dtype=torch.float64) - centroid
    K = _K()
    out = model(global_orient=go, hand_pose=pose, transl=transl)
    px = project(out.keypoints, K)[0]  # (21, 2) image pixels
    box = torch.cat([(px.min(0).values + px.max(0).values) / 2, (px.max(0).values - px.min(0).values).max().repeat(2) * 1.3])
    crop_px = apply_affine(px, box_to_crop_affine(box, (224, 224), rotation=angle))  # where the crop shows them

    frame = crop_frame_rotation(box[:2], torch.tensor(angle, dtype=torch.float64), K)
    root = model.rest_joints(None)[0, 0]
    orient_c, transl_c = camera_to_crop(axis_angle_to_matrix(go)[0], transl[0], root, frame)
    fingers = axis_angle_to_matrix(pose.reshape(1, 15, 3))
    seen = model(rotmats=torch.cat([orient_c[None, None], fingers], 1), transl=transl_c[None]).keypoints[0]
    # the virtual camera: focal f, principal point at the crop centre, in crop pixels
    virtual = K[0, 0] * seen[:, :2] / seen[:, 2:] * (224 / box[2]) + 112.0
    assert float((virtual - crop_px).norm(dim=-1).max()) < tolerance
    # and the same parameters give back the camera-frame hand exactly
    o, t = crop_to_camera(orient_c, transl_c, root, frame)
    back = model(rotmats=torch.cat([o[None, None], fingers], 1), transl=t[None])
    torch.testing.assert_close(back.keypoints, out.keypoints, atol=1e-12, rtol=0)


def test_upright_crop_puts_the_knuckle_above_the_wrist():
    wrist, knuckle = torch.tensor([200.0, 100.0], dtype=torch.float64), torch.tensor([260.0, 140.0], dtype=torch.float64)
    a = upright_angle(wrist, knuckle)
    box = torch.tensor([230.0, 120.0, 100.0, 100.0], dtype=torch.float64)
    p = apply_affine(torch.stack([wrist, knuckle]), box_to_crop_affine(box, (224, 224), rotation=a))
    d = (p[1] - p[0]).numpy()
    np.testing.assert_allclose(d[0], 0.0, atol=1e-9)
    assert d[1] < 0
