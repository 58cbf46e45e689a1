"""Hand models: the MANO loader (no chumpy), linear blend skinning, joint maps, mirroring.

``load_hand_model("open" | path, side)`` gives a :class:`HandModel`; see
:mod:`fourdhands.hands.model` for the pose conventions (``flat_hand_mean``),
:mod:`fourdhands.hands.joints` for joint orders and fingertip conventions and
:mod:`fourdhands.hands.mirror` for right <-> left mirroring. The open hand model
(:mod:`fourdhands.hands.open_model`) is imported lazily.
"""

from .joints import (
    INTERHAND_TO_OPENPOSE,
    MANO_JOINT_NAMES,
    MANO_PARENTS,
    MANO_TO_OPENPOSE,
    OPENPOSE_JOINT_NAMES,
    OPENPOSE_PARENTS,
    OPENPOSE_TO_INTERHAND,
    TIP_VERTEX_IDS,
    interhand_to_openpose,
    keypoints_from_joints,
    openpose_to_interhand,
    tip_vertex_ids,
)
from .lbs import batch_rigid_transform, batch_rodrigues, lbs
from .mano_file import fix_left_shapedirs, read_mano_file, validate_model_data
from .mirror import mirror_model_data, mirror_params, mirror_points, mirror_pose, mirror_rotmats
from .model import HandModel, HandOutput, load_hand_model

__all__ = [
    "HandModel",
    "HandOutput",
    "load_hand_model",
    "read_mano_file",
    "validate_model_data",
    "fix_left_shapedirs",
    "lbs",
    "batch_rodrigues",
    "batch_rigid_transform",
    "MANO_JOINT_NAMES",
    "MANO_PARENTS",
    "OPENPOSE_JOINT_NAMES",
    "OPENPOSE_PARENTS",
    "MANO_TO_OPENPOSE",
    "OPENPOSE_TO_INTERHAND",
    "INTERHAND_TO_OPENPOSE",
    "TIP_VERTEX_IDS",
    "tip_vertex_ids",
    "keypoints_from_joints",
    "openpose_to_interhand",
    "interhand_to_openpose",
    "mirror_pose",
    "mirror_rotmats",
    "mirror_points",
    "mirror_params",
    "mirror_model_data",
]
