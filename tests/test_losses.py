"""Tests of fourdhands.losses (paper Eq. 5-10): hand-worked values, masks, gradients."""

import pytest
import torch

from fourdhands import losses as L


def _rand(*shape, seed=0, scale=0.05, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype) * scale


# --------------------------------------------------------------- Eq. 5
def test_max_mse_hand_computed():
    gt = torch.zeros(2, 3, 3, dtype=torch.float64)
    pred = gt.clone()
    pred[0, 0, 0] = 1.0  # e^2 = 1
    pred[0, 1, 1] = 2.0  # e^2 = 4   -> (1 + 16) / (1 + 4) = 3.4
    pred[1, 2] = torch.tensor([1.0, 2.0, 2.0])  # e^2 = 9 -> 81 / 9 = 9
    assert L.max_mse(pred, gt).item() == pytest.approx((3.4 + 9.0) / 2)
    # a float mask acts as per-point weight on e^2: weights (1, 0.5) -> (1 + 4) / (1 + 2) for sample 0
    w = torch.tensor([[1.0, 0.5, 1.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    assert L.max_mse(pred, gt, w).item() == pytest.approx((5.0 / 3.0 + 9.0) / 2)
    # larger errors weigh more than in plain MSE: maxMSE >= mean of e^2 over erroneous points
    assert L.max_mse(pred[:1], gt[:1]).item() > 2.5


def test_max_mse_zero_error_zero_loss_finite_grad():
    for dtype in (torch.float32, torch.float64):
        gt = _rand(3, 21, 3, dtype=dtype)
        pred = gt.clone().requires_grad_(True)
        loss = L.max_mse(pred, gt)
        loss.backward()
        assert loss.item() == 0.0
        assert torch.isfinite(pred.grad).all() and (pred.grad == 0).all()
    # tiny but non-zero errors stay finite too (no 0/0 after underflow)
    gt = torch.zeros(1, 4, 3)
    pred = torch.full((1, 4, 3), 1e-21, requires_grad=True)
    loss = L.max_mse(pred, gt)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()


def test_max_mse_gradcheck():
    pred = _rand(2, 7, 3, seed=1).requires_grad_(True)
    gt = _rand(2, 7, 3, seed=2)
    mask = torch.tensor([[1, 1, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 1]], dtype=torch.bool)
    assert torch.autograd.gradcheck(lambda p: L.max_mse(p, gt, mask), (pred,))


def test_max_mse_masks_exclude_missing_hands_and_joints():
    gt = _rand(3, 21, 3, seed=3)
    pred = gt + _rand(3, 21, 3, seed=4, scale=0.01)
    pred_bad = pred.clone()
    pred_bad[1] += 10.0  # missing hand with garbage prediction
    present = torch.tensor([True, False, True])
    assert L.max_mse(pred_bad, gt, present).item() == pytest.approx(L.max_mse(pred[[0, 2]], gt[[0, 2]]).item())
    jm = torch.ones(3, 21, dtype=torch.bool)
    jm[:, 7] = False
    pred_j = pred.clone()
    pred_j[:, 7] += 10.0
    keep = [i for i in range(21) if i != 7]
    assert L.max_mse(pred_j, gt, jm).item() == pytest.approx(L.max_mse(pred[:, keep], gt[:, keep]).item())
    # nothing valid: 0, and the graph still backpropagates zeros
    p = pred.clone().requires_grad_(True)
    loss = L.max_mse(p, gt, torch.zeros(3, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0 and (p.grad == 0).all()


# --------------------------------------------------------------- Eq. 6
def test_mano_loss():
    pp = torch.zeros(2, 16, 3, 3, dtype=torch.float64)
    gp = pp.clone()
    gp[0, 3, 1, 2] = 0.5  # 0.25
    gp[1, 0, 0, 0] = 2.0  # 4.0 (sample 1 masked below)
    pb = torch.zeros(2, 10, dtype=torch.float64)
    gb = pb.clone()
    gb[0, :4] = 1.0  # 4.0
    out = L.mano_loss(pp, gp, pb, gb)
    assert out["pose"].item() == pytest.approx((0.25 + 4.0) / 2)
    assert out["shape"].item() == pytest.approx(4.0 / 2)
    out = L.mano_loss(pp, gp, pb, gb, torch.tensor([True, False]))
    assert out["pose"].item() == pytest.approx(0.25) and out["shape"].item() == pytest.approx(4.0)
    with pytest.raises(ValueError):
        L.mano_loss(pp, gp.reshape(2, -1), pb, gb)


# --------------------------------------------------------------- Eq. 7, 8
def test_keypoint_3d_loss_root_relative_and_masks():
    gj = _rand(2, 21, 3, seed=5)
    gv = _rand(2, 40, 3, seed=6)
    pj, pv = gj + 0.3, gv + 0.3  # same hand, translated: root-relative error 0
    assert L.keypoint_3d_loss(pv, gv, pj, gj).item() == pytest.approx(0.0, abs=1e-20)
    pv2 = pv.clone()
    pv2[:, 0] += torch.tensor([0.0, 0.0, 0.1], dtype=torch.float64)  # one vertex 0.1 m off
    # maxMSE over vertices with a single erroneous point: e^4 / e^2 = e^2 = 0.01
    assert L.keypoint_3d_loss(pv2, gv, pj, gj).item() == pytest.approx(0.01)
    pj2 = pj.clone()
    pj2[0, 4] += torch.tensor([0.2, 0.0, 0.0], dtype=torch.float64)
    jm = torch.ones(2, 21, dtype=torch.bool)
    jm[0, 4] = False
    assert L.keypoint_3d_loss(None, None, pj2, gj, joint_mask=jm).item() == pytest.approx(0.0, abs=1e-20)
    assert L.keypoint_3d_loss(None, None, pj2, gj).item() == pytest.approx(0.04 / 2)
    # unannotated root: the sample is dropped entirely
    jm2 = torch.ones(2, 21, dtype=torch.bool)
    jm2[0, 0] = False
    assert L.keypoint_3d_loss(pv2, gv, pj2, gj, joint_mask=jm2).item() == pytest.approx(0.01)


def test_keypoint_2d_loss_norms():
    g = torch.zeros(2, 21, 2, dtype=torch.float64)
    p = g.clone()
    p[0, 3] = torch.tensor([0.3, 0.4])  # e = 0.5 -> maxMSE 0.25; L1 0.7
    assert L.keypoint_2d_loss(p, g).item() == pytest.approx(0.25 / 2)
    assert L.keypoint_2d_loss(p, g, norm="l1").item() == pytest.approx(0.7 / 2)
    m = torch.tensor([True, False])
    assert L.keypoint_2d_loss(p, g, m, norm="l1").item() == pytest.approx(0.7)


# --------------------------------------------------------------- Eq. 9
def test_joint_relation_loss():
    gr = _rand(2, 21, 3, seed=7)
    gl = _rand(2, 21, 3, seed=8) + torch.tensor([0.1, 0.0, 0.0], dtype=torch.float64)
    shift = torch.tensor([0.5, -0.2, 0.1], dtype=torch.float64)
    # both hands moved together: every relation vector unchanged
    assert L.joint_relation_loss(gr + shift, gl + shift, gr, gl).item() == pytest.approx(0.0, abs=1e-20)
    # left hand alone moved by d: each of the 21 x 21 vectors off by d
    d = torch.tensor([0.003, 0.0, 0.004], dtype=torch.float64)
    val = L.joint_relation_loss(gr, gl + d, gr, gl).item()
    assert val == pytest.approx(441 * 25e-6)
    assert L.joint_relation_loss(gr, gl + d, gr, gl, reduction="mean").item() == pytest.approx(25e-6)
    # explicit double loop on random predictions
    pr, pl = gr + _rand(2, 21, 3, seed=9, scale=0.01), gl + _rand(2, 21, 3, seed=10, scale=0.01)
    ref = sum(((gl[b, k] - gr[b, i]) - (pl[b, k] - pr[b, i])).pow(2).sum()
              for b in range(2) for i in range(21) for k in range(21)) / 2
    assert L.joint_relation_loss(pr, pl, gr, gl).item() == pytest.approx(ref.item(), rel=1e-12)
    # non-interacting samples are excluded
    inter = torch.tensor([True, False])
    bad_l = pl.clone()
    bad_l[1] += 5.0
    want = L.joint_relation_loss(pr[:1], pl[:1], gr[:1], gl[:1]).item()
    assert L.joint_relation_loss(pr, bad_l, gr, gl, inter).item() == pytest.approx(want)
    pr_g = pr.clone().requires_grad_(True)
    pl_g = pl.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: L.joint_relation_loss(a, b, gr, gl, inter), (pr_g, pl_g))


# --------------------------------------------------------------- Eq. 10
def _close_scene():
    """Right and left 'vertices' (5 each), far apart except pair (r1, l2) at 4.9 mm and (r3, l0) at 5.1 mm."""
    r = torch.tensor([[0.0, 0, 0], [0.1, 0, 0], [0.2, 0, 0], [0.3, 0, 0], [0.4, 0, 0]], dtype=torch.float64)
    l = r + torch.tensor([0.0, 0.5, 0.0], dtype=torch.float64)  # 50 cm away
    l[2] = r[1] + torch.tensor([0.0, 0.0049, 0.0], dtype=torch.float64)
    l[0] = r[3] + torch.tensor([0.0, 0.0, 0.0051], dtype=torch.float64)
    return r[None], l[None]


def test_close_loss_counts_only_pairs_within_5mm():
    gr, gl = _close_scene()
    delta = torch.tensor([0.001, 0.002, 0.0], dtype=torch.float64)
    # moving the 5.1 mm pair's left vertex: not close in the ground truth -> no loss
    pl = gl.clone()
    pl[0, 0] += delta
    assert L.close_loss(gr, pl, gr, gl).item() == 0.0
    # moving the 4.9 mm pair's left vertex: exactly one pair, error |delta|^2
    pl = gl.clone()
    pl[0, 2] += delta
    assert L.close_loss(gr, pl, gr, gl).item() == pytest.approx(5e-6)
    # the printed reading (squared distance <= 0.005, i.e. ~7 cm) would also count the 5.1 mm pair
    pl = gl.clone()
    pl[0, 0] += delta
    assert L.close_loss(gr, pl, gr, gl, threshold=0.005**0.5).item() == pytest.approx(5e-6)
    # translation of both hands together changes nothing
    pl = gl.clone()
    pl[0, 2] += delta
    assert L.close_loss(gr + 1.0, pl + 1.0, gr, gl).item() == pytest.approx(5e-6)


def test_close_loss_masks_and_gradient():
    gr, gl = _close_scene()
    gr, gl = gr.repeat(2, 1, 1), gl.repeat(2, 1, 1)
    pl = gl.clone()
    pl[:, 2] += torch.tensor([0.001, 0.002, 0.0], dtype=torch.float64)
    pl[1, 2] += 3.0  # sample 1 is not interacting: its error must not count
    assert L.close_loss(gr, pl, gr, gl, torch.tensor([True, False])).item() == pytest.approx(5e-6)
    pr = (gr + _rand(2, 5, 3, seed=11, scale=0.001)).requires_grad_(True)
    pl2 = (gl + _rand(2, 5, 3, seed=12, scale=0.001)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: L.close_loss(a, b, gr, gl), (pr, pl2))
    # no close pair at all: 0 with a connected graph and zero gradient
    far_r, far_l = gr.clone(), gl + 1.0
    p = far_r.clone().requires_grad_(True)
    loss = L.close_loss(p, far_l + 0.01, far_r, far_l)
    loss.backward()
    assert loss.item() == 0.0 and (p.grad == 0).all()


# --------------------------------------------------------------- combination
def _batch(seed=0, b=3):
    g = {}
    for i, s in enumerate(L.SIDES):
        off = torch.tensor([0.05 * i, 0.0, 0.0], dtype=torch.float64)
        g[f"{s}_pose"] = _rand(b, 16, 3, 3, seed=seed + 10 * i)
        g[f"{s}_betas"] = _rand(b, 10, seed=seed + 10 * i + 1)
        g[f"{s}_joints"] = _rand(b, 21, 3, seed=seed + 10 * i + 2) + off
        g[f"{s}_verts"] = _rand(b, 30, 3, seed=seed + 10 * i + 3, scale=0.02) + off
        g[f"{s}_kp2d"] = _rand(b, 21, 2, seed=seed + 10 * i + 4)
    # plant contact: five left vertices 2-3 mm from right ones
    g["left_verts"][:, :5] = g["right_verts"][:, :5] + 0.0015
    return g


def test_compute_losses_terms_total_and_masks():
    gt = _batch(0)
    noise = _batch(100)
    pred = {k: gt[k] + 0.1 * noise[k] for k in gt}
    out = L.compute_losses(pred, gt)
    names = {"pose", "shape", "keypoints_3d", "keypoints_2d", "joint_relation", "close"}
    assert set(out.computed()) == names and out.total is not None
    w = L.LossWeights()
    assert (w.keypoints_3d, w.keypoints_2d, w.relation, w.close, w.pose, w.shape) == (1e3, 1e3, 1e3, 1e3, 10, 1)
    want = (1e3 * (out.keypoints_3d + out.keypoints_2d + out.joint_relation + out.close)
            + 10 * out.pose + out.shape)
    assert out.total.item() == pytest.approx(want.item(), rel=1e-12)
    assert out.close.item() > 0.0  # the random hands do have pairs within 5 mm
    # per-hand terms are the sum of each hand's own loss
    r3d = L.keypoint_3d_loss(pred["right_verts"], gt["right_verts"], pred["right_joints"], gt["right_joints"])
    l3d = L.keypoint_3d_loss(pred["left_verts"], gt["left_verts"], pred["left_joints"], gt["left_joints"])
    assert out.keypoints_3d.item() == pytest.approx((r3d + l3d).item(), rel=1e-12)

    # sample 1 has no left hand: its left garbage must not count anywhere
    gt2 = dict(gt, left_present=torch.tensor([True, False, True]))
    pred2 = {k: v.clone() for k, v in pred.items()}
    for k in ("left_pose", "left_betas", "left_joints", "left_verts", "left_kp2d"):
        pred2[k][1] += 7.0
    out2 = L.compute_losses(pred2, gt2)
    keep = [0, 2]
    ref = L.compute_losses({k: v[keep] for k, v in pred.items()}, {k: v[keep] for k, v in gt.items()})
    for k in ("joint_relation", "close"):
        assert getattr(out2, k).item() == pytest.approx(getattr(ref, k).item(), rel=1e-10)
    right = L.compute_losses({k: v for k, v in pred.items() if k.startswith("right")}, gt)
    left = L.compute_losses({k: v[keep] for k, v in pred.items() if k.startswith("left")},
                            {k: v[keep] for k, v in gt.items()})
    for k in ("pose", "shape", "keypoints_3d", "keypoints_2d"):
        assert getattr(out2, k).item() == pytest.approx((getattr(right, k) + getattr(left, k)).item(), rel=1e-10), k
    assert out2.pose.item() < 1.0  # the 7.0 garbage would give ~ 144 * 49 / 3

    # explicit "interacting" False (a single-hand sample pasted far away) removes relation terms only
    gt3 = dict(gt, interacting=torch.tensor([False, False, False]))
    out3 = L.compute_losses(pred, gt3)
    assert out3.joint_relation.item() == 0.0 and out3.close.item() == 0.0
    assert out3.keypoints_3d.item() == pytest.approx(out.keypoints_3d.item())


def test_compute_losses_backward_and_partial_inputs():
    gt = _batch(1)
    pred = {k: (v + 0.05 * _batch(50)[k]).requires_grad_(True) for k, v in gt.items()}
    out = L.compute_losses(pred, gt)
    no_close = L.compute_losses(pred, gt, L.LossWeights(close=0.0))
    assert out.close.item() > 0.0
    assert (out.total - no_close.total).item() == pytest.approx(1e3 * out.close.item(), rel=1e-9)
    out.total.backward()
    for k, v in pred.items():
        assert v.grad is not None and torch.isfinite(v.grad).all(), k
    # only joints given: 3D and relation terms, nothing else
    sub = {k: v.detach() for k, v in pred.items() if k.endswith("_joints")}
    out = L.compute_losses(sub, {k: gt[k] for k in sub})
    assert set(out.computed()) == {"keypoints_3d", "joint_relation"}
    with pytest.raises(ValueError):
        L.compute_losses({}, {})


def test_a_misspelt_or_missing_term_fails_at_once():
    gt = _batch(2)
    pred = {k: v + 0.01 for k, v in gt.items() if not k.endswith(("_present", "_valid"))}
    # a typo in an input key would otherwise drop the term it feeds
    with pytest.raises(ValueError, match="unknown pred key 'left_vertices'"):
        L.compute_losses({**pred, "left_vertices": pred["left_verts"]}, gt)
    with pytest.raises(ValueError, match="unknown gt key 'right_visible'"):
        L.compute_losses(pred, {**gt, "right_visible": torch.ones(3, dtype=torch.bool)})
    # a required term whose inputs are absent
    no_verts = {k: v for k, v in pred.items() if not k.endswith("_verts")}
    with pytest.raises(ValueError, match="term 'close' is required"):
        L.compute_losses(no_verts, gt, required=("close",))
    # terms are attributes: a misspelt name is an error, not a silent None
    with pytest.raises(AttributeError):
        L.compute_losses(pred, gt).keypoint_3d
