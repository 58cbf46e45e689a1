"""Evaluation metrics of the 4DHands paper (section 4.3, Tables 1-4), each following a named protocol.

Conventions shared by every function here:

- Inputs are positions in **metres**: ``(N, J, 3)`` arrays (``J = 21`` keypoints in
  OpenPose order: wrist 0, thumb 1-4, index 5-8, middle 9-12, ring 13-16, pinky 17-20),
  either NumPy arrays or torch tensors (detached and computed in float64 NumPy). A single
  sample ``(J, 3)`` is treated as ``N = 1``.
- Distances are reported in **millimetres**; AUC values are fractions in ``[0, 1]`` (the
  paper's tables print them multiplied by 100).
- ``valid`` is an optional boolean mask, either per sample ``(N,)`` or per joint
  ``(N, J)``. To combine both, pass ``sample_valid[:, None] & joint_valid``. Masked
  entries never enter an alignment nor an average.
- ``reduce=True`` (the default) returns one Python ``float``: the mean over every valid
  ``(sample, joint)`` entry, each weighted equally (with all joints valid this is the mean
  over samples of the per-sample mean). ``reduce=False`` returns a float64 array ``(N,)``
  of per-sample means (NaN for a sample with no valid entry). When nothing is valid the
  reduced value is NaN.

Alignment modes (``align_joints``), used by the metrics below:

- ``"none"``: coordinates compared as given.
- ``"wrist"``: InterHand2.6M protocol: subtract each hand's own wrist (joint 0), no scaling.
- ``"intag"``: IntagHand protocol: subtract each hand's own joint 9 (middle-finger MCP)
  and scale the prediction by ``|J9_gt - J0_gt| / |J9_pred - J0_pred|``.
- ``"procrustes"``: similarity transform (scale, proper rotation, translation) of the
  prediction onto the ground truth, least squares, reflections excluded.
- ``"procrustes_reflect"``: the same but allowing reflections (orthogonal matrix with
  det -1), as FreiHAND's ``align_w_scale`` does. A mirrored prediction then scores ~0;
  use only to reproduce numbers computed with that flawed protocol.

A sample whose alignment joints are invalid (joint 0 for ``"wrist"``, joints 0 and 9 for
``"intag"``) cannot be aligned and is excluded entirely.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

__all__ = [
    "ALIGN_MODES",
    "INTAG_ROOT",
    "WRIST",
    "accel_error",
    "align_joints",
    "auc_pck",
    "dexycb_metrics",
    "mpjpe",
    "mpjpe_intag",
    "mpjpe_wrist",
    "mpvpe_intag",
    "mean_rotation",
    "mrrpe",
    "orientation_error",
    "pa_mpjpe",
    "pck_curve",
    "procrustes_align",
    "two_hand_report",
]

WRIST = 0
"""Index of the wrist in the 21-keypoint OpenPose order (root of the InterHand2.6M protocol)."""
INTAG_ROOT = 9
"""Index of the middle-finger MCP, the root joint of the IntagHand protocol."""
ALIGN_MODES = ("none", "wrist", "intag", "procrustes", "procrustes_reflect")

_M_TO_MM = 1000.0


# ----------------------------------------------------------------------------- helpers
def _np64(x: Any) -> np.ndarray:
    """Any array-like (NumPy, torch tensor, list) -> float64 NumPy array (a copy for tensors)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _npbool(x: Any) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x).astype(bool)


def _points(x: Any, name: str) -> np.ndarray:
    a = _np64(x)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (N, J, 3) or (J, 3), got {tuple(a.shape)}")
    return a


def _mask(valid: Any, n: int, j: int) -> np.ndarray:
    """Expand a per-sample ``(N,)`` or per-joint ``(N, J)`` mask to a boolean ``(N, J)``."""
    if valid is None:
        return np.ones((n, j), dtype=bool)
    v = _npbool(valid)
    if v.shape == (n,):
        return np.repeat(v[:, None], j, axis=1)
    if v.shape == (n, j):
        return v.copy()
    if n == 1 and v.shape == (j,):
        return v[None].copy()
    raise ValueError(f"valid must have shape ({n},) or ({n}, {j}), got {tuple(v.shape)}")


def _pair(pred: Any, gt: Any, valid: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = _points(pred, "pred")
    g = _points(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred {tuple(p.shape)} and gt {tuple(g.shape)} differ in shape")
    return p, g, _mask(valid, p.shape[0], p.shape[1])


def _reduce(err: np.ndarray, w: np.ndarray, reduce: bool) -> float | np.ndarray:
    """err, w: (N, J). Mean over valid entries (float) or per-sample means (N,)."""
    if reduce:
        count = w.sum()
        return float(np.where(w, err, 0.0).sum() / count) if count else float("nan")
    count = w.sum(axis=1)
    total = np.where(w, err, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    fn = getattr(np, "trapezoid", None) or getattr(np, "trapz")
    return float(fn(y, x))


# ----------------------------------------------------------------------------- alignment
def procrustes_align(
    pred: Any, gt: Any, valid: Any = None, allow_reflection: bool = False
) -> np.ndarray:
    """Align each predicted sample onto its ground truth by a least-squares similarity transform.

    Protocol (Umeyama / Procrustes with scale): centre both point sets on their valid
    points, ``K = sum_j P_j G_j^T`` (``P``, ``G`` centred prediction and ground truth),
    ``K = U S V^T``, ``R = V Z U^T`` with ``Z = diag(1, 1, sign(det(V U^T)))`` so that ``R``
    is a proper rotation (no reflection), ``s = tr(R K) / sum |P|^2``, and the aligned
    prediction is ``s R P_j + mean(G)``. Only valid points enter the fit; invalid points are
    transformed with the same transform. ``allow_reflection=True`` drops the ``Z``
    correction (FreiHAND ``align_w_scale`` behaviour; a mirrored prediction then aligns
    perfectly).

    Args:
        pred, gt: ``(N, J, 3)`` (or ``(J, 3)``), any unit.
        valid: ``(N,)`` or ``(N, J)`` boolean mask, optional.
    Returns:
        The aligned prediction, float64 ``(N, J, 3)``. A sample with no valid point is
        returned unchanged; one with a single valid point (or all valid points coincident)
        is translated only.
    """
    p, g, w = _pair(pred, gt, valid)
    wf = w.astype(np.float64)[..., None]  # (N, J, 1)
    cnt = np.maximum(wf.sum(axis=1, keepdims=True), 1.0)
    mu_p = (p * wf).sum(axis=1, keepdims=True) / cnt
    mu_g = (g * wf).sum(axis=1, keepdims=True) / cnt
    pc = (p - mu_p) * wf
    gc = (g - mu_g) * wf
    k = np.einsum("nji,njk->nik", pc, gc)  # (N, 3, 3) = P^T G
    u, sv, vt = np.linalg.svd(k)
    v = np.swapaxes(vt, 1, 2)
    ut = np.swapaxes(u, 1, 2)
    z = np.ones((p.shape[0], 3))
    if not allow_reflection:
        det = np.linalg.det(v @ ut)
        z[:, 2] = np.where(det < 0, -1.0, 1.0)
    r = v @ (z[:, :, None] * ut)  # V Z U^T
    var_p = (pc**2).sum(axis=(1, 2))
    tr = np.einsum("nii->n", r @ k)
    ok = var_p > 0
    s = np.where(ok, tr / np.where(ok, var_p, 1.0), 1.0)
    r = np.where(ok[:, None, None], r, np.eye(3)[None])
    aligned = s[:, None, None] * np.einsum("nik,njk->nji", r, p - mu_p) + mu_g
    no_valid = ~w.any(axis=1)
    aligned[no_valid] = p[no_valid]
    return aligned


def align_joints(
    pred: Any, gt: Any, mode: str = "none", valid: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply one of the evaluation alignments (see the module docstring) to ``(N, J, 3)`` joints.

    Args:
        pred, gt: ``(N, J, 3)`` positions (metres).
        mode: one of ``ALIGN_MODES``: ``"none"``, ``"wrist"`` (InterHand2.6M: subtract
            joint 0), ``"intag"`` (IntagHand: subtract joint 9, scale the prediction by
            ``|J9_gt - J0_gt| / |J9_pred - J0_pred|``), ``"procrustes"`` (scale, proper
            rotation, translation; no reflection), ``"procrustes_reflect"`` (reflections
            allowed, FreiHAND style).
        valid: ``(N,)`` or ``(N, J)`` mask.
    Returns:
        ``(pred_aligned, gt_aligned, valid)``: float64 ``(N, J, 3)`` arrays and the boolean
        ``(N, J)`` mask, with samples whose alignment joints are invalid removed. For
        ``"intag"`` a prediction with zero J0-J9 length is left unscaled (scale 1).
    """
    p, g, w = _pair(pred, gt, valid)
    if mode == "none":
        return p, g, w
    if mode == "wrist":
        w = w & w[:, WRIST : WRIST + 1]
        return p - p[:, WRIST : WRIST + 1], g - g[:, WRIST : WRIST + 1], w
    if mode == "intag":
        if p.shape[1] <= INTAG_ROOT:
            raise ValueError("the IntagHand alignment needs 21 joints in OpenPose order")
        w = w & w[:, WRIST : WRIST + 1] & w[:, INTAG_ROOT : INTAG_ROOT + 1]
        scale = _intag_scale(p, g)
        pa = (p - p[:, INTAG_ROOT : INTAG_ROOT + 1]) * scale[:, None, None]
        return pa, g - g[:, INTAG_ROOT : INTAG_ROOT + 1], w
    if mode in ("procrustes", "procrustes_reflect"):
        return procrustes_align(p, g, w, allow_reflection=(mode == "procrustes_reflect")), g, w
    raise ValueError(f"unknown alignment mode {mode!r}; choose one of {ALIGN_MODES}")


def _intag_scale(pj: np.ndarray, gj: np.ndarray) -> np.ndarray:
    """IntagHand skeleton scale per sample: |J9_gt - J0_gt| / |J9_pred - J0_pred| (1 if pred length is 0)."""
    lp = np.linalg.norm(pj[:, INTAG_ROOT] - pj[:, WRIST], axis=-1)
    lg = np.linalg.norm(gj[:, INTAG_ROOT] - gj[:, WRIST], axis=-1)
    return np.where(lp > 0, lg / np.where(lp > 0, lp, 1.0), 1.0)


# ----------------------------------------------------------------------------- position errors
def mpjpe(
    pred: Any, gt: Any, valid: Any = None, align: str = "none", reduce: bool = True
) -> float | np.ndarray:
    """Mean per-joint position error (mm) after the alignment named by ``align``.

    The per-joint error is the Euclidean distance between aligned prediction and ground
    truth; see the module docstring for ``valid``/``reduce``. The named wrappers
    ``mpjpe_intag``, ``mpjpe_wrist`` and ``pa_mpjpe`` are the paper's protocols.
    """
    pa, ga, w = align_joints(pred, gt, align, valid)
    err = np.linalg.norm(pa - ga, axis=-1) * _M_TO_MM
    return _reduce(err, w, reduce)


def mpjpe_intag(pred: Any, gt: Any, valid: Any = None, reduce: bool = True) -> float | np.ndarray:
    """MPJPE in mm, IntagHand protocol (paper Tables 1, 2, 4: "root joint alignment and skeleton scaling").

    Per hand and sample: subtract the hand's own joint 9 (middle-finger MCP) from the
    prediction and from the ground truth, scale the prediction by
    ``s = |J9_gt - J0_gt| / |J9_pred - J0_pred|``, then average the per-joint Euclidean
    distances. Inputs are one hand's 21 joints (OpenPose order), ``(N, 21, 3)`` in metres;
    call once per hand (``two_hand_report`` gives left, right and their mean). Samples
    whose joint 0 or 9 is invalid are excluded.
    """
    return mpjpe(pred, gt, valid, align="intag", reduce=reduce)


def mpjpe_wrist(pred: Any, gt: Any, valid: Any = None, reduce: bool = True) -> float | np.ndarray:
    """MPJPE in mm, InterHand2.6M protocol: subtract each hand's own wrist (joint 0), no scaling.

    Inputs ``(N, 21, 3)`` metres, one hand. Samples with an invalid wrist are excluded.
    This is also DexYCB's root-relative MPJPE (paper Table 3, "R-MPJPE").
    """
    return mpjpe(pred, gt, valid, align="wrist", reduce=reduce)


def pa_mpjpe(
    pred: Any,
    gt: Any,
    valid: Any = None,
    reduce: bool = True,
    allow_reflection: bool = False,
) -> float | np.ndarray:
    """Procrustes-aligned MPJPE (PA-MPJPE, DexYCB "P-MPJPE") in mm.

    Each sample is aligned onto its ground truth with the least-squares similarity
    transform (scale, proper rotation, translation; see ``procrustes_align``), fitted on
    its valid joints only; then the mean per-joint Euclidean distance. Reflections are
    excluded (sign(det) correction), so a mirrored prediction does not score ~0.
    ``allow_reflection=True`` reproduces FreiHAND's ``align_w_scale`` protocol, which
    allows reflections; name it whenever you report such numbers.
    """
    mode = "procrustes_reflect" if allow_reflection else "procrustes"
    return mpjpe(pred, gt, valid, align=mode, reduce=reduce)


def mpvpe_intag(
    pred_verts: Any,
    gt_verts: Any,
    pred_joints: Any,
    gt_joints: Any,
    valid: Any = None,
    reduce: bool = True,
) -> float | np.ndarray:
    """Mean per-vertex position error in mm, IntagHand protocol (paper Tables 2 and 4, MPVPE).

    The alignment is computed from the joints and applied to the vertices: subtract the
    hand's joint 9 (middle-finger MCP) of the same source (predicted joints from the
    predicted vertices, ground-truth joints from the ground-truth vertices) and scale the
    predicted vertices by ``|J9_gt - J0_gt| / |J9_pred - J0_pred|``; then the mean
    per-vertex Euclidean distance.

    Args:
        pred_verts, gt_verts: ``(N, V, 3)`` metres (V = 778 for MANO).
        pred_joints, gt_joints: ``(N, 21, 3)`` metres, OpenPose order (for root and scale).
        valid: per sample ``(N,)`` or per vertex ``(N, V)``.
    """
    pv, gv, w = _pair(pred_verts, gt_verts, valid)
    pj, gj, _ = _pair(pred_joints, gt_joints, None)
    if pj.shape[0] != pv.shape[0] or pj.shape[1] <= INTAG_ROOT:
        raise ValueError("joints must be (N, 21, 3) with the same N as the vertices")
    scale = _intag_scale(pj, gj)
    pa = (pv - pj[:, INTAG_ROOT : INTAG_ROOT + 1]) * scale[:, None, None]
    ga = gv - gj[:, INTAG_ROOT : INTAG_ROOT + 1]
    err = np.linalg.norm(pa - ga, axis=-1) * _M_TO_MM
    return _reduce(err, w, reduce)


def mrrpe(
    pred_right: Any,
    pred_left: Any,
    gt_right: Any,
    gt_left: Any,
    valid: Any = None,
    reduce: bool = True,
) -> float | np.ndarray:
    """Mean relative-root position error in mm (InterHand2.6M's MRRPE; paper Tables 2 and 4).

    ``|(p_Lwrist - p_Rwrist) - (g_Lwrist - g_Rwrist)|``, i.e. the error of the relative
    vector ``v = left wrist - right wrist``, averaged over samples.

    Args:
        pred_right, pred_left, gt_right, gt_left: either ``(N, 21, 3)`` joints (the wrist,
            joint 0, is used) or ``(N, 3)`` wrist positions, metres, all in one frame per
            sample (e.g. camera frame).
        valid: ``(N,)`` mask; it must be True only where both hands are present and both
            wrists are valid (combine ``right_present & left_present & wrists_valid``).
    Returns:
        Mean over valid samples (float), or ``(N,)`` per-sample errors (NaN where invalid)
        with ``reduce=False``.
    """

    def root(x: Any, name: str) -> np.ndarray:
        a = _np64(x)
        if a.ndim == 3:
            a = a[:, WRIST]
        if a.ndim != 2 or a.shape[-1] != 3:
            raise ValueError(f"{name} must be (N, 21, 3) joints or (N, 3) wrists, got {a.shape}")
        return a

    pr, pl, gr, gl = (root(x, n) for x, n in zip(
        (pred_right, pred_left, gt_right, gt_left), ("pred_right", "pred_left", "gt_right", "gt_left")))
    n = pr.shape[0]
    if not (pl.shape == gr.shape == gl.shape == (n, 3)):
        raise ValueError("the four inputs must have the same number of samples")
    err = np.linalg.norm((pl - pr) - (gl - gr), axis=-1)[:, None] * _M_TO_MM
    v = np.ones(n, dtype=bool) if valid is None else _npbool(valid)
    if v.shape != (n,):
        raise ValueError(f"valid must have shape ({n},), got {v.shape}")
    return _reduce(err, v[:, None], reduce)


def orientation_error(pred: Any, gt: Any, valid: Any = None, reduce: bool = True) -> float | np.ndarray:
    """Geodesic angle between predicted and true global hand orientations, in degrees.

    Not a column of the paper's tables: a diagnostic of what MPJPE-wrist mixes together
    (a wrongly turned hand with perfect fingers still scores badly there).

    Args:
        pred, gt: ``(N, 3, 3)`` rotation matrices (MANO ``global_orient``, camera frame).
        valid: optional ``(N,)`` mask.
    Returns:
        Mean over valid samples (float, NaN if none), or ``(N,)`` angles with ``reduce=False``.
    """
    p, g = _np64(pred), _np64(gt)
    if p.shape != g.shape or p.shape[-2:] != (3, 3) or p.ndim != 3:
        raise ValueError(f"pred and gt must both be (N, 3, 3), got {p.shape} and {g.shape}")
    cos = (np.einsum("nij,nij->n", p, g) - 1.0) / 2.0  # trace(P^T G) = sum of P * G
    angle = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))[:, None]
    v = np.ones(len(p), dtype=bool) if valid is None else _npbool(valid)
    if v.shape != (len(p),):
        raise ValueError(f"valid must have shape ({len(p)},), got {v.shape}")
    return _reduce(angle, v[:, None], reduce)


def mean_rotation(rotations: Any) -> np.ndarray:
    """The chordal L2 mean of rotation matrices ``(N, 3, 3)``: the rotation nearest (in
    Frobenius norm) to their arithmetic mean, ``(3, 3)`` (the constant that minimises
    the L_mano-style squared error; the reference for :func:`orientation_error`)."""
    r = _np64(rotations)
    u, _, vt = np.linalg.svd(r.mean(0))
    return u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt


# ----------------------------------------------------------------------------- PCK / AUC
def pck_curve(
    pred: Any,
    gt: Any,
    valid: Any = None,
    thresholds_mm: tuple[float, float] = (0.0, 50.0),
    steps: int = 100,
    align: str = "none",
    per_keypoint: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentage of correct keypoints as a function of the threshold (FreiHAND / DexYCB protocol).

    After the alignment named by ``align`` (default ``"none"``: inputs are compared as
    given, so pass already-aligned joints or choose a mode), the per-keypoint curve is
    ``PCK_j(t) = mean over valid samples of [d_j <= t]`` at
    ``t = linspace(thresholds_mm[0], thresholds_mm[1], steps)`` (inclusive, mm).

    Returns:
        ``(thresholds_mm, pck)``: ``pck`` is ``(steps,)``, the mean over keypoints that have
        at least one valid sample, or ``(J, steps)`` with ``per_keypoint=True`` (NaN rows
        for keypoints never valid).
    """
    pa, ga, w = align_joints(pred, gt, align, valid)
    d = np.linalg.norm(pa - ga, axis=-1) * _M_TO_MM  # (N, J)
    t = np.linspace(float(thresholds_mm[0]), float(thresholds_mm[1]), int(steps))
    curves = np.full((d.shape[1], t.size), np.nan)
    for j in range(d.shape[1]):
        dj = np.sort(d[w[:, j], j])
        if dj.size:
            curves[j] = np.searchsorted(dj, t, side="right") / dj.size
    if per_keypoint:
        return t, curves
    seen = ~np.isnan(curves[:, 0])
    mean = curves[seen].mean(axis=0) if seen.any() else np.full(t.size, np.nan)
    return t, mean


def auc_pck(
    pred: Any,
    gt: Any,
    valid: Any = None,
    thresholds_mm: tuple[float, float] = (0.0, 50.0),
    steps: int = 100,
    align: str = "none",
) -> float:
    """Area under the PCK curve, normalised to [0, 1] (FreiHAND / DexYCB protocol; paper "AUC", "JAUC").

    Per keypoint ``AUC_j = trapezoid(PCK_j(t), t) / trapezoid(1, t)`` with
    ``t = linspace(0, 50 mm, 100)`` inclusive by default, then the mean over keypoints
    (those with at least one valid sample). ``align`` selects the alignment applied first
    (default ``"none"``: pass aligned joints; ``"wrist"`` gives DexYCB's R-JAUC and
    ``"procrustes"`` its P-JAUC, see ``dexycb_metrics``). A root keypoint that the
    alignment zeroes counts with PCK = 1, as in the reference protocol. Returns a fraction
    (the paper's tables print it times 100).
    """
    t, curves = pck_curve(pred, gt, valid, thresholds_mm, steps, align, per_keypoint=True)
    if t.size < 2 or t[-1] == t[0]:
        raise ValueError("auc_pck needs at least two distinct thresholds")
    norm = _trapezoid(np.ones_like(t), t)
    aucs = [_trapezoid(c, t) / norm for c in curves if not np.isnan(c[0])]
    return float(np.mean(aucs)) if aucs else float("nan")


# ----------------------------------------------------------------------------- temporal
def accel_error(
    pred_seq: Any,
    gt_seq: Any,
    valid: Any = None,
    reduce: bool = True,
    align: str = "none",
) -> float | np.ndarray:
    """Acceleration error Accel_E in mm/frame^2, VIBE protocol (paper Table 1).

    Per sequence, ``a_t = X[t-1] - 2 X[t] + X[t+1]`` for prediction and ground truth;
    per window the mean over joints of ``|a_pred - a_gt|``; then the mean over all windows
    of all sequences (each window weighs the same). Never divided by a frame interval:
    the unit is mm per frame squared. Windows never span two sequences; a window that
    touches an invalid frame (``t-1``, ``t`` or ``t+1``) is dropped. ``align`` is applied
    per frame first (default ``"none"``; e.g. ``"wrist"`` for root-relative motion).

    Args:
        pred_seq, gt_seq: one sequence ``(T, J, 3)`` in metres, a batch of equal-length
            sequences ``(S, T, J, 3)``, or a list of ``(T_i, J, 3)`` sequences.
        valid: per-frame mask ``(T,)``, ``(S, T)`` or a list of ``(T_i,)`` masks.
    Returns:
        The mean (float; NaN when no window is valid), or with ``reduce=False`` the
        per-window errors of the valid windows, concatenated over sequences in order.
    """
    preds, gts, valids = _as_sequences(pred_seq, gt_seq, valid)
    errors = []
    for p, g, v in zip(preds, gts, valids):
        t = p.shape[0]
        if t < 3:
            continue
        pa, ga, _ = align_joints(p, g, align, None)
        acc_p = pa[:-2] - 2.0 * pa[1:-1] + pa[2:]
        acc_g = ga[:-2] - 2.0 * ga[1:-1] + ga[2:]
        err = np.linalg.norm(acc_p - acc_g, axis=-1).mean(axis=-1) * _M_TO_MM  # (T-2,)
        ok = v[:-2] & v[1:-1] & v[2:]
        errors.append(err[ok])
    flat = np.concatenate(errors) if errors else np.zeros(0)
    if not reduce:
        return flat
    return float(flat.mean()) if flat.size else float("nan")


def _as_sequences(pred: Any, gt: Any, valid: Any) -> tuple[list, list, list]:
    is_list = isinstance(pred, (list, tuple))
    if is_list != isinstance(gt, (list, tuple)):
        raise ValueError("pred_seq and gt_seq must both be lists or both be arrays")
    if is_list:
        preds = [_points(p, "pred_seq") for p in pred]
        gts = [_points(g, "gt_seq") for g in gt]
        if len(preds) != len(gts):
            raise ValueError("pred_seq and gt_seq hold different numbers of sequences")
        if valid is None:
            vs = [None] * len(preds)
        elif isinstance(valid, (list, tuple)):
            vs = list(valid)
        else:
            raise ValueError("with lists of sequences, valid must be a list of (T_i,) masks")
    else:
        p, g = _np64(pred), _np64(gt)
        if p.ndim == 3:
            p, g = p[None], g[None]
            vs = [valid]
        elif p.ndim == 4:
            vs = [None] * p.shape[0] if valid is None else list(_npbool(valid))
        else:
            raise ValueError(f"pred_seq must be (T, J, 3), (S, T, J, 3) or a list, got {p.shape}")
        preds, gts = list(p), list(g)
    if len(vs) != len(preds):
        raise ValueError("valid holds a different number of sequences")
    out_v = []
    for p, g, v in zip(preds, gts, vs):
        if p.shape != g.shape or p.ndim != 3 or p.shape[-1] != 3:
            raise ValueError(f"sequence shapes differ or are not (T, J, 3): {p.shape} vs {g.shape}")
        vv = np.ones(p.shape[0], dtype=bool) if v is None else _npbool(v)
        if vv.shape != (p.shape[0],):
            raise ValueError(f"per-frame valid must be ({p.shape[0]},), got {vv.shape}")
        out_v.append(vv)
    return preds, gts, out_v


# ----------------------------------------------------------------------------- suites
def dexycb_metrics(
    pred: Any,
    gt: Any,
    valid: Any = None,
    thresholds_mm: tuple[float, float] = (0.0, 50.0),
    steps: int = 100,
    allow_reflection: bool = False,
) -> dict[str, float]:
    """DexYCB hand-pose metrics of paper Table 3, one hand ``(N, 21, 3)`` in metres.

    Keys (distances in mm, AUC as fractions over 0-50 mm in 100 inclusive steps):

    - ``"root_relative_mpjpe"`` (Table 3 "R-MPJPE"): subtract the wrist (joint 0) from
      both, no scaling, mean per-joint distance.
    - ``"root_relative_auc"`` ("R-JAUC"): AUC of PCK on the same root-relative joints.
    - ``"procrustes_mpjpe"`` ("P-MPJPE"): after Procrustes alignment (scale, rotation,
      translation), mean per-joint distance.
    - ``"procrustes_auc"`` ("P-JAUC"): AUC of PCK on the Procrustes-aligned joints.

    ``allow_reflection=False`` (default) excludes reflections from the Procrustes fit;
    ``True`` reproduces the FreiHAND-style alignment, which allows them.
    """
    mode = "procrustes_reflect" if allow_reflection else "procrustes"
    p, g, w = _pair(pred, gt, valid)
    pr, gr, wr = align_joints(p, g, "wrist", w)
    pp, gp, wp = align_joints(p, g, mode, w)
    return {
        "root_relative_mpjpe": mpjpe(pr, gr, wr),
        "root_relative_auc": auc_pck(pr, gr, wr, thresholds_mm, steps),
        "procrustes_mpjpe": mpjpe(pp, gp, wp),
        "procrustes_auc": auc_pck(pp, gp, wp, thresholds_mm, steps),
    }


def two_hand_report(
    metric: Callable[..., float],
    right_args: Sequence[Any],
    left_args: Sequence[Any],
    **kwargs: Any,
) -> dict[str, float]:
    """Evaluate a per-hand metric on both hands: ``{"right": ..., "left": ..., "mean": ...}``.

    ``metric(*right_args, **kwargs)`` and ``metric(*left_args, **kwargs)``; ``"mean"`` is
    the average of the two hands' values as IntagHand reports it (if one hand has no valid
    sample its value is NaN and ``"mean"`` is the other hand's value). Example::

        two_hand_report(mpjpe_intag, (pred_r, gt_r, valid_r), (pred_l, gt_l, valid_l))
    """
    right = float(metric(*right_args, **kwargs))
    left = float(metric(*left_args, **kwargs))
    vals = [x for x in (right, left) if not np.isnan(x)]
    return {"right": right, "left": left, "mean": float(np.mean(vals)) if vals else float("nan")}
