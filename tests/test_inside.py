"""Inside tests by winding number against shapes whose inside is known, and closing holes."""

import numpy as np
import torch
import trimesh

from fourdhands.geometry.inside import boundary_loops, close_holes, inside, winding_numbers
from fourdhands.hands import load_hand_model


def _box():
    box = trimesh.creation.box(extents=(2.0, 2.0, 2.0))
    return torch.as_tensor(box.vertices, dtype=torch.float64), np.asarray(box.faces)


def test_winding_numbers_of_a_cube_are_one_inside_and_zero_outside():
    v, f = _box()
    points = torch.tensor([[0.0, 0, 0], [0.9, -0.9, 0.5], [1.1, 0, 0], [0, 0, -3.0]], dtype=torch.float64)
    w = winding_numbers(points, v, torch.as_tensor(f))
    np.testing.assert_allclose(w.numpy(), [1, 1, 0, 0], atol=1e-9)
    assert inside(points, v, torch.as_tensor(f)).tolist() == [True, True, False, False]


def test_a_hole_is_found_and_capped_into_a_closed_outward_mesh():
    v, f = _box()
    assert boundary_loops(f) == []
    opened = f[2:]  # two triangles (one square side) removed: a hole of four edges
    loops = boundary_loops(opened)
    assert len(loops) == 1 and len(loops[0]) == 4
    closed_v, closed_f = close_holes(v, opened, loops)
    mesh = trimesh.Trimesh(closed_v.numpy(), closed_f.numpy(), process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0  # outward
    assert inside(torch.zeros(1, 3, dtype=torch.float64), closed_v, closed_f).item()
    # without the cap, the centre's winding number is short of one by the hole's solid angle
    assert winding_numbers(torch.zeros(1, 3, dtype=torch.float64), v, torch.as_tensor(opened)).item() < 0.9


def test_the_open_hand_is_watertight_and_the_shortcut_agrees_near_its_surface():
    model = load_hand_model("open", "right", dtype=torch.float64)
    faces = model.faces
    assert boundary_loops(faces.numpy()) == []
    verts = model(hand_pose=torch.full((1, 45), 0.3, dtype=torch.float64)).vertices[0]
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(verts), 600)
    normals = trimesh.Trimesh(verts.numpy(), faces.numpy(), process=False).vertex_normals[picks]
    offsets = rng.uniform(-0.006, 0.006, (600, 1))  # a few mm either side of the skin
    points = verts[picks] + torch.as_tensor(normals * offsets)
    exact = inside(points, verts, faces)
    fast = inside(points, verts, faces, near=0.015)
    assert exact.sum() > 100 and (~exact).sum() > 100
    assert (fast == exact).float().mean() > 0.97
    assert not (fast & ~exact).any()  # the shortcut only ever misses, never invents
