"""The forearm a hand comes with: a tapered elliptical tube from the wrist to past the
frame's edge, bare or sleeved, that turns with the hand about the wrist.

Its axis leaves the wrist along the hand's own wrist-to-elbow direction, bent back by
the wrist's flexion and deviation (:class:`~fourdhands.synth.motion.Motion`'s
``wrist_bend``): the hand's orientation is the forearm's followed by the bend, so the
forearm points where a person's arm would (see the orientation model in
:mod:`~fourdhands.synth.motion`).

Cross-section: the hand's own wrist (the rest skin within 1 cm of the wrist joint, its
breadth and thickness), 0.85 of it where it starts inside the hand's wrist stump, growing
to 1.45x over 20 cm towards the elbow (wrist ~17 cm round, the forearm's thickest ~26 cm);
26 cm long. A sleeve is the same tube 1.2x as wide from its cuff on.

It is drawn as a mesh of its own: it hides what is behind it and is hidden like any
surface, and its pixels never count as the hand's (boxes and visibility read the hand's
mesh index only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

LENGTH = 0.26  # m
_RINGS, _AROUND = 22, 24
_START = 0.004  # m past the wrist joint: inside the hand's wrist stump


@dataclass(frozen=True)
class ForearmLook:
    """A sleeve's cuff distance from the wrist (m; None: bare) and its colour."""

    cuff: float | None
    sleeve_rgb: np.ndarray


def sample_forearm_look(rng: np.random.Generator, sleeve_rgb: np.ndarray) -> ForearmLook:
    """Bare half the time, else sleeved from 3-20 cm up the arm."""
    return ForearmLook(float(rng.uniform(0.03, 0.20)) if rng.uniform() < 0.5 else None, np.asarray(sleeve_rgb, float))


def wrist_section(rest_vertices: np.ndarray, root: np.ndarray, side: str) -> np.ndarray:
    """Half breadth (along z) and half thickness (along y) of the rest hand's wrist, `(2,)`
    m: the skin within 1 cm of the wrist joint ``root (3,)`` along the forearm (+x for
    the right hand, -x for the left)."""
    x = (rest_vertices[:, 0] - root[0]) * (1.0 if side == "right" else -1.0)
    near = rest_vertices[(x > -0.002) & (x < 0.010)]
    half = 0.5 * (near.max(0) - near.min(0))
    return np.array([half[2], half[1]])


def wrist_rotation(side: str, bend) -> Rotation:
    """The hand's rotation relative to its forearm, in the hand's rest axes: flexion
    ``bend[0]`` (radians, about the rest flexion axis, +z for the right hand: positive
    bends the palm side down) then deviation ``bend[1]`` (about the palm normal, y). A
    hand turned by R has its forearm turned by ``R * wrist_rotation(side, bend).inv()``.
    The left hand's is the mirror image of the right's."""
    right = Rotation.from_rotvec([0.0, 0.0, bend[0]]) * Rotation.from_rotvec([0.0, bend[1], 0.0])
    if side == "right":
        return right
    m = np.diag([-1.0, 1.0, 1.0])
    return Rotation.from_matrix(m @ right.as_matrix() @ m)


def forearm_mesh(section: np.ndarray, side: str, bend: np.ndarray, look: ForearmLook,
                 skin_rgb: np.ndarray, scale: float = 1.0):
    """The forearm in the hand's rest frame, relative to the wrist joint: vertices
    `(R * A, 3)`, faces, per-vertex colours `(R * A, 3)`."""
    d = np.linspace(_START, LENGTH, _RINGS)
    t = np.clip(d / 0.20, 0.0, 1.0)
    grow = 0.85 + (1.45 - 0.85) * (t * t * (3 - 2 * t))
    sleeved = np.zeros_like(d) if look.cuff is None else np.clip((d - look.cuff) / 0.006, 0.0, 1.0)
    radius = grow * (1 + 0.2 * sleeved)
    phi = np.linspace(0, 2 * np.pi, _AROUND, endpoint=False)
    along = 1.0 if side == "right" else -1.0
    ring = np.stack([np.zeros_like(phi), section[1] * np.sin(phi), section[0] * np.cos(phi)], 1)
    v = (ring[None] * radius[:, None, None] + np.stack([along * d, 0 * d, 0 * d], 1)[:, None]) * scale
    v = wrist_rotation(side, bend).inv().apply(v.reshape(-1, 3))
    i, j = np.meshgrid(np.arange(_RINGS - 1), np.arange(_AROUND), indexing="ij")
    a, b = i * _AROUND + j, i * _AROUND + (j + 1) % _AROUND
    # counter-clockwise seen from outside for a tube along +x; mirrored for the left
    faces = np.concatenate([np.stack([a, b + _AROUND, b], -1), np.stack([a, a + _AROUND, b + _AROUND], -1)]).reshape(-1, 3)
    if side == "left":
        faces = faces[:, ::-1]
    colors = np.repeat(np.asarray(skin_rgb, float)[None] * (1 - sleeved[:, None]) + look.sleeve_rgb * sleeved[:, None],
                       _AROUND, axis=0)
    return v, faces, colors
