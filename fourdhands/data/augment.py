"""Geometric and photometric augmentation of a window, keeping every target consistent.

The geometric ones change the *image* by an affine map ``P`` (image -> augmented image,
`(3, 3)`, applied later when cropping, so the full image is never resampled) and the
targets exactly as the camera would have seen the changed scene:

- :func:`flip_window`: a horizontal mirror ``x -> W - x``. The hands swap slots, their
  parameters mirror (``hands.mirror.mirror_params``), 3D points mirror about the
  camera's x = 0 plane and the principal point moves to ``W - cx``.
- :func:`rotate_window`: a turn of the image about the principal point, i.e. of the
  camera about its optical axis: 3D targets rotate by ``R_z``, exactly (square pixels).

Targets are dicts of NumPy arrays with leading dims ``(T, 2, ...)`` (hand 0 right, 1
left) as in :mod:`fourdhands.data.sample`.
"""

from __future__ import annotations

import numpy as np
import torch

from ..geometry.crop import box_to_crop_affine, fit_aspect
from ..geometry.crop_frame import upright_angle
from ..hands.mirror import mirror_params, mirror_points
from ..hands.placement import transform_params

_PARAM_KEYS = ("global_orient", "hand_pose", "betas", "transl")


def _recompute_v(targets: dict) -> None:
    both = targets["present"].all(-1)[:, None]
    if "joint_valid" in targets:  # v is defined only where both wrists are annotated
        both = both & targets["joint_valid"][:, :, 0].all(-1)[:, None]
    wrists = targets["keypoints_3d"][:, :, 0]
    targets["v"] = np.where(both, wrists[:, 1] - wrists[:, 0], 0.0)


def flip_window(targets: dict, K: np.ndarray, image_size, models) -> tuple[dict, np.ndarray, np.ndarray]:
    """Mirror the window horizontally.

    Args:
        targets: the window's targets (see module doc).
        K: `(3, 3)` intrinsics. image_size: ``(W, H)``.
        models: ``{"right": HandModel, "left": HandModel}`` (float64), for the exact
            mirror of each hand's parameters into the other hand's model.
    Returns:
        ``(targets', K', P)`` with ``P`` the `(3, 3)` image map ``x -> W - x``.
    """
    w = float(image_size[0])
    out = {k: np.array(a, copy=True) for k, a in targets.items()}
    for k in ("present", "visible", "keypoints_3d", "keypoints_2d", "boxes", *_PARAM_KEYS,
              *(("joint_valid",) if "joint_valid" in targets else ())):
        out[k] = out[k][:, ::-1].copy()  # the left hand becomes the right one and back
    for slot, (src, dst) in enumerate((("left", "right"), ("right", "left"))):
        params = {k: torch.as_tensor(out[k][:, slot], dtype=torch.float64) for k in _PARAM_KEYS}
        mirrored = mirror_params(params, source=models[src], target=models[dst])
        for k in _PARAM_KEYS:
            out[k][:, slot] = mirrored[k].numpy()
    out["keypoints_3d"] = mirror_points(out["keypoints_3d"])
    out["keypoints_2d"][..., 0] = w - out["keypoints_2d"][..., 0]
    out["boxes"][..., 0] = np.where(out["present"], w - out["boxes"][..., 0], 0.0)
    _recompute_v(out)
    K2 = np.array(K, float, copy=True)
    K2[0, 2] = w - K2[0, 2]
    P = np.array([[-1.0, 0.0, w], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    return out, K2, P


def rotate_window(targets: dict, K: np.ndarray, image_size, angle: float, models
                  ) -> tuple[dict, np.ndarray]:
    """Turn the camera about its optical axis by ``angle`` radians (the image turns
    about the principal point; positive = clockwise on screen, y pointing down).

    Returns ``(targets', P)`` with ``P`` the `(3, 3)` image map."""
    c, s = np.cos(angle), np.sin(angle)
    R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    out = {k: np.array(a, copy=True) for k, a in targets.items()}
    out["keypoints_3d"] = out["keypoints_3d"] @ R.T
    pp = np.array([K[0, 2], K[1, 2]])
    out["keypoints_2d"] = (out["keypoints_2d"] - pp) @ R[:2, :2].T + pp
    for slot, side in enumerate(("right", "left")):
        go = torch.as_tensor(out["global_orient"][:, slot], dtype=torch.float64)
        tr = torch.as_tensor(out["transl"][:, slot], dtype=torch.float64)
        root = models[side].rest_joints(torch.as_tensor(out["betas"][:, slot], dtype=torch.float64),
                                        batch=len(go))[:, 0]
        go, tr = transform_params(go, tr, root, torch.as_tensor(R), torch.zeros(3, dtype=torch.float64))
        out["global_orient"][:, slot], out["transl"][:, slot] = go.numpy(), tr.numpy()
    # the tight box of the turned box's corners still holds the hand
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) / 2
    box = out["boxes"]
    pts = box[..., None, :2] + corners * box[..., None, 2:]
    pts = (pts - pp) @ R[:2, :2].T + pp
    lo, hi = pts.min(-2), pts.max(-2)
    out["boxes"] = np.where(out["present"][..., None], np.concatenate([(lo + hi) / 2, hi - lo], -1), 0.0)
    w, h = image_size
    kp = out["keypoints_2d"]
    inside = (kp[..., 0] >= 0) & (kp[..., 0] <= w) & (kp[..., 1] >= 0) & (kp[..., 1] <= h)
    out["visible"] = out["visible"] & inside
    _recompute_v(out)
    P = np.eye(3)
    P[:2, :2] = R[:2, :2]
    P[:2, 2] = pp - R[:2, :2] @ pp
    return out, P


def crop_boxes(boxes: np.ndarray, present: np.ndarray, crop_hw, expand: float,
               scale: float = 1.0, shift=(0.0, 0.0)) -> np.ndarray:
    """Crop boxes from tight hand boxes: expanded, fitted to the crop's aspect, then
    scaled by ``scale`` and moved by ``shift`` (fractions of the box); zeros where absent.

    boxes `(..., 4)`, present `(...)` -> `(..., 4)`."""
    b = torch.as_tensor(boxes, dtype=torch.float64).clone()
    b[..., 2:] *= expand
    b = fit_aspect(b, crop_hw[1] / crop_hw[0])
    b[..., :2] += torch.as_tensor(shift, dtype=torch.float64) * b[..., 2:]
    b[..., 2:] *= scale
    return np.where(present[..., None], b.numpy(), 0.0)


def crop_affines(boxes: np.ndarray, P: np.ndarray, crop_hw, angles: np.ndarray | None = None) -> torch.Tensor:
    """Original image -> crop maps `(..., 2, 3)`: the augmentation ``P`` then the box's
    crop map, turned by ``angles`` `(...)` (radians, ``box_to_crop_affine``'s rotation).
    A zero (absent) box gets a map that samples nothing useful; its crop is zeroed by the
    caller."""
    safe = np.where(boxes[..., 2:3] > 0, boxes, np.array([0.0, 0.0, 1.0, 1.0]))
    turn = 0.0 if angles is None else torch.as_tensor(angles, dtype=torch.float64)
    A = box_to_crop_affine(torch.as_tensor(safe, dtype=torch.float64), crop_hw, rotation=turn)
    P = torch.as_tensor(P, dtype=torch.float64)
    return A[..., :2] @ P[:2] + torch.cat([torch.zeros_like(A[..., :2, :2]), A[..., 2:]], -1)


def upright_angles(keypoints_2d: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Crop angles `(...)` that turn each hand's wrist -> middle knuckle (keypoints 0 and 9
    of `(..., 21, 2)`) up; 0 where ``present`` `(...)` is False."""
    kp = torch.as_tensor(keypoints_2d, dtype=torch.float64)
    angle = upright_angle(kp[..., 0, :], kp[..., 9, :]).numpy()
    return np.where(present, angle, 0.0)


def jitter_colour(crops: torch.Tensor, rng: np.random.Generator, strength: float) -> torch.Tensor:
    """Brightness, contrast and saturation jitter, one draw for the whole window.

    crops `(..., 3, h, w)` in [0, 1] -> same."""
    b, c, s = 1.0 + rng.uniform(-strength, strength, 3)
    grey = crops.mean(-3, keepdim=True)
    out = grey + s * (crops - grey)
    out = out.mean((-3, -2, -1), keepdim=True) + c * (out - out.mean((-3, -2, -1), keepdim=True))
    return (b * out).clamp(0.0, 1.0)


def occlude(crops: torch.Tensor, rng: np.random.Generator, prob: float) -> np.ndarray:
    """Grey rectangles (a quarter to half of a side each way) pasted on random crops, in
    place. crops `(N, 3, h, w)`. Returns the rectangles `(N, 4)` as crop-pixel
    ``[x0, y0, x1, y1]`` (all zero where none)."""
    n, _, h, w = crops.shape
    rects = np.zeros((n, 4))
    for i in np.nonzero(rng.random(n) < prob)[0]:
        rw, rh = rng.uniform(0.25, 0.5) * w, rng.uniform(0.25, 0.5) * h
        x0, y0 = rng.uniform(0, w - rw), rng.uniform(0, h - rh)
        rects[i] = x0, y0, x0 + rw, y0 + rh
        crops[i, :, int(y0):int(np.ceil(y0 + rh)), int(x0):int(np.ceil(x0 + rw))] = 0.5
    return rects
