"""The streaming reconstructor against the network run directly on each window."""

import numpy as np
import pytest
import torch

from fourdhands.data.sample import window_frames
from fourdhands.geometry.camera import crop_camera_pixels, intrinsics, project
from fourdhands.geometry.rotations import axis_angle_to_matrix
from fourdhands.model.config import model_config
from fourdhands.model.network import FourDHands
from fourdhands.pipeline import Reconstructor, TrackedHand, prepare_crops

N, GAP, W, H = 9, 2, 128, 96


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return FourDHands(model_config("tiny", "full", image_size=(64, 48), seq_len=3)).eval()


@pytest.fixture(scope="module")
def clip():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (H, W, 3), dtype=np.uint8) for _ in range(N)]
    hands = []
    for t in range(N):
        right = TrackedHand((40 + 2 * t, 50, 30, 36), 0.9)
        left = TrackedHand((85 - t, 45, 28, 30), 0.8)
        hands.append((right, None if t in (3, 4) else left) if t != 6 else (None, None))
    return images, hands


def _stream(net, clip, batch_frames=4, **kw):
    recon = Reconstructor(net, gap=GAP, batch_frames=batch_frames, **kw)
    out, peak = [], 0
    for image, hands in zip(*clip):
        out += recon.push(image, hands, focal=150.0)
        peak = max(peak, len(recon.entries))
    return out + recon.finish(), peak


@torch.no_grad()
def _direct(net, clip, t):
    """The network's forward on frame t's window, crops made independently per frame."""
    images, hands = clip
    frames = window_frames(t, N, 3, GAP)
    frames = [i if any(h is not None for h in hands[i]) else t for i in frames]
    crops, boxes, present = [], [], []
    for i in frames:
        p = np.array([h is not None for h in hands[i]])
        b = np.array([h.box if h is not None else (0, 0, 0, 0) for h in hands[i]], float)
        c, cb = prepare_crops(images[i], b, p, (64, 48), 1.3)
        crops.append(c), boxes.append(torch.as_tensor(cb, dtype=torch.float32)), present.append(torch.as_tensor(p))
    size = torch.tensor([[W, H]], dtype=torch.float32)
    return net(torch.stack(crops)[None], torch.stack(boxes)[None], size, torch.tensor([150.0]),
               torch.stack(present)[None], principal_point=size / 2)


def test_cached_streaming_equals_the_network_on_each_window(net, clip):
    results, _ = _stream(net, clip)
    assert [r.index for r in results] == list(range(N))
    for t, r in enumerate(results):
        sides = {s for s, h in zip(("right", "left"), clip[1][t]) if h is not None}
        assert set(r.hands) == sides  # a missing hand gets no result, nothing invented
        if not sides:
            assert r.v is None
            continue
        pred = _direct(net, clip, t)
        for h, side in enumerate(("right", "left")):
            if side not in r.hands:
                continue
            got = r.hands[side]
            rot = axis_angle_to_matrix(torch.as_tensor(np.r_[got.global_orient, got.hand_pose]).reshape(16, 3))
            assert torch.allclose(rot.float(), pred.rotmats[0, 0, h], atol=2e-4)
            assert np.allclose(got.betas, pred.betas[0, 0, h].numpy(), atol=1e-5)
        if len(sides) == 1:  # a lone hand keeps its crop-camera translation
            side = sides.pop()
            h = ("right", "left").index(side)
            assert np.allclose(r.hands[side].transl, pred.transl[0, 0, h].numpy(), rtol=1e-4, atol=1e-4)
        else:
            # both: each wrist stays on its crop camera's ray, at the depths v gives
            from fourdhands.geometry.camera import depths_from_v

            wr, wl = r.hands["right"].keypoints_3d[0], r.hands["left"].keypoints_3d[0]
            crop_wrists = pred.camera_keypoints[0, 0, :, 0].double()
            for placed, crop in zip((wr, wl), crop_wrists.numpy()):
                assert np.allclose(placed / placed[2], crop / crop[2], atol=1e-6)
            depths = depths_from_v(crop_wrists, pred.v[0, 0].double()).clamp_min(0.05).numpy()  # as placed
            assert np.allclose([wr[2], wl[2]], depths, rtol=1e-5) and np.allclose(r.v, wl - wr)


def test_results_are_consistent_in_camera_space(net, clip):
    results, _ = _stream(net, clip)
    r = results[0]
    K = intrinsics(torch.tensor(150.0, dtype=torch.float64), torch.tensor([W / 2, H / 2], dtype=torch.float64))
    for hand in r.hands.values():
        assert np.allclose(project(torch.as_tensor(hand.keypoints_3d), K).numpy(), hand.keypoints_2d, atol=1e-6)
        # the keypoints sit on the mesh's frame: transl moves both alike
        assert hand.vertices.shape[1] == 3 and np.isfinite(hand.vertices).all()


def test_memory_stays_bounded_on_a_long_stream(net):
    images = [np.zeros((H, W, 3), np.uint8)] * 40
    hands = [(TrackedHand((40, 50, 30, 36)), TrackedHand((80, 50, 30, 36)))] * 40
    results, peak = _stream(net, (images, hands), batch_frames=4)
    assert len(results) == 40
    reach = GAP * (3 // 2)
    assert peak <= 2 * reach + 4 + 1, peak


def test_a_box_of_no_size_is_no_hand_not_a_crash(net):
    images = [np.zeros((H, W, 3), np.uint8)] * 3
    hands = [(TrackedHand((40, 50, 30, 36)), TrackedHand((80, 50, 0.0, 0.0)))] * 3  # the left hidden: a point
    results, _ = _stream(net, (images, hands))
    assert all(set(r.hands) == {"right"} and r.v is None for r in results)
    assert all(np.isfinite(r.hands["right"].vertices).all() for r in results)


def test_a_resumed_run_reproduces_the_frames_it_redoes(net, clip):
    full, _ = _stream(net, clip)
    partial, _ = _stream(net, clip, needed=lambda i: i >= 5)
    assert partial[:5] == [None] * 5
    for a, b in zip(full[5:], partial[5:]):
        assert set(a.hands) == set(b.hands)
        for side in a.hands:
            assert np.allclose(a.hands[side].vertices, b.hands[side].vertices, atol=1e-6)


def test_pnp_fits_the_crop_cameras_pixels_at_least_as_well(net, clip):
    images, hands = clip
    lone = (images[3:4], [hands[3]])  # the right hand alone: no v adjustment
    crop, _ = _stream(net, lone)
    pnp, _ = _stream(net, lone, translation="pnp")
    a, b = crop[0].hands["right"], pnp[0].hands["right"]
    keypoints = torch.as_tensor(a.keypoints_3d - a.transl)  # the model's output, untranslated
    # where the crop camera sees the keypoints, from the network's own outputs
    recon = Reconstructor(net, gap=GAP)
    recon.push(images[3], hands[3], focal=150.0)
    recon._encode()
    entry = recon.entries[0]
    with torch.no_grad():
        out = net.decode(entry.features[None, None], torch.as_tensor(entry.crop_boxes, dtype=torch.float32)[None, None],
                         torch.tensor([[W, H]], dtype=torch.float32), torch.tensor([150.0]),
                         torch.as_tensor(entry.present)[None, None], principal_point=torch.tensor([[W / 2, H / 2]]))
    box = torch.as_tensor(entry.crop_boxes[0])
    # the crop camera's 5000 px focal is over 256 crop pixels; this crop is 64 px high
    target = crop_camera_pixels(keypoints, out.crop_cam[0, 0, 0].double(), box[:2], box[3] * 256.0 / 64)
    K = intrinsics(torch.tensor(150.0, dtype=torch.float64), torch.tensor([W / 2, H / 2], dtype=torch.float64))
    err = {name: float((project(keypoints + torch.as_tensor(h.transl), K) - target).norm(dim=-1).mean())
           for name, h in (("crop", a), ("pnp", b))}
    assert err["pnp"] <= err["crop"] + 1e-9, err


@pytest.mark.parametrize("angles", [None, np.array([0.7, -2.0])])
def test_crops_cut_from_their_region_equal_crops_of_the_whole_image(angles):
    """The region-only cut (turned crops too) equals the training's whole-image cut."""
    from fourdhands.data.augment import crop_affines, crop_boxes
    from fourdhands.geometry.crop import crop_image

    rng = np.random.default_rng(5)
    image = rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)
    boxes = np.array([[100.0, 120.0, 40.0, 50.0], [390.0, 20.0, 60.0, 70.0]])  # the second crosses the border
    present = np.array([True, True])
    got, cboxes = prepare_crops(image, boxes, present, (64, 48), 1.3, angles)
    assert np.allclose(cboxes, crop_boxes(boxes, present, (64, 48), 1.3))
    whole = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    want = crop_image(whole, crop_affines(cboxes, np.eye(3), (64, 48), angles).float(), (64, 48))
    assert torch.allclose(got, want, atol=1e-3)  # float32 coordinates: whole-image ones are larger


def test_a_large_hand_is_shrunk_with_a_box_filter_not_aliased():
    # a fine checkerboard (period 2 px) in a box 8x the crop: a point-sampled crop would
    # show the pattern's aliases; the box filter gives its mean grey
    image = ((np.indices((1200, 1000)).sum(0) % 2) * 255).astype(np.uint8)[..., None].repeat(3, -1)
    boxes = np.array([[500.0, 600.0, 300.0, 400.0], [0.0, 0.0, 0.0, 0.0]])
    crops, _ = prepare_crops(image, boxes, np.array([True, False]), (64, 48), 1.3)
    assert float((crops[0] - 0.5).abs().max()) < 0.01
    assert torch.equal(crops[1], torch.zeros_like(crops[1]))


def test_an_upright_network_turns_each_crop_by_its_landmarks():
    """With landmarks the reconstructor cuts the crop turned so the wrist -> middle knuckle
    points up and hands the angle to the network: its result equals the network run on
    that turned crop with that angle; without landmarks the crop is not turned."""
    torch.manual_seed(0)
    upright = FourDHands(model_config("tiny", "cross_s", image_size=(64, 48), upright=True, crop_frame=True)).eval()
    image = np.random.default_rng(3).integers(0, 255, (H, W, 3), dtype=np.uint8)
    landmarks = np.zeros((21, 2))
    landmarks[0], landmarks[9] = (40.0, 50.0), (55.0, 50.0)  # pointing right: turn by +90 deg
    hand = TrackedHand((45, 50, 30, 36), 0.9, landmarks)
    assert hand.angle() == pytest.approx(np.pi / 2)
    assert TrackedHand((45, 50, 30, 36)).angle() == 0.0
    recon = Reconstructor(upright, gap=1)
    got = (recon.push(image, (hand, None), focal=150.0) + recon.finish())[0]
    boxes = np.array([hand.box, (0, 0, 0, 0)], float)
    present = np.array([True, False])
    angles = np.array([np.pi / 2, 0.0])
    crops, cboxes = prepare_crops(image, boxes, present, (64, 48), 1.3, angles)
    size = torch.tensor([[W, H]], dtype=torch.float32)
    with torch.no_grad():
        want = upright(crops[None, None], torch.as_tensor(cboxes, dtype=torch.float32)[None, None], size,
                       torch.tensor([150.0]), torch.as_tensor(present)[None, None], principal_point=size / 2,
                       angles=torch.as_tensor(angles, dtype=torch.float32)[None, None])
    np.testing.assert_allclose(got.hands["right"].keypoints_3d, want.camera_keypoints[0, 0, 0].numpy(), atol=1e-4)
    with pytest.raises(Exception, match="use --translation crop"):
        Reconstructor(upright, gap=1, translation="pnp")


def test_v_sets_the_depths_along_the_wrist_rays():
    from fourdhands.geometry.camera import depths_from_v

    true = torch.tensor([[0.10, -0.05, 0.80], [-0.15, 0.02, 0.95]], dtype=torch.float64)
    v = true[1] - true[0]
    wrong = true * torch.tensor([[1.3], [0.8]], dtype=torch.float64)  # same rays, wrong depths
    # v consistent with the rays and a faint depth prior: the true depths come back
    torch.testing.assert_close(depths_from_v(wrong, v, weight=1e-6), true[:, 2], atol=1e-5, rtol=0)
    # a strong prior keeps the crop cameras' depths
    torch.testing.assert_close(depths_from_v(wrong, v, weight=1e6), wrong[:, 2], atol=1e-6, rtol=0)
    # in between, hand-worked normal equations of the 5 x 2 least-squares problem
    w = 0.3
    q = wrong / wrong[:, 2:]
    A = torch.cat([torch.stack([-q[0], q[1]], 1), w * torch.eye(2, dtype=torch.float64)])
    b = torch.cat([v, w * wrong[:, 2]])
    torch.testing.assert_close(depths_from_v(wrong, v, w), torch.linalg.solve(A.T @ A, A.T @ b))


def test_crops_expand_the_tight_box_by_the_models_box_expand():
    # the setting travels in the model's config (and so in its checkpoint): inference
    # crops as the training did, with no default of its own to drift from it
    torch.manual_seed(0)
    image = np.zeros((H, W, 3), np.uint8)
    hand = TrackedHand(np.array([60.0, 50.0, 20.0, 30.0]), 0.9)
    heights = {}
    for expand in (1.3, 2.0):
        net = FourDHands(model_config("tiny", "cross_s", image_size=(64, 48), box_expand=expand)).eval()
        recon = Reconstructor(net, gap=1)
        recon.push(image, (hand, None), 150.0)
        heights[expand] = recon.entries[0].crop_boxes[0][3]
    # the crop fits the 64x48 aspect around 30 px * expand: the taller side sets its height
    assert heights[1.3] == pytest.approx(30 * 1.3) and heights[2.0] == pytest.approx(30 * 2.0)
