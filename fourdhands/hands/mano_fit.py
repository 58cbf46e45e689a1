"""A dataset's MANO fit turned into this project's parameters: camera frame,
``flat_hand_mean=True`` finger pose, translation added after the root rotation.

Datasets publish fits in their own frame (InterHand2.6M's NeuralAnnot and ARCTIC in the
world, HO-3D in OpenGL camera axes) and pose convention (axis-angle relative to MANO's
mean hand, or absolute). Readers keep a fit as the arrays of :data:`FIT_KEYS` (frames
first); :func:`fit_to_camera` converts them with the MANO model the network uses, since
the change of frame moves the wrist: with ``X_cam = R X + t`` and MANO rotating about its
rest wrist ``J0(beta)``, the camera-frame fit is

    global_orient' = R global_orient,   transl' = R (J0 + transl) + t - J0

and the finger pose gains ``hands_mean`` when the dataset's pose is mean-relative. A fit
whose translation is unknown (NaN, FreiHAND) is placed so that the model's wrist lands on
the annotated wrist keypoint.
"""

from __future__ import annotations

import numpy as np
import torch

from ..geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle

#: ``fit_pose`` `(F, 2, 48)` axis-angles (global, then 15 finger joints), ``fit_betas``
#: `(F, 2, 10)`, ``fit_transl`` `(F, 2, 3)` metres (NaN: unknown), ``fit_R`` `(F, 3, 3)` and
#: ``fit_t`` `(F, 3)` metres (the fit's frame to the camera's, ``X_cam = R X + t``),
#: ``fit_valid`` `(F, 2)`, and the scalar ``fit_mean_relative`` (the finger pose is
#: relative to MANO's ``hands_mean``) and ``fit_pca`` (``fit_pose[3:]`` are the 45 PCA
#: coefficients of MANO's ``hands_components``, as DexYCB's).
FIT_KEYS = ("fit_pose", "fit_betas", "fit_transl", "fit_R", "fit_t", "fit_valid", "fit_mean_relative", "fit_pca")


def fit_arrays(pose, betas, transl, R, t, valid, mean_relative: bool, pca: bool = False) -> dict[str, np.ndarray]:
    """The :data:`FIT_KEYS` arrays of a reader's fits (shapes there), as float64 / bool."""
    return {"fit_pose": np.asarray(pose, np.float64), "fit_betas": np.asarray(betas, np.float64),
            "fit_transl": np.asarray(transl, np.float64), "fit_R": np.asarray(R, np.float64),
            "fit_t": np.asarray(t, np.float64), "fit_valid": np.asarray(valid, bool),
            "fit_mean_relative": np.asarray(bool(mean_relative)), "fit_pca": np.asarray(bool(pca))}


def fit_to_camera(model, pose: np.ndarray, betas: np.ndarray, transl: np.ndarray, R: np.ndarray, t: np.ndarray,
                  mean_relative: bool, wrist: np.ndarray | None = None, pca: bool = False) -> dict[str, np.ndarray]:
    """One hand's fits over N frames in this project's parameters.

    Args:
        model: the :class:`~fourdhands.hands.model.HandModel` of that side (MANO).
        pose `(N, 48)`, betas `(N, 10)`, transl `(N, 3)` (rows with NaN: placed by
        ``wrist``), R `(N, 3, 3)`, t `(N, 3)`: as :data:`FIT_KEYS`.
        wrist: `(N, 3)` the annotated wrist in the camera frame, for unknown translations.
        pca: ``pose[:, 3:]`` are PCA coefficients (:meth:`HandModel.pca_to_hand_pose`).
    Returns:
        ``global_orient`` `(N, 3)`, ``hand_pose`` `(N, 45)` (flat-mean, absolute),
        ``betas`` `(N, 10)`, ``transl`` `(N, 3)`, float64.
    """
    dt = torch.float64
    pose_t, betas_t = torch.as_tensor(pose, dtype=dt), torch.as_tensor(betas, dtype=dt)
    R_t, t_t = torch.as_tensor(R, dtype=dt), torch.as_tensor(t, dtype=dt)
    m = model.to(dtype=dt)
    fingers = m.pca_to_hand_pose(pose_t[:, 3:]) if pca else pose_t[:, 3:]
    hand_pose = fingers + (m.hands_mean if mean_relative else 0.0)
    orient = matrix_to_axis_angle(R_t @ axis_angle_to_matrix(pose_t[:, :3]))
    j0 = m.rest_joints(betas_t, batch=len(pose_t))[:, 0]
    transl_t = torch.as_tensor(transl, dtype=dt)
    cam_transl = (R_t @ (j0 + transl_t)[..., None])[..., 0] + t_t - j0
    unknown = ~torch.isfinite(transl_t).all(-1)
    if unknown.any():
        if wrist is None:
            raise ValueError("a fit without translation needs the annotated wrist")
        posed = m(global_orient=orient, hand_pose=hand_pose, betas=betas_t).keypoints[:, 0]
        cam_transl = torch.where(unknown[:, None], torch.as_tensor(wrist, dtype=dt) - posed, cam_transl)
    return {"global_orient": orient.numpy(), "hand_pose": hand_pose.numpy(), "betas": betas_t.numpy(),
            "transl": cam_transl.numpy()}
