"""Skin albedo and forearms of the synthetic hands: features where anatomy puts them,
the subdivision exact, the forearm where the hand's orientation says it is."""

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial.transform import Rotation
from test_open_model import _winding_numbers

from fourdhands.hands import load_hand_model
from fourdhands.synth.forearm import (
    FOREARM_RINGS,
    LENGTH,
    UPPER_LENGTH,
    ForearmLook,
    forearm_mesh,
    wrist_rotation,
    wrist_section,
)
from fourdhands.synth.motion import LEFT, RIGHT, forearm_direction, held_orientation, upper_arm_direction
from fourdhands.synth.skin import skin_albedo, skin_layout

LIGHT, DARK = np.array([0.95, 0.77, 0.65]), np.array([0.36, 0.23, 0.16])


@pytest.fixture(scope="module", params=["right", "left"])
def hand(request):
    model = load_hand_model("open", request.param, dtype=torch.float64)
    return model, skin_layout(model)


def _luma(rgb):
    return rgb @ [0.299, 0.587, 0.114]


def test_subdivision_is_exact_and_keeps_the_surface(hand):
    model, layout = hand
    v = model.v_template.numpy()
    fine = layout.subdivide(v)
    e = layout.edges
    np.testing.assert_array_equal(fine[:len(v)], v)
    np.testing.assert_allclose(fine[len(v):], (v[e[:, 0]] + v[e[:, 1]]) / 2, atol=0)
    coarse_mesh = trimesh.Trimesh(v, model.faces.numpy(), process=False)
    fine_mesh = trimesh.Trimesh(fine, layout.faces, process=False)
    assert len(layout.faces) == 4 * len(model.faces) and fine_mesh.is_watertight
    # midpoints of flat triangles: the same solid, orientation kept
    np.testing.assert_allclose(fine_mesh.volume, coarse_mesh.volume, rtol=1e-9)
    # a batch of frames subdivides frame by frame
    batch = np.stack([v, v + 1.0])
    np.testing.assert_allclose(layout.subdivide(batch)[1], fine + 1.0, atol=1e-12)


def test_palm_is_lighter_than_the_back_and_more_so_on_dark_skin(hand):
    _, layout = hand
    palm = (layout.palm > 0.8) & (layout.nail == 0) & (layout.crease < 0.05)
    back = (layout.palm < 0.05) & (layout.nail == 0) & (layout.wrinkle < 0.05)
    assert palm.sum() > 500 and back.sum() > 500
    ratios = []
    for tone in (LIGHT, DARK):
        albedo = skin_albedo(layout, tone, np.random.default_rng(0))
        assert albedo.min() >= 0 and albedo.max() <= 1
        ratios.append(_luma(albedo[palm]).mean() / _luma(albedo[back]).mean())
    assert ratios[0] > 1.0 and ratios[1] > 1.3


def test_palm_side_faces_the_way_the_palm_does(hand):
    """The palm normal is -y in MANO's rest frame for both hands."""
    _, layout = hand
    normals = trimesh.Trimesh(layout.rest, layout.faces, process=False).vertex_normals
    assert normals[layout.palm > 0.8, 1].mean() < -0.5
    assert normals[layout.palm < 0.05, 1].mean() > 0.3


def test_each_finger_has_a_nail_on_its_back_near_its_tip(hand):
    model, layout = hand
    with torch.no_grad():
        kp = model().keypoints[0].numpy()
    normals = trimesh.Trimesh(layout.rest, layout.faces, process=False).vertex_normals
    nails = layout.nail > 0.5
    for f in range(5):
        tip = kp[4 + 4 * f]
        near = np.linalg.norm(layout.rest - tip, axis=1) < 0.02
        assert (nails & near).sum() >= 8, f
        # nails on the back: not the palm side, and pale edges only on nails
    assert (layout.palm[nails] < 0.3).all()
    assert (layout.nail_edge <= layout.nail + 1e-12).all()
    # every nail vertex lies within 2.2 cm of some fingertip
    tips = kp[[4, 8, 12, 16, 20]]
    assert (np.linalg.norm(layout.rest[nails][:, None] - tips[None], axis=2).min(1) < 0.022).all()
    assert normals[nails, 1].mean() > 0.2 or f == 0


def test_creases_lie_on_the_palm_side_and_darken_it(hand):
    _, layout = hand
    creased = layout.crease > 0.5
    assert creased.sum() > 100
    assert (layout.palm[creased] > 0.5).mean() > 0.95
    albedo = skin_albedo(layout, LIGHT, np.random.default_rng(0))
    plain = (layout.palm > 0.8) & (layout.crease < 0.05) & (layout.nail == 0)
    assert _luma(albedo[creased]).mean() < 0.85 * _luma(albedo[plain]).mean()


def test_albedo_is_a_function_of_the_seed(hand):
    _, layout = hand
    a = skin_albedo(layout, LIGHT, np.random.default_rng(5))
    np.testing.assert_array_equal(a, skin_albedo(layout, LIGHT, np.random.default_rng(5)))
    assert np.abs(a - skin_albedo(layout, LIGHT, np.random.default_rng(6))).max() > 0.01


def test_layout_works_on_a_mano_format_model():
    from _mano_fixture import random_mano_data

    from fourdhands.hands.model import HandModel

    model = HandModel(random_mano_data(seed=1, with_tips=True), side="right", name="mano-like")
    layout = skin_layout(model)
    n = model.num_vertices + len(layout.edges)
    for name in ("palm", "nail", "nail_edge", "crease", "wrinkle", "tip"):
        values = getattr(layout, name)
        assert values.shape == (n,) and values.min() >= 0 and values.max() <= 1 + 1e-6, name


@pytest.mark.parametrize("slot", [RIGHT, LEFT])
@pytest.mark.parametrize("viewpoint", ["third_person", "egocentric"])
def test_the_forearm_points_where_the_orientation_model_drew_it(slot, viewpoint):
    """held_orientation turns the forearm to forearm_direction's draw; the mesh built from
    the same bend and turned by the hand's rotation lies along that direction."""
    side = ("right", "left")[slot]
    model = load_hand_model("open", side, dtype=torch.float64)
    root = model.rest_joints()[0, 0].numpy()
    section = wrist_section(model.v_template.numpy(), root, side)
    for seed in range(5):
        bend = np.radians([30.0, -10.0]) * (seed - 2) / 2
        wanted = forearm_direction(np.random.default_rng(seed), slot, viewpoint)
        R = Rotation.from_rotvec(held_orientation(np.random.default_rng(seed), slot, viewpoint, bend))
        upper = np.random.default_rng(seed).normal(size=3)
        upper /= np.linalg.norm(upper)
        v, _, _ = forearm_mesh(section, side, bend, ForearmLook(None, np.zeros(3)), np.zeros(3), upper)
        placed = R.apply(v[:-1]).reshape(-1, 24, 3).mean(1)  # ring centres (the last vertex: the cap's apex)
        axis = placed[FOREARM_RINGS - 1] - placed[0]
        np.testing.assert_allclose(axis / np.linalg.norm(axis), wanted, atol=1e-9)
        # past the elbow's bend the arm runs along the upper arm's direction, 30 cm on
        shoulder = placed[-1 - 4] - placed[FOREARM_RINGS + 6]  # last tube ring minus the first past the bend
        np.testing.assert_allclose(shoulder / np.linalg.norm(shoulder), R.apply(upper), atol=1e-9)
        elbow = placed[0] + (LENGTH - 0.004) * wanted
        assert np.linalg.norm(placed[-1 - 4] - elbow) == pytest.approx(UPPER_LENGTH, abs=1e-9)


@pytest.mark.parametrize("viewpoint", ["third_person", "egocentric"])
def test_the_upper_arm_goes_to_the_shoulder_and_the_elbow_flexes_at_most_145_degrees(viewpoint):
    """Third person: the shoulder above the elbow and farther from the camera; egocentric:
    outwards of it and nearer; either way at least 35 deg between the upper arm and the way
    back to the wrist, also for forearms drawn pointing straight up (the tails)."""
    rng = np.random.default_rng(3)
    up, angles = [], []
    for k in range(400):
        forearm = rng.normal(size=3) if k % 2 else np.array([0.0, 1.0, 0.0])
        forearm /= np.linalg.norm(forearm)
        u = upper_arm_direction(rng, k % 2, viewpoint, forearm)
        assert np.linalg.norm(u) == pytest.approx(1.0)
        # outwards: the right hand's shoulder to the image's left in third person (mirror
        # view), to its right from the head
        outward = (-1 if k % 2 == RIGHT else 1) * (1 if viewpoint == "third_person" else -1)
        up.append(u * [outward, 1, 1])
        angles.append(np.degrees(np.arccos(np.clip(u @ -forearm, -1, 1))))
    up = np.array(up)
    assert min(angles) >= 35.0 - 1e-6
    if viewpoint == "third_person":
        assert (up[:, 1] < 0).mean() > 0.9 and (up[:, 2] > 0).mean() > 0.9  # up (y down), away
    else:
        assert (up[:, 0] > 0).mean() > 0.9 and (up[:, 2] < 0).mean() > 0.9  # outwards, nearer


def test_forearm_starts_inside_the_wrist_and_mirrors_between_sides():
    meshes = {}
    for side in ("right", "left"):
        model = load_hand_model("open", side, dtype=torch.float64)
        root = model.rest_joints()[0, 0].numpy()
        upper = np.array([0.0, -0.6, 0.8]) * [1 if side == "right" else -1, 1, 1]
        v, f, rgb = forearm_mesh(wrist_section(model.v_template.numpy(), root, side), side,
                                 np.radians([20.0, -8.0]), ForearmLook(0.1, np.array([0.1, 0.2, 0.7])), LIGHT, upper)
        meshes[side] = v, f, rgb
        # the first ring (at the wrist) lies inside the hand's skin: no gap at the wrist
        first = v[:24] + root
        wn = _winding_numbers(model.v_template.numpy(), model.faces.numpy(), first)
        assert (wn > 0.5).all(), side
        # closed at the shoulder: the only open edges are the wrist ring's, and with that ring
        # capped by a fan the volume is positive (outward faces)
        arm = trimesh.Trimesh(v, f, process=False)
        open_edges = arm.edges_sorted[trimesh.grouping.group_rows(arm.edges_sorted, require_count=1)]
        assert set(open_edges.ravel()) == set(range(24)), side
        centre = len(v)
        fan = np.stack([np.full(24, centre), np.arange(24), np.roll(np.arange(24), -1)], 1)
        closed = trimesh.Trimesh(np.vstack([v, v[:24].mean(0)]), np.vstack([f, fan if side == "right" else fan[:, ::-1]]),
                                 process=False)
        assert closed.is_watertight and closed.is_winding_consistent and closed.volume > 0, side
        normals = arm.vertex_normals[:-1]
        centre_line = np.repeat(v[:-1].reshape(-1, 24, 3).mean(1), 24, axis=0)
        assert ((normals * (v[:-1] - centre_line)).sum(1) > 0).mean() > 0.9, side
        # sleeve colour past the cuff, skin before it
        d = np.linalg.norm(v - v[:24].mean(0), axis=1)
        np.testing.assert_allclose(rgb[d < 0.05], np.broadcast_to(LIGHT, rgb[d < 0.05].shape))
        np.testing.assert_allclose(rgb[d > 0.15], np.broadcast_to([0.1, 0.2, 0.7], rgb[d > 0.15].shape))
    (vr, fr, _), (vl, fl, _) = meshes["right"], meshes["left"]
    np.testing.assert_allclose(vl, vr * [-1, 1, 1], atol=1e-12)
    assert wrist_rotation("left", [0.3, 0.1]).as_rotvec() @ [1, 0, 0] == pytest.approx(
        wrist_rotation("right", [0.3, 0.1]).as_rotvec() @ [1, 0, 0])
