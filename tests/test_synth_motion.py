"""Synthetic motion: finger joint limits, smooth trajectories, and pushing hands out of each other."""

import numpy as np
import pytest
import torch

from fourdhands.geometry.inside import winding_numbers
from fourdhands.hands import load_hand_model, poses
from fourdhands.hands import contact as C
from fourdhands.synth import fingers as FG, motion as M


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


def _overlapping_hands(frames: int):
    """Both open-model hands, the left one placed 5 mm from the right one (mirrored, so deep
    inside it), drifting 1 mm a frame: `(F, 2, V, 3)` vertices, keypoints, faces."""
    models = [load_hand_model("open", side) for side in ("right", "left")]
    with torch.no_grad():
        posed = [m(hand_pose=torch.full((1, 45), 0.1)) for m in models]
    offset = np.array([0.0, 0.005, 0.0]) + np.arange(frames)[:, None] * [0.001, 0.0, 0.0]
    vertices = np.stack([np.broadcast_to(posed[0].vertices[0].numpy(), (frames,) + posed[0].vertices.shape[1:]),
                         posed[1].vertices[0].numpy()[None] + offset[:, None]], 1).astype(np.float64)
    keypoints = np.stack([np.broadcast_to(posed[0].keypoints[0].numpy(), (frames, 21, 3)),
                          posed[1].keypoints[0].numpy()[None] + offset[:, None]], 1).astype(np.float64)
    return vertices, keypoints, [m.faces.numpy() for m in models]


def test_inside_after_push_counts_what_moving_the_points_and_testing_them_again_counts():
    vertices, _, faces = _overlapping_hands(2)
    points, mesh = vertices[:, 1, ::7], vertices[:, 0]
    mesh[1] += [0.3, -0.2, 0.5]  # frames apart in space, each with its own direction
    points[1] += [0.3, -0.2, 0.5]
    directions = np.array([[0.0, 0.6, 0.8], [-0.8, 0.0, 0.6]])
    pushes = np.array([0.0, 0.004, 0.011, 0.03])
    counts = C.inside_after_push(points, mesh, faces[0], directions, pushes)
    for t in range(2):
        for push, count in zip(pushes, counts[t]):
            moved = torch.as_tensor(points[t] + push * directions[t], dtype=torch.float64)
            solid = winding_numbers(moved, torch.as_tensor(mesh[t], dtype=torch.float64), torch.as_tensor(faces[0]))
            assert count == int((solid > 0.5).sum())
        assert counts[t, 0] > 20 and counts[t, -1] < counts[t, 0]


def test_separate_pushes_overlapping_hands_to_contact():
    frames = 6
    vertices, keypoints, faces = _overlapping_hands(frames)
    shift = C.separate(vertices, keypoints, faces, tolerance=0.002)
    moved = vertices + shift[:, :, None]
    f32 = dict(dtype=torch.float32)
    for t in (0, frames - 1):
        right, left = (torch.as_tensor(moved[t, h], **f32) for h in (0, 1))
        inner = [int((winding_numbers(a[::2], b, torch.as_tensor(fb)) > 0.5).sum())
                 for a, b, fb in ((right, left, faces[1]), (left, right, faces[0]))]
        before = int((winding_numbers(torch.as_tensor(vertices[t, 0, ::2], **f32), torch.as_tensor(vertices[t, 1], **f32),
                                      torch.as_tensor(faces[1])) > 0.5).sum())
        assert before > 50 and max(inner) <= 0.01 * vertices.shape[2] / 2  # twice the vertices that separate samples
        gap = np.linalg.norm(moved[t, 0][::4, None] - moved[t, 1][None, ::4], axis=-1).min()
        assert gap < 0.01  # pushed to contact, not thrown apart
    np.testing.assert_allclose(shift[:, 0], -shift[:, 1])  # half each way


@pytest.mark.parametrize("split", sorted(M.SPLITS))
def test_every_split_names_known_scenarios(split):
    assert set(M.SPLITS[split]) <= set(M.SCENARIOS)


def test_separate_keeps_to_the_longest_push_and_to_the_directions_given():
    vertices, keypoints, faces = _overlapping_hands(3)
    capped = C.separate(vertices, keypoints, faces, tolerance=0.002, most=0.003)
    assert np.linalg.norm(capped[:, 1] - capped[:, 0], axis=1).max() <= 0.003 + 1e-9
    # given only +y, the push is along +y (the left hand sits 5 mm along +y of the right one)
    along_y = C.separate(vertices, keypoints, faces, tolerance=0.002, directions=((0.0, 1.0, 0.0),), own=False)
    rel = along_y[:, 1] - along_y[:, 0]
    assert (rel[:, 1] > 0.005).all()
    np.testing.assert_allclose(rel[:, [0, 2]], 0.0, atol=1e-12)


def test_a_way_that_no_push_parts_is_not_taken_for_free(monkeypatch):
    """Along +z no push parts the hands (the least-bad push there is none at all); along
    -z 2 cm does: the push must go along -z, not stay at zero because +z "needs" none."""
    vertices, keypoints, faces = _overlapping_hands(4)

    def needed(points, vertices, faces, directions, allowed, most):
        fails = directions[:, 2] > 0
        return np.where(fails, 0.0, 0.02), ~fails
    monkeypatch.setattr(C, "_needed_push", needed)
    shift = C.separate(vertices, keypoints, faces, tolerance=0.002, directions=((0.0, 0.0, 1.0), (0.0, 0.0, -1.0)),
                       own=False)
    rel = shift[:, 1] - shift[:, 0]
    assert (rel[:, 2] < -0.015).all()
    np.testing.assert_allclose(rel[:, :2], 0.0, atol=1e-12)
    # the choice comes back, and given again it is taken without probing: even the way that fails
    again, choice = C.push_apart(vertices, keypoints, faces, 0.002, ((0.0, 0.0, 1.0), (0.0, 0.0, -1.0)), own=False)
    assert choice == 1 and np.array_equal(again, shift)
    taken, _ = C.push_apart(vertices, keypoints, faces, 0.002, ((0.0, 0.0, 1.0), (0.0, 0.0, -1.0)), own=False,
                            choice=0)
    assert not taken.any()
