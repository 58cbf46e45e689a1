"""Clip-level refinement on clips made here with the open hand model: a known smooth
motion, seen through a jittery "network", comes out smoother and no less accurate; the
streaming windows keep every frame in order; what cannot be refined is left alone and
said; a window that turns non-finite falls back with a warning."""

import dataclasses

import numpy as np
import pytest
import torch

from fourdhands.geometry.inside import inside
from fourdhands.hands import load_hand_model
from fourdhands.pipeline import FrameResult, HandResult
from fourdhands.refine import ClipRefiner, RefineConfig, smoothness_basis, steady_depths

K = np.array([[600.0, 0.0, 320.0], [0.0, 600.0, 240.0], [0.0, 0.0, 1.0]])


@pytest.fixture(scope="module")
def models():
    return {side: load_hand_model("open", side) for side in ("right", "left")}


def _hand(model, go, hp, tr):
    with torch.no_grad():
        out = model(global_orient=torch.tensor(go, dtype=torch.float32)[None],
                    hand_pose=torch.tensor(hp, dtype=torch.float32)[None], transl=torch.tensor(tr, dtype=torch.float32)[None])
    kp = out.keypoints[0].double().numpy()
    p = kp @ K.T
    return HandResult(np.asarray(go, float), np.asarray(hp, float), np.zeros(10), np.asarray(tr, float), kp,
                      p[:, :2] / p[:, 2:], out.vertices[0].double().numpy(), np.zeros(4), np.zeros(4), 1.0)


def _clip(models, T=16, noise=0.0, seed=0, left_offset=(0.25, 0.0, 0.0)):
    """The true clip and a jittery copy: both hands turning and moving smoothly."""
    rng = np.random.default_rng(seed)
    truth, seen = [], []
    for t in range(T):
        hands_true, hands_seen = {}, {}
        for side, dx in (("right", 0.0), ("left", 1.0)):
            go = np.array([0.3 + 0.01 * t, 0.2 * np.sin(t / 10), 0.0])
            hp = np.full(45, 0.1) * (1 + 0.3 * np.sin(t / 8))
            tr = np.array([-0.06 + dx * left_offset[0] + 0.002 * t, dx * left_offset[1] + 0.01 * np.sin(t / 6), 0.6])
            hands_true[side] = _hand(models[side], go, hp, tr)
            hands_seen[side] = _hand(models[side], go + rng.normal(0, 0.05 * noise, 3),
                                     hp + rng.normal(0, 0.05 * noise, 45), tr + rng.normal(0, 0.004 * noise, 3))
        for hands, out in ((hands_true, truth), (hands_seen, seen)):
            v = hands["left"].keypoints_3d[0] - hands["right"].keypoints_3d[0]
            out.append(FrameResult(t, (640, 480), K, hands, v))
    return truth, seen


SHORT = RefineConfig(window=10, overlap=3, rounds=1)  # several windows in a short clip


def _refine(models, results, landmarks=None, config=None):
    refiner = ClipRefiner(models, config or SHORT)
    out = []
    for t, r in enumerate(results):
        out += refiner.push(r, (landmarks or {}).get(t, {}))
    return out + refiner.finish(), refiner


def _accel(results, side):
    kp = np.stack([r.hands[side].keypoints_3d for r in results])
    return np.linalg.norm(kp[2:] - 2 * kp[1:-1] + kp[:-2], axis=-1).mean()


def _error(results, truth, side):
    return np.mean([np.linalg.norm(r.hands[side].keypoints_3d - g.hands[side].keypoints_3d, axis=-1).mean()
                    for r, g in zip(results, truth)])


def test_a_jittery_clip_comes_out_smoother_and_no_less_accurate(models):
    truth, seen = _clip(models, noise=1.0)
    out, refiner = _refine(models, seen)
    assert [r.index for r in out] == list(range(16))  # every frame, in order, across windows
    for side in ("right", "left"):
        assert _accel(out, side) < _accel(seen, side) * 0.7, side
        assert _error(out, truth, side) <= _error(seen, truth, side) + 0.001, side
    r = refiner.report
    assert r["windows"] >= 2 and r["frames"] >= 16 and not r["fallbacks"]
    assert r["after"]["joint_smoothness"] < r["before"]["joint_smoothness"] / 1.5
    # the outputs agree with their own parameters
    h = out[11].hands["left"]
    again = _hand(models["left"], h.global_orient, h.hand_pose, h.transl)
    np.testing.assert_allclose(again.vertices, h.vertices, atol=1e-5)
    np.testing.assert_allclose(out[11].v, out[11].hands["left"].keypoints_3d[0] - out[11].hands["right"].keypoints_3d[0])


def test_the_smoothness_basis_whitens_the_smoothness_quadratic():
    """``A`` maps the variables onto the free frames only, and ``A^T (I + r D^T D) A`` is
    the identity there (``D`` written out by hand from the present triples)."""
    present = torch.tensor([True] * 6 + [False] + [True] * 5)
    free = present.clone()
    free[:2] = False  # two fixed context frames
    ratio = 7.0
    A = smoothness_basis(free, present, ratio).double()
    assert A.shape == (12, int(free.sum()))
    assert A[~free].abs().max() == 0
    D = []
    for t in range(10):
        if present[t] and present[t + 1] and present[t + 2]:
            row = torch.zeros(12, dtype=torch.float64)
            row[t], row[t + 1], row[t + 2] = 1.0, -2.0, 1.0
            D.append(row)
    D = torch.stack(D)[:, free]
    M = torch.eye(int(free.sum()), dtype=torch.float64) + ratio * D.T @ D
    Af = A[free]
    torch.testing.assert_close(Af.T @ M @ Af, torch.eye(len(Af), dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(Af, Af.T)  # the symmetric root
    # ratio 0: the plain variables of the free frames
    torch.testing.assert_close(smoothness_basis(free, present, 0.0)[free], torch.eye(int(free.sum())))


def test_preconditioning_gets_further_in_the_same_steps(models):
    _, seen = _clip(models, T=40, noise=1.0, seed=4)
    energy = {}
    for ratios in ((0.0, 0.0), (8.0, 1.0)):
        config = RefineConfig(window=64, rounds=1, steps=6, steps_per_frame=0.0, part=None,
                              precondition_rotation=ratios[0], precondition_fingers=ratios[1])
        _, refiner = _refine(models, seen, config=config)
        after = refiner.report["after"]
        energy[ratios] = sum(getattr(config, k) * v for k, v in after.items())
    assert energy[(8.0, 1.0)] < 0.9 * energy[(0.0, 0.0)], energy


def test_a_long_window_gets_steps_by_its_length(models, monkeypatch):
    """``steps`` is the least number of L-BFGS iterations; ``steps_per_frame`` adds more for
    long windows, which smooth the further for it."""
    _, seen = _clip(models, T=40, noise=1.0, seed=3)
    calls = []
    energy = ClipRefiner._energy
    monkeypatch.setattr(ClipRefiner, "_energy", lambda self, *a, **k: calls.append(1) or energy(self, *a, **k))
    results = {}
    for per_frame in (0.0, 0.5):
        calls.clear()
        config = RefineConfig(window=64, rounds=1, steps=4, steps_per_frame=per_frame, part=None)
        out, refiner = _refine(models, seen, config=config)
        results[per_frame] = (len(calls), refiner.report["after"]["joint_smoothness"])
    # L-BFGS evaluates at most 1.25 times per iteration, and the report twice more
    assert results[0.0][0] <= 4 * 1.25 + 2 < results[0.5][0]
    assert results[0.5][0] > 20
    assert results[0.5][1] < results[0.0][1]


def test_the_detectors_landmarks_pull_towards_themselves(models):
    truth, seen = _clip(models, noise=1.0, seed=1)
    landmarks = {t: {"right": (g.hands["right"].keypoints_2d, 1.0)} for t, g in enumerate(truth)}
    config = RefineConfig(window=10, overlap=3, rounds=1, reprojection=0.5)  # 2D weighs enough to tell
    with_lm, _ = _refine(models, seen, landmarks, dataclasses.replace(config, detector_weight=5.0))
    without, _ = _refine(models, seen, config=config)

    def px(results):
        return np.mean([np.linalg.norm(r.hands["right"].keypoints_2d - g.hands["right"].keypoints_2d, axis=-1).mean()
                        for r, g in zip(results, truth)])
    assert px(with_lm) < px(without) * 0.95


def test_interpenetrating_hands_are_pushed_apart(models):
    truth, seen = _clip(models, T=4, left_offset=(0.12, 0.02, 0.0))  # the left hand sunk into the right
    faces = models["left"].faces

    def inner(results):
        return sum(int(inside(torch.as_tensor(r.hands["right"].vertices[::3], dtype=torch.float32),
                              torch.as_tensor(r.hands["left"].vertices, dtype=torch.float32), faces).sum())
                   for r in results)
    assert inner(seen) > 200
    out, refiner = _refine(models, seen, config=RefineConfig(window=10, overlap=3, penetration=1000.0))
    assert refiner.report["after"]["penetration"] < refiner.report["before"]["penetration"] / 5
    assert inner(out) < inner(seen) / 5


def test_what_cannot_be_refined_is_left_as_it_was(models):
    _, seen = _clip(models, T=6)
    one, refiner = _refine(models, seen[:1])
    assert one[0] is seen[0] and "a clip of one frame" in refiner.report["notes"][0]
    # the left hand seen in a single frame, no hands in another, a frame not needed (None)
    frames = [FrameResult(r.index, r.image_size, r.K, {"right": r.hands["right"]}) for r in seen]
    frames[3] = seen[3]
    frames[4] = FrameResult(4, (640, 480), K, {})
    frames[5] = None
    out, _ = _refine(models, frames)
    assert out[3].hands["left"] is seen[3].hands["left"] and out[4].hands == {} and out[5] is None
    assert out[0].hands["right"] is not frames[0].hands["right"]  # the right hand was refined


def test_a_window_that_turns_non_finite_falls_back_with_a_warning(models, capsys):
    _, seen = _clip(models, T=8, noise=1.0)
    bad = seen[2].hands["right"]
    seen[2].hands["right"] = HandResult(bad.global_orient, bad.hand_pose, bad.betas, bad.transl, bad.keypoints_3d,
                                        np.full((21, 2), np.nan), bad.vertices, bad.box, bad.crop_box, bad.score)
    out, refiner = _refine(models, seen)
    assert all(o is s for o, s in zip(out, seen))
    assert len(refiner.report["fallbacks"]) == 1 and 2 in refiner.report["fallbacks"][0]
    assert "turned non-finite" in capsys.readouterr().err


def test_steady_depths_replaces_spikes_and_keeps_steady_motion():
    spike = np.array([0.80, 0.81, 0.82, 5.98, 0.84, 0.85, 0.86])
    present = np.ones(7, bool)
    out = steady_depths(spike, present, reach=5, ratio=1.5)
    np.testing.assert_allclose(out, [0.80, 0.81, 0.82, 0.84, 0.84, 0.85, 0.86])  # the median of all seven
    ramp = np.linspace(0.4, 0.8, 24)  # twice as far over the clip
    np.testing.assert_array_equal(steady_depths(ramp, np.ones(24, bool), 5, 1.5), ramp)
    # absent frames do not count, and a hand seen alone after a gap has too few neighbours
    gappy = np.array([0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0])
    seen = gappy > 0
    np.testing.assert_array_equal(steady_depths(gappy, seen, 5, 1.5), gappy)


def test_a_hand_thrown_far_for_one_frame_comes_back_along_its_ray(models):
    truth, seen = _clip(models, T=12)
    t = 6
    far = seen[t].hands["right"]
    wrist = far.keypoints_3d[0]
    moved = 4.0 * wrist - wrist  # the wrist four times as far along its ray
    seen[t].hands["right"] = dataclasses.replace(far, transl=far.transl + moved, keypoints_3d=far.keypoints_3d + moved,
                                                 vertices=far.vertices + moved)
    out, refiner = _refine(models, seen, config=RefineConfig(window=16))
    assert refiner.report["depth_outliers"] == [t]
    back = out[t].hands["right"].keypoints_3d[0]
    assert abs(back[2] - truth[t].hands["right"].keypoints_3d[0][2]) < 0.02  # 0.6 m, not 2.4
    np.testing.assert_allclose(back[:2] / back[2], wrist[:2] / wrist[2], atol=0.01)  # on the same ray
