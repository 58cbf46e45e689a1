"""Inside tests against shapes whose inside is known and against each other (the ray count
against the solid angles), and closing holes."""

import numpy as np
import torch
import trimesh

from fourdhands.geometry.inside import (boundary_loops, close_holes, faces_around_vertices, inside, inside_frames,
                                       nearest_triangles, ray_crossings, ray_winding, surface_distance,
                                       triangle_distance, winding_numbers)
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


def test_the_open_hand_is_watertight():
    assert boundary_loops(load_hand_model("open", "right").faces.numpy()) == []


def test_the_ray_count_is_the_winding_number_also_where_a_posed_hand_overlaps_itself():
    model = load_hand_model("open", "right", dtype=torch.float64)
    torch.manual_seed(0)
    pose = 0.4 * torch.randn(8, 15, 3)[0].reshape(1, 45).double()
    verts = model(hand_pose=pose).vertices[0]  # folds over itself
    points = verts[torch.randint(0, len(verts), (2000,))] + 0.006 * torch.randn(2000, 3).double()
    ray, doubt = ray_winding(points, verts, model.faces)
    solid = winding_numbers(points, verts, model.faces)
    ok = ~doubt
    np.testing.assert_array_equal(ray[ok].numpy(), solid[ok].round().long().numpy())
    assert (solid.round() == 2).any()  # the case a parity of crossings gets wrong
    assert (inside(points, verts, model.faces) == (solid > 0.5)).all()


def test_a_ray_through_a_cube_edge_is_in_doubt_and_settled_by_solid_angles():
    v, f = _box()
    # below the cube's bottom-face diagonal and below an edge: the ray meets two triangles' shared edge
    points = torch.tensor([[0.3, 0.3, -0.5], [1.0, 0.2, -3.0], [0.3, 0.3, -1.5], [0.5, 0.1, 0.2]], dtype=torch.float64)
    _, doubt = ray_winding(points, v, torch.as_tensor(f))
    assert doubt[:3].tolist() == [True, True, True] and not doubt[3]
    assert inside(points, v, torch.as_tensor(f)).tolist() == [True, False, False, True]


def test_ray_crossings_along_any_direction_give_hand_worked_distances_and_signs():
    v, f = _box()
    points = torch.tensor([[-3.0, 0.2, 0.1], [0.1, 0.2, 0.3]], dtype=torch.float64)
    along_x = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    i, distance, sign, doubt = ray_crossings(points, v, torch.as_tensor(f), along_x)
    order = torch.argsort(i * 10 + distance)
    np.testing.assert_array_equal(i[order].numpy(), [0, 0, 1])
    np.testing.assert_allclose(distance[order].numpy(), [2.0, 4.0, 0.9], atol=1e-12)
    np.testing.assert_array_equal(sign[order].numpy(), [-1, 1, 1])  # enters, leaves; leaves
    assert not doubt.any()
    slanted = torch.tensor([0.6, 0.0, 0.8], dtype=torch.float64)  # from the centre: leaves through z = 1
    _, distance, sign, _ = ray_crossings(torch.zeros(1, 3, dtype=torch.float64), v, torch.as_tensor(f), slanted)
    np.testing.assert_allclose(distance.numpy(), [1.25], atol=1e-12)
    assert sign.tolist() == [1]


def test_surface_distance_to_a_cube_is_hand_worked_inside_outside_and_past_an_edge():
    v, f = _box()
    points = torch.tensor([[0.0, 0.0, 0.0], [0.2, 0.7, -0.1], [3.0, 0.0, 0.0], [2.0, 2.0, 0.5], [2.0, 3.0, 5.0]],
                          dtype=torch.float64)
    expected = [1.0, 0.3, 2.0, np.sqrt(2.0), np.sqrt(1 + 4 + 16)]  # a face, a face, an edge, a corner
    np.testing.assert_allclose(surface_distance(points, v, torch.as_tensor(f)).numpy(), expected, atol=1e-12)


def test_inside_frames_tests_each_point_against_its_own_frame_only():
    model = load_hand_model("open", "right")
    torch.manual_seed(1)
    verts = torch.stack([model(hand_pose=0.3 * torch.randn(1, 45)).vertices[0] for _ in range(3)])
    frame = torch.randint(0, 3, (900,))
    points = verts[frame, torch.randint(0, verts.shape[1], (900,))] + 0.006 * torch.randn(900, 3)
    found = inside_frames(points, frame, verts, model.faces)
    solid = torch.cat([winding_numbers(points[k:k + 1], verts[frame[k]], model.faces) for k in range(900)])
    assert (found == (solid > 0.5)).all() and found.any() and (~found).any()


def test_nearest_triangles_around_the_nearest_vertex_are_the_nearest_of_all():
    model = load_hand_model("open", "right", dtype=torch.float64)
    torch.manual_seed(2)
    verts = model(hand_pose=0.2 * torch.randn(1, 45).double()).vertices
    faces = model.faces
    around = faces_around_vertices(faces, verts.shape[1])
    assert set(around[faces[7, 1]].tolist()) >= {7} and (around >= 0).sum() == 3 * len(faces)
    points = verts[0, torch.randint(0, verts.shape[1], (300,))] + 0.003 * torch.randn(300, 3).double()
    found, distance = nearest_triangles(points, torch.zeros(300, dtype=torch.long), verts, faces, around)
    a, b, c = verts[0][faces[found]].unbind(1)
    exact = surface_distance(points, verts[0], faces).numpy()
    np.testing.assert_allclose(triangle_distance(points, a, b, c).numpy(), exact, atol=1e-6)
    np.testing.assert_allclose(distance.numpy(), exact, atol=1e-6)
