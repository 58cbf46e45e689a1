"""Which points lie inside a closed triangle mesh, and closing a mesh's holes first.

Inside tests use the generalised winding number (Jacobson et al., SIGGRAPH 2013): the
solid angles of the triangles seen from the point (Van Oosterom and Strackee's formula),
summed over 4 pi. For a closed, consistently oriented mesh it is 1 inside and 0 outside,
exactly; the open hand model's mesh is watertight. MANO's is open at the wrist:
:func:`close_holes` caps each boundary loop with a fan around its centroid, which is the
closure the hand-hand penetration term uses for MANO.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def winding_numbers(points: Tensor, vertices: Tensor, faces: Tensor, chunk: int = 1024) -> Tensor:
    """Generalised winding numbers `(N,)` of ``points`` `(N, 3)` w.r.t. the mesh
    ``vertices`` `(V, 3)`, ``faces`` `(F, 3)` (counter-clockwise seen from outside)."""
    tri = vertices[faces]  # (F, 3, 3)
    out = []
    for start in range(0, len(points), chunk):
        rel = tri[None] - points[start:start + chunk, None, None]  # (n, F, 3, 3)
        a, b, c = rel.unbind(-2)
        la, lb, lc = a.norm(dim=-1), b.norm(dim=-1), c.norm(dim=-1)
        det = (a * torch.cross(b, c, dim=-1)).sum(-1)
        den = la * lb * lc + (a * b).sum(-1) * lc + (b * c).sum(-1) * la + (c * a).sum(-1) * lb
        out.append(torch.atan2(det, den).sum(-1) / (2 * torch.pi))
    return torch.cat(out) if out else points.new_zeros(0)


def inside(points: Tensor, vertices: Tensor, faces: Tensor, near: float | None = None) -> Tensor:
    """`(N,)` bool: the points inside the closed mesh (winding number above 1/2).

    With ``near`` (metres), only the points :func:`maybe_inside` keeps get the exact test
    (a shortcut for speed: a point farther than ``near`` from every vertex is taken as
    outside, right for a hand, where no point lies that deep; a point in a concave crease
    whose nearest vertex faces it can be missed)."""
    if near is None:
        return winding_numbers(points, vertices, faces) > 0.5
    found = torch.zeros(len(points), dtype=torch.bool, device=points.device)
    candidates = torch.nonzero(maybe_inside(points, vertices, faces, near)).flatten()
    if len(candidates):
        found[candidates] = winding_numbers(points[candidates], vertices, faces) > 0.5
    return found


def vertex_normals(vertices: Tensor, faces: Tensor) -> Tensor:
    """Area-weighted unit vertex normals `(V, 3)` of a mesh (outward for counter-clockwise faces)."""
    tri = vertices[faces]
    face_normals = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
    normals = torch.zeros_like(vertices).index_add_(0, faces.flatten(), face_normals.repeat_interleave(3, 0))
    return normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def maybe_inside(points: Tensor, vertices: Tensor, faces: Tensor, near: float) -> Tensor:
    """`(N,)` bool: the points that may be inside, a prefilter for :func:`inside`: within
    ``near`` of their nearest vertex and either behind its normal or within a third of
    ``near`` of it."""
    d = torch.cdist(points, vertices)
    dist, nearest = d.min(-1)
    behind = ((points - vertices[nearest]) * vertex_normals(vertices, faces)[nearest]).sum(-1) < 0
    return (dist < near) & (behind | (dist < near / 3))


def boundary_loops(faces: np.ndarray) -> list[list[int]]:
    """The mesh's holes: each a loop of vertex ids along edges used by one face only,
    in the order that closes them consistently with the faces' orientation."""
    faces = np.asarray(faces)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    count: dict[tuple[int, int], int] = {}
    for u, v in edges.tolist():
        key = (min(u, v), max(u, v))
        count[key] = count.get(key, 0) + 1
    following = {u: v for u, v in edges.tolist() if count[(min(u, v), max(u, v))] == 1}
    loops, seen = [], set()
    for start in following:
        if start in seen:
            continue
        loop, u = [], start
        while u not in seen:
            seen.add(u)
            loop.append(u)
            u = following[u]
        loops.append(loop)
    return loops


def close_holes(vertices: Tensor, faces: np.ndarray, loops: list[list[int]]) -> tuple[Tensor, Tensor]:
    """``vertices`` `(..., V, 3)` with one centroid per loop appended, and the faces with
    each loop capped by a fan around its centroid (a loop's boundary edges run u -> v in
    the mesh's faces, so the cap's faces run v -> u)."""
    faces = np.asarray(faces)
    caps, centroids = [], []
    for k, loop in enumerate(loops):
        centre = vertices.shape[-2] + k
        centroids.append(vertices[..., loop, :].mean(-2, keepdim=True))
        caps += [(loop[(i + 1) % len(loop)], loop[i], centre) for i in range(len(loop))]
    if not loops:
        return vertices, torch.as_tensor(faces, dtype=torch.long)
    closed = torch.cat([vertices, *centroids], dim=-2)
    return closed, torch.as_tensor(np.concatenate([faces, np.asarray(caps, np.int64).reshape(-1, 3)]))
