"""The arm a hand comes with: a tapered elliptical tube from the wrist to the elbow, bent
there into the upper arm, which ends in a closed, rounded shoulder; bare or sleeved; it
turns with the hand about the wrist.

The forearm's axis leaves the wrist along the hand's own wrist-to-elbow direction, bent
back by the wrist's flexion and deviation (:class:`~fourdhands.synth.motion.Motion`'s
``wrist_bend``): the hand's orientation is the forearm's followed by the bend, so the
forearm points where a person's arm would (see the orientation model in
:mod:`~fourdhands.synth.motion`). At the elbow the tube turns, over a rounded bend, into
the upper arm's direction (:func:`~fourdhands.synth.motion.upper_arm_direction`: towards
where the shoulder would be for the viewpoint; the scene keeps, of a few such draws and
as many in any direction the elbow allows, the one whose shoulder is least in view, as no
body is drawn for it to join). A forearm that
simply ended at the elbow showed its open mouth, a dark disc, wherever the elbow fell
inside the image (30-66 % of the hand frames of the evaluation splits, facing the camera
in 1-40 %).

Cross-section: the hand's own wrist (the rest skin within 1 cm of the wrist joint, its
breadth and thickness), 0.85 of it where it starts inside the hand's wrist stump, growing
to 1.45x over 20 cm towards the elbow (wrist ~17 cm round, the forearm's thickest ~26 cm)
and to 1.65x along the upper arm (~29 cm round); forearm 26 cm, upper arm 30 cm (elbow
to shoulder joint), then a half-ellipsoid cap. A sleeve is the same tube 1.2x as wide
from its cuff on.

It is drawn as a mesh of its own: it hides what is behind it and is hidden like any
surface, and its pixels never count as the hand's (boxes and visibility read the hand's
mesh index only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

LENGTH = 0.26  # m, wrist -> elbow
UPPER_LENGTH = 0.30  # m, elbow -> shoulder joint
FOREARM_RINGS, _AROUND = 22, 24  # rings from the wrist to where the elbow's bend begins
_BEND, _BEND_RINGS, _UPPER_RINGS, _CAP_RINGS = 0.04, 6, 10, 4  # bend: 4 cm either side of the elbow
_START = 0.004  # m past the wrist joint: inside the hand's wrist stump
#: Wrist -> elbow in each hand's rest frame, before the wrist's bend.
REST_AXIS = {"right": np.array([1.0, 0.0, 0.0]), "left": np.array([-1.0, 0.0, 0.0])}


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


def upper_arm_points(side: str, bend: np.ndarray, upper: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """`(4, 3)` points on the upper arm's axis from the elbow to the far end of the arm (the
    shoulder cap's apex, about), in the hand's rest frame relative to the wrist joint, for
    the unit elbow -> shoulder ``upper`` (rest frame)."""
    elbow = wrist_rotation(side, bend).inv().apply(REST_AXIS[side] * LENGTH)
    reach = np.linspace(0.0, UPPER_LENGTH + 0.05, 4)[:, None]
    return (elbow + reach * np.asarray(upper, float)) * scale


def _centre_line(upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ring centres `(N, 3)` along the arm in the forearm's frame (wrist at 0, forearm along
    +x), and their distances along it `(N,)`: the forearm, a quadratic bend about the elbow
    into the unit direction ``upper``, the upper arm."""
    x = np.array([1.0, 0.0, 0.0])
    elbow = LENGTH * x
    fore = np.linspace(_START, LENGTH - _BEND, FOREARM_RINGS)[:, None] * x
    t = np.linspace(0.0, 1.0, _BEND_RINGS + 2)[1:-1, None]
    a, b = elbow - _BEND * x, elbow + _BEND * upper
    bend = (1 - t) ** 2 * a + 2 * t * (1 - t) * elbow + t * t * b
    arm = elbow + np.linspace(_BEND, UPPER_LENGTH, _UPPER_RINGS)[:, None] * upper
    centres = np.concatenate([fore, bend, arm])
    along = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(centres, axis=0), axis=1))] + _START
    return centres, along


def _ring_frames(centres: np.ndarray) -> np.ndarray:
    """`(N, 2, 3)` each ring's two cross-section axes (thickness, breadth), carried along
    the centre line by parallel transport from the forearm's y and z."""
    tangents = np.gradient(centres, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    frames = [np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])]
    for before, after in zip(tangents[:-1], tangents[1:]):
        turn, _ = Rotation.align_vectors(after[None], before[None])
        frames.append(turn.apply(frames[-1]))
    return np.stack(frames)


def _girth(along: np.ndarray) -> np.ndarray:
    """Radius over the wrist's, `(N,)`: 0.85 -> 1.45 over the forearm's first 20 cm, to
    1.65 over the upper arm."""
    t = np.clip(along / 0.20, 0.0, 1.0)
    u = np.clip((along - LENGTH) / UPPER_LENGTH, 0.0, 1.0)
    return 0.85 + 0.60 * t * t * (3 - 2 * t) + 0.20 * u


def forearm_mesh(section: np.ndarray, side: str, bend: np.ndarray, look: ForearmLook,
                 skin_rgb: np.ndarray, upper: np.ndarray, scale: float = 1.0):
    """The arm in the hand's rest frame, relative to the wrist joint: vertices `(V, 3)`,
    faces (outward, closed at the shoulder), per-vertex colours `(V, 3)`. ``upper``: unit
    elbow -> shoulder direction `(3,)` in the hand's rest frame."""
    to_forearm = wrist_rotation(side, bend)
    mirror = np.array([1.0 if side == "right" else -1.0, 1.0, 1.0])  # the left arm is built mirrored
    centres, along = _centre_line(to_forearm.apply(upper) * mirror)
    frames = _ring_frames(centres)
    radius = _girth(along)
    sleeved = np.zeros_like(along) if look.cuff is None else np.clip((along - look.cuff) / 0.006, 0.0, 1.0)
    radius = radius * (1 + 0.2 * sleeved)
    phi = np.linspace(0, 2 * np.pi, _AROUND, endpoint=False)
    shape = np.stack([section[1] * np.sin(phi), section[0] * np.cos(phi)], 1)  # (A, 2): thickness, breadth
    rings = centres[:, None] + radius[:, None, None] * np.einsum("ak,nkd->nad", shape, frames)
    # the shoulder: a half-ellipsoid over the last ring, its depth the ring's mean radius
    tip = np.linalg.norm(centres[-1] - centres[-2])
    tangent = (centres[-1] - centres[-2]) / tip
    depth = radius[-1] * float(np.mean(section))
    angles = np.linspace(0.0, np.pi / 2, _CAP_RINGS + 2)[1:-1]
    cap = [centres[-1] + depth * np.sin(a) * tangent + np.cos(a) * (rings[-1] - centres[-1]) for a in angles]
    v = np.concatenate([rings.reshape(-1, 3), np.concatenate(cap), (centres[-1] + depth * tangent)[None]])
    n = len(rings) + len(cap)
    i, j = np.meshgrid(np.arange(n - 1), np.arange(_AROUND), indexing="ij")
    a, b = i * _AROUND + j, i * _AROUND + (j + 1) % _AROUND
    # counter-clockwise seen from outside for a tube along +x, closed by a fan at the apex
    apex = len(v) - 1
    last = (n - 1) * _AROUND + np.arange(_AROUND)
    faces = np.concatenate([np.stack([a, b + _AROUND, b], -1).reshape(-1, 3),
                            np.stack([a, a + _AROUND, b + _AROUND], -1).reshape(-1, 3),
                            np.stack([last, np.full(_AROUND, apex), np.roll(last, -1)], -1)])
    v = to_forearm.inv().apply(v * mirror * scale)
    if side == "left":
        faces = faces[:, ::-1]
    shade = np.r_[sleeved, np.full(len(cap), sleeved[-1])]
    colors = np.asarray(skin_rgb, float)[None] * (1 - shade[:, None]) + look.sleeve_rgb * shade[:, None]
    colors = np.concatenate([np.repeat(colors, _AROUND, axis=0), colors[-1:]])
    return v, faces, colors
