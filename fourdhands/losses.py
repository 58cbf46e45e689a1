"""Training losses of the 4DHands paper (section 3.4, Eq. 5-10), differentiable in PyTorch.

Conventions:

- Positions in metres; per-hand tensors ``(B, N, 3)`` (N = 21 joints in OpenPose order or
  778 vertices), 2D keypoints ``(B, 21, 2)``.
- Masks: ``mask`` per sample ``(B,)`` (hand present / sample interacting) and, where it
  makes sense, per point ``(B, N)`` (joint annotated). Boolean or float (float masks act
  as weights). A sample is *counted* when it has at least one point of positive weight.
- Reduction: each loss is computed per sample as the paper's equation writes it, then
  averaged over the counted samples (not over ``B``), so that missing hands neither add
  error nor dilute the batch. With no counted sample a loss is an exact 0 that is still
  connected to the graph (zero gradients, never NaN).
- Terms are returned unweighted; ``LossWeights`` holds the authors' weights and
  ``compute_losses`` combines everything from plain tensors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Mapping

import torch
from torch import Tensor

from .sides import SIDES

__all__ = [
    "CLOSE_THRESHOLD",
    "LossTerms",
    "LossWeights",
    "close_loss",
    "compute_losses",
    "joint_relation_loss",
    "keypoint_2d_loss",
    "keypoint_3d_loss",
    "mano_loss",
    "max_mse",
    "relation_vectors",
]

CLOSE_THRESHOLD = 0.005
"""L_close threshold (Eq. 10): ground-truth right-left vertex *distance* <= 5 mm (metres)."""


# ----------------------------------------------------------------------------- helpers
def _point_weights(mask: Tensor | None, b: int, n: int, ref: Tensor) -> Tensor:
    """Expand a ``(B,)`` or ``(B, N)`` mask (or None) to float weights ``(B, N)``."""
    if mask is None:
        return torch.ones(b, n, dtype=ref.dtype, device=ref.device)
    m = torch.as_tensor(mask, device=ref.device).to(ref.dtype)
    if m.shape == (b,):
        return m[:, None].expand(b, n)
    if m.shape == (b, n):
        return m
    raise ValueError(f"mask must have shape ({b},) or ({b}, {n}), got {tuple(m.shape)}")


def _sample_weights(mask: Tensor | None, b: int, ref: Tensor) -> Tensor:
    if mask is None:
        return torch.ones(b, dtype=ref.dtype, device=ref.device)
    m = torch.as_tensor(mask, device=ref.device).to(ref.dtype)
    if m.shape != (b,):
        raise ValueError(f"mask must have shape ({b},), got {tuple(m.shape)}")
    return m


def _mean_over_counted(per_sample: Tensor, counted: Tensor) -> Tensor:
    """Mean of ``per_sample`` over samples where ``counted`` is True; 0 (graph-connected) if none."""
    c = counted.to(per_sample.dtype)
    total = (per_sample * c).sum()
    return total / c.sum().clamp(min=1.0)


def _check_pair(pred: Tensor, gt: Tensor, name: str) -> None:
    if pred.shape != gt.shape:
        raise ValueError(f"{name}: pred {tuple(pred.shape)} and gt {tuple(gt.shape)} differ in shape")
    if pred.dim() != 3:
        raise ValueError(f"{name}: expected (B, N, D), got {tuple(pred.shape)}")


# ----------------------------------------------------------------------------- Eq. 5
def max_mse(pred: Tensor, gt: Tensor, mask: Tensor | None = None) -> Tensor:
    """maxMSE (paper Eq. 5, after Deformer): ``sum_i e_i^4 / sum_i e_i^2`` per sample, mean over samples.

    ``e_i^2 = |p_i - g_i|^2`` (squared Euclidean distance of point ``i``); the ratio is an
    average of ``e_i^2`` weighted by ``e_i^2`` itself, so points with large errors
    (fingertips) weigh more. Masked points get weight 0 (float masks multiply ``e_i^2``).

    Guard: where a sample's ``sum e_i^2`` is at most ``sqrt(finfo.tiny)`` the sample's loss
    is set to 0 (the exact value is at most that bound, since ``sum e^4 <= (sum e^2)^2``),
    so zero error gives loss 0 and a zero, finite gradient instead of the reference's 0/0.

    Args:
        pred, gt: ``(B, N, D)`` (D = 3 for 3D, 2 for 2D).
        mask: ``(B,)`` or ``(B, N)``.
    Returns:
        Scalar: mean over samples with at least one weighted point.
    """
    _check_pair(pred, gt, "max_mse")
    b, n = pred.shape[:2]
    w = _point_weights(mask, b, n, pred)
    e2 = ((pred - gt) ** 2).sum(dim=-1) * w
    num = (e2 * e2).sum(dim=1)
    den = e2.sum(dim=1)
    eps = torch.finfo(den.dtype).tiny ** 0.5
    ok = den > eps
    per_sample = torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(den))
    return _mean_over_counted(per_sample, (w > 0).any(dim=1))


# ----------------------------------------------------------------------------- Eq. 6
def mano_loss(
    pred_pose: Tensor,
    gt_pose: Tensor,
    pred_betas: Tensor,
    gt_betas: Tensor,
    mask: Tensor | None = None,
) -> dict[str, Tensor]:
    """L_mano (paper Eq. 6): ``|theta_gt - theta|^2`` and ``|beta_gt - beta|^2``, returned separately.

    Each term is the squared L2 norm of the parameter difference per sample (summed over
    all entries), averaged over samples with ``mask`` True. They are returned unweighted
    as ``{"pose": ..., "shape": ...}``; the authors weight pose 10 and shape 1
    (``LossWeights``), so ``L_mano = 10 * pose + 1 * shape`` in training.

    Pose representation: whatever the caller passes, as long as prediction and ground
    truth match in shape. The authors (HaMeR-style code) compare **rotation matrices**
    ``(B, 16, 3, 3)`` (ground-truth axis-angle converted to matrices), which avoids the
    2 pi ambiguity of axis-angle; axis-angle ``(B, 48)`` / ``(B, 16, 3)``, the paper's
    ``theta in R^48``, also works. Convert with ``fourdhands.geometry`` before calling.
    """
    if pred_pose.shape != gt_pose.shape:
        raise ValueError(f"pose shapes differ: {tuple(pred_pose.shape)} vs {tuple(gt_pose.shape)}")
    if pred_betas.shape != gt_betas.shape:
        raise ValueError(f"betas shapes differ: {tuple(pred_betas.shape)} vs {tuple(gt_betas.shape)}")
    b = pred_pose.shape[0]
    m = _sample_weights(mask, b, pred_pose)
    pose = ((pred_pose - gt_pose) ** 2).reshape(b, -1).sum(dim=1) * m
    shape = ((pred_betas - gt_betas) ** 2).reshape(b, -1).sum(dim=1) * m
    counted = m > 0
    return {"pose": _mean_over_counted(pose, counted), "shape": _mean_over_counted(shape, counted)}


# ----------------------------------------------------------------------------- Eq. 7
def keypoint_3d_loss(
    pred_verts: Tensor | None,
    gt_verts: Tensor | None,
    pred_joints: Tensor,
    gt_joints: Tensor,
    mask: Tensor | None = None,
    joint_mask: Tensor | None = None,
    root_index: int = 0,
    vertex_mask: Tensor | None = None,
) -> Tensor:
    """L_3D (paper Eq. 7): ``maxMSE(V_gt, V) + maxMSE(J_gt, J)`` on root-relative positions.

    Both the vertices and the joints of a hand are expressed relative to that hand's own
    root joint (``root_index``, the wrist by default, as in the authors' HaMeR-style
    code): the prediction relative to its predicted root, the ground truth relative to its
    ground-truth root. This makes the term blind to the hand's translation, which the
    relation losses supervise.

    Args:
        pred_verts, gt_verts: ``(B, 778, 3)`` or None (then only the joint term).
        pred_joints, gt_joints: ``(B, 21, 3)``.
        mask: ``(B,)`` hand present.
        joint_mask: ``(B, 21)`` joint annotated (joint term only). A sample whose root
            joint is unannotated is dropped from both terms.
        vertex_mask: ``(B,)`` the sample has true vertices (MANO ground truth); the vertex
            term only. Default: every sample counted by ``mask``.
    """
    _check_pair(pred_joints, gt_joints, "keypoint_3d_loss joints")
    b, j = pred_joints.shape[:2]
    m = _sample_weights(mask, b, pred_joints)
    jw = _point_weights(joint_mask, b, j, pred_joints)
    m = m * (jw[:, root_index] > 0).to(m.dtype)
    pr = pred_joints[:, root_index : root_index + 1]
    gr = gt_joints[:, root_index : root_index + 1]
    loss = max_mse(pred_joints - pr, gt_joints - gr, jw * m[:, None])
    if pred_verts is not None and gt_verts is not None:
        _check_pair(pred_verts, gt_verts, "keypoint_3d_loss vertices")
        vm = m if vertex_mask is None else m * _sample_weights(vertex_mask, b, pred_joints)
        loss = loss + max_mse(pred_verts - pr, gt_verts - gr, vm)
    return loss


# ----------------------------------------------------------------------------- Eq. 8
def keypoint_2d_loss(
    pred_2d: Tensor, gt_2d: Tensor, mask: Tensor | None = None, norm: str = "maxmse"
) -> Tensor:
    """L_2D (paper Eq. 8): 2D keypoint loss between projected predicted joints and ground truth.

    ``norm="maxmse"`` (default) is the paper's equation, ``maxMSE(pi(J), j_gt)``.
    ``norm="l1"`` is the field's usual alternative (HaMeR and the authors' code): per
    sample the sum over keypoints of the L1 norm ``|p - g|_1``, averaged over samples.
    Either way, pass coordinates normalised to the crop (e.g. ``[-0.5, 0.5]``), not pixels,
    for the weight of ``LossWeights.keypoints_2d`` to be meaningful.

    Args:
        pred_2d, gt_2d: ``(B, 21, 2)``.
        mask: ``(B,)`` or ``(B, 21)``; float values act as per-keypoint confidences.
    """
    _check_pair(pred_2d, gt_2d, "keypoint_2d_loss")
    if norm == "maxmse":
        return max_mse(pred_2d, gt_2d, mask)
    if norm == "l1":
        b, n = pred_2d.shape[:2]
        w = _point_weights(mask, b, n, pred_2d)
        per_sample = ((pred_2d - gt_2d).abs().sum(dim=-1) * w).sum(dim=1)
        return _mean_over_counted(per_sample, (w > 0).any(dim=1))
    raise ValueError(f"unknown 2D loss norm {norm!r}; choose 'maxmse' or 'l1'")


# ----------------------------------------------------------------------------- Eq. 9, 10
def relation_vectors(right: Tensor, left: Tensor) -> Tensor:
    """``phi(i, k) = left_k - right_i`` for all pairs: ``(B, N_r, 3), (B, N_l, 3) -> (B, N_r, N_l, 3)``.

    The vector from the i-th right-hand point to the k-th left-hand point (paper 3.4.3).
    The paper first moves the right hand's palm joint to the origin; a difference of two
    points is unchanged by that, so the relocation is implicit.
    """
    return left[:, None, :, :] - right[:, :, None, :]


def joint_relation_loss(
    pred_right: Tensor,
    pred_left: Tensor,
    gt_right: Tensor,
    gt_left: Tensor,
    mask: Tensor | None = None,
    joint_mask_right: Tensor | None = None,
    joint_mask_left: Tensor | None = None,
    reduction: str = "sum",
) -> Tensor:
    """L_jrel (paper Eq. 9): ``sum_i sum_k |phi_gt(i, k) - phi(i, k)|^2`` over all 21 x 21 right-left joint pairs.

    ``phi(i, k)`` is the vector from right joint ``i`` to left joint ``k``
    (``relation_vectors``). Both hands of the prediction must be in one common frame
    (e.g. the left hand placed by the predicted relative vector ``v``), likewise the
    ground truth. ``reduction="sum"`` (default) is Eq. 9 as printed; ``"mean"`` divides
    by the number of valid pairs. The per-sample values are averaged over the counted
    samples.

    Args:
        pred_right, pred_left, gt_right, gt_left: ``(B, 21, 3)``.
        mask: ``(B,)``, True for interacting samples (both hands present).
        joint_mask_right, joint_mask_left: ``(B, 21)``; a pair counts when both joints do.
    """
    _check_pair(pred_right, gt_right, "joint_relation_loss right")
    _check_pair(pred_left, gt_left, "joint_relation_loss left")
    b, nr = pred_right.shape[:2]
    nl = pred_left.shape[1]
    m = _sample_weights(mask, b, pred_right)
    wr = _point_weights(joint_mask_right, b, nr, pred_right)
    wl = _point_weights(joint_mask_left, b, nl, pred_left)
    pw = wr[:, :, None] * wl[:, None, :] * m[:, None, None]  # (B, Nr, Nl)
    diff = relation_vectors(gt_right, gt_left) - relation_vectors(pred_right, pred_left)
    sq = (diff**2).sum(dim=-1) * pw
    per_sample = sq.sum(dim=(1, 2))
    if reduction == "mean":
        per_sample = per_sample / pw.sum(dim=(1, 2)).clamp(min=1e-12)
    elif reduction != "sum":
        raise ValueError(f"unknown reduction {reduction!r}; choose 'sum' or 'mean'")
    return _mean_over_counted(per_sample, (pw > 0).flatten(1).any(dim=1))


def close_loss(
    pred_right: Tensor,
    pred_left: Tensor,
    gt_right: Tensor,
    gt_left: Tensor,
    mask: Tensor | None = None,
    threshold: float = CLOSE_THRESHOLD,
    reduction: str = "sum",
) -> Tensor:
    """L_close (paper Eq. 10): relation error of the right-left vertex pairs that are close in the ground truth.

    ``sum_{i,k} |phi_gt(i, k) - phi(i, k)|^2`` over the pairs (right vertex ``i``, left
    vertex ``k``) whose ground-truth distance ``|phi_gt(i, k)|`` is at most ``threshold``.
    Eq. 10 prints the condition as ``|phi_gt|^2 <= alpha`` with ``alpha = 0.005``; read
    literally in metres that admits pairs up to about 7 cm apart. We follow the authors'
    code instead: the condition is on the *distance*, ``|phi_gt| <= 0.005 m`` = 5 mm.
    Pairs are selected from the ground truth only (no gradient through the selection).
    ``reduction="sum"`` is Eq. 10 as printed; ``"mean"`` divides by the number of close
    pairs. Samples without any close pair contribute 0 and are still counted in the mean
    over interacting samples.

    Args:
        pred_right, pred_left, gt_right, gt_left: ``(B, 778, 3)`` vertices, both hands
            of a sample in one common frame.
        mask: ``(B,)``, True for interacting samples (both hands present).
        threshold: distance in metres.
    """
    _check_pair(pred_right, gt_right, "close_loss right")
    _check_pair(pred_left, gt_left, "close_loss left")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"unknown reduction {reduction!r}; choose 'sum' or 'mean'")
    b = pred_right.shape[0]
    m = _sample_weights(mask, b, pred_right)
    with torch.no_grad():
        dist = torch.cdist(gt_right.detach(), gt_left.detach())  # (B, Nr, Nl)
        close = (dist <= threshold) & (m > 0)[:, None, None]
        bi, ri, li = close.nonzero(as_tuple=True)
    # phi_gt - phi = (gL_k - gR_i) - (pL_k - pR_i), computed only on the selected pairs.
    diff = (gt_left[bi, li] - gt_right[bi, ri]) - (pred_left[bi, li] - pred_right[bi, ri])
    sq = (diff**2).sum(dim=-1) * m[bi]
    per_sample = torch.zeros(b, dtype=pred_right.dtype, device=pred_right.device)
    per_sample = per_sample.index_add(0, bi, sq)
    if reduction == "mean":
        count = torch.zeros_like(per_sample).index_add(0, bi, torch.ones_like(sq))
        per_sample = per_sample / count.clamp(min=1.0)
    # keep the graph connected even with no close pair at all
    per_sample = per_sample + 0.0 * (pred_right.sum() + pred_left.sum())
    return _mean_over_counted(per_sample, m > 0)


# ----------------------------------------------------------------------------- combination
@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms, defaulting to the authors' values (3D, 2D, relation, close 1e3; pose 10; shape 1)."""

    keypoints_3d: float = 1e3
    keypoints_2d: float = 1e3
    relation: float = 1e3
    close: float = 1e3
    pose: float = 10.0
    shape: float = 1.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class LossTerms:
    """The unweighted loss terms of one batch (None: not computed, its inputs were absent)
    and their weighted ``total``. Attributes, not string keys: a misspelt term is an
    AttributeError, not a silently missing one."""

    pose: Tensor | None = None  # Eq. 6, rotations
    shape: Tensor | None = None  # Eq. 6, betas
    keypoints_3d: Tensor | None = None  # Eq. 7
    keypoints_2d: Tensor | None = None  # Eq. 8
    joint_relation: Tensor | None = None  # Eq. 9
    close: Tensor | None = None  # Eq. 10
    total: Tensor | None = None

    #: The :class:`LossWeights` field that weighs each term.
    WEIGHT_OF = {"pose": "pose", "shape": "shape", "keypoints_3d": "keypoints_3d", "keypoints_2d": "keypoints_2d",
                 "joint_relation": "relation", "close": "close"}

    def computed(self) -> dict[str, Tensor]:
        """The terms that were computed, by name (``total`` not included)."""
        return {name: getattr(self, name) for name in self.WEIGHT_OF if getattr(self, name) is not None}


# every term has a weight and every weight a term: a rename on one side fails here, at import
assert set(LossTerms.WEIGHT_OF) == {f.name for f in fields(LossTerms)} - {"total"}
assert set(LossTerms.WEIGHT_OF.values()) == {f.name for f in fields(LossWeights)}

_HAND_INPUTS = ("pose", "betas", "joints", "verts", "kp2d")
_HAND_MASKS = ("present", "joint_valid", "kp2d_valid", "mano_valid")
_PRED_KEYS = frozenset(f"{s}_{k}" for s in SIDES for k in _HAND_INPUTS)
_GT_KEYS = _PRED_KEYS | {f"{s}_{k}" for s in SIDES for k in _HAND_MASKS} | {"interacting"}


def _has(pred: Mapping, gt: Mapping, key: str) -> bool:
    return key in pred and key in gt and pred[key] is not None and gt[key] is not None


def _hand_terms(pred: Mapping[str, Tensor], gt: Mapping[str, Tensor], kp2d_norm: str) -> dict[str, Tensor]:
    """Eq. 6-8 summed over the hands whose inputs are given (see :func:`compute_losses`)."""
    out: dict[str, Tensor] = {}

    def add(name: str, value: Tensor) -> None:
        out[name] = out[name] + value if name in out else value

    for s in SIDES:
        present = gt.get(f"{s}_present")
        jvalid = gt.get(f"{s}_joint_valid")
        kvalid = gt.get(f"{s}_kp2d_valid", jvalid)
        mvalid = gt.get(f"{s}_mano_valid")
        if _has(pred, gt, f"{s}_pose") and _has(pred, gt, f"{s}_betas"):
            terms = mano_loss(pred[f"{s}_pose"], gt[f"{s}_pose"], pred[f"{s}_betas"], gt[f"{s}_betas"],
                              _combine_samples(present, mvalid))
            add("pose", terms["pose"])
            add("shape", terms["shape"])
        if _has(pred, gt, f"{s}_joints"):
            pv = pred[f"{s}_verts"] if _has(pred, gt, f"{s}_verts") else None
            gv = gt[f"{s}_verts"] if pv is not None else None
            add("keypoints_3d", keypoint_3d_loss(pv, gv, pred[f"{s}_joints"], gt[f"{s}_joints"], present, jvalid,
                                                 vertex_mask=mvalid))
        if _has(pred, gt, f"{s}_kp2d"):
            kmask = _combine_masks(present, kvalid)
            add("keypoints_2d", keypoint_2d_loss(pred[f"{s}_kp2d"], gt[f"{s}_kp2d"], kmask, kp2d_norm))
    return out


def _relation_terms(pred: Mapping[str, Tensor], gt: Mapping[str, Tensor], close_threshold: float,
                    reduction: str) -> dict[str, Tensor]:
    """Eq. 9 and 10 over the interacting samples, when both hands' inputs are given."""
    inter = gt.get("interacting")
    if inter is None:
        rp, lp = gt.get("right_present"), gt.get("left_present")
        if rp is not None and lp is not None:
            inter = torch.as_tensor(rp).bool() & torch.as_tensor(lp).bool()
        else:
            inter = rp if rp is not None else lp
    out: dict[str, Tensor] = {}
    if _has(pred, gt, "right_joints") and _has(pred, gt, "left_joints"):
        out["joint_relation"] = joint_relation_loss(
            pred["right_joints"], pred["left_joints"], gt["right_joints"], gt["left_joints"], inter,
            gt.get("right_joint_valid"), gt.get("left_joint_valid"), reduction,
        )
    if _has(pred, gt, "right_verts") and _has(pred, gt, "left_verts"):
        with_verts = _combine_samples(_combine_samples(inter, gt.get("right_mano_valid")), gt.get("left_mano_valid"))
        out["close"] = close_loss(
            pred["right_verts"], pred["left_verts"], gt["right_verts"], gt["left_verts"], with_verts,
            close_threshold, reduction,
        )
    return out


def compute_losses(
    pred: Mapping[str, Tensor],
    gt: Mapping[str, Tensor],
    weights: LossWeights | None = None,
    *,
    close_threshold: float = CLOSE_THRESHOLD,
    kp2d_norm: str = "maxmse",
    relation_reduction: str = "sum",
    required: tuple[str, ...] = (),
) -> LossTerms:
    """All 4DHands losses (section 3.4) from plain tensors: unweighted terms plus the weighted ``"total"``.

    Keys of ``pred`` and ``gt`` (per side ``s`` in ``right``, ``left``; every tensor has
    batch size B; both hands' positions in one common frame per sample, e.g. the camera
    frame or right-wrist-centred with the left hand placed by ``v``):

    - ``f"{s}_pose"`` (rotation matrices ``(B, 16, 3, 3)`` recommended, see ``mano_loss``),
      ``f"{s}_betas"`` ``(B, 10)``: Eq. 6.
    - ``f"{s}_joints"`` ``(B, 21, 3)``, optional ``f"{s}_verts"`` ``(B, 778, 3)``: Eq. 7,
      and Eq. 9 / 10 for interacting samples.
    - ``f"{s}_kp2d"`` ``(B, 21, 2)``: Eq. 8.

    ``gt`` may also hold masks: ``f"{s}_present"`` ``(B,)`` (default all True),
    ``f"{s}_joint_valid"`` ``(B, 21)`` (3D joints annotated), ``f"{s}_kp2d_valid"``
    ``(B, 21)`` (2D keypoints; defaults to ``joint_valid``), ``f"{s}_mano_valid"`` ``(B,)``
    (the sample's MANO parameters and vertices are ground truth: Eq. 6, the vertex half of
    Eq. 7 and Eq. 10 count only such samples; default all), and ``"interacting"`` ``(B,)``
    (default ``right_present & left_present``; pass False for single-hand samples pasted as
    a far-away second hand, as the authors do). A term whose inputs are absent from either
    mapping is not computed; a term named in ``required`` must be (ValueError otherwise).
    A key of neither list is a ValueError (a misspelt key would otherwise drop its term).

    Returns :class:`LossTerms`: ``pose``, ``shape``, ``keypoints_3d``, ``keypoints_2d``
    (each the sum over both hands of that hand's mean over its present samples),
    ``joint_relation`` (Eq. 9) and ``close`` (Eq. 10) over interacting samples, and
    ``total = sum(weight * term)`` with the weights of ``LossWeights``.
    """
    w = weights or LossWeights()
    for what, given, known in (("pred", pred, _PRED_KEYS), ("gt", gt, _GT_KEYS)):
        unknown = sorted(set(given) - known)
        if unknown:
            raise ValueError(f"compute_losses: unknown {what} key {unknown[0]!r}")
    out = {**_hand_terms(pred, gt, kp2d_norm), **_relation_terms(pred, gt, close_threshold, relation_reduction)}
    if not out:
        raise ValueError("compute_losses: no loss term has its inputs in both pred and gt")
    missing = [name for name in required if name not in out]
    if missing:
        raise ValueError(f"compute_losses: term {missing[0]!r} is required but its inputs are absent")
    total = None
    for name, value in out.items():
        term = getattr(w, LossTerms.WEIGHT_OF[name]) * value
        total = term if total is None else total + term
    return LossTerms(**out, total=total)


def _combine_samples(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    """Two per-sample ``(B,)`` masks as one (None when both are None)."""
    if a is None or b is None:
        return b if a is None else a
    return torch.as_tensor(a).bool() & torch.as_tensor(b).bool()


def _combine_masks(sample: Tensor | None, point: Tensor | None) -> Tensor | None:
    """Per-sample ``(B,)`` times per-point ``(B, N)`` mask, as float weights (None when both are None)."""
    if sample is None or point is None:
        return point if sample is None else sample
    return torch.as_tensor(sample).double()[:, None] * torch.as_tensor(point).double()
