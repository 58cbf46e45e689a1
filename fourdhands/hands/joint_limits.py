"""Finger joint limits: each of the 15 finger joints' axis-angle written in the joint's
own basis (rows of :data:`JOINT_BASES`: the finger's flexion axis, the open model's
``FLEXION_AXES`` and MANO's rest frame; the abduction axis ``+y``, towards the thumb; the
twist axis along the finger), the "articulation" `(15, 3)`, bounded coordinate-wise by
:data:`JOINT_LIMITS`: a box, so any blend of poses within the limits, and any monotone
interpolation between them, is within them too. Right hand; a left hand takes the
mirrored pose (:func:`~fourdhands.hands.mirror.mirror_pose`). Synthetic poses are drawn
inside (:mod:`fourdhands.synth.fingers`); refinement penalises leaving it.
"""

from __future__ import annotations

import numpy as np

from .open_model import FINGER_JOINTS, FLEXION_AXES

THUMB, INDEX, MIDDLE, RING, PINKY = range(5)

#: the finger (THUMB..PINKY) of each finger joint (MANO order 1-15)
FINGER_OF_JOINT = np.zeros(15, np.int64)
for _k, _ids in enumerate(FINGER_JOINTS):
    FINGER_OF_JOINT[[j - 1 for j in _ids]] = _k


def _finger_basis(k: int) -> np.ndarray:
    flex = FLEXION_AXES[k]
    spread = np.array([0.0, 1.0, 0.0])  # flexion axes have no y part, so this is orthogonal
    return np.stack([flex, spread, np.cross(flex, spread)])


#: `(15, 3, 3)`: per finger joint (MANO order 1-15), rows = flexion, abduction, twist axes.
JOINT_BASES = np.stack([_finger_basis(k) for k in FINGER_OF_JOINT])

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
