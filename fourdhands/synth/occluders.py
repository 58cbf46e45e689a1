"""Objects in front of the hands: a plate or ball that hides a hand for a spell, and
pens, boxes and balls passing by. Planned once the hands are posed, from their
keypoints, so that the hiding object covers the hand whole."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from .motion import Motion, View, backproject, project, random_rotation


@dataclass
class Occluder:
    """An object in front of the hands: a trimesh primitive moving rigidly.

    Attributes:
        kind: ``"box"``, ``"sphere"``, ``"cylinder"`` or ``"capsule"``.
        size: `(3,)` metres: box extents; sphere (radius, -, -); cylinder and capsule
            (radius, length, -) along the local z axis.
        centre: `(F, 3)` camera frame.
        rotation: `(F, 3)` axis-angle.
    """

    kind: str
    size: np.ndarray
    centre: np.ndarray
    rotation: np.ndarray


_OCCLUDER_KINDS = ("box", "sphere", "cylinder", "capsule")


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _hiding_occluder(rng, keypoints: np.ndarray, start: int, stop: int, view: View) -> Occluder:
    """A plate (a book, a card) or a ball that flies in, sits between the camera and the
    hand with ``keypoints (F, 21, 3)`` over frames start..stop-1 covering it whole, and
    flies out. It sits at 55 % of the hand's nearest depth and covers the hand's image
    (the circle around its keypoints plus 2 cm of flesh) with a 30 % margin."""
    K, frames = view.K, view.frames
    uv = project(keypoints, K)
    lo, hi = uv.min(1), uv.max(1)
    near = keypoints[..., 2].min(1)
    follow_uv = (lo + hi) / 2
    radius_px = np.linalg.norm(hi - lo, axis=1) / 2 + K[0, 0] * 0.02 / near
    depth = 0.55 * near
    half = 1.3 * (radius_px * depth / K[0, 0])[start:stop].max()
    kind = "box" if rng.uniform() < 0.7 else "sphere"
    if kind == "box":  # facing the camera, at most ~10 degrees off
        size = np.r_[2 * half * rng.uniform(1.0, 1.4, 2), rng.uniform(0.008, 0.03)]
        base = Rotation.from_rotvec(np.r_[rng.uniform(-0.15, 0.15, 2), rng.uniform(-np.pi, np.pi)])
    else:
        size = np.array([half, 0.0, 0.0])
        base = Rotation.identity()
    # image position and log depth: follow the hand over the spell, fly in and out around it
    track = np.column_stack([follow_uv, np.log(depth)])
    t = np.arange(frames, dtype=float)
    diagonal = np.hypot(view.width, view.height)
    for edge, sign in ((start, -1), (stop - 1, 1)):
        travel = rng.uniform(6, 15)
        angle = rng.uniform(0, 2 * np.pi)
        away = (diagonal + half * K[0, 0] / depth[edge]) * np.array([np.cos(angle), np.sin(angle)])
        far = track[edge] + np.r_[away, 0.0]
        side = (t < edge) if sign < 0 else (t > edge)
        w = _smoothstep(sign * (t - edge) / travel)[:, None]
        track[side] = ((1 - w) * track[edge] + w * far)[side]
    centre = backproject(track[:, :2], np.exp(track[:, 2]), K)
    # it tumbles in flight and holds still, facing the camera, over the spell
    flight = np.minimum(t - start, 0.0) + np.maximum(t - (stop - 1), 0.0)
    spin = Rotation.from_rotvec(np.outer(flight, rng.normal(0.0, 0.03, 3)))
    return Occluder(kind, size, centre, (spin * base).as_rotvec())


def _passing_occluder(rng, keypoints: np.ndarray, present: np.ndarray, view: View) -> Occluder:
    """A pen, box or ball crossing the image in a straight line, passing in front of a
    hand's palm at some frame, at 40-85 % of that hand's depth."""
    K, frames = view.K, view.frames
    slot = int(rng.choice(np.flatnonzero(present)))
    when = int(rng.integers(frames))
    palm = keypoints[when, slot, [0, 5, 9, 13, 17]].mean(0)
    depth = palm[2] * rng.uniform(0.4, 0.85)
    kind = _OCCLUDER_KINDS[rng.integers(len(_OCCLUDER_KINDS))]
    scale = rng.uniform(0.02, 0.06)
    size = {"box": np.r_[rng.uniform(0.5, 2.0, 3) * scale],
            "sphere": np.array([0.6 * scale, 0.0, 0.0]),
            "cylinder": np.array([rng.uniform(0.08, 0.3) * scale, rng.uniform(2, 5) * scale, 0.0]),
            "capsule": np.array([rng.uniform(0.08, 0.3) * scale, rng.uniform(2, 5) * scale, 0.0])}[kind]
    angle = rng.uniform(0, 2 * np.pi)
    speed = np.hypot(view.width, view.height) / rng.uniform(0.5, 2.0) / max(frames, 1)
    t = np.arange(frames, dtype=float)
    uv = project(palm, K) + np.outer(t - when, speed * np.array([np.cos(angle), np.sin(angle)]))
    centre = backproject(uv, np.full(frames, depth), K)
    spin = Rotation.from_rotvec(np.outer(t, rng.normal(0.0, 0.05, 3)))
    return Occluder(kind, size, centre, (spin * Rotation.from_rotvec(random_rotation(rng))).as_rotvec())


def plan_occluders(rng: np.random.Generator, motion: Motion, keypoints: np.ndarray, K: np.ndarray,
                   image_size: tuple[int, int], decor: int) -> list[Occluder]:
    """The objects in front of the hands, once they are posed.

    Args:
        rng: the sequence's occluder stream.
        motion: the planned motion (its ``hide`` may ask for a hiding object).
        keypoints: `(F, 2, 21, 3)` posed keypoints, camera frame.
        K: `(3, 3)`; image_size: ``(W, H)``.
        decor: how many objects pass in front of the hands besides.
    """
    view = View(K, image_size[0], image_size[1], keypoints.shape[0])
    out = []
    hide = motion.hide
    if hide is not None and hide["by"] == "occluder":
        out.append(_hiding_occluder(rng, keypoints[:, hide["slot"]], hide["start"], hide["stop"], view))
    out += [_passing_occluder(rng, keypoints, motion.present, view) for _ in range(decor)]
    return out
