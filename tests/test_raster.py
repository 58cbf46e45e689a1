"""The NumPy z-buffer: known shapes land on the pixels and depths worked out by hand."""

import numpy as np

from fourdhands.render.raster import Mesh, rasterize, vertex_normals

K = np.array([[100.0, 0.0, 50.0], [0.0, 100.0, 40.0], [0.0, 0.0, 1.0]])


def square(x0, x1, y0, y1, z):
    """A camera-facing square (outward normal towards the camera, -z)."""
    v = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], float)
    return v, np.array([[0, 2, 1], [0, 3, 2]])


def test_square_covers_exactly_the_pixels_whose_centres_fall_inside():
    # at z = 2 with f = 100, x in [-0.3, 0.1] maps to u in [35, 55]; y in [-0.2, 0.2] to v in [30, 50]
    v, f = square(-0.3, 0.1, -0.2, 0.2, 2.0)
    image, depth, ids = rasterize([Mesh(v, f, (1.0, 0.0, 0.0))], K, (80, 100))
    cols = (np.arange(100) + 0.5 > 35) & (np.arange(100) + 0.5 < 55)
    rows = (np.arange(80) + 0.5 > 30) & (np.arange(80) + 0.5 < 50)
    expected = rows[:, None] & cols[None, :]
    assert np.array_equal(ids >= 0, expected)
    np.testing.assert_allclose(depth[expected], 2.0)
    assert np.isinf(depth[~expected]).all()
    # facing the key light: red channel strong, others dark; background untouched
    assert image[expected][:, 0].min() > 180 and image[expected][:, 1:].max() < 80
    assert (image[~expected] == 235).all()


def test_nearer_surface_wins_whatever_the_drawing_order():
    far = square(-0.5, 0.5, -0.5, 0.5, 3.0)
    near = square(-0.1, 0.1, -0.1, 0.1, 1.0)
    for order in ([0, 1], [1, 0]):
        meshes = [Mesh(*far, (1, 0, 0)), Mesh(*near, (0, 0, 1))]
        meshes = [meshes[i] for i in order]
        _, depth, ids = rasterize(meshes, K, (80, 100))
        near_id = order.index(1)
        assert ids[40, 50] == near_id and abs(depth[40, 50] - 1.0) < 1e-12
        assert ids[40, 36] == 1 - near_id and abs(depth[40, 36] - 3.0) < 1e-12


def test_depth_is_perspective_correct_on_a_slanted_plane():
    # the plane z = 2 + x, seen through pixel u: x = (u - 50) / 100 * z  =>  z = 2 / (1 - (u-50)/100)
    v = np.array([[-0.5, -0.5, 1.5], [0.5, -0.5, 2.5], [0.5, 0.5, 2.5], [-0.5, 0.5, 1.5]])
    f = np.array([[0, 2, 1], [0, 3, 2]])
    _, depth, ids = rasterize([Mesh(v, f, (1, 1, 1))], K, (80, 100))
    u = np.arange(100) + 0.5
    hit = ids[40] >= 0
    np.testing.assert_allclose(depth[40, hit], 2.0 / (1.0 - (u[hit] - 50.0) / 100.0), rtol=1e-9)


def test_geometry_behind_the_camera_is_not_drawn():
    v, f = square(-0.1, 0.1, -0.1, 0.1, -1.0)
    _, _, ids = rasterize([Mesh(v, f, (1, 1, 1))], K, (80, 100))
    assert (ids == -1).all()


def test_vertex_normals_of_a_cube_point_outwards():
    import trimesh

    box = trimesh.creation.box()
    n = vertex_normals(np.asarray(box.vertices), np.asarray(box.faces))
    corners = np.asarray(box.vertices)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0)
    outward = corners / np.linalg.norm(corners, axis=1, keepdims=True)
    # each corner's normal averages its three faces' normals: within 40 degrees of the diagonal
    assert ((n * outward).sum(1) > np.cos(np.radians(40))).all()
