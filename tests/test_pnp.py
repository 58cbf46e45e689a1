"""PnP translation and the crop camera's pixels, against independent computations."""

import numpy as np
import torch
from scipy.optimize import least_squares

from fourdhands.geometry.camera import (crop_cam_to_full_translation, crop_camera_pixels,
                                        intrinsics, project)
from fourdhands.geometry.pnp import solve_translation


def _hand_points(rng, n=21):
    return torch.as_tensor(rng.normal(scale=0.04, size=(n, 3)))


def test_noise_free_points_give_the_exact_translation():
    rng = np.random.default_rng(0)
    K = intrinsics(torch.tensor(900.0, dtype=torch.float64), torch.tensor([330.0, 250.0], dtype=torch.float64))
    for _ in range(5):
        X = _hand_points(rng)
        t = torch.as_tensor(rng.uniform([-0.2, -0.2, 0.4], [0.2, 0.2, 1.2]))
        uv = project(X + t, K)
        assert torch.allclose(solve_translation(X, uv, K), t, atol=1e-9)


def test_noisy_points_match_a_nonlinear_reprojection_fit():
    rng = np.random.default_rng(1)
    K = intrinsics(torch.tensor(700.0, dtype=torch.float64), torch.tensor([320.0, 240.0], dtype=torch.float64))
    X = _hand_points(rng)
    t = torch.tensor([0.05, -0.03, 0.6], dtype=torch.float64)
    uv = project(X + t, K) + torch.as_tensor(rng.normal(scale=2.0, size=(21, 2)))
    ours = solve_translation(X, uv, K).numpy()

    def residual(tt):
        return (project(X + torch.as_tensor(tt), K) - uv).flatten().numpy()

    reference = least_squares(residual, x0=[0, 0, 1.0]).x
    assert np.abs(ours - reference).max() < 1e-6, (ours, reference)
    # one linear solve (no reweighting) is off by about a millimetre here
    linear = solve_translation(X, uv, K, rounds=0).numpy()
    assert 1e-4 < np.abs(linear - reference).max() < 5e-3
    assert np.abs(ours - t.numpy()).max() < 0.02


def test_weights_ignore_a_zero_weight_outlier():
    rng = np.random.default_rng(2)
    K = intrinsics(torch.tensor(800.0, dtype=torch.float64), torch.tensor([320.0, 240.0], dtype=torch.float64))
    X = _hand_points(rng)
    t = torch.tensor([0.1, 0.0, 0.8], dtype=torch.float64)
    uv = project(X + t, K)
    uv[3] += 300.0
    w = torch.ones(21, dtype=torch.float64)
    w[3] = 0
    assert torch.allclose(solve_translation(X, uv, K, w), t, atol=1e-9)
    assert not torch.allclose(solve_translation(X, uv, K), t, atol=1e-3)


def test_batched_shapes():
    rng = np.random.default_rng(3)
    K = intrinsics(torch.full((4, 2), 600.0), torch.full((4, 2, 2), 200.0))
    X = torch.as_tensor(rng.normal(scale=0.04, size=(4, 2, 21, 3))).float()
    t = torch.tensor([0.0, 0.0, 0.5]).expand(4, 2, 3)
    got = solve_translation(X, project(X + t[..., None, :], K), K)
    assert got.shape == (4, 2, 3) and got.dtype == torch.float32
    assert torch.allclose(got, t, atol=1e-5)


def test_crop_camera_pixels_agree_with_the_full_camera_on_the_root_plane():
    # A point on the root plane (Z = 0 in the hand frame) is seen at the same pixel by the
    # crop camera and by the full camera of crop_cam_to_full_translation (camera.py doc).
    cam = torch.tensor([[0.9, 0.02, -0.01]], dtype=torch.float64)
    centre, size = torch.tensor([[400.0, 180.0]], dtype=torch.float64), torch.tensor([150.0], dtype=torch.float64)
    image = torch.tensor([[640.0, 480.0]], dtype=torch.float64)
    f = torch.tensor([700.0], dtype=torch.float64)
    X = torch.tensor([[[0.03, -0.02, 0.0], [0.0, 0.0, 0.0], [-0.05, 0.04, 0.0]]], dtype=torch.float64)
    full_t = crop_cam_to_full_translation(cam, centre, size, image, f)
    K = intrinsics(f, image / 2)
    assert torch.allclose(crop_camera_pixels(X, cam, centre, size), project(X + full_t[:, None], K), atol=1e-9)
    # the root (origin) projects to the box centre shifted by the crop translation
    root = crop_camera_pixels(torch.zeros(1, 1, 3, dtype=torch.float64), cam, centre, size)[0, 0]
    depth = 2 * 5000.0 / (256.0 * 0.9)
    expected = centre[0] + 5000.0 * cam[0, 1:] / depth * (150.0 / 256.0)
    assert torch.allclose(root, expected, atol=1e-9)
