"""Synthetic motion: finger joint limits, smooth trajectories, and pushing hands out of each other."""

import numpy as np
import pytest

from fourdhands.hands import poses
from fourdhands.synth import contact as C, fingers as FG, motion as M


def test_named_poses_lie_within_the_joint_limits_and_round_trip():
    for name, articulation in FG.NAMED_ARTICULATIONS.items():
        pose = FG.articulation_to_pose(articulation)
        assert FG.within_limits(pose), name
        np.testing.assert_allclose(FG.pose_to_articulation(pose), articulation, atol=1e-12)
    # the articulation basis reproduces the hand package's own poses exactly
    for name, make in poses.NAMED.items():
        np.testing.assert_allclose(FG.articulation_to_pose(FG.pose_to_articulation(make())), make(), atol=1e-12)


def test_random_poses_and_their_interpolation_stay_within_limits():
    rng = np.random.default_rng(0)
    keys = FG.finger_keys(rng, 12)
    times = np.cumsum(np.r_[0, rng.uniform(8, 16, 11)])
    track = M.smooth_track(times, keys, int(times[-1]) + 1)
    assert FG.within_limits(FG.articulation_to_pose(keys)).all()
    assert FG.within_limits(FG.articulation_to_pose(track)).all()
    # not all the same: the sampler spans the range
    assert np.ptp(keys[:, :, 0], axis=0).max() > 1.0


def test_tracks_pass_through_their_keys_and_move_smoothly():
    rng = np.random.default_rng(1)
    times = M.key_times(rng, 60)
    assert times[0] == 0 and times[-1] >= 59 and (np.diff(times) >= 10).all()
    rotations = M.rotation_walk(rng, M.random_rotation(rng), len(times), 0.8)
    track = M.rotation_track(np.round(times), rotations, int(round(times[-1])) + 1)
    from scipy.spatial.transform import Rotation
    for t, r in zip(np.round(times).astype(int), rotations):
        angle = (Rotation.from_rotvec(track[t]) * Rotation.from_rotvec(r).inv()).magnitude()
        assert angle < 1e-6
    # per-frame turns are small (at most a 0.8 rad key step spread over >= 10 frames)
    step = (Rotation.from_rotvec(track[1:]) * Rotation.from_rotvec(track[:-1]).inv()).magnitude()
    assert step.max() < 0.25


def test_image_tracks_backproject_to_the_planned_pixels_and_sizes():
    K = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])
    uv = np.array([[10.0, 20.0], [300.0, 200.0]])
    size = np.array([100.0, 50.0])
    track = M.image_track(np.array([0.0, 10.0]), uv, size, K, 11)
    np.testing.assert_allclose(M.project(track[[0, 10]], K), uv)
    np.testing.assert_allclose(300.0 * M.HAND_LENGTH / track[[0, 10], 2], size)


def test_separate_pushes_overlapping_hands_to_contact():
    rng = np.random.default_rng(2)
    # a capsule "hand": keypoints along a line, its surface points just outside the capsules
    kp = np.zeros((21, 3))
    kp[1:, 0] = -np.repeat(np.arange(1, 5), 5)[:20] * 0.02
    kp[1:, 2] = np.tile(np.linspace(-0.02, 0.02, 5), 4)[:20]
    surface = kp[rng.integers(0, 21, 400)] + 0.013 * C._unit(rng.normal(size=(400, 3)))
    frames = 8
    vertices = np.stack([np.stack([surface, surface + [0.0, 0.01, 0.0]])] * frames)
    keypoints = np.stack([np.stack([kp, kp + [0.0, 0.01, 0.0]])] * frames)
    before = C.inside_counts(vertices[:, 1], keypoints[:, 0])
    shift = C.separate(vertices, keypoints, tolerance=0.01)
    moved_v, moved_k = vertices + shift[:, :, None], keypoints + shift[:, :, None]
    after = np.maximum(C.inside_counts(moved_v[:, 1], moved_k[:, 0]), C.inside_counts(moved_v[:, 0], moved_k[:, 1]))
    assert (before > 50).all() and (after <= 0.01 * 400).all()
    np.testing.assert_allclose(shift[:, 0], -shift[:, 1])  # half each way
    assert np.linalg.norm(shift[:, 1] - shift[:, 0], axis=1).max() < 0.1  # a push, not a throw


@pytest.mark.parametrize("split", sorted(M.SPLITS))
def test_every_split_names_known_scenarios(split):
    assert set(M.SPLITS[split]) <= set(M.SCENARIOS)
