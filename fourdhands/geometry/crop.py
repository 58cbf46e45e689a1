"""Boxes, and the affine maps that cut hand crops out of images.

Pixel coordinates are continuous: the image's top-left corner is (0, 0), x grows to the
right and y downwards, and the pixel in row i, column j covers [j, j+1] x [i, i+1], so its
centre is (j + 0.5, i + 0.5) and the centre of a W x H image is (W/2, H/2). Crops follow
the same convention in their own pixels.

Boxes are ``[cx, cy, sx, sy]`` in image pixels: centre and side lengths (the paper's B).
A crop of ``crop_hw = (h, w)`` pixels is the image resampled so that the box fills it
exactly: the box's left edge goes to crop x = 0, its right edge to x = w, its top edge to
y = 0 and its bottom edge to y = h. Patch (row k, column i) of a ViT with an H x W token
grid over that crop therefore has its centre at image point
``(cx + (2i + 1 - W) sx / (2W), cy + (2k + 1 - H) sy / (2H))`` (the paper's Eq. 1 prints
``2i - W``, which is the patch's left edge for 0-based i).

Affine maps ``A`` of shape ``(..., 2, 3)`` send points by ``p' = A[..., :2] @ p + A[..., 2]``.
"""

import torch
import torch.nn.functional as F

CROP_HW = (256, 192)
"""The paper's crop size, ``(height, width)`` in pixels."""


def box_to_crop_affine(
    box: torch.Tensor,
    crop_hw: tuple[int, int] = CROP_HW,
    scale=1.0,
    rotation=0.0,
    flip=False,
) -> torch.Tensor:
    """The affine map from image points to crop points for a box.

    With the defaults the box fills the crop exactly (box corners go to crop corners).
    The options, applied about the box centre, which always goes to the crop centre:

    - ``scale``: the crop covers ``scale * (sx, sy)`` image pixels; ``scale > 1`` zooms out.
    - ``rotation`` (radians): the image content appears rotated counter-clockwise on
      screen (y down) by this angle in the crop; i.e. the crop window is the box turned
      clockwise in the image. An image offset ``(dx, dy)`` from the box centre becomes
      ``(dx cos + dy sin, -dx sin + dy cos)`` before scaling to crop pixels. For a crop
      camera whose principal point is the crop centre this equals rotating camera-frame
      points by ``R_z(-rotation)`` about the optical axis.
    - ``flip``: the crop is mirrored left-right after the rotation (crop x -> w - x).

    Args:
        box: ``(..., 4)`` as ``[cx, cy, sx, sy]`` in image pixels.
        crop_hw: ``(h, w)`` of the crop in pixels.
        scale: number or ``(...)`` tensor.
        rotation: number or ``(...)`` tensor, radians.
        flip: bool or ``(...)`` bool tensor.

    Returns:
        ``(..., 2, 3)`` affine map, image pixels -> crop pixels.
    """
    h, w = crop_hw
    as_box = dict(dtype=box.dtype, device=box.device)
    scale = torch.as_tensor(scale, **as_box)
    rotation = torch.as_tensor(rotation, **as_box)
    mirror = 1 - 2 * torch.as_tensor(flip, device=box.device).to(box.dtype)
    # Crop pixels per image pixel along each crop axis; mirroring negates the x axis,
    # which keeps the centre fixed because it maps to w / 2.
    gain_x = mirror * w / (scale * box[..., 2])
    gain_y = h / (scale * box[..., 3])
    cos, sin = torch.cos(rotation), torch.sin(rotation)
    gain_x, gain_y, cos, sin = torch.broadcast_tensors(gain_x, gain_y, cos, sin)
    linear = torch.stack([gain_x * cos, gain_x * sin, -gain_y * sin, gain_y * cos], -1).unflatten(-1, (2, 2))
    crop_centre = torch.tensor([w / 2, h / 2], **as_box)
    offset = crop_centre - (linear @ box[..., :2, None]).squeeze(-1)
    return torch.cat([linear, offset[..., None]], dim=-1)


def invert_affine(affine: torch.Tensor) -> torch.Tensor:
    """Inverse of an invertible affine map: ``(..., 2, 3) -> (..., 2, 3)``."""
    a, b, c, d = affine[..., :2].flatten(-2).unbind(-1)
    det = a * d - b * c
    linear = torch.stack([d, -b, -c, a], dim=-1).unflatten(-1, (2, 2)) / det[..., None, None]
    return torch.cat([linear, -linear @ affine[..., 2:]], dim=-1)


def apply_affine(points: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    """Map points: ``points (..., N, 2)``, ``affine (..., 2, 3)`` -> ``(..., N, 2)``."""
    return points @ affine[..., :2].transpose(-1, -2) + affine[..., None, :, 2]


def crop_image(image: torch.Tensor, affine: torch.Tensor, crop_hw: tuple[int, int] = CROP_HW) -> torch.Tensor:
    """Resample an image into a crop by bilinear interpolation; zeros outside the image.

    Each crop pixel takes the image's value at the point that ``affine`` sends to the
    crop pixel's centre.

    Args:
        image: ``(..., C, H, W)`` floating point.
        affine: ``(..., 2, 3)`` image -> crop map (e.g. :func:`box_to_crop_affine`);
            its leading dims broadcast against the image's (one image, several crops).
        crop_hw: ``(h, w)`` of the crop in pixels.

    Returns:
        ``(..., C, h, w)`` in the image's dtype.
    """
    h, w = crop_hw
    height, width = image.shape[-2:]
    batch = torch.broadcast_shapes(image.shape[:-3], affine.shape[:-2])
    as_affine = dict(dtype=affine.dtype, device=affine.device)
    xs = torch.arange(w, **as_affine) + 0.5
    ys = torch.arange(h, **as_affine) + 0.5
    centres = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(h * w, 2)
    source = apply_affine(centres, invert_affine(affine))
    # With align_corners=False, grid_sample's -1 and +1 are the image's outer edges,
    # exactly the continuous convention of this module.
    grid = source * torch.tensor([2 / width, 2 / height], **as_affine) - 1
    grid = grid.to(image.dtype).expand(*batch, h * w, 2).reshape(-1, h, w, 2)
    flat = image.expand(*batch, *image.shape[-3:]).reshape(-1, *image.shape[-3:])
    out = F.grid_sample(flat, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.reshape(*batch, *out.shape[-3:])


def fit_aspect(box: torch.Tensor, aspect) -> torch.Tensor:
    """Enlarge a box's short side so that ``sx / sy == aspect``: ``(..., 4) -> (..., 4)``.

    ``aspect`` (number or ``(...)``) is the crop's width over height (192 / 256 for the
    paper's crop), so that cropping does not stretch the hand. The centre is kept and
    neither side shrinks.
    """
    sx, sy = box[..., 2], box[..., 3]
    sides = torch.stack([torch.maximum(sx, sy * aspect), torch.maximum(sy, sx / aspect)], dim=-1)
    return torch.cat([box[..., :2], sides], dim=-1)


def keypoints_to_box(
    keypoints: torch.Tensor,
    valid: torch.Tensor | None = None,
    expand=1.2,
    aspect=None,
) -> torch.Tensor:
    """Box around the valid 2D keypoints, enlarged about its centre.

    Args:
        keypoints: ``(..., N, 2)`` in image pixels.
        valid: ``(..., N)`` bool, which keypoints count; default all.
        expand: number or ``(...)``, factor on the tight box's sides (1 = tight).
        aspect: optional width / height; if given the box then goes through
            :func:`fit_aspect`.

    Returns:
        ``(..., 4)`` as ``[cx, cy, sx, sy]``; all zeros where no keypoint is valid (a
        single valid keypoint gives a box of size zero).
    """
    if valid is None:
        valid = torch.ones(keypoints.shape[:-1], dtype=torch.bool, device=keypoints.device)
    inside = valid[..., None]
    found = inside.any(-2)
    inf = torch.tensor(torch.inf, dtype=keypoints.dtype, device=keypoints.device)
    # Empty sets would give lo = inf, hi = -inf; zeros give the documented empty box.
    lo = torch.where(found, torch.where(inside, keypoints, inf).amin(-2), 0)
    hi = torch.where(found, torch.where(inside, keypoints, -inf).amax(-2), 0)
    expand = torch.as_tensor(expand, dtype=keypoints.dtype, device=keypoints.device)[..., None]
    box = torch.cat([(lo + hi) / 2, (hi - lo) * expand], dim=-1)
    return box if aspect is None else fit_aspect(box, aspect)
