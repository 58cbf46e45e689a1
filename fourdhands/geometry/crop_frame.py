"""The crop's own camera frame: the image's camera turned to look at the crop, then rolled
with the crop.

A hand crop may be cut rotated (a crop "upright" puts the wrist below the middle knuckle,
as MediaPipe's landmark network expects). What the network sees in such a crop is the
hand as a virtual camera sees it that sits where the real camera is and

1. looks along the ray through the crop's centre (the *look-at* turn), then
2. rolls about that ray by the crop's angle (crop x points along image direction
   ``(cos a, sin a)``, crop y along ``(-sin a, cos a)``; see
   :func:`fourdhands.geometry.crop.box_to_crop_affine`'s ``rotation``).

Regressing orientation in that frame makes the target depend only on what the crop
shows, not on where in the image the crop was cut or how it was turned. The frame is the
rotation ``R_c`` (columns: the virtual camera's axes in the real camera's frame), so a
direction ``d_c`` seen by the virtual camera is ``R_c d_c`` in the camera frame.

Because the virtual camera shares the real one's optical centre, converting a hand
between the two frames is exact: orientation ``R = R_c R'``, and the translation follows
from rotating about the camera centre, ``t = R_c (t' + j) - j``, with ``j`` the hand's
root joint in its model frame (MANO's global orientation turns about ``j``).
"""

from __future__ import annotations

import torch
from torch import Tensor


def upright_angle(wrist: Tensor, knuckle: Tensor) -> Tensor:
    """The crop angle that turns ``wrist -> knuckle`` to point up in the crop.

    wrist, knuckle: `(..., 2)` image pixels (y down) -> `(...)` radians, ``atan2(dx, -dy)``:
    0 for a hand already pointing up, +pi/2 for one pointing right."""
    d = knuckle - wrist
    return torch.atan2(d[..., 0], -d[..., 1])


def crop_frame_rotation(centre: Tensor, angle: Tensor, K: Tensor) -> Tensor:
    """``R_c`` of a crop (module docstring).

    Args:
        centre: `(..., 2)` the crop's centre in image pixels.
        angle: `(...)` the crop's angle in radians.
        K: `(..., 3, 3)` the image's intrinsics (broadcast).
    Returns:
        `(..., 3, 3)` rotation whose columns are the crop camera's x, y, z axes.
    """
    ones = torch.ones_like(centre[..., :1])
    ray = torch.linalg.solve(K.expand(*centre.shape[:-1], 3, 3),
                             torch.cat([centre, ones], -1)[..., None])[..., 0]
    z = ray / ray.norm(dim=-1, keepdim=True)
    # The unrolled frame keeps x in the plane of the camera's x and z axes, so a crop at
    # the image centre with angle 0 gets the identity.
    y_cam = torch.zeros_like(z)
    y_cam[..., 1] = 1.0
    x0 = torch.linalg.cross(y_cam, z)
    x0 = x0 / x0.norm(dim=-1, keepdim=True)
    y0 = torch.linalg.cross(z, x0)
    c, s = torch.cos(angle)[..., None], torch.sin(angle)[..., None]
    x = c * x0 + s * y0
    y = -s * x0 + c * y0
    return torch.stack([x, y, z], dim=-1)


def crop_to_camera(orient: Tensor, transl: Tensor, root: Tensor, frame: Tensor) -> tuple[Tensor, Tensor]:
    """A hand's global orientation and translation from the crop frame to the camera's.

    orient `(..., 3, 3)`, transl `(..., 3)`, root `(..., 3)` the root joint in the model
    frame (rest pose), frame `(..., 3, 3)` = ``R_c`` -> ``(R_c R', R_c (t' + j) - j)``."""
    rotated = (frame @ (transl + root)[..., None])[..., 0] - root
    return frame @ orient, rotated


def camera_to_crop(orient: Tensor, transl: Tensor, root: Tensor, frame: Tensor) -> tuple[Tensor, Tensor]:
    """The inverse of :func:`crop_to_camera` (same arguments, camera-frame values)."""
    inverse = frame.transpose(-1, -2)
    return inverse @ orient, (inverse @ (transl + root)[..., None])[..., 0] - root
