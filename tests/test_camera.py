"""Pinhole projection and the HaMeR crop-camera conversions, checked geometrically."""

import numpy as np
import pytest
import torch

from fourdhands.geometry.camera import (
    crop_cam_to_full_translation,
    crop_cam_to_translation,
    default_focal,
    full_translation_to_crop_cam,
    intrinsics,
    project,
)

f64 = dict(dtype=torch.float64)


def test_intrinsics_and_project_hand_worked():
    K = intrinsics(1000.0, torch.tensor([320.0, 240.0], **f64))
    torch.testing.assert_close(
        K, torch.tensor([[1000.0, 0, 320], [0, 1000, 240], [0, 0, 1]], **f64), atol=0, rtol=0
    )
    points = torch.tensor([[0.0, 0.0, 2.0], [0.1, -0.2, 2.0], [1.0, 1.0, 4.0]], **f64)
    expected = torch.tensor([[320.0, 240.0], [370.0, 140.0], [570.0, 490.0]], **f64)
    torch.testing.assert_close(project(points, K), expected, atol=1e-12, rtol=0)


def test_project_batched_against_numpy():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(2, 3, 7, 3)) + [0, 0, 5]
    focal = rng.uniform(500, 1500, size=(2, 3))
    pp = rng.uniform(100, 500, size=(2, 3, 2))
    K = intrinsics(torch.from_numpy(focal), torch.from_numpy(pp))
    assert K.shape == (2, 3, 3, 3)
    uv = project(torch.from_numpy(points), K)
    expected = focal[..., None, None] * points[..., :2] / points[..., 2:] + pp[..., None, :]
    np.testing.assert_allclose(uv.numpy(), expected, rtol=1e-12)
    # One K broadcast over a batch of point sets, in float32.
    uv32 = project(torch.from_numpy(points).float(), K[0, 0].float())
    assert uv32.dtype == torch.float32 and uv32.shape == (2, 3, 7, 2)
    expected32 = focal[0, 0] * points[..., :2] / points[..., 2:] + pp[0, 0]
    np.testing.assert_allclose(uv32.numpy(), expected32, rtol=1e-5)


def test_default_focal():
    size = torch.tensor([[1280.0, 720.0], [480.0, 640.0]], **f64)
    torch.testing.assert_close(default_focal(size), torch.tensor([25000.0, 12500.0], **f64))


def test_crop_cam_to_translation_hand_worked():
    cam = torch.tensor([[2.0, 0.1, -0.3], [8.0, 0.0, 0.0]], **f64)
    expected = torch.tensor([[0.1, -0.3, 10000 / 512], [0.0, 0.0, 10000 / 2048]], **f64)
    torch.testing.assert_close(crop_cam_to_translation(cam), expected)
    # The crop camera's magnification: normalised crop coordinate s * (X + tx).
    K = intrinsics(5000.0, torch.tensor([128.0, 128.0], **f64))
    point = torch.tensor([[0.05, 0.02, 0.0]], **f64)
    uv = project(point + crop_cam_to_translation(cam[0]), K)
    torch.testing.assert_close((uv - 128) / 128, 2.0 * (point[:, :2] + cam[0, 1:]))


def test_crop_cam_to_full_translation_hand_worked():
    # f = 5000 / 256 * 1000; magnification m = b s / 2 = 100 px per metre.
    cam = torch.tensor([2.0, 0.1, -0.2], **f64)
    transl = crop_cam_to_full_translation(
        cam, torch.tensor([600.0, 400.0], **f64), torch.tensor(100.0, **f64), torch.tensor([1000.0, 800.0], **f64)
    )
    torch.testing.assert_close(transl, torch.tensor([0.1 + 1.0, -0.2, 5000 / 256 * 1000 / 100], **f64))


def random_setup(seed: int, batch=(4,), dtype=torch.float64):
    """Crop cameras, boxes and images of a realistic range, plus a hand-sized point cloud."""
    g = torch.Generator().manual_seed(seed)

    def uniform(lo, hi, *shape):
        return lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=dtype)

    cam = torch.stack([uniform(4, 12, *batch), uniform(-0.1, 0.1, *batch), uniform(-0.1, 0.1, *batch)], -1)
    image_size = torch.stack([uniform(600, 1920, *batch), uniform(400, 1080, *batch)], -1)
    box_center = image_size * uniform(0.1, 0.9, *batch, 2)
    box_size = uniform(80, 400, *batch)
    points = uniform(-0.08, 0.08, *batch, 50, 3)
    return cam, box_center, box_size, image_size, points


def crop_pixels_to_image(uv_crop, box_center, box_size, crop_size=256.0):
    """The box as the crop sees it: crop_size crop pixels span box_size image pixels,
    the crop centre is the box centre (independent of fourdhands.geometry.crop)."""
    return box_center[..., None, :] + (uv_crop - crop_size / 2) * (box_size[..., None, None] / crop_size)


def both_projections(cam, box_center, box_size, image_size, points, focal):
    """Image pixels of the points seen by the crop camera (mapped through the box) and
    by the full-image camera, with each camera's depth and principal point."""
    crop_t = crop_cam_to_translation(cam)
    K_crop = intrinsics(5000.0, torch.full_like(box_center, 128.0))
    via_crop = crop_pixels_to_image(project(points + crop_t[..., None, :], K_crop), box_center, box_size)
    full_t = crop_cam_to_full_translation(cam, box_center, box_size, image_size, focal)
    via_full = project(points + full_t[..., None, :], intrinsics(focal, image_size / 2))
    return (via_crop, crop_t[..., 2], box_center), (via_full, full_t[..., 2], image_size / 2)


@pytest.mark.parametrize("explicit_focal", [False, True])
def test_full_camera_reproduces_crop_camera_on_root_plane(explicit_focal):
    cam, box_center, box_size, image_size, points = random_setup(1)
    focal = 1.3 * default_focal(image_size) if explicit_focal else default_focal(image_size)
    planar = points * torch.tensor([1.0, 1.0, 0.0], dtype=points.dtype)
    (via_crop, _, _), (via_full, _, _) = both_projections(cam, box_center, box_size, image_size, planar, focal)
    torch.testing.assert_close(via_full, via_crop, atol=1e-8, rtol=0)


def test_full_camera_matches_crop_camera_up_to_the_depth_terms():
    cam, box_center, box_size, image_size, points = random_setup(2)
    focal = default_focal(image_size)
    views = both_projections(cam, box_center, box_size, image_size, points, focal)
    # A point at depth Z off the root plane moves from its on-plane image p0 by
    # -(p0 - o) Z / (tz + Z); undoing that must give the same p0 in both cameras.
    z = points[..., 2:]
    on_plane = [
        (uv * (depth[..., None, None] + z) - o[..., None, :] * z) / depth[..., None, None]
        for uv, depth, o in views
    ]
    torch.testing.assert_close(on_plane[1], on_plane[0], atol=1e-8, rtol=0)
    # And the remaining difference is small for a hand: a few pixels at most.
    assert (views[0][0] - views[1][0]).abs().max() < 5.0
    assert (views[0][0] - views[1][0]).abs().max() > 1e-3  # the test sees depth at all


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_full_translation_round_trip(dtype):
    cam, box_center, box_size, image_size, _ = random_setup(3, batch=(2, 3), dtype=dtype)
    focal = default_focal(image_size)
    transl = crop_cam_to_full_translation(cam, box_center, box_size, image_size, focal)
    assert transl.shape == (2, 3, 3) and transl.dtype == dtype
    back = full_translation_to_crop_cam(transl, box_center, box_size, image_size, focal)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(back, cam, **tol)
    # The default focal is default_focal, and the other direction round-trips too.
    torch.testing.assert_close(crop_cam_to_full_translation(cam, box_center, box_size, image_size), transl)
    again = crop_cam_to_full_translation(back, box_center, box_size, image_size, focal)
    torch.testing.assert_close(again, transl, **tol)


def test_crop_cam_to_full_translation_is_crop_translation_for_a_centred_full_crop():
    # A box that is the whole (square) image with the crop's own focal: nothing changes.
    cam, *_ = random_setup(4)
    size = torch.full((4, 2), 256.0, dtype=torch.float64)
    transl = crop_cam_to_full_translation(cam, size / 2, size[:, 0], size, 5000.0)
    torch.testing.assert_close(transl, crop_cam_to_translation(cam), atol=1e-14, rtol=1e-14)


def test_gradients_are_finite_and_correct():
    cam, box_center, box_size, image_size, _ = random_setup(5, batch=(2,))
    cam.requires_grad_()
    box_center.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda c, b: crop_cam_to_full_translation(c, b, box_size, image_size), (cam, box_center)
    )
    transl = crop_cam_to_full_translation(cam, box_center, box_size, image_size).detach().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda t: full_translation_to_crop_cam(t, box_center.detach(), box_size, image_size), (transl,)
    )


def test_off_centre_principal_point_moves_the_root_where_the_camera_sees_it():
    import torch

    from fourdhands.geometry.camera import (
        crop_cam_to_full_translation,
        full_translation_to_crop_cam,
        intrinsics,
        project,
    )

    cam = torch.tensor([[8.0, 0.01, -0.02]], dtype=torch.float64)
    centre = torch.tensor([[400.0, 150.0]], dtype=torch.float64)
    size = torch.tensor([[640.0, 480.0]], dtype=torch.float64)
    pp = torch.tensor([[310.0, 250.0]], dtype=torch.float64)
    f = torch.tensor([900.0], dtype=torch.float64)
    t = crop_cam_to_full_translation(cam, centre, torch.tensor([200.0], dtype=torch.float64), size, f, pp)
    # the crop camera's origin shifted by (-tx, -ty) sits at the crop centre in the crop;
    # in the full camera it must land on the box centre
    origin = t[:, None] - torch.cat([cam[:, 1:], torch.zeros(1, 1, dtype=torch.float64)], -1)[:, None]
    uv = project(origin, intrinsics(f, pp))
    torch.testing.assert_close(uv[:, 0], centre)
    back = full_translation_to_crop_cam(t, centre, torch.tensor([200.0], dtype=torch.float64), size, f, pp)
    torch.testing.assert_close(back, cam)
