"""The training objective: zero for a perfect prediction, and each term reacts to its own
kind of error."""

import pytest
import torch

from fourdhands.geometry.rotations import axis_angle_to_matrix
from fourdhands.hands import load_hand_model
from fourdhands.model.network import HandsPrediction
from fourdhands.objective import loss_terms

F64 = torch.float64


@pytest.fixture(scope="module")
def models():
    return tuple(load_hand_model("open", s, dtype=F64) for s in ("right", "left"))


def make_batch(models, b=2, t=1, seed=0, gap=0.12):
    g = torch.Generator().manual_seed(seed)
    go = torch.randn(b, t, 2, 3, generator=g, dtype=F64) * 0.4
    hp = torch.randn(b, t, 2, 45, generator=g, dtype=F64) * 0.2
    betas = torch.randn(b, t, 2, 10, generator=g, dtype=F64) * 0.5
    transl = torch.tensor([[-gap / 2, 0.0, 0.5], [gap / 2, 0.0, 0.5]], dtype=F64).expand(b, t, 2, 3).clone()
    rot = axis_angle_to_matrix(torch.cat([go, hp], -1).unflatten(-1, (16, 3)))
    outs = [m(rotmats=rot[:, :, h].flatten(0, 1), betas=betas[:, :, h].flatten(0, 1)) for h, m in enumerate(models)]
    kp = torch.stack([o.keypoints for o in outs], 1).unflatten(0, (b, t))
    verts = torch.stack([o.vertices for o in outs], 1).unflatten(0, (b, t))
    K = torch.tensor([[500.0, 0, 160], [0, 500.0, 120], [0, 0, 1]], dtype=F64)
    cam = kp + transl[..., None, :]
    kp2d = (cam @ K.T)[..., :2] / (cam @ K.T)[..., 2:]
    lo, hi = kp2d.amin(-2), kp2d.amax(-2)
    batch = dict(global_orient=go, hand_pose=hp, betas=betas, transl=transl, keypoints_3d=cam,
                 keypoints_2d=kp2d, boxes=torch.cat([(lo + hi) / 2, (hi - lo)], -1),
                 present=torch.ones(b, t, 2, dtype=torch.bool), visible=torch.ones(b, t, 2, 21, dtype=torch.bool),
                 v=cam[:, :, 1, 0] - cam[:, :, 0, 0])
    pred = HandsPrediction(frames=torch.arange(t), rotmats=rot, betas=betas, crop_cam=torch.ones(b, t, 2, 3, dtype=F64),
                           vertices=verts, keypoints=kp, transl=transl, v=batch["v"].clone(),
                           keypoints_2d=kp2d, present=batch["present"], hand_model="open")
    return pred, batch


def test_perfect_prediction_costs_nothing(models):
    pred, batch = make_batch(models)
    terms = loss_terms(pred, batch, models)
    assert set(terms.computed()) == {"pose", "shape", "keypoints_3d", "keypoints_2d", "joint_relation", "close"}
    for name, value in {**terms.computed(), "total": terms.total}.items():
        assert abs(float(value)) < 1e-12, name


def test_a_wrong_relative_vector_is_caught_only_by_the_relation_terms(models):
    pred, batch = make_batch(models, gap=0.06)
    pred.v = pred.v + torch.tensor([0.01, 0.0, 0.0], dtype=F64)
    terms = loss_terms(pred, batch, models)
    # each of the 21 x 21 joint pairs is off by exactly the 1 cm shift (mean over pairs)
    assert float(terms.joint_relation) == pytest.approx(0.01 ** 2, rel=1e-9)
    for name in ("pose", "shape", "keypoints_3d", "keypoints_2d"):
        assert abs(float(getattr(terms, name))) < 1e-12, name


def test_missing_hand_is_not_supervised(models):
    pred, batch = make_batch(models)
    pred.betas = pred.betas.clone()
    pred.betas[:, :, 1] += 1.0  # the left hand is wrong ...
    batch["present"][:, :, 1] = False  # ... but absent
    terms = loss_terms(pred, batch, models)
    assert abs(float(terms.shape)) < 1e-12
    assert abs(float(terms.joint_relation)) < 1e-12


def test_two_d_term_is_in_crop_units(models):
    pred, batch = make_batch(models)
    pred.keypoints_2d = pred.keypoints_2d + 3.0  # 3 px everywhere
    small = float(loss_terms(pred, batch, models).keypoints_2d)
    batch2 = {**batch, "boxes": batch["boxes"] * torch.tensor([1, 1, 2, 2], dtype=F64)}
    large = float(loss_terms(pred, batch2, models).keypoints_2d)
    assert small > 0 and large == pytest.approx(small / 4, rel=1e-6)  # maxMSE of a 2x larger unit


def test_without_mano_truth_only_the_keypoint_terms_supervise(models):
    # a real dataset read without MANO fits: its zeros for the parameters are not truth
    pred, batch = make_batch(models, gap=0.03)
    batch["has_mano"] = torch.tensor([False, False])
    batch["global_orient"] = torch.zeros_like(batch["global_orient"])
    batch["hand_pose"] = torch.zeros_like(batch["hand_pose"])
    batch["betas"] = torch.zeros_like(batch["betas"])
    terms = loss_terms(pred, batch, models)
    for name in ("pose", "shape", "close"):  # the (wrong) zero parameters and their vertices are ignored
        assert abs(float(getattr(terms, name))) < 1e-12, name
    assert abs(float(terms.keypoints_3d)) < 1e-12  # the joints are right; the rest-pose vertices do not count
    with_mano = loss_terms(pred, {**batch, "has_mano": torch.tensor([True, True])}, models)
    assert float(with_mano.pose) > 0 and float(with_mano.keypoints_3d) > 0


def test_mano_truth_is_per_frame_and_hand(models):
    # one hand's fit missing (e.g. InterHand2.6M's NeuralAnnot null for the left hand)
    pred, batch = make_batch(models, gap=0.03)
    for k in ("global_orient", "hand_pose", "betas"):
        batch[k] = batch[k].clone()
        batch[k][:, :, 1] = 0.0  # the left hand's parameters are not truth
    shape = batch["present"].shape
    right_only = torch.zeros(shape, dtype=torch.bool)
    right_only[..., 0] = True
    terms = loss_terms(pred, {**batch, "has_mano": right_only}, models)
    assert abs(float(terms.pose)) < 1e-12 and abs(float(terms.shape)) < 1e-12
    both = loss_terms(pred, {**batch, "has_mano": torch.ones(shape, dtype=torch.bool)}, models)
    assert float(both.pose) > 0 and float(both.shape) > 0


def test_unannotated_joints_are_not_supervised(models):
    pred, batch = make_batch(models)
    pred.keypoints = pred.keypoints.clone()
    pred.keypoints[:, :, 0, 8] += 0.05  # the right index tip 5 cm off ...
    batch["joint_valid"] = torch.ones(2, 1, 2, 21, dtype=torch.bool)
    batch["joint_valid"][:, :, 0, 8] = False  # ... where nothing is annotated
    batch["visible"] = batch["visible"] & batch["joint_valid"]
    assert abs(float(loss_terms(pred, batch, models).keypoints_3d)) < 1e-12
    del batch["joint_valid"]
    assert float(loss_terms(pred, batch, models).keypoints_3d) > 0
