"""Pictures of hands from several viewpoints: the camera's own, a side and a top view.

The side and top views turn the scene about its own centre, so a person can judge depth
(how far apart the hands are, which one is in front), which the camera view hides.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .raster import Mesh
from .renderer import Renderer

# Rotations (camera frame: x right, y down, z forward) applied about the scene centre.
_VIEW_ROTATIONS = {
    "front": np.eye(3),
    # turn the scene so the camera sees it from its right side
    "side": np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]),
    # turn the scene so the camera looks down on it from above
    "top": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]),
}
VIEWS = tuple(_VIEW_ROTATIONS)


def framed_view(meshes: list[Mesh], view: str, size: tuple[int, int] = (480, 480),
                fill: float = 0.8, centre: np.ndarray | None = None,
                radius: float | None = None) -> np.ndarray:
    """Render ``meshes`` (vertices in the camera frame) from ``view``, with a camera that
    frames them: their bounding sphere spans ``fill`` of the shorter image side. Draws
    with :class:`~fourdhands.render.renderer.Renderer` (GL where possible).

    ``centre`` `(3,)` and ``radius`` (metres) fix the framed sphere instead, so that the
    frames of a video share one scale and do not jump.

    Returns an `(H, W, 3)` uint8 image.
    """
    if view not in _VIEW_ROTATIONS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    allv = np.concatenate([m.vertices for m in meshes]) if meshes else np.zeros((1, 3))
    if centre is None:
        centre = 0.5 * (allv.min(0) + allv.max(0))
    if radius is None:
        radius = max(np.linalg.norm(allv - centre, axis=1).max(), 1e-6)
    h, w = size
    focal = 3.0 * min(h, w)
    distance = radius * focal / (0.5 * fill * min(h, w))
    rot = _VIEW_ROTATIONS[view]
    K = np.array([[focal, 0.0, w / 2], [0.0, focal, h / 2], [0.0, 0.0, 1.0]])
    moved = [replace(m, vertices=(m.vertices - centre) @ rot.T + [0.0, 0.0, distance])
             for m in meshes]
    return Renderer(size).render(moved, K).image


def view_strip(meshes: list[Mesh], views=VIEWS, size: tuple[int, int] = (480, 480)) -> np.ndarray:
    """The views side by side, separated by a thin white line: `(H, n*W + n-1, 3)` uint8."""
    tiles = [framed_view(meshes, v, size) for v in views]
    gap = np.full((size[0], 2, 3), 255, np.uint8)
    out = [tiles[0]]
    for t in tiles[1:]:
        out += [gap, t]
    return np.concatenate(out, axis=1)
