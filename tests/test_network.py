"""The assembled network: shapes for every ablation, missing hands, caching, training."""

import pytest
import torch

from fourdhands.model.config import ABLATIONS, PRESETS, model_config
from fourdhands.model.network import FourDHands, _other_hand_stand_in, _stand_in_boxes
from fourdhands.errors import UserError

H, W = 64, 48  # small crops keep the tiny preset fast on CPU


def small(ablation="full", **kw):
    torch.manual_seed(0)
    return FourDHands(model_config("tiny", ablation, image_size=(H, W), **kw)).eval()


def inputs(b=2, t=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    boxes = torch.tensor([[300.0, 240.0, 90.0, 120.0], [380.0, 250.0, 60.0, 80.0]])
    return dict(
        crops=torch.randn(b, t, 2, 3, H, W, generator=g),
        boxes=boxes.expand(b, t, 2, 4).clone(),
        image_size=torch.tensor([[640.0, 480.0]]).expand(b, 2),
        holistic=torch.randn(b, t, 3, H, W, generator=g),
        holistic_box=torch.tensor([340.0, 245.0, 180.0, 240.0]).expand(b, t, 4),
    )


@pytest.mark.parametrize("ablation", list(ABLATIONS))
@pytest.mark.parametrize("t", [1, 9])
def test_output_shapes_for_every_ablation(ablation, t):
    net = small(ablation)
    with torch.no_grad():
        out = net(**inputs(2, t))
    t_out = 1 if net.config.temporal else t
    V = net.right_model.num_vertices
    assert out.rotmats.shape == (2, t_out, 2, 16, 3, 3)
    assert out.betas.shape == (2, t_out, 2, 10) and out.crop_cam.shape == (2, t_out, 2, 3)
    assert out.vertices.shape == (2, t_out, 2, V, 3) and out.keypoints.shape == (2, t_out, 2, 21, 3)
    assert out.transl.shape == (2, t_out, 2, 3) and out.v.shape == (2, t_out, 3)
    assert out.keypoints_2d.shape == (2, t_out, 2, 21, 2)
    assert torch.isfinite(out.camera_vertices).all()
    # rotations are proper; hands start in front of the camera
    det = torch.linalg.det(out.rotmats)
    torch.testing.assert_close(det, torch.ones_like(det), atol=1e-5, rtol=0)
    assert (out.transl[..., 2] > 0).all()
    if t == 9 and net.config.temporal:
        assert out.frames.tolist() == [4]


def test_presets_and_ablations_are_validated():
    assert set(PRESETS) == {"tiny", "small", "base", "large", "huge", "mediapipe"}
    with pytest.raises(UserError, match="takes 224x224 crops"):
        model_config("mediapipe", image_size=(256, 192))
    with pytest.raises(UserError, match="unknown backbone"):
        model_config("tiny", backbone="resnet")
    with pytest.raises(UserError, match="unknown preset"):
        model_config("gigantic")
    with pytest.raises(UserError, match="unknown ablation"):
        model_config("tiny", "cross_x")
    with pytest.raises(UserError, match="unknown key"):
        model_config("tiny", "full", depth=3)
    with pytest.raises(UserError, match="RAT needs"):
        model_config("tiny", "cross_h", rat=True)


def test_a_single_frame_is_its_feature_repeated_over_the_window():
    net = small("full")
    x1 = inputs(1, 1)
    x9 = {k: (v.expand(-1, 9, *v.shape[2:]).clone() if k in ("crops", "boxes", "holistic", "holistic_box") else v)
          for k, v in x1.items()}
    with torch.no_grad():
        a, b = net(**x1), net(**x9)
    torch.testing.assert_close(a.vertices, b.vertices, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.v, b.v, atol=1e-6, rtol=1e-5)


def test_video_cache_gives_the_same_result_as_encoding_the_window():
    net = small("full")
    x = inputs(1, 9, seed=3)
    with torch.no_grad():
        whole = net(**x)
        per_frame = torch.cat([net.encode(x["crops"][:, i:i + 1], x["boxes"][:, i:i + 1])
                               for i in range(9)], dim=1)
        cached = net.decode(per_frame, x["boxes"], x["image_size"])
    torch.testing.assert_close(cached.keypoints, whole.keypoints, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cached.transl, whole.transl, atol=1e-5, rtol=1e-5)


def test_missing_hand_sees_the_other_hand_mirrored_and_far_away():
    x = inputs(1, 2)
    present = torch.tensor([[[True, False], [False, True]]])
    net = small("full")
    views = net.network_views(x["crops"])
    stood = _other_hand_stand_in(views, present)
    # a missing left hand sees the right crop mirrored, i.e. (the left view being
    # mirrored itself) exactly the right hand's network view, and vice versa
    torch.testing.assert_close(net.network_views(x["crops"][:, :, [0, 0]].flip(-1).flip(2))[0, 0, 1], views[0, 0, 0])
    torch.testing.assert_close(stood[0, 0, 1], views[0, 0, 0])
    torch.testing.assert_close(stood[0, 1, 0], views[0, 1, 1])
    torch.testing.assert_close(stood[0, 0, 0], views[0, 0, 0])  # present hands untouched
    angles = torch.tensor([[[0.3, 0.0], [0.0, -0.4]]])
    boxes, turned = _stand_in_boxes(x["boxes"], angles, present)
    far = boxes[0, 0, 1]
    assert (far[:2] - x["boxes"][0, 0, 0, :2]).abs().max() > 10 * x["boxes"][0, 0, 0, 2:].max()
    torch.testing.assert_close(far[2:], x["boxes"][0, 0, 0, 2:])
    assert turned[0, 0, 1] == angles[0, 0, 0] and turned[0, 1, 0] == angles[0, 1, 1]
    with torch.no_grad():
        out = net(**x, present=present)
    assert out.present.shape == (1, 1, 2)
    assert torch.isfinite(out.vertices).all()


def test_encoding_from_cached_trunk_features_equals_encoding_the_crops():
    net = small("full")
    x = inputs(2, 3)
    angles = torch.rand(2, 3, 2, generator=torch.Generator().manual_seed(1))
    present = torch.ones(2, 3, 2, dtype=torch.bool)
    present[0, 1, 1] = False
    with torch.no_grad():
        direct = net.encode(x["crops"], x["boxes"], present, angles=angles)
        cached = net.encode(None, x["boxes"], present, angles=angles, trunk=net.trunk(net.network_views(x["crops"])))
    torch.testing.assert_close(cached, direct)


def test_crop_frame_turns_orientation_and_translation_with_the_crop():
    """A crop_frame network's camera-frame output is its crop-frame output turned by the
    crop's look-at-and-roll frame: same features, another angle, exactly R_c' R_c^T."""
    from fourdhands.geometry.camera import intrinsics
    from fourdhands.geometry.crop_frame import crop_frame_rotation

    net = small("cross_s", crop_frame=True, upright=True)
    x = inputs(1, 1)
    size, f = x["image_size"][:1], torch.tensor([500.0])
    with torch.no_grad():
        g = net.encode(x["crops"], x["boxes"])
        a0 = torch.zeros(1, 1, 2)
        a1 = torch.tensor([[[0.7, -1.1]]])
        p0 = net.decode(g, x["boxes"], size, f, angles=a0)
        p1 = net.decode(g, x["boxes"], size, f, angles=a1)
    K = intrinsics(f, size / 2)
    R0 = crop_frame_rotation(x["boxes"][0, 0, :, :2], a0[0, 0], K)
    R1 = crop_frame_rotation(x["boxes"][0, 0, :, :2], a1[0, 0], K)
    torch.testing.assert_close(p1.rotmats[0, 0, :, 0], R1 @ R0.transpose(-1, -2) @ p0.rotmats[0, 0, :, 0],
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(p1.rotmats[0, 0, :, 1:], p0.rotmats[0, 0, :, 1:])
    # the hands turn about the camera centre: their distances from it stay
    torch.testing.assert_close(p1.camera_keypoints.norm(dim=-1), p0.camera_keypoints.norm(dim=-1), atol=1e-5, rtol=0)


def test_v_from_cameras_is_the_difference_of_the_camera_wrists():
    net = small("baseline")
    with torch.no_grad():
        out = net(**inputs(2, 3))
    kp = out.camera_keypoints
    torch.testing.assert_close(out.v, kp[:, :, 1, 0] - kp[:, :, 0, 0])


def test_projection_of_keypoints_uses_the_image_camera():
    net = small("cross_s")
    x = inputs(1, 1)
    with torch.no_grad():
        out = net(**x)
    kp = out.camera_keypoints[0, 0]
    f = 5000.0 / 256.0 * 640.0  # default focal for a 640x480 image
    expected = kp[..., :2] / kp[..., 2:] * f + torch.tensor([320.0, 240.0])
    torch.testing.assert_close(out.keypoints_2d[0, 0], expected, atol=1e-3, rtol=1e-5)


def test_left_hand_comes_back_unmirrored():
    """With an untrained head every hand gets the same parameters from the same crop;
    the left's rotations must then be the mirror (M R M) of the right's."""
    net = small("cross_s_no_rat")
    x = inputs(1, 1)
    x["crops"][:, :, 1] = x["crops"][:, :, 0].flip(-1)  # the left crop mirrors the right
    x["boxes"][:, :, 1] = x["boxes"][:, :, 0]
    with torch.no_grad():
        g = net.encode(x["crops"], x["boxes"])
        g = g[:, :, :1].expand(-1, -1, 2, -1)  # same feature for both hands
        out = net.decode(g, x["boxes"], x["image_size"])
    M = torch.diag(torch.tensor([-1.0, 1.0, 1.0]))
    torch.testing.assert_close(out.rotmats[0, 0, 1], M @ out.rotmats[0, 0, 0] @ M)
    torch.testing.assert_close(out.crop_cam[0, 0, 1], out.crop_cam[0, 0, 0] * torch.tensor([1.0, -1.0, 1.0]))


@pytest.mark.parametrize("ablation", ["full", "cross_h", "baseline"])
def test_one_training_step_moves_every_parameter(ablation):
    net = small(ablation).train()
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt = torch.optim.SGD(net.parameters(), lr=1e-2)
    out = net(**inputs(2, 9 if net.config.temporal else 2))
    loss = (out.vertices.square().mean() + out.v.square().mean() + out.transl.square().mean()
            + out.betas.square().mean())
    loss.backward()
    opt.step()
    frozen = [n for n, p in net.named_parameters() if torch.equal(p, before[n])]
    assert not frozen, frozen


def test_info_reports_the_real_parameter_count_and_flops(capsys):
    from fourdhands.cli import main
    from fourdhands.model.profile import count_flops

    assert main(["info", "--preset", "tiny", "--height", "64", "--width", "48"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("tiny"))
    net = small("full")
    params = sum(p.numel() for p in net.parameters())
    assert f"{params / 1e6:.1f}M" in row.split()[1]
    # the FLOPs column equals a count on a real (CPU) forward, and the backbone dominates
    x = inputs(1, 1)
    with torch.no_grad():
        real = count_flops(lambda: net(**x))
        backbone = count_flops(lambda: net.backbone(x["crops"][0, 0]))
    assert float(row.split()[3]) == pytest.approx(real / 1e9, abs=0.051)
    assert 2 * backbone > 0.5 * real


@pytest.mark.parametrize("t", [1, 9])
def test_small_preset_forward_and_backward(t):
    torch.manual_seed(0)
    net = FourDHands(model_config("small", "full", image_size=(H, W))).train()
    out = net(**inputs(1, t))
    (out.vertices.square().mean() + out.v.square().mean()).backward()
    grads = [p.grad for p in net.backbone.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert out.vertices.shape[:3] == (1, 1, 2)
