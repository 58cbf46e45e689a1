"""Pinhole cameras, and the weak-perspective crop camera of HaMeR-style regressors.

Frames and units: the OpenCV camera frame (x right, y down, z forward, metres) and
continuous pixel coordinates as in :mod:`fourdhands.geometry.crop` (the image's top-left
corner is (0, 0), pixel centres sit at half-integers, so the centre of a W x H image is
(W/2, H/2)).

The crop camera. A network that sees a crop of ``crop_size`` pixels predicts
``cam = [s, tx, ty]``: the hand, translated by ``(tx, ty)``, appears at normalised crop
coordinates ``s * (X + tx, Y + ty)`` in ``[-1, 1]``. HaMeR reads this as a pinhole camera
with a fixed focal length of 5000 px for a 256 px crop and the principal point at the
crop's centre, at depth ``tz = 2 f / (crop_size * s)``.

From the crop to the full image. The crop is the part of the image around the box centre
``c`` where ``crop_size`` crop pixels span ``b`` image pixels (``box_size``). A full-image
camera with focal ``F`` and principal point at the image centre sees the hand's root plane
(the plane through the translated origin, parallel to the image) with the same
magnification ``m = b s / 2`` pixels per metre and at the same place when

    tz' = F / m = 2 F / (b s),    (tx', ty') = (tx, ty) + (c - (W, H) / 2) / m,

which is the formula of PROTOCOLS.md ("Cameras") and of HaMeR. It is exact for points on
that plane. A point at depth ``Z`` off the plane lands in each camera displaced from its
on-plane position ``p0`` by ``-(p0 - o) Z / (tz + Z)``, with ``o`` that camera's principal
point in image pixels (the box centre for the crop camera, the image centre for the full
one) and ``tz`` its depth; the two cameras differ by these terms (up to a few pixels for a
hand-sized object at the crop camera's usual depths of 3-10 m), because they look at the
hand from different distances and directions. ``tests/test_camera.py`` checks both statements.
"""

import torch

CROP_FOCAL = 5000.0
"""Focal length in pixels of the crop camera, for a crop of :data:`CROP_SIZE` pixels."""

CROP_SIZE = 256.0
"""Side in pixels of the square crop that :data:`CROP_FOCAL` refers to."""


def intrinsics(focal, principal_point: torch.Tensor) -> torch.Tensor:
    """Pinhole intrinsics with square pixels and no skew.

    Args:
        focal: ``(...)`` focal length in pixels (a tensor or a number).
        principal_point: ``(..., 2)`` as ``(px, py)`` in pixels.

    Returns:
        ``K`` of shape ``(..., 3, 3)``: ``[[f, 0, px], [0, f, py], [0, 0, 1]]``.
    """
    f = torch.as_tensor(focal, dtype=principal_point.dtype, device=principal_point.device)
    f, px, py = torch.broadcast_tensors(f, principal_point[..., 0], principal_point[..., 1])
    zero, one = torch.zeros_like(f), torch.ones_like(f)
    return torch.stack([f, zero, px, zero, f, py, zero, zero, one], dim=-1).unflatten(-1, (3, 3))


def project(points: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Perspective projection of camera-frame points to pixels.

    Args:
        points: ``(..., N, 3)`` in the camera frame; they must lie in front of it (z > 0).
        K: ``(..., 3, 3)`` intrinsics, broadcast against the points' leading dims.

    Returns:
        ``(..., N, 2)`` pixel coordinates ``(u, v)``.
    """
    homogeneous = points @ K.transpose(-1, -2)
    return homogeneous[..., :2] / homogeneous[..., 2:]


def default_focal(image_size: torch.Tensor) -> torch.Tensor:
    """HaMeR's focal length for a full image when the real one is unknown.

    ``image_size (..., 2)`` as ``(W, H)`` in pixels ``-> (...)``:
    ``5000 / 256 * max(W, H)``, the crop camera's field of view stretched over the image's
    longer side.
    """
    return CROP_FOCAL / CROP_SIZE * image_size.amax(-1)


def field_of_view_focal(image_size: torch.Tensor) -> torch.Tensor:
    """A real camera's focal length when the true one is unknown: the image diagonal in
    pixels, ``(..., 2) -> (...)``, a diagonal field of view of 2 atan(1/2) = 53 degrees,
    as video tools for human mesh recovery assume (a phone's main camera is 70-80
    degrees, a webcam 60-80, a 50 mm lens on full frame 47)."""
    return image_size.square().sum(-1).sqrt()


def _column(value, like: torch.Tensor) -> torch.Tensor:
    """A number or ``(...)`` tensor as ``(..., 1)`` in ``like``'s dtype and device."""
    return torch.as_tensor(value, dtype=like.dtype, device=like.device).unsqueeze(-1)


def crop_camera_box_size(box_height, crop_height: int):
    """Image pixels spanned by :data:`CROP_SIZE` crop pixels, for a crop box of height
    ``box_height`` (image px, any shape) cut to ``crop_height`` crop pixels: the
    ``box_size`` of :func:`crop_cam_to_translation` and its kin."""
    return box_height * (CROP_SIZE / crop_height)


def crop_cam_to_translation(cam: torch.Tensor, focal=CROP_FOCAL, crop_size=CROP_SIZE) -> torch.Tensor:
    """Crop camera ``[s, tx, ty]`` to the translation of the crop's own pinhole camera.

    Args:
        cam: ``(..., 3)`` as ``[s, tx, ty]``; ``s`` must be nonzero.
        focal: ``(...)`` or a number, the crop camera's focal length in pixels.
        crop_size: ``(...)`` or a number, the pixels that ``focal`` refers to.

    Returns:
        ``(..., 3)`` translation ``[tx, ty, 2 focal / (crop_size s)]`` in metres, to be
        used with the principal point at the crop's centre.
    """
    depth = 2 * _column(focal, cam) / (_column(crop_size, cam) * cam[..., :1])
    return torch.cat([cam[..., 1:], depth], dim=-1)


def _off_centre_shift(box_center, principal_point, depth, focal):
    """Lateral translation ``(..., 2)`` that moves the root's image from the principal
    point to the box centre at ``depth (..., 1)`` with ``focal (..., 1)``."""
    return (box_center - principal_point) * depth / focal


def crop_cam_to_full_translation(
    cam: torch.Tensor,
    box_center: torch.Tensor,
    box_size: torch.Tensor,
    image_size: torch.Tensor,
    focal=None,
    principal_point: torch.Tensor | None = None,
) -> torch.Tensor:
    """Crop camera ``[s, tx, ty]`` to a translation in the full image's camera frame.

    The full-image camera is ``intrinsics(focal, principal_point)``; see the module
    docstring for the derivation and where it is exact.

    Args:
        cam: ``(..., 3)`` as ``[s, tx, ty]``; ``s`` must be nonzero.
        box_center: ``(..., 2)`` the crop's centre ``(cx, cy)`` in image pixels.
        box_size: ``(...)`` image pixels spanned by :data:`CROP_SIZE` crop pixels: the
            box side for HaMeR's square crop; ``sy`` for a 256 x 192 (H x W) crop of a box
            fitted to that aspect (``crop.fit_aspect``).
        image_size: ``(..., 2)`` as ``(W, H)`` in pixels.
        focal: ``(...)`` or a number, the full image's focal length in pixels; default
            :func:`default_focal`. Use the real one when it is known.
        principal_point: ``(..., 2)`` in pixels; default the image centre.

    Returns:
        ``(..., 3)`` translation ``[tx', ty', tz']`` in metres.
    """
    f = default_focal(image_size) if focal is None else focal
    pp = image_size / 2 if principal_point is None else principal_point
    # The depth at which focal f magnifies by b s / 2 is the crop rule with f over b pixels.
    transl = crop_cam_to_translation(cam, f, box_size)
    shift = _off_centre_shift(box_center, pp, transl[..., 2:], _column(f, cam))
    return torch.cat([transl[..., :2] + shift, transl[..., 2:]], dim=-1)


def full_translation_to_crop_cam(
    transl: torch.Tensor,
    box_center: torch.Tensor,
    box_size: torch.Tensor,
    image_size: torch.Tensor,
    focal=None,
    principal_point: torch.Tensor | None = None,
) -> torch.Tensor:
    """Inverse of :func:`crop_cam_to_full_translation`: ``transl (..., 3) -> cam (..., 3)``.

    Arguments as there; ``transl[..., 2]`` must be nonzero. Returns ``[s, tx, ty]``.
    """
    f = _column(default_focal(image_size) if focal is None else focal, transl)
    pp = image_size / 2 if principal_point is None else principal_point
    depth = transl[..., 2:]
    scale = 2 * f / (_column(box_size, transl) * depth)
    txy = transl[..., :2] - _off_centre_shift(box_center, pp, depth, f)
    return torch.cat([scale, txy], dim=-1)


def crop_camera_pixels(points: torch.Tensor, cam: torch.Tensor, box_center: torch.Tensor,
                       box_size: torch.Tensor) -> torch.Tensor:
    """Image pixels where the crop camera sees ``points``: the crop's own pinhole camera
    (focal :data:`CROP_FOCAL` over :data:`CROP_SIZE` crop pixels, principal point at the
    crop's centre, translation :func:`crop_cam_to_translation`), its crop pixels mapped
    back to the image through the box.

    Args:
        points: ``(..., J, 3)`` in the hand model's frame (before any translation).
        cam: ``(..., 3)`` as ``[s, tx, ty]``.
        box_center: ``(..., 2)``; box_size: ``(...)`` as in :func:`crop_cam_to_full_translation`.

    Returns:
        ``(..., J, 2)`` image pixels.
    """
    p = points + crop_cam_to_translation(cam)[..., None, :]
    crop_px = CROP_FOCAL * p[..., :2] / p[..., 2:]
    return box_center[..., None, :] + crop_px * (box_size / CROP_SIZE)[..., None, None]


V_DEPTH_WEIGHT = 0.3
"""How strongly the crop cameras' depths hold against v (metres of v per metre of depth)."""


def depths_from_v(roots: torch.Tensor, v: torch.Tensor, weight: float = V_DEPTH_WEIGHT) -> torch.Tensor:
    """New wrist depths `(2,)` for wrists `roots (2, 3)` (right, left; camera frame, z > 0)
    kept on their camera rays, ``root_h * d_h / z_h``: the least-squares solution of
    ``d_L q_L - d_R q_R = v`` (``q = root / z``, `v (3,)` left minus right) plus
    ``weight * (d_h - z_h) = 0`` for each hand."""
    q = roots / roots[:, 2:]
    z = roots[:, 2]
    A = torch.cat([torch.stack([-q[0], q[1]], dim=1), weight * torch.eye(2, dtype=roots.dtype)])
    b = torch.cat([v, weight * z])
    return torch.linalg.lstsq(A, b[:, None]).solution[:, 0]
