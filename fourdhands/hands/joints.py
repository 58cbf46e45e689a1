"""Joint sets, orders and fingertip conventions: the one place where they are defined.

- MANO's 16 joints in kinematic order: wrist, index1-3, middle1-3, pinky1-3, ring1-3,
  thumb1-3 (:data:`MANO_JOINT_NAMES`).
- The 21 keypoints in OpenPose / InterHand-style order used everywhere in fourdhands:
  wrist, then thumb, index, middle, ring, pinky, each base to tip (:data:`OPENPOSE_JOINT_NAMES`).
  They are the 16 MANO joints followed by 5 fingertip vertices (thumb, index, middle,
  ring, pinky), reordered by :data:`MANO_TO_OPENPOSE`.
- InterHand2.6M's per-hand order: thumb tip..thumb1, index tip..1, middle, ring, pinky,
  wrist (:data:`OPENPOSE_TO_INTERHAND`).
- Fingertip vertex ids differ between libraries (:data:`TIP_VERTEX_IDS`); fourdhands
  uses ``"intaghand"`` (745, 317, 444, 556, 673, as IntagHand and manopth) by default.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import UserError

__all__ = [
    "MANO_JOINT_NAMES",
    "OPENPOSE_JOINT_NAMES",
    "INTERHAND_JOINT_NAMES",
    "MANO_PARENTS",
    "MANO_TO_OPENPOSE",
    "OPENPOSE_TO_INTERHAND",
    "INTERHAND_TO_OPENPOSE",
    "OPENPOSE_PARENTS",
    "TIP_NAMES",
    "TIP_VERTEX_IDS",
    "DEFAULT_TIPS",
    "NUM_KEYPOINTS",
    "tip_vertex_ids",
    "keypoints_from_joints",
    "openpose_to_interhand",
    "interhand_to_openpose",
]

#: MANO's 16 joints, in the order of J_regressor rows and of the pose vector.
MANO_JOINT_NAMES: tuple[str, ...] = (
    "wrist",
    "index1", "index2", "index3",
    "middle1", "middle2", "middle3",
    "pinky1", "pinky2", "pinky3",
    "ring1", "ring2", "ring3",
    "thumb1", "thumb2", "thumb3",
)  # fmt: skip

#: Parent of each MANO joint (root -1), as in the official kintree_table.
MANO_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)

TIP_NAMES: tuple[str, ...] = ("thumb4", "index4", "middle4", "ring4", "pinky4")

#: The 21 keypoints, OpenPose order: wrist, then thumb, index, middle, ring, pinky (base to tip).
OPENPOSE_JOINT_NAMES: tuple[str, ...] = ("wrist",) + tuple(
    f"{finger}{i}" for finger in ("thumb", "index", "middle", "ring", "pinky") for i in (1, 2, 3, 4)
)
NUM_KEYPOINTS = 21

#: Index into concat(16 MANO joints, 5 tips [thumb, index, middle, ring, pinky]) for each
#: OpenPose keypoint.
MANO_TO_OPENPOSE: tuple[int, ...] = (
    0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20,
)  # fmt: skip

#: Parent of each OpenPose keypoint (root -1): a chain per finger from the wrist.
OPENPOSE_PARENTS: tuple[int, ...] = (-1,) + tuple(
    0 if i % 4 == 0 else i for i in range(20)
)

#: InterHand2.6M order from OpenPose order: ``x_interhand = x_openpose[..., OPENPOSE_TO_INTERHAND, :]``.
OPENPOSE_TO_INTERHAND: tuple[int, ...] = (
    4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9, 16, 15, 14, 13, 20, 19, 18, 17, 0,
)  # fmt: skip
#: The inverse: ``x_openpose = x_interhand[..., INTERHAND_TO_OPENPOSE, :]``.
INTERHAND_TO_OPENPOSE: tuple[int, ...] = tuple(int(i) for i in np.argsort(OPENPOSE_TO_INTERHAND))
INTERHAND_JOINT_NAMES: tuple[str, ...] = tuple(OPENPOSE_JOINT_NAMES[i] for i in OPENPOSE_TO_INTERHAND)

#: Fingertip vertex ids of the MANO mesh (thumb, index, middle, ring, pinky), per library.
#: ``"intaghand"``: IntagHand and manopth (manopth's left hand uses 445 for the middle tip,
#: see ``"manopth"``); ``"smplx"``: smplx and HaMeR.
TIP_VERTEX_IDS: dict[str, tuple[int, ...]] = {
    "intaghand": (745, 317, 444, 556, 673),
    "smplx": (744, 320, 443, 554, 671),
    "hamer": (744, 320, 443, 554, 671),
}
_MANOPTH_LEFT = (745, 317, 445, 556, 673)
DEFAULT_TIPS = "intaghand"


def tip_vertex_ids(
    tips: str | Sequence[int] = DEFAULT_TIPS, side: str = "right", num_vertices: int | None = None
) -> tuple[int, ...]:
    """The 5 fingertip vertex ids (thumb, index, middle, ring, pinky).

    ``tips`` is a convention name (``"intaghand"``, ``"smplx"``, ``"hamer"``, or
    ``"manopth"``: like intaghand but 445 for the left middle tip) or 5 explicit ids.
    With ``num_vertices`` the ids are checked against the mesh size. Raises UserError.
    """
    if isinstance(tips, str):
        key = tips.lower()
        if key == "manopth":
            ids = _MANOPTH_LEFT if side == "left" else TIP_VERTEX_IDS["intaghand"]
        elif key in TIP_VERTEX_IDS:
            ids = TIP_VERTEX_IDS[key]
        else:
            names = ", ".join(sorted(list(TIP_VERTEX_IDS) + ["manopth"]))
            raise UserError(f"fingertip convention '{tips}' is unknown (known: {names})")
    else:
        try:
            ids = tuple(int(i) for i in np.asarray(tips).reshape(-1))
        except (TypeError, ValueError):
            raise UserError(f"fingertip vertex ids {tips!r} are not 5 integers") from None
        if len(ids) != 5:
            raise UserError(f"fingertip vertex ids: expected 5 (thumb..pinky), got {len(ids)}")
    if num_vertices is not None and not all(0 <= i < num_vertices for i in ids):
        raise UserError(
            f"fingertip vertex ids {list(ids)} do not fit a mesh of {num_vertices} vertices"
            + (f" (convention '{tips}' is for the 778-vertex MANO mesh)" if isinstance(tips, str) else "")
        )
    return ids


def keypoints_from_joints(joints: Tensor, vertices: Tensor, tip_ids: Sequence[int] | Tensor) -> Tensor:
    """The 21 OpenPose-order keypoints from the 16 MANO joints and the fingertip vertices.

    Args:
        joints: (B, 16, 3) MANO joints (kinematic order).
        vertices: (B, V, 3) mesh vertices.
        tip_ids: (5,) vertex ids (thumb, index, middle, ring, pinky).
    Returns:
        (B, 21, 3) keypoints in OpenPose order.
    """
    if not isinstance(tip_ids, Tensor):
        tip_ids = torch.as_tensor(list(tip_ids), dtype=torch.long, device=vertices.device)
    tips = vertices.index_select(-2, tip_ids.to(vertices.device))
    both = torch.cat([joints, tips], dim=-2)
    order = torch.as_tensor(MANO_TO_OPENPOSE, dtype=torch.long, device=both.device)
    return both.index_select(-2, order)


def _reorder(x, order: Sequence[int], axis: int):
    if isinstance(x, Tensor):
        return x.index_select(axis, torch.as_tensor(order, dtype=torch.long, device=x.device))
    return np.take(np.asarray(x), order, axis=axis)


def openpose_to_interhand(x, axis: int = -2):
    """Reorder 21 keypoints from OpenPose to InterHand2.6M order along ``axis`` (torch or numpy)."""
    return _reorder(x, OPENPOSE_TO_INTERHAND, axis)


def interhand_to_openpose(x, axis: int = -2):
    """Reorder 21 keypoints from InterHand2.6M to OpenPose order along ``axis`` (torch or numpy)."""
    return _reorder(x, INTERHAND_TO_OPENPOSE, axis)
