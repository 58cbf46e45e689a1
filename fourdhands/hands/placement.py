"""Moving a posed hand rigidly by changing its parameters, not its vertices.

MANO rotates a hand about its own root joint J0 (which depends on the shape) and then
adds ``transl``: ``x = R_g (x0 - J0) + J0 + t``. Applying a rigid motion ``y = Q x + c``
on top gives again a hand of the same model, with ``R_g' = Q R_g`` and
``t' = Q (J0 + t) + c - J0``. This is how a scene is put in front of a camera.
"""

from __future__ import annotations

from torch import Tensor

from ..geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle


def transform_params(global_orient: Tensor, transl: Tensor, root: Tensor,
                     rotation: Tensor, translation: Tensor) -> tuple[Tensor, Tensor]:
    """Parameters of the hand moved by ``y = rotation @ x + translation``.

    Args:
        global_orient: `(B, 3)` axis-angle.
        transl: `(B, 3)`.
        root: `(B, 3)` the rest root joint J0 of the hand's shape
            (``HandModel.rest_joints(betas)[:, 0]``).
        rotation: `(3, 3)` or `(B, 3, 3)`.
        translation: `(3,)` or `(B, 3)`.

    Returns:
        ``(global_orient', transl')``, `(B, 3)` each.
    """
    rotation = rotation.to(global_orient).expand(global_orient.shape[0], 3, 3)
    orient = matrix_to_axis_angle(rotation @ axis_angle_to_matrix(global_orient))
    moved_root = (rotation @ (root + transl).unsqueeze(-1)).squeeze(-1)
    return orient, moved_root + translation.to(transl) - root
