"""The training objective: the paper's losses (section 3.4) between a prediction of the
network and a batch of samples (:mod:`fourdhands.data.sample`).

How each term sees the data:

- L_mano (Eq. 6): rotation matrices of the 16 joints and the betas.
- L_3D (Eq. 7): maxMSE on each hand's root-relative joints (21) and vertices.
- L_2D (Eq. 8): maxMSE on 2D keypoints in crop-normalised units (image pixels relative
  to the crop box's centre, over its height), so the term does not grow with image size;
  only visible keypoints count.
- A sample whose MANO parameters are not ground truth (``has_mano`` False: a real dataset
  read without MANO fits, or any real dataset under the open hand model) is supervised
  by its keypoints only: L_3D on the annotated joints (``joint_valid``), L_2D, L_jrel and
  so v; L_mano, the vertex half of L_3D and L_close skip it.
- L_jrel (Eq. 9) and L_close (Eq. 10): both hands in the right wrist's frame, the left
  hand placed by v (``left - left wrist + v``), so these terms supervise v; only where
  both hands are present. Averaged over the pairs rather than summed as printed: with the
  authors' weight of 1e3 a sum over 441 joint pairs (or ~10^6 vertex pairs) would drown
  every other term.

Only the output frames of the window are supervised (all frames without temporal fusion,
the centre with it).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .geometry.rotations import axis_angle_to_matrix
from .losses import LossTerms, LossWeights, compute_losses
from .model.network import HandsPrediction
from .sides import SIDES


def _crop_units(points: Tensor, boxes: Tensor) -> Tensor:
    """Image px `(..., 21, 2)` -> offsets from the box centre over its height; zero where
    there is no box (an absent hand), so masked terms never meet inf * 0."""
    has_box = boxes[..., None, 3:4] > 0
    units = (points - boxes[..., None, :2]) / torch.where(has_box, boxes[..., None, 3:4], 1.0)
    return torch.where(has_box, units, 0.0)


def loss_terms(pred: HandsPrediction, batch: dict, models, weights: LossWeights | None = None
               ) -> LossTerms:
    """Every unweighted term (all six are required) and the weighted total for one batch.

    ``models``: the (right, left) hand models that decoded ``pred``; they give the
    ground-truth vertices from the ground-truth parameters."""
    f = pred.frames
    gt_pose = torch.cat([batch["global_orient"][:, f], batch["hand_pose"][:, f]], dim=-1)
    gt_rot = axis_angle_to_matrix(gt_pose.unflatten(-1, (16, 3)))  # (B, T', 2, 16, 3, 3)
    gt_kp = batch["keypoints_3d"][:, f]
    boxes = batch["boxes"][:, f]
    present = batch["present"][:, f]
    # real data: annotated joints only, and MANO terms only where MANO is ground truth
    joint_valid = batch["joint_valid"][:, f] if "joint_valid" in batch else torch.ones_like(batch["visible"][:, f])
    has_mano = batch["has_mano"].bool() if "has_mano" in batch else torch.ones_like(batch["present"], dtype=torch.bool)
    # (B, T, 2) per frame and hand; a (B,) flag from older feature caches holds for the window
    has_mano = has_mano[:, f] if has_mano.ndim == 3 else has_mano[:, None, None].expand(present.shape)

    def flat(x: Tensor) -> Tensor:
        return x.flatten(0, 1)  # (B, T') -> B*T'

    with torch.no_grad():
        gt_verts = torch.stack([
            m(rotmats=gt_rot[:, :, h].flatten(0, 1), betas=batch["betas"][:, f, h].flatten(0, 1)).vertices
            for h, m in enumerate(models)], 1).unflatten(0, gt_rot.shape[:2])
    gt_kp_model = gt_kp - batch["transl"][:, f][..., None, :]
    # hands in the right wrist's frame, the left one placed by v
    pred_root = pred.keypoints[..., :1, :]
    gt_root = gt_kp_model[..., :1, :]
    pred_rel, gt_rel = pred.keypoints - pred_root, gt_kp - gt_kp[..., :1, :]
    pred_vrel, gt_vrel = pred.vertices - pred_root, gt_verts - gt_root
    p, g = {}, {}
    for h, s in enumerate(SIDES):
        shift_p = pred.v[..., None, :] if h == 1 else 0.0
        shift_g = batch["v"][:, f][..., None, :] if h == 1 else 0.0
        p[f"{s}_pose"], g[f"{s}_pose"] = flat(pred.rotmats[:, :, h]), flat(gt_rot[:, :, h])
        p[f"{s}_betas"], g[f"{s}_betas"] = flat(pred.betas[:, :, h]), flat(batch["betas"][:, f, h])
        p[f"{s}_joints"] = flat(pred_rel[:, :, h] + shift_p)
        g[f"{s}_joints"] = flat(gt_rel[:, :, h] + shift_g)
        p[f"{s}_verts"] = flat(pred_vrel[:, :, h] + shift_p)
        g[f"{s}_verts"] = flat(gt_vrel[:, :, h] + shift_g)
        p[f"{s}_kp2d"] = flat(_crop_units(pred.keypoints_2d[:, :, h], boxes[:, :, h]))
        g[f"{s}_kp2d"] = flat(_crop_units(batch["keypoints_2d"][:, f, h], boxes[:, :, h]))
        g[f"{s}_present"] = flat(present[:, :, h])
        g[f"{s}_kp2d_valid"] = flat(batch["visible"][:, f, h])
        g[f"{s}_joint_valid"] = flat(joint_valid[:, :, h])
        g[f"{s}_mano_valid"] = flat(has_mano[:, :, h])
    return compute_losses(p, g, weights, relation_reduction="mean", required=tuple(LossTerms.WEIGHT_OF))
