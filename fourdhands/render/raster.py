"""A CPU z-buffer rasteriser in NumPy: hand meshes seen through a pinhole camera.

It needs nothing but NumPy, so it works on any machine (no display, no GL). Each pixel
centre (j + 0.5, i + 0.5) takes the nearest triangle covering it; colour is the mesh's
(or its vertices' interpolated) colour shaded by the interpolated vertex normal under a :class:`Light`.

This module also holds what both backends share (see :mod:`fourdhands.render.renderer`,
the facade callers use): :class:`Mesh`, :class:`Light`, :func:`prepare` (normals and the
faces to draw), :func:`as_background` and the near limit :data:`NEAR`. The GL backend
imports them from here; nothing here imports the GL backend.

Cameras follow the package convention (OpenCV: x right, y down, z forward, K 3x3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEAR = 1e-3  # metres: nothing closer to the camera than this is drawn
BACKGROUND_GREY = 235  # the default background, uint8
_VIEWER = np.array([0.0, 0.0, -1.0])  # towards a distant camera, for the highlight


@dataclass
class Mesh:
    """One mesh to draw: vertices `(V, 3)` in the camera frame (metres), faces `(F, 3)`,
    and its RGB colour in [0, 1]: one `(3,)` for the whole mesh, or one per vertex
    `(V, 3)`, interpolated across each triangle (perspective-correct in both backends).

    ``closed``: the mesh is watertight with counter-clockwise outward faces (the open
    hand model is; MANO, open at the wrist, is not). Its faces turned away from the
    camera are then always hidden, and every backend skips them, which halves the work
    without changing the picture. Leave it False when unsure: both sides are drawn.
    """

    vertices: np.ndarray
    faces: np.ndarray
    color: tuple[float, float, float] | np.ndarray
    closed: bool = False

    def vertex_colors(self) -> np.ndarray:
        """`(V, 3)` float colours, one per vertex (a single colour repeated)."""
        c = np.asarray(self.color, float)
        if c.shape == (3,):
            return np.broadcast_to(c, (len(self.vertices), 3))
        if c.shape != (len(self.vertices), 3):
            raise ValueError(f"color must be (3,) or (V, 3) = {(len(self.vertices), 3)}, got {c.shape}")
        return c


@dataclass(frozen=True)
class Light:
    """How fragments are shaded, the same in every backend.

    colour = mesh colour * (ambient + key * max(n.d, 0) + fill * max(n.f, 0))
             + specular * max(n.h, 0) ** shininess,  clipped to [0, 1],

    with n the unit normal, d = ``direction`` and f = ``fill_direction`` (camera frame,
    pointing from the surface towards the light; normalised here) and h the half vector
    between d and the viewer, taken as a distant one (-z) so that no backend needs the
    fragment's position. The defaults are a key light at the camera, a fill light from
    above and a soft white highlight.
    """

    direction: tuple[float, float, float] = (0.0, 0.0, -1.0)
    fill_direction: tuple[float, float, float] = (0.3, -0.8, -0.5)
    ambient: float = 0.28
    key: float = 0.55
    fill: float = 0.25
    specular: float = 0.18
    shininess: float = 24.0

    def __post_init__(self):
        # plain tuples of floats, so that lights compare and hash even when given arrays
        for name in ("direction", "fill_direction"):
            object.__setattr__(self, name, tuple(float(x) for x in getattr(self, name)))

    def unit_directions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The key, fill and half-vector directions, unit `(3,)` each."""
        key = _unit(np.asarray(self.direction, float))
        return key, _unit(np.asarray(self.fill_direction, float)), _unit(key + _VIEWER)


def as_background(background: np.ndarray | None, size: tuple[int, int]) -> np.ndarray | None:
    """``background`` checked to be `(H, W, 3)` for ``size``, as contiguous uint8 (no
    copy when it already is); None stays None (meaning the default grey)."""
    if background is None:
        return None
    image = np.ascontiguousarray(background, dtype=np.uint8)
    if image.shape != (*size, 3):
        raise ValueError(f"background must be {(*size, 3)} for size {size}, got {image.shape}")
    return image


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals, `(V, 3)`, for counter-clockwise outward faces."""
    vertices, faces = np.asarray(vertices, float), np.asarray(faces, np.int64)
    return _vertex_normals(len(vertices), faces, _face_normals(vertices, faces))


def prepare(mesh: Mesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What every backend draws of ``mesh``: vertices `(V, 3)` float64, the faces to draw
    `(F', 3)` int64 (for a closed mesh only those turned towards the camera at the
    origin, outward normal . corner < 0) and unit vertex normals `(V, 3)` (from every
    face, so that they stay smooth at silhouettes)."""
    v = np.asarray(mesh.vertices, float)
    f = np.asarray(mesh.faces, np.int64)
    fn = _face_normals(v, f)
    normals = _vertex_normals(len(v), f, fn)
    if mesh.closed:
        f = f.compress(np.einsum("ij,ij->i", fn, v.take(f[:, 0], axis=0)) < 0, axis=0)
    return v, f, normals


def _vertex_normals(count: int, faces: np.ndarray, face_normals: np.ndarray) -> np.ndarray:
    """Unit normals `(count, 3)` of the vertices, from faces `(F, 3)` and their area-scaled
    normals `(F, 3)`."""
    # each face adds its normal to its three corners; bincount is ~20x faster than add.at
    corners = faces.ravel()
    n = np.stack([np.bincount(corners, np.repeat(face_normals[:, k], 3), count)
                  for k in range(3)], 1)
    return _unit(n)


def _face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Outward normals `(F, 3)` scaled by twice the face areas."""
    # take() is several times faster than fancy indexing with a column of faces
    a, b, c = (vertices.take(faces[:, k], axis=0) for k in range(3))
    return _cross(b - a, c - a)


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Row-wise cross product of `(N, 3)` arrays (np.cross's overhead is 4x this at hand sizes)."""
    return np.stack([u[:, 1] * v[:, 2] - u[:, 2] * v[:, 1],
                     u[:, 2] * v[:, 0] - u[:, 0] * v[:, 2],
                     u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]], 1)


def _unit(v: np.ndarray) -> np.ndarray:
    """``v`` `(..., 3)` scaled to unit length along the last axis (zero stays zero)."""
    return v / np.sqrt(np.maximum(np.einsum("...i,...i->...", v, v), 1e-24))[..., None]


def rasterize(meshes: list[Mesh], K: np.ndarray, size: tuple[int, int],
              background: np.ndarray | None = None, light: Light | None = None):
    """Draw meshes with a z-buffer.

    Triangles with a vertex nearer than :data:`NEAR` are skipped whole, and so are the
    back faces of closed meshes (see :func:`prepare`).

    Args:
        meshes: what to draw, vertices in the camera frame.
        K: intrinsics `(3, 3)`.
        size: `(H, W)` of the output.
        background: `(H, W, 3)` uint8 image under the meshes (default: light grey).
        light: shading (default: ``Light()``).

    Returns:
        image `(H, W, 3)` uint8, depth `(H, W)` float (metres along z, inf where empty),
        and mesh_id `(H, W)` int (index into ``meshes``, -1 where empty).
    """
    h, w = size
    light = Light() if light is None else light
    depth = np.full(h * w, np.inf)
    mesh_id = np.full(h * w, -1)
    background = as_background(background, size)
    image = (np.full((h, w, 3), BACKGROUND_GREY, np.uint8) if background is None
             else background.copy()).reshape(-1, 3)
    shaded = np.zeros((h * w, 3))
    for m_index, mesh in enumerate(meshes):
        v, f, normals = prepare(mesh)
        colors = mesh.vertex_colors()
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
        uniform = np.ndim(mesh.color) == 1
        color = colors[0] if uniform else (colors[f[face]] * bary[:, :, None]).sum(1)
        shaded[pix] = _shade(_unit(n), color, light)
    hit = mesh_id >= 0
    image[hit] = np.clip(shaded[hit] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return image.reshape(h, w, 3), depth.reshape(h, w), mesh_id.reshape(h, w)


def _shade(n: np.ndarray, color: np.ndarray, light: Light) -> np.ndarray:
    """Colour of fragments with unit normals `(N, 3)` (camera frame) and albedo ``color``
    (`(3,)` or `(N, 3)`) under ``light``, `(N, 3)` in [0, 1]; the GL backend's fragment
    shader is the same formula."""
    key_dir, fill_dir, half_dir = light.unit_directions()
    key = np.clip(n @ key_dir, 0.0, None)
    fill = np.clip(n @ fill_dir, 0.0, None)
    highlight = np.clip(n @ half_dir, 0.0, None) ** light.shininess
    c = color * (light.ambient + light.key * key + light.fill * fill)[:, None]
    return np.clip(c + light.specular * highlight[:, None], 0.0, 1.0)


def _cover(v: np.ndarray, f: np.ndarray, K: np.ndarray, h: int, w: int):
    """Every (pixel, triangle) pair where the pixel centre lies inside the projected
    triangle: flat pixel index `(N,)`, depth `(N,)`, perspective-correct barycentrics
    `(N, 3)` and face index `(N,)`."""
    tri = v[f]  # (F, 3, 3)
    keep = (tri[:, :, 2] > NEAR).all(1)
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
