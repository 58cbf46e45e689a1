"""Keeping two posed hands out of each other: a capsule model of the hand and the
shortest push that parts them, cheap enough to run on every sequence."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d, maximum_filter1d

from ..hands import OPENPOSE_PARENTS

RIGHT, LEFT = 0, 1

# The hand as capsules along its 20 bones (OpenPose order: parent -> child), radii a
# little inside the open model's flesh, so that touching skin does not count as inside.
_BONE_CHILD = np.arange(1, 21)
_BONE_PARENT = np.array(OPENPOSE_PARENTS[1:])
_BONE_RADIUS = np.array([0.012, 0.010, 0.008, 0.007] + [0.011, 0.008, 0.007, 0.006] * 4)
_SEPARATION_MAX = 0.15  # m: never push further than this
_SEPARATION_STEPS = 7  # bisection steps: 1.2 mm resolution
_VERTEX_STRIDE = 4  # every fourth vertex is plenty to count a share of them
_PROBES = 6  # frames on which the push direction is chosen


def inside_counts(points: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """How many of ``points (B, P, 3)`` lie inside the capsule hand of ``keypoints
    (B, 21, 3)``: `(B,)`. Only points within the hand's bounding box are tested."""
    reach = _BONE_RADIUS.max()
    lo, hi = keypoints.min(1) - reach, keypoints.max(1) + reach
    frame, index = np.nonzero(((points > lo[:, None]) & (points < hi[:, None])).all(-1))
    a = keypoints[frame][:, _BONE_PARENT]  # (N, 20, 3)
    ab = keypoints[frame][:, _BONE_CHILD] - a
    rel = points[frame, index][:, None] - a
    t = np.clip((rel * ab).sum(-1) / (ab * ab).sum(-1), 0.0, 1.0)
    dist2 = ((rel - t[..., None] * ab) ** 2).sum(-1)
    return np.bincount(frame[(dist2 < _BONE_RADIUS ** 2).any(-1)], minlength=len(points))


def _shortest_push(points: np.ndarray, keypoints: np.ndarray, direction: np.ndarray, allowed: float) -> np.ndarray:
    """Per frame, the push (m, along ``direction (B, 3)``, half to each hand) after which
    neither hand has more than ``allowed`` of ``points (B, 2, P, 3)`` inside the other's
    capsules (``keypoints (B, 2, 21, 3)``), by bisection: `(B,)`."""

    def too_deep(push, rows):
        shift = (0.5 * push[:, None] * direction[rows])[:, None]  # (b, 1, 3)
        right_in_left = inside_counts(points[rows, RIGHT] - shift, keypoints[rows, LEFT] + shift)
        left_in_right = inside_counts(points[rows, LEFT] + shift, keypoints[rows, RIGHT] - shift)
        return (right_in_left > allowed) | (left_in_right > allowed)

    push = np.zeros(len(points))
    deep = np.flatnonzero(too_deep(push, np.arange(len(points))))
    lo, hi = np.zeros(len(deep)), np.full(len(deep), _SEPARATION_MAX)
    for _ in range(_SEPARATION_STEPS if len(deep) else 0):
        mid = 0.5 * (lo + hi)
        bad = too_deep(mid, deep)
        lo, hi = np.where(bad, mid, lo), np.where(bad, hi, mid)
    push[deep] = hi
    return push


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


def separate(vertices: np.ndarray, keypoints: np.ndarray, tolerance: float) -> np.ndarray:
    """Shifts that push two hands apart until at most ``tolerance`` of each hand's
    vertices lie inside the other (its capsule model), half to each hand.

    The direction (per frame) is the candidate of :func:`_push_directions` that needs
    the least push over a few probe frames; the push is found per frame (on every other
    frame, interpolated between), held over neighbouring frames and smoothed, so the
    hands touch without jitter.

    Args:
        vertices: `(F, 2, V, 3)` both hands' vertices.
        keypoints: `(F, 2, 21, 3)`.
        tolerance: share of V.

    Returns:
        `(F, 2, 3)` translations to add to each hand (zeros where already apart).
    """
    frames = vertices.shape[0]
    points = vertices[:, :, ::_VERTEX_STRIDE].astype(np.float32)
    keypoints32 = keypoints.astype(np.float32)
    allowed = tolerance * points.shape[2]
    directions = _push_directions(vertices, keypoints).astype(np.float32)
    probe = np.unique(np.linspace(0, frames - 1, _PROBES).round().astype(np.int64))
    probe_push = [_shortest_push(points[probe], keypoints32[probe], d[probe], allowed) for d in directions]
    direction = directions[int(np.argmin([p.mean() for p in probe_push]))]
    sample = np.unique(np.r_[np.arange(0, frames, 2), frames - 1])
    push = np.interp(np.arange(frames), sample,
                     _shortest_push(points[sample], keypoints32[sample], direction[sample], allowed))
    if not push.any():
        return np.zeros((frames, 2, 3))
    # a push held over +-2 frames, then smoothed: never much less than needed nearby
    push = gaussian_filter1d(maximum_filter1d(push, 5, mode="nearest"), 1.0, mode="nearest")
    shift = 0.5 * push[:, None] * direction
    return np.stack([-shift, shift], 1).astype(float)
