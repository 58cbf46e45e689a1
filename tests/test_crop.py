"""Boxes, crop affines and image resampling against hand-worked and independent results."""

import math

import numpy as np
import pytest
import torch

from fourdhands.geometry.crop import (
    apply_affine,
    box_to_crop_affine,
    crop_image,
    fit_aspect,
    invert_affine,
    keypoints_to_box,
)

f64 = dict(dtype=torch.float64)


def corners(box: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """(..., 4) box -> (..., 4, 2) corners: top-left, top-right, bottom-right, bottom-left."""
    signs = torch.tensor([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=box.dtype)
    return box[..., None, :2] + signs * box[..., None, 2:] * scale / 2


def crop_corners(h: int, w: int) -> torch.Tensor:
    return torch.tensor([[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]], **f64)


def test_box_corners_land_on_crop_corners():
    boxes = torch.tensor([[100.0, 80.0, 60.0, 80.0], [320.5, 11.0, 30.0, 17.0]], **f64)
    A = box_to_crop_affine(boxes)  # default 256 x 192 (H x W)
    assert A.shape == (2, 2, 3)
    expected = crop_corners(256, 192).expand(2, 4, 2)
    torch.testing.assert_close(apply_affine(corners(boxes), A), expected, atol=1e-12, rtol=0)
    centre = apply_affine(boxes[:, None, :2], A)
    torch.testing.assert_close(centre, torch.tensor([96.0, 128.0], **f64).expand(2, 1, 2))


def test_scale_zooms_out_about_the_centre():
    box = torch.tensor([50.0, 40.0, 20.0, 10.0], **f64)
    A = box_to_crop_affine(box, crop_hw=(8, 16), scale=2.0)
    # The box now covers the middle half of the crop; the doubled box fills it.
    expected = torch.tensor([[4.0, 2.0], [12.0, 2.0], [12.0, 6.0], [4.0, 6.0]], **f64)
    torch.testing.assert_close(apply_affine(corners(box), A), expected)
    torch.testing.assert_close(apply_affine(corners(box, 2.0), A), crop_corners(8, 16))


def test_rotation_and_flip_hand_worked():
    box = torch.tensor([100.0, 50.0, 40.0, 40.0], **f64)
    right_below = torch.tensor([[120.0, 50.0], [100.0, 70.0]], **f64)  # right of, below the centre

    def crop_of(**kwargs):
        return apply_affine(right_below, box_to_crop_affine(box, crop_hw=(40, 40), **kwargs))

    # Content turns counter-clockwise on screen: right -> up (crop top), below -> right.
    torch.testing.assert_close(crop_of(rotation=math.pi / 2), torch.tensor([[20.0, 0.0], [40.0, 20.0]], **f64))
    # A mirror swaps left and right only.
    torch.testing.assert_close(crop_of(flip=True), torch.tensor([[0.0, 20.0], [20.0, 40.0]], **f64))
    # Flip after rotation: up stays up, right becomes left.
    torch.testing.assert_close(
        crop_of(rotation=math.pi / 2, flip=True), torch.tensor([[20.0, 0.0], [0.0, 20.0]], **f64)
    )
    # 180 degrees plus a mirror is a vertical mirror.
    torch.testing.assert_close(
        crop_of(rotation=math.pi, flip=True), torch.tensor([[40.0, 20.0], [20.0, 0.0]], **f64)
    )


def test_rotated_window_is_the_box_turned_clockwise():
    box = torch.tensor([200.0, 150.0, 60.0, 80.0], **f64)
    theta, scale = 0.4, 1.5
    A = box_to_crop_affine(box, crop_hw=(32, 24), scale=scale, rotation=theta)
    window = apply_affine(crop_corners(32, 24), invert_affine(A))
    # Clockwise on screen in y-down pixel coordinates is the standard rotation matrix.
    c, s = math.cos(theta), math.sin(theta)
    turned = (corners(box, scale) - box[:2]) @ torch.tensor([[c, s], [-s, c]], **f64) + box[:2]
    torch.testing.assert_close(window, turned, atol=1e-12, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_round_trips_batched_with_tensor_options(dtype):
    g = torch.Generator().manual_seed(0)
    boxes = torch.rand(2, 3, 4, generator=g, dtype=dtype) * torch.tensor([500, 400, 100, 100], dtype=dtype)
    boxes[..., 2:] += 20
    scale = 0.8 + 0.6 * torch.rand(2, 3, generator=g, dtype=dtype)
    rotation = (torch.rand(2, 3, generator=g, dtype=dtype) - 0.5) * 2 * math.pi
    flip = torch.rand(2, 3, generator=g) < 0.5
    A = box_to_crop_affine(boxes, scale=scale, rotation=rotation, flip=flip)
    assert A.shape == (2, 3, 2, 3) and A.dtype == dtype
    points = torch.rand(2, 3, 10, 2, generator=g, dtype=dtype) * 600
    tol = dict(atol=1e-3, rtol=1e-5) if dtype == torch.float32 else dict(atol=1e-10, rtol=0)
    torch.testing.assert_close(apply_affine(apply_affine(points, A), invert_affine(A)), points, **tol)
    # invert_affine against a 3x3 homogeneous inverse in numpy.
    homog = np.concatenate([A.double().numpy(), np.broadcast_to([0, 0, 1.0], (2, 3, 1, 3))], -2)
    inverse = np.linalg.inv(homog)[..., :2, :]
    np.testing.assert_allclose(invert_affine(A).double().numpy(), inverse, rtol=1e-5, atol=1e-5 * np.abs(inverse).max())
    # Each element uses its own options.
    single = box_to_crop_affine(boxes[1, 2], scale=float(scale[1, 2]), rotation=float(rotation[1, 2]),
                                flip=bool(flip[1, 2]))
    torch.testing.assert_close(A[1, 2], single)
    # Flipped crops are mirror images of the unflipped ones: x -> 192 - x.
    plain = box_to_crop_affine(boxes, scale=scale, rotation=rotation)
    mirrored = apply_affine(points, plain) * torch.tensor([-1, 1], dtype=dtype) + torch.tensor([192, 0], dtype=dtype)
    expected = torch.where(flip[..., None, None], mirrored, apply_affine(points, plain))
    torch.testing.assert_close(apply_affine(points, A), expected, **tol)


def test_patch_centres_follow_the_rat_formula():
    box = torch.tensor([310.0, 205.0, 90.0, 120.0], **f64)
    rows, cols = 16, 12
    A = box_to_crop_affine(box, crop_hw=(256, 192))
    k, i = torch.meshgrid(torch.arange(rows, **f64), torch.arange(cols, **f64), indexing="ij")
    patch_centres = torch.stack([(i + 0.5) * 192 / cols, (k + 0.5) * 256 / rows], -1).reshape(-1, 2)
    in_image = apply_affine(patch_centres, invert_affine(A))
    cx, cy, sx, sy = box
    rat = torch.stack([cx + (2 * i + 1 - cols) * sx / (2 * cols), cy + (2 * k + 1 - rows) * sy / (2 * rows)], -1)
    torch.testing.assert_close(in_image, rat.reshape(-1, 2), atol=1e-12, rtol=0)


def bright_pixel_image(row: int, col: int, hw=(20, 30)) -> torch.Tensor:
    image = torch.zeros(1, *hw, **f64)
    image[0, row, col] = 1.0
    return image


@pytest.mark.parametrize(
    "options, expected_rc",
    [
        (dict(), (3, 3)),  # crop x = x - 4, y = y - 2
        (dict(rotation=math.pi / 2), (5, 4)),  # offset (-1.5, -0.5) turns to (-0.5, 1.5)
        (dict(flip=True), (3, 6)),
        (dict(rotation=-math.pi / 2, flip=True), (2, 4)),  # to (0.5, -1.5), then x -> 10 - x
    ],
)
def test_bright_pixel_lands_where_predicted(options, expected_rc):
    # One image pixel per crop pixel, box centre on a pixel corner: pixel centres map to
    # pixel centres, so bilinear resampling moves the bright pixel without blurring it.
    image = bright_pixel_image(5, 7)
    box = torch.tensor([9.0, 6.0, 10.0, 8.0], **f64)
    A = box_to_crop_affine(box, crop_hw=(8, 10), **options)
    crop = crop_image(image, A, crop_hw=(8, 10))
    assert crop.shape == (1, 8, 10)
    u, v = apply_affine(torch.tensor([[7.5, 5.5]], **f64), A)[0].tolist()
    assert (int(math.floor(v)), int(math.floor(u))) == expected_rc
    expected = torch.zeros_like(crop)
    expected[0, expected_rc[0], expected_rc[1]] = 1.0
    torch.testing.assert_close(crop, expected, atol=1e-12, rtol=0)


def test_zoomed_out_crop_averages_four_pixels():
    # Scale 2 covers [1, 17] x [0, 16] with two image pixels per crop pixel: crop pixel
    # (r, c) samples image point (2c + 2, 2r + 1), a corner shared by four pixels. The
    # bright pixel's centre (7.5, 5.5) is within one pixel of only the sample (8, 5), half a
    # pixel away in x and in y, so that crop pixel (2, 3) gets weight 1/2 * 1/2.
    image = bright_pixel_image(5, 7)
    box = torch.tensor([9.0, 8.0, 8.0, 8.0], **f64)
    crop = crop_image(image, box_to_crop_affine(box, crop_hw=(8, 8), scale=2.0), crop_hw=(8, 8))
    expected = torch.zeros_like(crop)
    expected[0, 2, 3] = 0.25
    torch.testing.assert_close(crop, expected, atol=1e-12, rtol=0)


def test_crop_image_reproduces_a_linear_ramp():
    # Bilinear interpolation is exact on linear images, so every crop pixel must equal the
    # ramp evaluated where the (independently inverted) affine sends its centre.
    height, width = 60, 80
    coef = torch.tensor([[0.3, -0.2, 5.0], [-0.1, 0.4, 1.0]], **f64)  # per channel a x + b y + c
    ys, xs = torch.meshgrid(torch.arange(height, **f64) + 0.5, torch.arange(width, **f64) + 0.5, indexing="ij")
    image = coef[:, 0, None, None] * xs + coef[:, 1, None, None] * ys + coef[:, 2, None, None]
    box = torch.tensor([[40.0, 30.0, 24.0, 30.0], [35.5, 27.0, 18.0, 18.0]], **f64)
    A = box_to_crop_affine(box, crop_hw=(10, 8), scale=torch.tensor([1.2, 0.7], **f64),
                           rotation=torch.tensor([0.7, -2.0], **f64), flip=torch.tensor([True, False]))
    crop = crop_image(image, A, crop_hw=(10, 8))
    assert crop.shape == (2, 2, 10, 8)
    homog = np.concatenate([A.numpy(), np.broadcast_to([0, 0, 1.0], (2, 1, 3))], -2)
    cy, cx = np.meshgrid(np.arange(10) + 0.5, np.arange(8) + 0.5, indexing="ij")
    src = np.einsum("bij,hwj->bhwi", np.linalg.inv(homog), np.stack([cx, cy, np.ones_like(cx)], -1))
    expected = np.einsum("ck,bhwk->bchw", coef.numpy(), np.concatenate([src[..., :2], np.ones_like(src[..., :1])], -1))
    np.testing.assert_allclose(crop.numpy(), expected, atol=1e-10)


def test_outside_the_image_is_zero_and_one_image_serves_many_crops():
    image = torch.ones(2, 10, 10, dtype=torch.float32)
    boxes = torch.tensor([[0.0, 5.0, 10.0, 10.0], [5.0, 5.0, 10.0, 10.0]])
    crop = crop_image(image, box_to_crop_affine(boxes, crop_hw=(10, 10)), crop_hw=(10, 10))
    assert crop.shape == (2, 2, 10, 10) and crop.dtype == torch.float32
    # First box: its left half lies outside the image.
    assert (crop[0, :, :, :5] == 0).all() and (crop[0, :, :, 5:] == 1).all()
    assert (crop[1] == 1).all()
    torch.testing.assert_close(crop[1], crop_image(image, box_to_crop_affine(boxes[1], crop_hw=(10, 10)), (10, 10)))


def test_keypoints_to_box_hand_worked():
    kp = torch.tensor([[[10.0, 20.0], [30.0, 60.0], [1000.0, 1000.0]]] * 2, **f64)
    valid = torch.tensor([[True, True, False], [False, False, False]])
    box = keypoints_to_box(kp, valid)
    torch.testing.assert_close(box, torch.tensor([[20.0, 40.0, 24.0, 48.0], [0.0, 0.0, 0.0, 0.0]], **f64))
    # Fitting to a 192/256 crop widens the tight box: 40 * 0.75 = 30 > 20.
    box = keypoints_to_box(kp, valid, expand=1.0, aspect=0.75)
    torch.testing.assert_close(box[0], torch.tensor([20.0, 40.0, 30.0, 40.0], **f64))
    # All points valid by default.
    torch.testing.assert_close(keypoints_to_box(kp[0], expand=1.0), torch.tensor([505.0, 510.0, 990.0, 980.0], **f64))


def test_keypoints_to_box_gradient_ignores_invalid_points():
    kp = torch.tensor([[10.0, 20.0], [30.0, 60.0], [1000.0, 1000.0]], **f64, requires_grad=True)
    keypoints_to_box(kp, torch.tensor([True, True, False])).sum().backward()
    assert torch.isfinite(kp.grad).all()
    assert (kp.grad[2] == 0).all() and (kp.grad[:2] != 0).any()
    empty = torch.zeros(3, 2, **f64, requires_grad=True)
    keypoints_to_box(empty, torch.zeros(3, dtype=torch.bool)).sum().backward()
    assert torch.isfinite(empty.grad).all()


def test_fit_aspect_keeps_centre_and_never_shrinks():
    g = torch.Generator().manual_seed(1)
    boxes = torch.rand(50, 4, generator=g, **f64) * 100 + 1
    fitted = fit_aspect(boxes, 0.75)
    torch.testing.assert_close(fitted[:, 2] / fitted[:, 3], torch.full((50,), 0.75, **f64))
    torch.testing.assert_close(fitted[:, :2], boxes[:, :2])
    assert (fitted[:, 2:] >= boxes[:, 2:]).all()
    # Exactly one side is enlarged: the other one is kept.
    assert ((fitted[:, 2:] == boxes[:, 2:]).sum(-1) >= 1).all()
