"""The One-Euro smoothing (fourdhands.smoothing): vectors, rotations on SO(3) and hands.

Every test is seeded and runs in well under a second (the hand-model ones load the open
model once)."""

import time

import numpy as np
import pytest
import torch

from fourdhands.geometry import rotations as R
from fourdhands.smoothing import (
    METRES, HandSmoother, OneEuro, OneEuroConfig, OneEuroRotation, axis_angle_to_quaternion,
    matrix_to_quaternion, quaternion_log, quaternion_multiply, quaternion_to_axis_angle,
    quaternion_to_matrix, smoothing_alpha,
)

DT = 1 / 30


def _angle_between(p, q):
    """Rotation angle (rad) between unit quaternions, either sign: (..., 4) -> (...)."""
    return 2 * np.arccos(np.clip(np.abs((p * q).sum(-1)), 0, 1))


def _noisy_rotations(q0, n, sigma, rng):
    """n frames of q0 (J, 4) perturbed by rotation vectors of std sigma (rad) per axis."""
    noise = axis_angle_to_quaternion(rng.normal(0, sigma, (n,) + q0.shape[:-1] + (3,)))
    return quaternion_multiply(q0, noise)


# ----------------------------------------------------------------------------- vectors


def test_hand_worked_three_samples():
    # min_cutoff = d_cutoff = beta = 1 / (2 pi): tau_d = 1, tau = 1 / (1 + |dx_hat|).
    c = 1 / (2 * np.pi)
    cfg = OneEuroConfig(min_cutoff=c, beta=c, d_cutoff=c)
    # t=0, x=0: passed through. t=1 (dt=1), x=4: dx = 4, a_d = 1/2 -> dx_hat = 2,
    # tau = 1/3 -> a = 3/4 -> x_hat = 3. t=3 (dt=2), x=6: dx = (6 - 3)/2 = 1.5,
    # a_d = 1/(1 + 1/2) = 2/3 -> dx_hat = 1 + 2/3 = 5/3, tau = 3/8 -> a = 1/(1 + 3/16) =
    # 16/19 -> x_hat = (16 * 6 + 3 * 3) / 19 = 105/19.
    f = OneEuro(cfg, norm_axis=None)
    got = [f(t, [x, -x]) for t, x in [(0, 0.0), (1, 4.0), (3, 6.0)]]
    np.testing.assert_allclose(np.array(got)[:, 0], [0, 3, 105 / 19], rtol=1e-12)
    np.testing.assert_allclose(np.array(got)[:, 1], [0, -3, -105 / 19], rtol=1e-12)
    # per point: the speed is the norm of the velocity, (2.4, 3.2) has norm 4 as above
    p = OneEuro(cfg, norm_axis=-1)
    p(0, [[0.0, 0.0]])
    np.testing.assert_allclose(p(1, [[2.4, 3.2]]), [[1.8, 2.4]], rtol=1e-12)
    assert smoothing_alpha(1.0, c) == pytest.approx(0.5)


def test_a_constant_signal_passes_unchanged():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(21, 3))
    f = OneEuro(METRES)
    times = np.cumsum(rng.uniform(0.01, 0.1, 40))
    for t in times:
        np.testing.assert_allclose(f(t, x), x, rtol=0, atol=1e-15)
    q = axis_angle_to_quaternion(rng.normal(size=(16, 3)))
    g = OneEuroRotation()
    for t in times:
        np.testing.assert_allclose(g(t, q), q, rtol=0, atol=1e-12)


def test_a_step_is_followed_with_lag_and_no_overshoot():
    step = 0.05  # a 5 cm jump
    f = OneEuro(METRES)
    y = np.array([f(i * DT, [step if i >= 10 else 0.0])[0] for i in range(70)])
    assert np.all(y[:10] == 0)
    assert 0.2 * step < y[10] < 0.9 * step  # lags ...
    assert np.all(np.diff(y) >= 0) and np.all(y <= step)  # ... never overshoots ...
    assert y[40] > 0.999 * step  # ... and arrives within a second
    # the same on SO(3): identity -> 1 rad about z, the angle rises monotonically to 1
    g = OneEuroRotation()
    target = axis_angle_to_quaternion([0, 0, 1.0])
    angles = np.array([quaternion_to_axis_angle(g(i * DT, target if i >= 10 else [1.0, 0, 0, 0]))[2]
                       for i in range(70)])
    assert 0.2 < angles[10] < 0.9 and np.all(np.diff(angles) >= -1e-12) and np.all(angles <= 1 + 1e-12)
    assert angles[-1] > 0.999


def test_jitter_is_removed_at_low_speed_and_fast_motion_is_followed():
    rng = np.random.default_rng(1)
    t = np.arange(150) * DT
    slow = 0.05 * np.sin(2 * np.pi * 0.2 * t)[:, None, None] * np.ones((1, 21, 3))
    noisy = slow + rng.normal(0, 0.003, slow.shape)  # 3 mm jitter
    f = OneEuro(METRES)
    out = np.array([f(ti, xi) for ti, xi in zip(t, noisy)])
    accel = lambda x: np.sqrt((np.diff(x[30:], 2, axis=0) ** 2).mean())  # noqa: E731
    assert accel(out) < accel(noisy) / 3.5, (accel(out), accel(noisy))
    # a fast reach (1 m/s for 0.5 s after rest), with the same jitter
    ramp = np.clip(t - 1.0, 0, 0.5)[:, None, None] * np.ones((1, 21, 3)) / np.sqrt(3)
    noisy = ramp + rng.normal(0, 0.003, ramp.shape)
    lags = {}
    for beta in (0.0, METRES.beta):
        f = OneEuro(OneEuroConfig(METRES.min_cutoff, beta, METRES.d_cutoff))
        out = np.array([f(ti, xi) for ti, xi in zip(t, noisy)])
        end = np.searchsorted(t, 1.5)
        lags[beta] = np.linalg.norm(ramp[end] - out[end], axis=-1).mean()
    assert lags[METRES.beta] < 0.03 and lags[METRES.beta] < lags[0.0] / 4, lags


def test_irregular_timestamps():
    cfg = OneEuroConfig(min_cutoff=1.0, beta=0.0)
    for dt in (DT, 0.5):  # alpha comes from the actual dt
        f = OneEuro(cfg)
        f(0.0, [0.0])
        assert f(dt, [1.0])[0] == pytest.approx(1 / (1 + 1 / (2 * np.pi * dt)), rel=1e-12)
    # a ramp sampled every 10 to 60 ms lags by v tau, as with a steady rate (v tau is
    # the steady lag of the discrete filter at any rate: (1 - a) / a = tau / dt)
    rng = np.random.default_rng(2)
    times = np.cumsum(rng.uniform(0.01, 0.06, 120))
    v, tau = 0.3, 1 / (2 * np.pi)
    f = OneEuro(cfg)
    g = OneEuroRotation(cfg)
    for ti in times:
        y = f(ti, [v * ti])
        q = g(ti, axis_angle_to_quaternion([0, 0, v * ti]))
    assert v * times[-1] - y[0] == pytest.approx(v * tau, rel=0.05)
    assert v * times[-1] - quaternion_to_axis_angle(q)[2] == pytest.approx(v * tau, rel=0.05)
    with pytest.raises(ValueError, match="increase"):
        f(times[-1], [0.0])


def test_the_filters_are_causal():
    rng = np.random.default_rng(3)
    t = np.arange(40) * DT
    a = rng.normal(size=(40, 21, 3))
    b = a.copy()
    b[25:] += rng.normal(size=(15, 21, 3))
    qa = _noisy_rotations(axis_angle_to_quaternion(rng.normal(size=(16, 3))), 40, 0.2, rng)
    qb = qa.copy()
    qb[25:] = _noisy_rotations(qa[25], 15, 0.5, rng)
    for make, sa, sb in [(lambda: OneEuro(METRES), a, b), (OneEuroRotation, qa, qb)]:
        fa, fb = make(), make()
        ya = np.array([fa(ti, x) for ti, x in zip(t, sa)])
        yb = np.array([fb(ti, x) for ti, x in zip(t, sb)])
        np.testing.assert_array_equal(ya[:25], yb[:25])
        assert not np.allclose(ya[25:], yb[25:])


# ----------------------------------------------------------------------------- rotations


@pytest.mark.parametrize("angle", [1.0, np.pi - 0.02])  # near pi axis-angle flips sign
def test_noisy_rotations_around_a_fixed_one_stay_close_unit_and_continuous(angle):
    rng = np.random.default_rng(4)
    axes = rng.normal(size=(16, 3))
    q0 = axis_angle_to_quaternion(angle * axes / np.linalg.norm(axes, axis=-1, keepdims=True))
    seq = _noisy_rotations(q0, 120, np.radians(3), rng)  # 3 degrees per axis
    signs = np.where(np.arange(120) % 2, -1.0, 1.0)[:, None, None]
    plain, flipped = OneEuroRotation(), OneEuroRotation()
    out = np.array([plain(i * DT, q) for i, q in enumerate(seq)])
    out_flipped = np.array([flipped(i * DT, q) for i, q in enumerate(seq * signs)])
    np.testing.assert_allclose(out_flipped, out, atol=1e-12)  # q and -q are one input
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1, atol=1e-12)
    steps_in = np.degrees(_angle_between(seq[1:], seq[:-1]))
    steps_out = np.degrees(2 * np.arccos(np.clip((out[1:] * out[:-1]).sum(-1), -1, 1)))  # signed
    assert steps_out.max() < steps_in.max() / 2 and steps_out.mean() < steps_in.mean() / 3, \
        (steps_out.max(), steps_in.max(), steps_out.mean(), steps_in.mean())
    err_in = np.degrees(_angle_between(seq[30:], q0))
    err_out = np.degrees(_angle_between(out[30:], q0))
    # inputs: 4.7 degrees off on average, up to 14; outputs: within 6, 1.9 on average
    assert err_out.max() < 6.0 and err_out.max() < err_in.max() / 2, (err_out.max(), err_in.max())
    assert err_out.mean() < err_in.mean() / 2, (err_out.mean(), err_in.mean())
    # the axis-angle and matrix front ends agree with the quaternion one
    aa, mat = OneEuroRotation(), OneEuroRotation()
    for i, q in enumerate(seq[:20]):
        ya = aa.update_axis_angle(i * DT, quaternion_to_axis_angle(q))
        ym = mat.update_matrix(i * DT, quaternion_to_matrix(q))
    np.testing.assert_allclose(_angle_between(axis_angle_to_quaternion(ya), out[19]), 0, atol=1e-6)
    np.testing.assert_allclose(_angle_between(matrix_to_quaternion(ym), out[19]), 0, atol=1e-6)


def test_a_fast_rotation_opens_the_cutoff():
    t = np.arange(60) * DT
    angle = 5.0 * np.clip(t - 1.0, 0, 0.3)  # 5 rad/s for 0.3 s
    lags = {}
    for beta in (0.0, 1.0):
        g = OneEuroRotation(OneEuroConfig(1.0, beta, 1.0))
        out = [g(ti, axis_angle_to_quaternion([0, a, 0])) for ti, a in zip(t, angle)]
        end = np.searchsorted(t, 1.3)
        lags[beta] = angle[end] - quaternion_to_axis_angle(out[end])[1]
    assert 0 < lags[1.0] < lags[0.0] / 2, lags


def test_numpy_conversions_match_geometry_rotations():
    rng = np.random.default_rng(5)
    r = rng.normal(size=(200, 3))
    r[:50] *= (np.pi - 1e-4) / np.linalg.norm(r[:50], axis=-1, keepdims=True)  # near pi
    r[50:60] *= 1e-9
    r[60:] *= np.minimum(1, 3 / np.linalg.norm(r[60:], axis=-1, keepdims=True))  # angles < pi
    q_t = R.axis_angle_to_quaternion(torch.as_tensor(r)).numpy()
    np.testing.assert_allclose(_angle_between(axis_angle_to_quaternion(r), q_t), 0, atol=1e-6)
    m = R.axis_angle_to_matrix(torch.as_tensor(r)).numpy()
    np.testing.assert_allclose(quaternion_to_matrix(axis_angle_to_quaternion(r)), m, atol=1e-12)
    np.testing.assert_allclose(_angle_between(matrix_to_quaternion(m), q_t), 0, atol=1e-6)
    np.testing.assert_allclose(quaternion_to_axis_angle(q_t)[50:], r[50:], atol=1e-10)
    np.testing.assert_allclose(quaternion_log(-q_t)[50:], r[50:], atol=1e-10)
    p = np.roll(q_t, 1, axis=0)  # the Hamilton product composes as the matrices do
    np.testing.assert_allclose(quaternion_to_matrix(quaternion_multiply(p, q_t)),
                               quaternion_to_matrix(p) @ m, atol=1e-12)


# ----------------------------------------------------------------------------- hands


def _hand(rng, scale=1.0):
    return {"global_orient": rng.normal(size=3) * scale, "hand_pose": rng.normal(size=45) * 0.3 * scale,
            "betas": rng.normal(size=10) * scale, "transl": rng.normal(size=3) * scale,
            "keypoints_3d": rng.normal(size=(21, 3)) * scale, "keypoints_2d": rng.normal(size=(21, 2)) * scale}


def test_hand_smoother_resets_a_hand_that_vanished():
    rng = np.random.default_rng(6)
    right_a, right_b, left_a, left_b = (_hand(rng) for _ in range(4))
    s = HandSmoother()
    for i in range(10):
        s.update(i * DT, {"right": right_a, "left": left_a})
    assert set(s.update(10 * DT, {"left": left_a})) == {"left"}
    out = s.update(11 * DT, {"right": right_b, "left": left_b})
    for k, v in right_b.items():  # a new track starts unfiltered
        np.testing.assert_allclose(out["right"][k], v, atol=1e-12, err_msg=k)
    assert not np.allclose(out["left"]["transl"], left_b["transl"])  # left still filtered
    assert not np.allclose(out["left"]["hand_pose"], left_b["hand_pose"])


def test_hand_smoother_is_causal_and_smooths_each_part():
    rng = np.random.default_rng(7)
    base = _hand(rng)
    frames = [{"right": {k: v + rng.normal(0, 0.01, v.shape) for k, v in base.items()}} for _ in range(30)]
    changed = frames[:20] + [{"right": _hand(rng)} for _ in range(10)]
    sa, sb = HandSmoother(), HandSmoother()
    ya = [sa.update(i * DT, f)["right"] for i, f in enumerate(frames)]
    yb = [sb.update(i * DT, f)["right"] for i, f in enumerate(changed)]
    for i in range(20):
        for k in ya[i]:
            np.testing.assert_array_equal(ya[i][k], yb[i][k])
    for k in base:
        err_in = np.abs(np.array([f["right"][k] for f in frames[10:]]) - base[k]).mean()
        err_out = np.abs(np.array([y[k] for y in ya[10:]]) - base[k]).mean()
        assert err_out < err_in / 1.5, (k, err_out, err_in)


@pytest.fixture(scope="module")
def models():
    from fourdhands.hands import load_hand_model

    return {s: load_hand_model("open", s, dtype=torch.float64) for s in ("right", "left")}


K = np.array([[1000.0, 0, 320], [0, 1000.0, 240], [0, 0, 1]])


def _frame(models, params, index=0):
    from fourdhands.pipeline import FrameResult, HandResult

    hands = {}
    for side, p in params.items():
        posed = models[side](**{k: p[k][None] for k in ("global_orient", "hand_pose", "betas", "transl")})
        kp = posed.keypoints[0].numpy()
        uvw = kp @ K.T
        hands[side] = HandResult(p["global_orient"], p["hand_pose"], p["betas"], p["transl"], kp,
                                 uvw[:, :2] / uvw[:, 2:], posed.vertices[0].numpy(),
                                 np.zeros(4), np.zeros(4), 1.0)
    return FrameResult(index, (640, 480), K, hands)


def _params(rng, side, noise=0.0):
    x = 0.1 if side == "right" else -0.1
    return {"global_orient": np.array([np.pi, 0.1, 0]) + rng.normal(0, noise, 3),
            "hand_pose": 0.2 * np.sin(np.arange(45.0)) + rng.normal(0, noise, 45),
            "betas": 0.5 * np.cos(np.arange(10.0)) + rng.normal(0, noise, 10),
            "transl": np.array([x, 0.0, 0.5]) + rng.normal(0, noise * 0.1, 3)}


def test_hand_smoother_recomputes_vertices_and_keypoints_from_the_smoothed_parameters(models):
    rng = np.random.default_rng(8)
    s = HandSmoother(models=models)
    still = _frame(models, {side: _params(rng, side) for side in models})
    for i in range(3):  # a still hand comes out as it went in
        out = s.update(i * DT, still)
    for side, hand in still.hands.items():
        for k in ("vertices", "keypoints_3d", "keypoints_2d", "transl", "betas"):
            np.testing.assert_allclose(out[side][k], getattr(hand, k), atol=1e-9, err_msg=k)
    for i in range(3, 12):  # noisy: every output agrees with the smoothed parameters
        out = s.update(i * DT, _frame(models, {side: _params(rng, side, 0.05) for side in models}))
    for side, p in out.items():
        posed = models[side](**{k: p[k][None] for k in ("global_orient", "hand_pose", "betas", "transl")})
        np.testing.assert_allclose(p["vertices"], posed.vertices[0].numpy(), atol=1e-12)
        np.testing.assert_allclose(p["keypoints_3d"], posed.keypoints[0].numpy(), atol=1e-12)
        uvw = p["keypoints_3d"] @ K.T
        np.testing.assert_allclose(p["keypoints_2d"], uvw[:, :2] / uvw[:, 2:], atol=1e-9)


def test_per_frame_time_for_two_hands(models, capsys):
    """Printed, not asserted (the CPUs are shared): median and 95th percentile per frame."""
    rng = np.random.default_rng(9)
    frames = [{side: _hand(rng) for side in ("right", "left")} for _ in range(300)]

    def per_frame_ms(smoother, frames):
        times = []
        for i, f in enumerate(frames):
            start = time.perf_counter()
            smoother.update(i * DT, f)
            times.append(time.perf_counter() - start)
        return np.percentile(np.array(times[1:]) * 1e3, [50, 95])

    filters = per_frame_ms(HandSmoother(), frames)
    frame = _frame(models, {side: _params(rng, side) for side in models})
    with_models = per_frame_ms(HandSmoother(models=models), [frame] * 20)
    with capsys.disabled():
        print(f"\n[smoothing] two hands per frame (median / p95): filters {filters[0]:.3f} / "
              f"{filters[1]:.3f} ms; with the open hand models' forward (float64) "
              f"{with_models[0]:.1f} / {with_models[1]:.1f} ms")


def test_a_one_frame_depth_spike_is_dropped_along_the_ray_and_a_lasting_change_adopted_a_frame_late():
    """Hand-worked medians of the last 3 wrist depths; filters opened wide (alpha ~ 1) so
    only the median moves the hand. The wrist's image position never changes."""
    from fourdhands.smoothing import SmoothingConfig, median_depth

    open_wide = OneEuroConfig(min_cutoff=1e9, beta=0.0, d_cutoff=1.0)
    s = HandSmoother(SmoothingConfig(rotation=open_wide, transl=open_wide, keypoints_3d=open_wide,
                                     keypoints_2d=open_wide))
    rng = np.random.default_rng(9)
    hand = _hand(rng)
    offset = rng.normal(0, 0.03, (21, 3))
    ray = np.array([0.1, -0.05, 1.0])
    depths = [0.80, 0.79, 5.98, 0.92, 0.93, 1.60, 1.62, 1.61]
    expected = [0.80, 0.795, 0.80, 0.92, 0.93, 0.93, 1.60, 1.61]
    for i, (z, z_out) in enumerate(zip(depths, expected)):
        wrist = z * ray
        keypoints = wrist + offset - offset[0]
        frame = dict(hand, transl=wrist + np.array([0.01, 0.02, 0.03]), keypoints_3d=keypoints)
        out = s.update(i * DT, {"right": frame})["right"]
        shift = (z_out / z - 1) * wrist
        np.testing.assert_allclose(out["keypoints_3d"][0], z_out * ray, atol=1e-9, err_msg=f"frame {i}")
        np.testing.assert_allclose(out["keypoints_3d"], keypoints + shift, atol=1e-9)
        np.testing.assert_allclose(out["transl"], frame["transl"] + shift, atol=1e-9)
    assert median_depth([0.5, -0.2, 0.6]) == 0.6  # behind the camera: no median, the newest
    with pytest.raises(ValueError, match="depth_window"):
        SmoothingConfig(depth_window=0)


def test_a_hand_at_zero_depth_is_not_moved_by_the_depth_median():
    rng = np.random.default_rng(10)
    hand = _hand(rng)
    hand["keypoints_3d"][0, 2] = 0.0  # the wrist on the camera's plane: no ray to slide along
    out = HandSmoother().update(0.0, {"right": hand})["right"]
    np.testing.assert_array_equal(out["transl"], hand["transl"])
    np.testing.assert_array_equal(out["keypoints_3d"], hand["keypoints_3d"])
