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

from ..geometry.inside import frame_with_z, frames_side_by_side, ray_crossings

RIGHT, LEFT = 0, 1

_PUSHES = np.linspace(0.0, 0.15, 151)  # m: the pushes tried, 1 mm apart, never beyond 15 cm
_VERTEX_STRIDE = 4  # every fourth vertex is plenty to count a share of them
_PROBES = 4  # frames on which the push direction is chosen (the generator's)
_SAMPLE_STRIDE = 2  # the push is found on every other frame
_APART = 1.0  # m between frames laid side by side: more than a hand's reach from its centre


def inside_after_push(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, directions: np.ndarray,
                      pushes: np.ndarray = _PUSHES) -> np.ndarray:
    """How many of each frame's ``points`` `(F, P, 3)` are inside its closed mesh
    (``vertices`` `(F, V, 3)`, ``faces``) once moved by ``push * direction`` (``directions``
    `(F, 3)` unit, one per frame), for each of ``pushes`` `(S,)`: `(F, S)` counts. One ray
    count for all frames: each frame is turned so that its direction is +z, centred, and
    laid ``_APART`` along x from the last
    (:func:`~fourdhands.geometry.inside.frames_side_by_side`). A ray's doubtful crossings
    (at an edge, by chance) are counted as they fall: a share of points is all that is
    asked of it."""
    f32 = dict(dtype=torch.float32)
    F, P = points.shape[:2]
    turn = torch.stack([frame_with_z(torch.as_tensor(d, **f32)) for d in directions])  # (F, 3, 3)
    centre = torch.as_tensor(vertices.mean(1), **f32)[:, None]
    p = (torch.as_tensor(points, **f32) - centre) @ turn
    v = (torch.as_tensor(vertices, **f32) - centre) @ turn
    i, distance, sign, _ = ray_crossings(*frames_side_by_side(p.reshape(-1, 3), torch.arange(F).repeat_interleave(P), v,
                                                              torch.as_tensor(faces), _APART))
    beyond = torch.as_tensor(pushes, **f32)[None] < distance[:, None]  # (C, S): still ahead after the push
    winding = torch.zeros(F * P, len(pushes), dtype=torch.long).index_add_(0, i, beyond * sign[:, None])
    return (winding > 0).reshape(F, P, -1).sum(1).numpy()


def _needed_push(points: np.ndarray, vertices: np.ndarray, faces: list, directions: np.ndarray, allowed: float,
                 most: float) -> tuple[np.ndarray, np.ndarray]:
    """Per frame `(F,)`, the least push (m, at most ``most``) along ``directions`` `(F, 3)`
    after which neither hand has more than ``allowed`` of its ``points`` `(F, 2, P, 3)`
    inside the other (``vertices`` `(F, 2, V, 3)`), and True; where none suffices, the
    push that leaves the fewest inside, and False (that push is often none: a way that no
    push parts must not look free)."""
    pushes = _PUSHES[_PUSHES <= most + 1e-9]
    inner = np.maximum(inside_after_push(points[:, RIGHT], vertices[:, LEFT], faces[LEFT], -directions, pushes),
                       inside_after_push(points[:, LEFT], vertices[:, RIGHT], faces[RIGHT], directions, pushes))
    ok = inner <= allowed
    parted = ok.any(1)
    return pushes[np.where(parted, ok.argmax(1), inner.argmin(1))], parted


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
    vertices lie inside the other's closed mesh, half to each hand: :func:`push_apart`'s
    shifts."""
    return push_apart(vertices, keypoints, faces, tolerance, directions, own, most)[0]


def push_apart(vertices: np.ndarray, keypoints: np.ndarray, faces: list, tolerance: float, directions: tuple = (),
               own: bool = True, most: float = float(_PUSHES[-1]), choice: int | None = None, probes: int = _PROBES
               ) -> tuple[np.ndarray, int | None]:
    """Shifts that push two hands apart until at most ``tolerance`` of each hand's
    vertices lie inside the other's closed mesh, half to each hand, and the candidate
    direction taken (None where they were apart already).

    The direction (per frame) is the candidate that parts the most of a few probe frames
    and, among those, needs the least push over them, or the candidate ``choice`` (an
    earlier call's, for the same hands moved a little since); the candidates are the
    hands' own (:func:`_push_directions`, unless not ``own``), then the fixed unit
    ``directions`` `(3,)`. The push is found on every other frame, interpolated between,
    held over neighbouring frames and smoothed, so the hands touch without jitter.

    Args:
        vertices: `(F, 2, V, 3)` both hands' vertices.
        keypoints: `(F, 2, 21, 3)`.
        faces: per hand, the faces of its closed mesh over those vertices.
        tolerance: share of V.
        directions: fixed candidate directions, beside or instead of the hands' own.
        own: whether the hands' own directions are candidates.
        most: the longest push (m) allowed.
        choice: the candidate to take instead of choosing one.
        probes: how many frames, spread over the clip, choose the candidate.

    Returns:
        `(F, 2, 3)` translations to add to each hand (zeros where already apart), and the
        candidate's index.
    """
    frames = vertices.shape[0]
    points = vertices[:, :, ::_VERTEX_STRIDE]
    allowed = tolerance * points.shape[2]
    sample = np.unique(np.r_[np.arange(0, frames, _SAMPLE_STRIDE), frames - 1])  # interpolated between
    # apart already, without a push? (Given a choice, its own count at no push says so below.)
    if choice is None and _needed_push(points[sample], vertices[sample], faces,
                                       np.tile([0.0, 0.0, 1.0], (len(sample), 1)), allowed, 0.0)[1].all():
        return np.zeros((frames, 2, 3)), None
    candidates = [np.repeat(np.asarray(directions, float).reshape(-1, 3)[:, None], frames, axis=1)]
    if own:
        candidates.insert(0, _push_directions(vertices, keypoints))
    candidates = np.concatenate(candidates)
    if choice is None:
        probe = np.unique(np.linspace(0, frames - 1, probes).round().astype(np.int64))
        coarse = points[probe][:, :, ::2]  # every other point is enough to choose the way
        found = [_needed_push(coarse, vertices[probe], faces, d[probe], allowed / 2, most) for d in candidates]
        ranks = [(int((~parted).sum()), float(push.mean())) for push, parted in found]
        choice = min(range(len(candidates)), key=ranks.__getitem__)
    direction = candidates[choice]
    push = np.interp(np.arange(frames), sample, _needed_push(points[sample], vertices[sample], faces, direction[sample],
                                                             allowed, most)[0])
    if not push.any():
        return np.zeros((frames, 2, 3)), choice
    # a push held over +-2 frames, then smoothed: never much less than needed nearby
    push = gaussian_filter1d(maximum_filter1d(push, 5, mode="nearest"), 1.0, mode="nearest")
    shift = 0.5 * push[:, None] * direction
    return np.stack([-shift, shift], 1).astype(float), choice
