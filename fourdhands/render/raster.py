"""A CPU z-buffer rasteriser in NumPy: hand meshes seen through a pinhole camera.

It needs nothing but NumPy, so it works on any machine (no display, no GL). Each pixel
centre (j + 0.5, i + 0.5) takes the nearest triangle covering it; colour is the mesh's
colour shaded by the interpolated vertex normal (a key light at the camera, a fill light
from above, ambient, and a soft highlight).

Cameras follow the package convention (OpenCV: x right, y down, z forward, K 3x3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_NEAR = 1e-3  # metres: triangles with a vertex closer than this are skipped


@dataclass
class Mesh:
    """One mesh to draw: vertices `(V, 3)` in the camera frame (metres), faces `(F, 3)`,
    and an RGB colour in [0, 1]."""

    vertices: np.ndarray
    faces: np.ndarray
    color: tuple[float, float, float]


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals, `(V, 3)`, for counter-clockwise outward faces."""
    tri = vertices[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    return n / np.clip(np.linalg.norm(n, axis=1, keepdims=True), 1e-12, None)


def rasterize(meshes: list[Mesh], K: np.ndarray, size: tuple[int, int],
              background: np.ndarray | None = None):
    """Draw meshes with a z-buffer.

    Args:
        meshes: what to draw, vertices in the camera frame.
        K: intrinsics `(3, 3)`.
        size: `(H, W)` of the output.
        background: `(H, W, 3)` uint8 image under the meshes (default: light grey).

    Returns:
        image `(H, W, 3)` uint8, depth `(H, W)` float (metres along z, inf where empty),
        and mesh_id `(H, W)` int (index into ``meshes``, -1 where empty).
    """
    h, w = size
    depth = np.full(h * w, np.inf)
    mesh_id = np.full(h * w, -1)
    image = (np.full((h, w, 3), 235, np.uint8) if background is None
             else np.array(background, np.uint8, copy=True)).reshape(-1, 3)
    shaded = np.zeros((h * w, 3))
    for m_index, mesh in enumerate(meshes):
        v = np.asarray(mesh.vertices, float)
        f = np.asarray(mesh.faces, np.int64)
        normals = vertex_normals(v, f)
        pix, z, bary, face = _cover(v, f, K, h, w)
        if len(pix) == 0:
            continue
        # nearest fragment per pixel, against what earlier meshes left in the buffer
        order = np.lexsort((z, pix))
        pix, z, bary, face = pix[order], z[order], bary[order], face[order]
        first = np.ones(len(pix), bool)
        first[1:] = pix[1:] != pix[:-1]
        pix, z, bary, face = pix[first], z[first], bary[first], face[first]
        win = z < depth[pix]
        pix, z, bary, face = pix[win], z[win], bary[win], face[win]
        depth[pix] = z
        mesh_id[pix] = m_index
        n = (normals[f[face]] * bary[:, :, None]).sum(1)
        n /= np.clip(np.linalg.norm(n, axis=1, keepdims=True), 1e-12, None)
        shaded[pix] = _shade(n, np.asarray(mesh.color, float))
    hit = mesh_id >= 0
    image[hit] = np.clip(shaded[hit] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return image.reshape(h, w, 3), depth.reshape(h, w), mesh_id.reshape(h, w)


def _shade(n: np.ndarray, color: np.ndarray) -> np.ndarray:
    """Colour of fragments with unit normals `(N, 3)` (camera frame), `(N, 3)` in [0, 1]."""
    to_camera = np.array([0.0, 0.0, -1.0])
    from_above = np.array([0.3, -0.8, -0.5]) / np.linalg.norm([0.3, -0.8, -0.5])
    key = np.clip(n @ to_camera, 0.0, None)
    fill = np.clip(n @ from_above, 0.0, None)
    highlight = key ** 24
    c = color * (0.28 + 0.55 * key + 0.25 * fill)[:, None] + 0.18 * highlight[:, None]
    return np.clip(c, 0.0, 1.0)


def _cover(v: np.ndarray, f: np.ndarray, K: np.ndarray, h: int, w: int):
    """Every (pixel, triangle) pair where the pixel centre lies inside the projected
    triangle: flat pixel index `(N,)`, depth `(N,)`, perspective-correct barycentrics
    `(N, 3)` and face index `(N,)`."""
    tri = v[f]  # (F, 3, 3)
    keep = (tri[:, :, 2] > _NEAR).all(1)
    tri, face_ids = tri[keep], np.nonzero(keep)[0]
    uv = (tri @ K.T)[:, :, :2] / tri[:, :, 2:3]
    lo = np.floor(uv.min(1) - 0.5).astype(np.int64) + 1
    hi = np.floor(uv.max(1) - 0.5).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [w - 1, h - 1])
    span = np.clip(hi - lo + 1, 0, None)
    count = span[:, 0] * span[:, 1]
    on = count > 0
    tri, uv, lo, span, count, face_ids = tri[on], uv[on], lo[on], span[on], count[on], face_ids[on]
    if count.sum() == 0:
        empty = np.zeros(0)
        return empty.astype(np.int64), empty, np.zeros((0, 3)), empty.astype(np.int64)
    owner = np.repeat(np.arange(len(count)), count)
    local = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    px = lo[owner, 0] + local % span[owner, 0]
    py = lo[owner, 1] + local // span[owner, 0]
    p = np.stack([px + 0.5, py + 0.5], 1)
    a, b, c = uv[owner, 0], uv[owner, 1], uv[owner, 2]
    area = _edge(a, b, c)
    valid = np.abs(area) > 1e-12
    l0 = _edge(b, c, p) / np.where(valid, area, 1.0)
    l1 = _edge(c, a, p) / np.where(valid, area, 1.0)
    l2 = 1.0 - l0 - l1
    inside = valid & (l0 >= 0) & (l1 >= 0) & (l2 >= 0)
    owner, l0, l1, l2 = owner[inside], l0[inside], l1[inside], l2[inside]
    zs = tri[owner, :, 2]
    # screen-space weights -> perspective-correct weights via 1/z
    inv = np.stack([l0, l1, l2], 1) / zs
    z = 1.0 / inv.sum(1)
    bary = inv * z[:, None]
    pix = py[inside] * w + px[inside]
    return pix, z, bary, face_ids[owner]


def _edge(a: np.ndarray, b: np.ndarray, p: np.ndarray) -> np.ndarray:
    return (b[:, 0] - a[:, 0]) * (p[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (p[:, 0] - a[:, 0])
