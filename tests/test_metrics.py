"""Tests of fourdhands.metrics against hand-worked values and independent computations."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from fourdhands import metrics as M


def _hands(n=6, seed=0):
    """Random hand-sized joint sets (metres), each sample in a different place."""
    rng = np.random.default_rng(seed)
    j = rng.normal(scale=0.04, size=(n, 21, 3))
    return j + rng.normal(scale=0.3, size=(n, 1, 3)) + np.array([0, 0, 0.6])


def _similarity(x, seed=1):
    """Apply a random scale, proper rotation and translation per sample."""
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    r = Rotation.random(n, random_state=seed).as_matrix()
    s = rng.uniform(0.5, 2.0, size=n)
    t = rng.normal(scale=0.2, size=(n, 1, 3))
    return s[:, None, None] * np.einsum("nik,njk->nji", r, x) + t


# --------------------------------------------------------------- independent references
def _ref_intag(pred, gt):
    out = []
    for p, g in zip(pred, gt):
        s = np.linalg.norm(g[9] - g[0]) / np.linalg.norm(p[9] - p[0])
        out.append(np.mean([np.linalg.norm((p[j] - p[9]) * s - (g[j] - g[9])) for j in range(21)]))
    return 1000 * np.mean(out)


def _ref_wrist(pred, gt):
    return 1000 * np.mean([[np.linalg.norm((p[j] - p[0]) - (g[j] - g[0])) for j in range(21)]
                           for p, g in zip(pred, gt)])


def _ref_pa(pred, gt):
    """Procrustes through scipy's Kabsch (proper rotation), then the optimal scale for it."""
    out = []
    for p, g in zip(pred, gt):
        pc, gc = p - p.mean(0), g - g.mean(0)
        rot, _ = Rotation.align_vectors(gc, pc)  # minimises sum |gc - R pc|^2, det R = +1
        rp = rot.apply(pc)
        s = (gc * rp).sum() / (pc**2).sum()
        out.append(np.linalg.norm(s * rp - gc, axis=1).mean())
    return 1000 * np.mean(out)


# --------------------------------------------------------------- MPJPE protocols
def test_wrist_protocol_hand_worked():
    gt = _hands(3)
    pred = gt + np.array([0.1, -0.2, 0.05])  # translation only
    assert M.mpjpe_wrist(pred, gt) == pytest.approx(0.0, abs=1e-9)
    pred[:, 5] += [0.003, 0.004, 0.0]  # one joint 5 mm off
    assert M.mpjpe_wrist(pred, gt) == pytest.approx(5.0 / 21, rel=1e-9)
    # wrist protocol does not scale: a doubled hand has error |g_j - g_0| per joint
    big = 2 * gt + 0.3
    want = 1000 * np.linalg.norm(gt - gt[:, :1], axis=-1).mean()
    assert M.mpjpe_wrist(big, gt) == pytest.approx(want, rel=1e-9)
    assert M.mpjpe_intag(big, gt) == pytest.approx(0.0, abs=1e-9)


def test_intag_protocol_hand_worked_and_reference():
    gt = _hands(4)
    pred = 2 * gt + np.array([0.05, 0.0, -0.1])
    assert M.mpjpe_intag(pred, gt) == pytest.approx(0.0, abs=1e-9)
    pred[:, 5] += [0.006, 0.008, 0.0]  # 10 mm before scaling by 1/2 -> 5 mm
    assert M.mpjpe_intag(pred, gt) == pytest.approx(5.0 / 21, rel=1e-9)
    noisy = gt * 1.1 + np.random.default_rng(3).normal(scale=0.01, size=gt.shape)
    assert M.mpjpe_intag(noisy, gt) == pytest.approx(_ref_intag(noisy, gt), rel=1e-12)
    assert M.mpjpe_wrist(noisy, gt) == pytest.approx(_ref_wrist(noisy, gt), rel=1e-12)
    # the random case discriminates the root: a wrist-rooted scaled variant differs
    wrist_rooted = M.mpjpe(noisy * (
        np.linalg.norm(gt[:, 9] - gt[:, 0], axis=-1) / np.linalg.norm(noisy[:, 9] - noisy[:, 0], axis=-1)
    )[:, None, None], gt, align="wrist")
    assert abs(wrist_rooted - M.mpjpe_intag(noisy, gt)) > 0.05
    per = M.mpjpe_intag(noisy, gt, reduce=False)
    assert per.shape == (4,) and per.mean() == pytest.approx(M.mpjpe_intag(noisy, gt))


def test_mpvpe_intag():
    rng = np.random.default_rng(5)
    gt_j = _hands(3)
    gt_v = gt_j[:, :1] + rng.normal(scale=0.04, size=(3, 50, 3))
    t = np.array([0.2, 0.1, 0.0])
    assert M.mpvpe_intag(1.5 * gt_v + t, gt_v, 1.5 * gt_j + t, gt_j) == pytest.approx(0.0, abs=1e-9)
    pv = gt_v + rng.normal(scale=0.005, size=gt_v.shape)
    pj = gt_j * 0.9 + 0.01
    want = []
    for a, b, c, d in zip(pv, gt_v, pj, gt_j):
        s = np.linalg.norm(d[9] - d[0]) / np.linalg.norm(c[9] - c[0])
        want.append(np.linalg.norm((a - c[9]) * s - (b - d[9]), axis=1).mean())
    assert M.mpvpe_intag(pv, gt_v, pj, gt_j) == pytest.approx(1000 * np.mean(want), rel=1e-12)
    valid = np.array([True, False, True])
    assert M.mpvpe_intag(pv, gt_v, pj, gt_j, valid) == pytest.approx(1000 * np.mean(want[::2]), rel=1e-12)


# --------------------------------------------------------------- Procrustes
def test_pa_mpjpe_similarity_copy_is_zero_and_matches_scipy():
    gt = _hands(5)
    assert M.pa_mpjpe(_similarity(gt), gt) == pytest.approx(0.0, abs=1e-7)
    noisy = _similarity(gt + np.random.default_rng(2).normal(scale=0.008, size=gt.shape))
    val = M.pa_mpjpe(noisy, gt)
    assert val > 1.0
    assert val == pytest.approx(_ref_pa(noisy, gt), rel=1e-8)


def test_pa_mpjpe_rejects_reflection():
    gt = _hands(4)
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    proper = M.pa_mpjpe(mirrored, gt)
    assert proper > 10.0  # a mirror image of a non-planar hand cannot be rotated onto it
    assert proper == pytest.approx(_ref_pa(mirrored, gt), rel=1e-8)
    # the reflection-allowing (FreiHAND-style) variant scores the mirror ~0
    assert M.pa_mpjpe(mirrored, gt, allow_reflection=True) == pytest.approx(0.0, abs=1e-7)


def test_procrustes_fit_uses_only_valid_joints():
    gt = _hands(3)
    pred = _similarity(gt)
    pred[:, 3] += 1.0  # one joint a metre off
    valid = np.ones((3, 21), dtype=bool)
    valid[:, 3] = False
    assert M.pa_mpjpe(pred, gt, valid) == pytest.approx(0.0, abs=1e-7)
    assert M.pa_mpjpe(pred, gt) > 10.0


# --------------------------------------------------------------- MRRPE
def test_mrrpe_hand_worked_and_mask():
    gr = np.array([[0.0, 0, 0.5], [0.0, 0, 0.5]])
    gl = np.array([[0.1, 0, 0.5], [0.1, 0, 0.5]])
    pr = np.array([[0.0, 0, 0.9], [0.0, 0, 0.5]])
    pl = np.array([[0.1, 0.003, 0.904], [0.9, 0, 0.5]])  # sample 0: 5 mm; sample 1: 800 mm
    assert M.mrrpe(pr, pl, gr, gl, np.array([True, False])) == pytest.approx(5.0)
    assert M.mrrpe(pr, pl, gr, gl) == pytest.approx(402.5)
    per = M.mrrpe(pr, pl, gr, gl, np.array([True, False]), reduce=False)
    assert per[0] == pytest.approx(5.0) and math.isnan(per[1])
    # joints input uses joint 0 (wrist)
    jr = np.zeros((2, 21, 3)); jl = np.zeros((2, 21, 3))
    jr[:, 0], jl[:, 0] = pr, pl
    jr[:, 9] = 7.0  # must be ignored
    gjr = np.zeros((2, 21, 3)); gjl = np.zeros((2, 21, 3))
    gjr[:, 0], gjl[:, 0] = gr, gl
    assert M.mrrpe(jr, jl, gjr, gjl, np.array([True, False])) == pytest.approx(5.0)


# --------------------------------------------------------------- PCK / AUC
def _constant_error(err_m, n=4):
    gt = _hands(n)
    d = np.random.default_rng(9).normal(size=(n, 21, 3))
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    return gt + err_m * d, gt


def test_auc_of_constant_error():
    pred, gt = _constant_error(0.010)
    # t_k = 50 k / 99 mm; PCK = 0 for k < 20 (t_19 = 9.6 mm), 1 for k >= 20 (t_20 = 10.1 mm)
    want = (50.0 * 79 / 99 + 0.5 * 50 / 99) / 50.0
    assert M.auc_pck(pred, gt) == pytest.approx(want, rel=1e-12)
    assert want == pytest.approx(79.5 / 99)
    assert M.auc_pck(gt, gt) == pytest.approx(1.0)
    far, gt2 = _constant_error(0.060)
    assert M.auc_pck(far, gt2) == pytest.approx(0.0)
    t, curve = M.pck_curve(pred, gt)
    assert t.shape == (100,) and t[0] == 0.0 and t[-1] == 50.0
    assert curve[19] == 0.0 and curve[20] == 1.0


def test_auc_is_mean_over_keypoints_and_respects_masks():
    gt = _hands(4)
    pred = gt.copy()
    pred[:, :10] += [0.0, 0.06, 0.0]  # keypoints 0-9 always 60 mm off -> AUC 0, others 1
    assert M.auc_pck(pred, gt) == pytest.approx(11 / 21)
    # sample 0 is wrong for all keypoints; masking it restores AUC 1 on the rest
    pred2 = gt.copy()
    pred2[0] += 0.1
    assert M.auc_pck(pred2, gt) == pytest.approx(0.75)
    assert M.auc_pck(pred2, gt, np.array([False, True, True, True])) == pytest.approx(1.0)
    # alignment inside: a translated copy scores 1 after wrist alignment, 0 without
    moved = gt + 0.2
    assert M.auc_pck(moved, gt) == pytest.approx(0.0)
    # float round-off (1e-13 mm) may fail the t = 0 threshold only: at most half a step lost
    assert M.auc_pck(moved, gt, align="wrist") == pytest.approx(1.0, abs=0.5 / 99 + 1e-12)
    assert np.all(M.pck_curve(moved, gt, align="wrist")[1][1:] == 1.0)


# --------------------------------------------------------------- acceleration
def test_accel_error_quadratic_and_linear():
    t = np.arange(12, dtype=float)[:, None, None]
    rng = np.random.default_rng(4)
    a, b, c = (rng.normal(scale=0.01, size=(1, 21, 3)) for _ in range(3))
    gt = a * t**2 + b * t + c  # accel 2a exactly, same for pred below
    lin = gt + 0.003 * t + 0.1  # linear deviation: zero acceleration error
    assert M.accel_error(lin, gt) == pytest.approx(0.0, abs=1e-9)
    quad = gt + np.array([0.001, 0.0, 0.0]) * t**2  # deviation accel 2 mm/frame^2 on every joint
    assert M.accel_error(quad, gt) == pytest.approx(2.0, rel=1e-9)
    per = M.accel_error(quad, gt, reduce=False)
    assert per.shape == (10,)
    # an invalid, corrupted frame drops the three windows touching it, nothing else
    bad = quad.copy()
    bad[5] += 1.0
    valid = np.ones(12, dtype=bool)
    valid[5] = False
    assert M.accel_error(bad, gt) > 100.0
    assert M.accel_error(bad, gt, valid) == pytest.approx(2.0, rel=1e-9)
    assert M.accel_error(bad, gt, valid, reduce=False).shape == (7,)


def test_accel_error_never_crosses_sequence_boundaries():
    t = np.arange(6, dtype=float)[:, None, None]
    gt_a = 0.01 * t * np.ones((1, 21, 3))
    gt_b = -0.02 * t * np.ones((1, 21, 3))
    pred_a, pred_b = gt_a.copy(), gt_b + 0.5  # constant offset: zero accel error within b
    assert M.accel_error([pred_a, pred_b], [gt_a, gt_b]) == pytest.approx(0.0, abs=1e-9)
    assert M.accel_error(np.stack([pred_a, pred_b]), np.stack([gt_a, gt_b])) == pytest.approx(0.0, abs=1e-9)
    joined = M.accel_error(np.concatenate([pred_a, pred_b]), np.concatenate([gt_a, gt_b]))
    assert joined > 1.0  # what a cross-boundary implementation would see
    assert math.isnan(M.accel_error([pred_a], [gt_a], [np.zeros(6, bool)]))
    assert math.isnan(M.accel_error(pred_a[:2], gt_a[:2]))  # fewer than 3 frames: no window


# --------------------------------------------------------------- DexYCB
def test_dexycb_metrics():
    gt = _hands(5)
    sim = _similarity(gt)
    res = M.dexycb_metrics(sim, gt)
    assert set(res) == {"root_relative_mpjpe", "root_relative_auc", "procrustes_mpjpe", "procrustes_auc"}
    assert res["procrustes_mpjpe"] == pytest.approx(0.0, abs=1e-7)
    assert res["procrustes_auc"] == pytest.approx(1.0, abs=0.5 / 99 + 1e-12)  # t = 0 vs round-off
    assert res["root_relative_mpjpe"] == pytest.approx(_ref_wrist(sim, gt), rel=1e-12)
    # root-relative AUC from an independent PCK computation
    d = 1000 * np.linalg.norm((sim - sim[:, :1]) - (gt - gt[:, :1]), axis=-1)
    t = np.linspace(0, 50, 100)
    pck = (d[:, :, None] <= t).mean(axis=0)  # (21, 100)
    auc = np.mean([np.sum((p[1:] + p[:-1]) / 2 * np.diff(t)) / 50.0 for p in pck])
    assert res["root_relative_auc"] == pytest.approx(auc, rel=1e-12)
    assert 0.0 < auc < 1.0


# --------------------------------------------------------------- masks, torch, reports
def test_sample_and_joint_masks_exclude_entries():
    gt = _hands(4)
    pred = gt + np.random.default_rng(6).normal(scale=0.01, size=gt.shape)
    pred[2] += 5.0  # a garbage sample
    keep = np.array([True, True, False, True])
    for fn in (M.mpjpe_intag, M.mpjpe_wrist, M.pa_mpjpe):
        assert fn(pred, gt, keep) == pytest.approx(fn(pred[keep], gt[keep]), rel=1e-12)
    jv = np.ones((4, 21), dtype=bool)
    jv[:, 15] = False
    pred2 = gt.copy()
    pred2[:, 15] += [0.5, 0.0, 0.0]
    assert M.mpjpe_wrist(pred2, gt, jv) == pytest.approx(0.0, abs=1e-9)
    assert M.mpjpe_wrist(pred2, gt) == pytest.approx(500.0 / 21)
    jv[1, 0] = False  # wrist invalid: sample 1 cannot be aligned and is excluded
    per = M.mpjpe_wrist(pred2, gt, jv, reduce=False)
    assert math.isnan(per[1]) and np.allclose(per[[0, 2, 3]], 0.0)
    assert math.isnan(M.mpjpe_wrist(pred, gt, np.zeros(4, bool)))


def test_numpy_and_torch_inputs_agree():
    gt = _hands(5)
    pred = _similarity(gt) * 0.3 + gt * 0.7
    valid = np.array([True, True, False, True, True])
    tp, tg, tv = torch.tensor(pred, dtype=torch.float64), torch.tensor(gt), torch.tensor(valid)
    for fn in (M.mpjpe_intag, M.mpjpe_wrist, M.pa_mpjpe, M.auc_pck):
        assert fn(tp, tg, tv) == pytest.approx(fn(pred, gt, valid), rel=1e-12)
        assert isinstance(fn(tp, tg, tv), float)
    assert M.mrrpe(tp, tg, tg, tp, tv) == pytest.approx(M.mrrpe(pred, gt, gt, pred, valid), rel=1e-12)
    assert M.accel_error(tp, tg) == pytest.approx(M.accel_error(pred, gt), rel=1e-12)
    assert M.dexycb_metrics(tp, tg) == pytest.approx(M.dexycb_metrics(pred, gt), rel=1e-12)
    assert M.mpvpe_intag(tp, tg, tp, tg) == pytest.approx(M.mpvpe_intag(pred, gt, pred, gt), abs=1e-9)
    # float32 tensors with gradients are accepted too
    f32 = torch.tensor(pred, dtype=torch.float32, requires_grad=True)
    assert M.mpjpe_wrist(f32, gt) == pytest.approx(M.mpjpe_wrist(pred, gt), rel=1e-5)


def test_two_hand_report():
    gt = _hands(4)
    pr = gt.copy()
    pr[:, 4] += [0.0, 0.0, 0.021]  # right: 1 mm mean
    pl = gt.copy()
    pl[:, 8] += [0.0, 0.042, 0.0]  # left: 2 mm mean
    rep = M.two_hand_report(M.mpjpe_wrist, (pr, gt), (pl, gt))
    assert rep == pytest.approx({"right": 1.0, "left": 2.0, "mean": 1.5})
    rep = M.two_hand_report(M.mpjpe_wrist, (pr, gt), (pl, gt, np.zeros(4, bool)))
    assert rep["mean"] == pytest.approx(1.0) and math.isnan(rep["left"])


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        M.mpjpe_wrist(np.zeros((2, 21, 3)), np.zeros((2, 20, 3)))
    with pytest.raises(ValueError):
        M.mpjpe_wrist(np.zeros((2, 21, 3)), np.zeros((2, 21, 3)), np.ones(3, bool))
    with pytest.raises(ValueError):
        M.align_joints(np.zeros((2, 21, 3)), np.zeros((2, 21, 3)), "bogus")


# --------------------------------------------------------------- orientation diagnostic
def test_orientation_error_is_the_angle_between_rotations():
    # hand-worked: turns of 30 and 90 degrees about different axes, and one masked out
    base = Rotation.random(3, random_state=4)
    turn = Rotation.from_rotvec([[math.radians(30), 0, 0], [0, 0, math.radians(90)], [0, 1, 0]])
    pred, gt = (turn * base).as_matrix(), base.as_matrix()
    got = M.orientation_error(pred, gt, valid=[True, True, False], reduce=False)
    assert got[:2] == pytest.approx([30.0, 90.0], abs=1e-6)
    assert np.isnan(got[2])
    assert M.orientation_error(pred, gt, valid=[True, True, False]) == pytest.approx(60.0, abs=1e-6)
    # a half turn is 180 degrees, not NaN (the cosine is clipped)
    flip = Rotation.from_rotvec([0, math.pi, 0]).as_matrix()[None]
    assert M.orientation_error(flip, np.eye(3)[None]) == pytest.approx(180.0, abs=1e-4)


def test_mean_rotation_minimises_the_chordal_error():
    r = Rotation.from_rotvec([[0.3, 0, 0], [-0.3, 0, 0], [0, 0.2, 0], [0, -0.2, 0]]).as_matrix()
    assert M.mean_rotation(r) == pytest.approx(np.eye(3), abs=1e-12)  # symmetric about identity
    spread = Rotation.random(50, random_state=2).as_matrix() @ Rotation.from_rotvec([0, 0, 0.5]).as_matrix()
    mean = M.mean_rotation(spread)
    assert np.linalg.det(mean) == pytest.approx(1.0)
    cost = lambda m: ((spread - m) ** 2).sum()  # noqa: E731
    for k in range(20):  # no nearby rotation does better
        nudge = Rotation.from_rotvec(np.random.default_rng(k).normal(scale=0.05, size=3)).as_matrix()
        assert cost(mean) <= cost(nudge @ mean) + 1e-9
