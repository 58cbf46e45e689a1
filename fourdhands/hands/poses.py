"""Named hand poses and a two-hand interaction, as MANO parameters.

Poses are right-hand ``hand_pose`` vectors `(45,)` (axis-angle of the 15 finger joints,
MANO order), absolute rotations: they mean what they say with ``flat_hand_mean=True``.
For a left hand, mirror them (``fourdhands.hands.mirror.mirror_pose``). They are built
from the open model's flexion axes, which follow MANO's rest frame, so they transfer to
MANO too.
"""

from __future__ import annotations

import numpy as np

from .open_model import FINGER_JOINTS, FLEXION_AXES

THUMB, INDEX, MIDDLE, RING, PINKY = range(5)
_SPREAD_AXIS = np.array([0.0, 1.0, 0.0])  # abduction: +y turns a finger towards the thumb


def _curl(pose: np.ndarray, finger: int, angles) -> None:
    for joint, angle in zip(FINGER_JOINTS[finger], angles):
        pose[joint - 1] += angle * FLEXION_AXES[finger]


def rest() -> np.ndarray:
    """The flat hand, `(45,)` zeros."""
    return np.zeros(45)


def fist() -> np.ndarray:
    """All fingers curled into the palm, the thumb folded over them, `(45,)`."""
    pose = np.zeros((15, 3))
    for finger in (INDEX, MIDDLE, RING, PINKY):
        _curl(pose, finger, (1.45, 1.6, 1.0))
    pose[FINGER_JOINTS[THUMB][0] - 1] = (0.35, 0.0, -0.25)
    _curl(pose, THUMB, (0.0, 1.1, 0.9))
    return pose.reshape(45)


def pinch() -> np.ndarray:
    """Thumb tip on index tip, the other fingers relaxed, `(45,)`."""
    pose = np.zeros((15, 3))
    pose[FINGER_JOINTS[THUMB][0] - 1] = (0.05, 0.01, -0.10)
    _curl(pose, THUMB, (0.0, 1.5, 0.92))
    _curl(pose, INDEX, (1.81, 0.76, -0.14))
    for finger in (MIDDLE, RING, PINKY):
        _curl(pose, finger, (0.25, 0.35, 0.2))
    return pose.reshape(45)


def spread() -> np.ndarray:
    """Fingers straight and spread apart, thumb stretched out, `(45,)`."""
    pose = np.zeros((15, 3))
    for finger, angle in ((INDEX, 0.22), (MIDDLE, 0.02), (RING, -0.18), (PINKY, -0.38)):
        pose[FINGER_JOINTS[finger][0] - 1] = angle * _SPREAD_AXIS
    _curl(pose, THUMB, (-0.25, -0.1, 0.0))
    return pose.reshape(45)


def point() -> np.ndarray:
    """Index finger out, the others curled, `(45,)`."""
    pose = fist().reshape(15, 3)
    pose[[j - 1 for j in FINGER_JOINTS[INDEX]]] = 0.0
    return pose.reshape(45)


NAMED = {"rest": rest, "fist": fist, "pinch": pinch, "spread": spread, "point": point}


def interlocked() -> dict[str, dict[str, np.ndarray]]:
    """Two hands with hooked, interleaved fingers, palms facing each other.

    Returns per side (``"right"``, ``"left"``) ``global_orient (3,)``, ``hand_pose (45,)``
    (flat_hand_mean=True) and ``transl (3,)`` in the right hand's rest frame (metres):
    the right hand as at rest, the left turned over (half a turn about x) under it.
    """
    pose = np.zeros((15, 3))
    _curl(pose, THUMB, (0.2, 0.4, 0.3))
    for finger in (INDEX, MIDDLE, RING, PINKY):
        _curl(pose, finger, (1.2, 1.3, 0.6))
    pose = pose.reshape(45)
    mirrored = (pose.reshape(15, 3) * [1.0, -1.0, -1.0]).reshape(45)
    return {
        "right": {"global_orient": np.zeros(3), "hand_pose": pose, "transl": np.zeros(3)},
        "left": {"global_orient": np.array([np.pi, 0.0, 0.0]), "hand_pose": mirrored,
                 "transl": np.array([0.02, -0.027, 0.009])},
    }
