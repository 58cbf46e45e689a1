"""Keeping two posed hands out of each other: the shortest push that parts them, found
with exact inside tests on their closed meshes, cheap enough to run on every sequence.

For a push of ``s`` along ``d`` (half to each hand, the left one along ``+d``), a point
of the right hand moves by ``-s d`` relative to the left hand. Its winding number with
respect to the left hand's closed mesh after the push is the signed count of the
crossings of a ray from it along ``-d`` that lie beyond ``s``
(:func:`~fourdhands.geometry.inside.ray_crossings`), so one ray per point gives, at once,
how many points are inside for every push on a grid: no bisection, no stand-in shape.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d, maximum_filter1d

from ..geometry.inside import ray_crossings

RIGHT, LEFT = 0, 1

_PUSHES = np.linspace(0.0, 0.15, 151)  # m: the pushes tried, 1 mm apart, never beyond 15 cm
_VERTEX_STRIDE = 4  # every fourth vertex is plenty to count a share of them
_PROBES = 4  # frames on which the push direction is chosen


def inside_after_push(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, direction: np.ndarray,
                      pushes: np.ndarray = _PUSHES) -> np.ndarray:
    """How many of ``points`` `(P, 3)` are inside the closed mesh (``vertices`` `(V, 3)`,
    ``faces``) once moved by ``push * direction`` (unit `(3,)`), for each of ``pushes``
    `(S,)`: `(S,)` counts. A ray's doubtful crossings (at an edge, by chance) are counted
    as they fall: a share of points is all that is asked of it."""
    f32 = dict(dtype=torch.float32)
    i, distance, sign, _ = ray_crossings(torch.as_tensor(points, **f32), torch.as_tensor(vertices, **f32),
                                         torch.as_tensor(faces), torch.as_tensor(direction, **f32))
    beyond = torch.as_tensor(pushes, **f32)[None] < distance[:, None]  # (C, S): still ahead after the push
    winding = torch.zeros(len(points), len(pushes), dtype=torch.long).index_add_(0, i, beyond * sign[:, None])
    return (winding > 0).sum(0).numpy()


def _needed_push(points: np.ndarray, vertices: np.ndarray, faces: list, direction: np.ndarray, allowed: float,
                 most: float) -> tuple[float, bool]:
    """The least push (m, at most ``most``) along ``direction`` `(3,)` after which neither
    hand has more than ``allowed`` of its ``points`` `(2, P, 3)` inside the other
    (``vertices`` `(2, V, 3)`), and True; when none suffices, the push that leaves the
    fewest inside, and False (that push is often none: a way that no push parts must
    not look free)."""
    pushes = _PUSHES[_PUSHES <= most + 1e-9]
    inner = np.maximum(inside_after_push(points[RIGHT], vertices[LEFT], faces[LEFT], -direction, pushes),
                       inside_after_push(points[LEFT], vertices[RIGHT], faces[RIGHT], direction, pushes))
    ok = np.flatnonzero(inner <= allowed)
    return (float(pushes[ok[0]]), True) if len(ok) else (float(pushes[np.argmin(inner)]), False)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)


def _push_directions(vertices: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """Candidate directions `(3, F, 3)` to push the left hand away from the right: the
    line between the vertex centroids, and both ways along the right hand's palm normal,
    which parts stacked, crossed and clasped hands with the least travel."""
    right = keypoints[:, RIGHT]
    normal = _unit(np.cross(right[:, 5] - right[:, 0], right[:, 17] - right[:, 0]))
    centroids = _unit(vertices[:, LEFT].mean(1) - vertices[:, RIGHT].mean(1))
    return np.stack([centroids, normal, -normal])


def separate(vertices: np.ndarray, keypoints: np.ndarray, faces: list, tolerance: float,
             directions: tuple = (), own: bool = True, most: float = float(_PUSHES[-1])) -> np.ndarray:
    """Shifts that push two hands apart until at most ``tolerance`` of each hand's
    vertices lie inside the other's closed mesh, half to each hand.

    The direction (per frame) is the candidate that parts the most of a few probe frames
    and, among those, needs the least push over them; the candidates are the hands' own
    (:func:`_push_directions`, unless not ``own``) and the fixed unit ``directions`` `(3,)`.
    The push is found on every other frame, interpolated between, held over neighbouring
    frames and smoothed, so the hands touch without jitter.

    Args:
        vertices: `(F, 2, V, 3)` both hands' vertices.
        keypoints: `(F, 2, 21, 3)`.
        faces: per hand, the faces of its closed mesh over those vertices.
        tolerance: share of V.
        directions: fixed candidate directions, beside or instead of the hands' own.
        own: whether the hands' own directions are candidates.
        most: the longest push (m) allowed.

    Returns:
        `(F, 2, 3)` translations to add to each hand (zeros where already apart).
    """
    frames = vertices.shape[0]
    points = vertices[:, :, ::_VERTEX_STRIDE]
    allowed = tolerance * points.shape[2]
    candidates = [np.repeat(np.asarray(directions, float).reshape(-1, 3)[:, None], frames, axis=1)]
    if own:
        candidates.insert(0, _push_directions(vertices, keypoints))
    candidates = np.concatenate(candidates)
    probe = np.unique(np.linspace(0, frames - 1, _PROBES).round().astype(np.int64))
    found = [[_needed_push(points[t], vertices[t], faces, d[t], allowed, most) for t in probe] for d in candidates]
    ranks = [(sum(not parted for _, parted in f), np.mean([push for push, _ in f])) for f in found]
    direction = candidates[min(range(len(candidates)), key=ranks.__getitem__)]
    sample = np.unique(np.r_[np.arange(0, frames, 2), frames - 1])  # every other frame, interpolated between
    push = np.interp(np.arange(frames), sample,
                     [_needed_push(points[t], vertices[t], faces, direction[t], allowed, most)[0] for t in sample])
    if not push.any():
        return np.zeros((frames, 2, 3))
    # a push held over +-2 frames, then smoothed: never much less than needed nearby
    push = gaussian_filter1d(maximum_filter1d(push, 5, mode="nearest"), 1.0, mode="nearest")
    shift = 0.5 * push[:, None] * direction
    return np.stack([-shift, shift], 1).astype(float)
