"""Finger poses within joint limits, for synthetic hands.

Each of the 15 finger joints rotates by an axis-angle vector, which this module writes
in the joint's own basis (rows of :data:`JOINT_BASES`): the finger's flexion axis (the
open model's ``FLEXION_AXES``, the same as MANO's rest frame), the abduction axis ``+y``
(turns a finger towards the thumb) and the twist axis along the finger. This is the
"articulation" `(15, 3)`. :data:`JOINT_LIMITS` bounds each coordinate: a box, so any
blend of poses within the limits, and any monotone interpolation between them, is
within them too. The articulation is that of a right hand; a left hand takes the
mirrored pose (``mirror_pose``), the same articulation of the mirrored hand.
"""

from __future__ import annotations

import numpy as np

from ..hands import poses
from ..hands.open_model import FINGER_JOINTS, FLEXION_AXES

THUMB, INDEX, MIDDLE, RING, PINKY = range(5)

_FINGER_OF_JOINT = np.zeros(15, np.int64)
for _k, _ids in enumerate(FINGER_JOINTS):
    _FINGER_OF_JOINT[[j - 1 for j in _ids]] = _k


def _finger_basis(k: int) -> np.ndarray:
    flex = FLEXION_AXES[k]
    spread = np.array([0.0, 1.0, 0.0])  # flexion axes have no y part, so this is orthogonal
    return np.stack([flex, spread, np.cross(flex, spread)])


#: `(15, 3, 3)`: per finger joint (MANO order 1-15), rows = flexion, abduction, twist axes.
JOINT_BASES = np.stack([_finger_basis(k) for k in _FINGER_OF_JOINT])

# Per finger, per joint (base, middle, end): (low, high) radians of flexion, abduction,
# twist. Fingers: MCP flexes -20..106 deg (hyperextension to a tight fist) and spreads
# (index out to the thumb side, pinky away); PIP to 103 deg; DIP to 80 deg; the outer
# joints barely spread or twist. The thumb's CMC also swings (abduction) and rolls
# (twist, opposition). The named poses of fourdhands.hands.poses lie inside.
_FINGER_LIMITS = {
    THUMB: (((-0.6, 0.9), (-0.5, 0.6), (-0.9, 0.3)),
            ((-0.3, 1.6), (-0.15, 0.15), (-0.15, 0.15)),
            ((-0.4, 1.3), (-0.05, 0.05), (-0.05, 0.05))),
    INDEX: (((-0.35, 1.85), (-0.25, 0.40), (-0.15, 0.15)),),
    MIDDLE: (((-0.35, 1.85), (-0.25, 0.25), (-0.15, 0.15)),),
    RING: (((-0.35, 1.85), (-0.30, 0.20), (-0.15, 0.15)),),
    PINKY: (((-0.35, 1.85), (-0.50, 0.20), (-0.15, 0.15)),),
}
_OUTER_FINGER_JOINTS = (((-0.1, 1.8), (-0.05, 0.05), (-0.05, 0.05)),
                        ((-0.2, 1.4), (-0.05, 0.05), (-0.05, 0.05)))


def _joint_limits() -> np.ndarray:
    limits = np.zeros((15, 3, 2))
    for k, ids in enumerate(FINGER_JOINTS):
        rows = _FINGER_LIMITS[k] if k == THUMB else _FINGER_LIMITS[k] + _OUTER_FINGER_JOINTS
        for j, row in zip(ids, rows):
            limits[j - 1] = row
    return limits


#: `(15, 3, 2)` radians: (low, high) of (flexion, abduction, twist) per finger joint.
JOINT_LIMITS = _joint_limits()
for _a in (JOINT_BASES, JOINT_LIMITS):
    _a.setflags(write=False)


def articulation_to_pose(articulation: np.ndarray) -> np.ndarray:
    """Right-hand ``hand_pose`` `(..., 45)` from articulation `(..., 15, 3)`."""
    pose = np.einsum("...jc,jcd->...jd", articulation, JOINT_BASES)
    return pose.reshape(*articulation.shape[:-2], 45)


def pose_to_articulation(hand_pose: np.ndarray) -> np.ndarray:
    """Inverse of :func:`articulation_to_pose`: `(..., 45)` -> `(..., 15, 3)`."""
    pose = np.asarray(hand_pose, float).reshape(*np.shape(hand_pose)[:-1], 15, 3)
    return np.einsum("...jd,jcd->...jc", pose, JOINT_BASES)


def clip_to_limits(articulation: np.ndarray) -> np.ndarray:
    """Articulation `(..., 15, 3)` clipped into :data:`JOINT_LIMITS`."""
    return np.clip(articulation, JOINT_LIMITS[..., 0], JOINT_LIMITS[..., 1])


def within_limits(hand_pose: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Whether right-hand poses `(..., 45)` respect the limits: `(...)` bool."""
    a = pose_to_articulation(hand_pose)
    return ((a >= JOINT_LIMITS[..., 0] - tol) & (a <= JOINT_LIMITS[..., 1] + tol)).all((-1, -2))


def _curled(finger_flex: dict[int, tuple[float, float, float]], thumb=None) -> np.ndarray:
    a = np.zeros((15, 3))
    for k, flex in finger_flex.items():
        a[[j - 1 for j in FINGER_JOINTS[k]], 0] = flex
    if thumb is not None:  # CMC (flex, abduction, twist), MCP flex, IP flex
        cmc, mcp, ip = (j - 1 for j in FINGER_JOINTS[THUMB])
        a[cmc], a[mcp, 0], a[ip, 0] = thumb[:3], thumb[3], thumb[4]
    return a


def _named_articulations() -> dict[str, np.ndarray]:
    named = {name: pose_to_articulation(make()) for name, make in poses.NAMED.items()}
    fingers = (INDEX, MIDDLE, RING, PINKY)
    # a power grasp around a ~4 cm cylinder, the thumb wrapped opposite the fingers
    named["grasp"] = _curled({k: (0.95, 1.05, 0.45) for k in fingers}, (0.35, 0.3, -0.55, 0.5, 0.4))
    # the hand at rest, hanging loose
    named["relaxed"] = _curled({k: (0.3 + 0.06 * k, 0.45, 0.2) for k in fingers}, (0.1, 0.15, -0.2, 0.3, 0.2))
    # fingers straight, the thumb swung back out of the palm's plane (for palms pressed together)
    named["flat"] = _curled({}, (-0.3, 0.0, 0.0, 0.0, 0.0))
    named["interlock"] = pose_to_articulation(poses.interlocked()["right"]["hand_pose"])
    return named


#: Named articulations `(15, 3)`: rest, fist, pinch, spread, point (fourdhands.hands.poses),
#: grasp, relaxed, flat, and the interlocking hook of ``poses.interlocked``.
NAMED_ARTICULATIONS = _named_articulations()
assert all(within_limits(articulation_to_pose(a)) for a in NAMED_ARTICULATIONS.values())


def random_articulation(rng: np.random.Generator) -> np.ndarray:
    """A random hand within the limits, `(15, 3)`: each finger curls by its own amount
    around a shared tendency (fingers flex together), abduction shrinks as a finger
    curls, and every coordinate gets a little independent noise."""
    lo, hi = JOINT_LIMITS[..., 0], JOINT_LIMITS[..., 1]
    shared = rng.uniform(0.0, 1.0)
    curl = np.clip(shared + rng.normal(0.0, 0.25, 5), 0.0, 1.0)[_FINGER_OF_JOINT]
    a = np.zeros((15, 3))
    a[:, 0] = curl * 0.85 * hi[:, 0]
    mid, half = (lo[:, 1:] + hi[:, 1:]) / 2, (hi[:, 1:] - lo[:, 1:]) / 2
    a[:, 1:] = mid + half * rng.uniform(-1.0, 1.0, (15, 2)) * (1.0 - 0.7 * curl)[:, None]
    a += rng.normal(0.0, 0.08, (15, 3)) * (hi - lo) / 2
    return clip_to_limits(a)


_EVERYDAY = ("rest", "fist", "pinch", "spread", "point", "grasp", "relaxed")


def finger_keys(rng: np.random.Generator, n: int, names=_EVERYDAY, randomness=(0.0, 0.4),
                random_share: float = 0.4) -> np.ndarray:
    """`(n, 15, 3)` keyframe articulations: a named pose (from ``names``) blended towards
    a random one by a weight drawn from ``randomness``, or with probability
    ``random_share`` a random pose outright."""
    keys = np.empty((n, 15, 3))
    for i in range(n):
        wild = random_articulation(rng)
        if rng.uniform() < random_share:
            keys[i] = wild
        else:
            base = NAMED_ARTICULATIONS[names[rng.integers(len(names))]]
            keys[i] = base + rng.uniform(*randomness) * (wild - base)
    return clip_to_limits(keys)
