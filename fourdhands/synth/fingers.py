"""Finger poses within joint limits, for synthetic hands: named articulations and
random ones, in the joint bases and limits of :mod:`fourdhands.hands.joint_limits`.
"""

from __future__ import annotations

import numpy as np

from ..hands import poses
from ..hands.joint_limits import (  # noqa: F401 (part of this module's interface)
    FINGER_JOINTS,
    FINGER_OF_JOINT,
    INDEX,
    JOINT_BASES,
    JOINT_LIMITS,
    MIDDLE,
    PINKY,
    RING,
    THUMB,
    articulation_to_pose,
    clip_to_limits,
    pose_to_articulation,
    within_limits,
)

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
    curl = np.clip(shared + rng.normal(0.0, 0.25, 5), 0.0, 1.0)[FINGER_OF_JOINT]
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
