"""The Renderer facade and its two backends: OpenGL in a headless EGL context and NumPy.

Shapes worked out by hand land where they should on both backends (pixel centres, depth,
projection through K), the backends agree on a two-hand scene, and ``auto`` falls back
to NumPy when no EGL context can be made. GL cases skip only where this machine cannot
make an EGL context.
"""

import logging
import multiprocessing
from dataclasses import replace

import moderngl
import numpy as np
import pytest
import torch
import trimesh
from test_raster import K, square

from fourdhands.geometry.rotations import axis_angle_to_matrix
from fourdhands.hands import load_hand_model, poses
from fourdhands.render import gl
from fourdhands.render.raster import rasterize
from fourdhands.render.renderer import Light, Mesh, Renderer


def _why_no_gl():
    try:
        gl.device_name()
    except gl.Unavailable as e:
        return str(e)
    return None


_NO_GL = _why_no_gl()
needs_gl = pytest.mark.skipif(_NO_GL is not None, reason=f"no EGL context here: {_NO_GL}")
BACKENDS = [pytest.param("gl", marks=needs_gl), "numpy"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_square_covers_exactly_the_pixels_whose_centres_fall_inside(backend):
    # edges at u = 35.3, 54.8 and v = 30.6, 49.7: sampling at pixel corners instead of
    # centres, or flipping rows, would change the set
    v, f = square(-0.294, 0.096, -0.188, 0.194, 2.0)
    r = Renderer((80, 100), backend).render([Mesh(v, f, (1.0, 0.0, 0.0))], K)
    cols = (np.arange(100) + 0.5 > 35.3) & (np.arange(100) + 0.5 < 54.8)
    rows = (np.arange(80) + 0.5 > 30.6) & (np.arange(80) + 0.5 < 49.7)
    expected = rows[:, None] & cols[None, :]
    assert (r.image.dtype, r.depth.dtype, r.mesh_id.dtype) == (np.uint8, np.float32, np.int16)
    assert np.array_equal(r.mesh_id >= 0, expected)
    assert (r.mesh_id[expected] == 0).all() and (r.mesh_id[~expected] == -1).all()
    np.testing.assert_allclose(r.depth[expected], 2.0, rtol=1e-6)
    assert np.isinf(r.depth[~expected]).all()
    assert r.image[expected][:, 0].min() > 180 and r.image[expected][:, 1:].max() < 80
    assert (r.image[~expected] == 235).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_nearer_surface_wins_whatever_the_drawing_order(backend):
    far = square(-0.5, 0.5, -0.5, 0.5, 3.0)
    near = square(-0.1, 0.1, -0.1, 0.1, 1.0)
    renderer = Renderer((80, 100), backend)
    for order in ([0, 1], [1, 0]):
        meshes = [Mesh(*far, (1, 0, 0)), Mesh(*near, (0, 0, 1))]
        r = renderer.render([meshes[i] for i in order], K)
        near_id = order.index(1)
        assert r.mesh_id[40, 50] == near_id and abs(r.depth[40, 50] - 1.0) < 1e-6
        assert r.mesh_id[40, 36] == 1 - near_id and abs(r.depth[40, 36] - 3.0) < 1e-6
        assert r.image[40, 50, 2] > 180 and r.image[40, 36, 0] > 180


@pytest.mark.parametrize("backend", BACKENDS)
def test_light_terms_mean_what_they_say(backend):
    # a camera-facing square: normal (0, 0, -1)
    meshes = [Mesh(*square(-0.3, 0.1, -0.2, 0.2, 2.0), (0.8, 0.4, 0.28))]
    renderer = Renderer((80, 100), backend)

    def colour(**terms):
        return renderer.render(meshes, K, light=Light(**{"fill": 0.0, "specular": 0.0, **terms})).image[40, 45]

    np.testing.assert_array_equal(colour(ambient=0.0, key=1.0), [204, 102, 71])
    np.testing.assert_array_equal(colour(ambient=0.5, key=0.0), [102, 51, 36])
    # a light from behind the surface adds nothing; one at 60 degrees adds half
    np.testing.assert_array_equal(colour(ambient=0.0, key=1.0, direction=(0.0, 0.0, 1.0)), [0, 0, 0])
    np.testing.assert_array_equal(colour(ambient=0.0, key=1.0, direction=(0.0, 3 ** 0.5, -1.0)), [102, 51, 36])
    # the highlight is white, at full strength when the half vector meets the normal
    np.testing.assert_array_equal(colour(ambient=0.0, key=0.0, specular=0.6), [153, 153, 153])


def test_projection_matrix_maps_points_to_K_X_over_Z():
    size = (61, 97)
    Kx = np.array([[83.0, 0.7, 41.3], [0.0, 91.0, 27.9], [0.0, 0.0, 1.0]])
    X = np.random.default_rng(0).uniform([-0.3, -0.2, 0.4], [0.3, 0.2, 2.0], (50, 3))
    clip = np.c_[X, np.ones(50)] @ gl.projection(Kx, size, 0.2, 4.0).T
    ndc = clip[:, :3] / clip[:, 3:]
    uv = (X @ Kx.T)[:, :2] / X[:, 2:]
    np.testing.assert_allclose((ndc[:, 0] + 1) * size[1] / 2, uv[:, 0], atol=1e-9)
    np.testing.assert_allclose((ndc[:, 1] + 1) * size[0] / 2, uv[:, 1], atol=1e-9)
    assert (np.abs(ndc[:, 2]) < 1).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_small_triangle_lands_on_K_X_over_Z(backend):
    # a non-square image, an off-centre principal point, skew and unequal focal lengths
    size = (61, 97)
    Kx = np.array([[83.0, 0.7, 41.3], [0.0, 91.0, 27.9], [0.0, 0.0, 1.0]])
    renderer = Renderer(size, backend)
    for X in ([0.21, -0.13, 1.3], [-0.3, 0.18, 0.9], [0.02, 0.01, 2.5]):
        X = np.array(X)
        u, v = (Kx @ X)[:2] / X[2]
        # a triangle 3 px across around X, at X's depth, with its centroid on X
        corners = np.array([[0.0, -2.0], [1.7, 1.0], [-1.7, 1.0]])
        tri = X + np.c_[corners * X[2] / 90.0, np.zeros(3)]
        r = renderer.render([Mesh(tri, np.array([[0, 1, 2]]), (1, 1, 1))], Kx)
        rows, cols = np.nonzero(r.mesh_id == 0)
        assert r.mesh_id[int(v), int(u)] == 0
        assert abs(cols.mean() + 0.5 - u) < 0.75 and abs(rows.mean() + 0.5 - v) < 0.75
        np.testing.assert_allclose(r.depth[rows, cols], X[2], rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_scenes_and_faceless_meshes_keep_the_indices(backend):
    size = (80, 100)
    photo = np.random.default_rng(1).integers(0, 256, (*size, 3), dtype=np.uint8)
    renderer = Renderer(size, backend)
    r = renderer.render([], K, photo)
    assert np.array_equal(r.image, photo) and np.isinf(r.depth).all() and (r.mesh_id == -1).all()
    nothing = Mesh(np.zeros((0, 3)), np.zeros((0, 3), np.int64), (1, 1, 1))
    r = renderer.render([nothing, Mesh(*square(-0.1, 0.1, -0.1, 0.1, 2.0), (1, 1, 1))], K)
    assert set(np.unique(r.mesh_id)) == {-1, 1}
    behind = square(-0.1, 0.1, -0.1, 0.1, -1.0)
    assert (renderer.render([Mesh(*behind, (1, 1, 1))], K).mesh_id == -1).all()
    with pytest.raises(ValueError, match="background"):
        renderer.render([], K, photo[:-1])


@needs_gl
def test_gl_framebuffers_serve_any_sizes_in_any_order():
    v, f = square(-0.294, 0.096, -0.188, 0.194, 2.0)
    meshes = [Mesh(v, f, (0.2, 0.7, 0.3))]
    for size in [(80, 100), (31, 45), (120, 90), (7, 5), (64, 64), (50, 51), (80, 100)]:
        a = Renderer(size, "gl").render(meshes, K)
        b = Renderer(size, "numpy").render(meshes, K)
        assert np.array_equal(a.mesh_id, b.mesh_id), size
        assert np.abs(a.image.astype(int) - b.image).max() <= 1, size


@pytest.fixture(scope="module")
def two_hands():
    """The open model's interlocked hands ~0.4 m away, turned so that both show with the
    fingers overlapping: self-occluding, watertight meshes; a 240x320 camera and photo."""
    turn = axis_angle_to_matrix(torch.tensor([1.2, -0.5, 0.4], dtype=torch.float64)).numpy()
    meshes = []
    for side, p in poses.interlocked().items():
        model = load_hand_model("open", side, dtype=torch.float64)
        out = model(**{k: torch.as_tensor(v)[None] for k, v in p.items()})
        color = (0.9, 0.6, 0.5) if side == "right" else (0.4, 0.6, 0.9)
        meshes.append(Mesh(out.vertices[0].numpy() @ turn.T, out.faces.numpy(), color))
    centre = np.concatenate([m.vertices for m in meshes]).mean(0)
    for m in meshes:
        m.vertices = m.vertices - centre + [0.01, 0.005, 0.4]
    Kx = np.array([[330.0, 0.5, 161.3], [0.0, 325.0, 118.7], [0.0, 0.0, 1.0]])
    photo = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    return meshes, Kx, photo


@needs_gl
@pytest.mark.parametrize("light", [Light(), Light(direction=(0.6, 0.3, -0.7), fill_direction=(-0.5, 0.5, 0.2),
                                                  ambient=0.2, key=0.7, fill=0.3, specular=0.4,
                                                  shininess=9.0)])
def test_gl_and_numpy_agree_on_two_hands(two_hands, light):
    meshes, Kx, photo = two_hands
    a = Renderer(photo.shape[:2], "gl").render(meshes, Kx, photo, light)
    b = Renderer(photo.shape[:2], "numpy").render(meshes, Kx, photo, light)
    both = (a.mesh_id >= 0) & (b.mesh_id >= 0)
    assert 0.05 < both.mean() and (a.mesh_id == 1).sum() > 1000 and (a.mesh_id == 0).sum() > 1000
    # masks: equal but for pixel centres within GL's sub-pixel precision of an edge
    assert (a.mesh_id == b.mesh_id).mean() >= 0.999
    # depth: float32 precision, except where such an edge picks another surface
    agree = both & np.isclose(a.depth, b.depth, rtol=1e-4, atol=0)
    assert agree.sum() >= 0.999 * both.sum()
    # colour: the same shading to a level where both saw the same surface
    assert np.abs(a.image[agree].astype(int) - b.image[agree]).max() <= 2
    empty = (a.mesh_id < 0) & (b.mesh_id < 0)
    assert np.array_equal(a.image[empty], photo[empty])


@pytest.mark.parametrize("backend", BACKENDS)
def test_closed_meshes_skip_back_faces_without_changing_the_picture(two_hands, backend):
    meshes, Kx, photo = two_hands
    renderer = Renderer(photo.shape[:2], backend)
    both_sides = renderer.render(meshes, Kx)
    front_only = renderer.render([replace(m, closed=True) for m in meshes], Kx)
    assert (both_sides.mesh_id == front_only.mesh_id).mean() >= 0.999
    same = (both_sides.depth == front_only.depth) & (both_sides.mesh_id >= 0)
    assert same.sum() >= 0.999 * (both_sides.mesh_id >= 0).sum()


def test_closed_is_only_for_watertight_meshes():
    # a box missing its camera-facing side: drawn open, its inside shows; "closed" hides it
    box = trimesh.creation.box()
    faces = np.asarray(box.faces)[(np.asarray(box.face_normals) @ [0, 0, -1]) < 0.5]
    v = np.asarray(box.vertices) * 0.2 + [0, 0, 2.0]
    renderer = Renderer((80, 100), "numpy")
    assert (renderer.render([Mesh(v, faces, (1, 1, 1))], K).mesh_id[40, 50]) == 0
    assert (renderer.render([Mesh(v, faces, (1, 1, 1), closed=True)], K).mesh_id[40, 50]) == -1


def test_numpy_backend_when_asked_for_is_the_rasteriser():
    v, f = square(-0.3, 0.1, -0.2, 0.2, 2.0)
    meshes = [Mesh(v, f, (0.3, 0.5, 0.9))]
    renderer = Renderer((80, 100), "numpy")
    assert renderer.backend == "numpy"
    r = renderer.render(meshes, K)
    image, depth, mesh_id = rasterize(meshes, K, (80, 100))
    assert np.array_equal(r.image, image) and np.array_equal(r.mesh_id, mesh_id)
    assert np.array_equal(r.depth, depth.astype(np.float32))


@needs_gl
def test_auto_picks_gl_where_egl_works():
    assert Renderer((8, 8)).backend == gl.BACKEND == "moderngl-egl"


def test_auto_falls_back_to_numpy_and_says_why(monkeypatch, caplog):
    calls = []

    def no_egl(*args, **kwargs):
        calls.append(kwargs)
        raise RuntimeError("simulated: libEGL.so.1 not found")

    monkeypatch.setattr(moderngl, "create_context", no_egl)
    monkeypatch.setattr(gl, "_process", None)  # as in a fresh process
    with caplog.at_level(logging.INFO, logger="fourdhands.render.renderer"):
        renderer = Renderer((80, 100))
        again = Renderer((80, 100), "auto")
    assert renderer.backend == again.backend == "numpy"
    assert len(calls) == 1 and calls[0]["backend"] == "egl"  # tried once per process
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "simulated: libEGL.so.1 not found" in warnings[0] and "NumPy" in warnings[0]
    r = renderer.render([Mesh(*square(-0.1, 0.1, -0.1, 0.1, 2.0), (1, 1, 1))], K)
    assert (r.mesh_id == 0).sum() == 100
    with pytest.raises(gl.Unavailable, match="simulated"):
        Renderer((80, 100), "gl")


def _render_in_child(_):
    renderer = Renderer((80, 100))
    r = renderer.render([Mesh(*square(-0.1, 0.1, -0.1, 0.1, 2.0), (1, 1, 1))], K)
    return renderer.backend, int((r.mesh_id == 0).sum())


@needs_gl
def test_a_child_forked_after_gl_started_renders_with_numpy():
    # a GL context cannot cross fork(): the child must not hang trying to use one
    Renderer((80, 100)).render([], K)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.map_async(_render_in_child, [0]).get(timeout=120) == [("numpy", 100)]


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend"):
        Renderer((8, 8), "vulkan")


@pytest.mark.parametrize("backend", BACKENDS)
def test_vertex_colours_interpolate_perspective_correctly(backend):
    """A quad tilted in depth, red at its near edge and blue at its far edge: the colour
    at a pixel is the mix at that pixel's point on the surface, worked out by hand by
    intersecting the pixel's ray with the plane (not the mix at the screen midpoint)."""
    v = np.array([[-0.4, -0.3, 1.0], [0.4, -0.3, 1.0], [0.4, 0.3, 3.0], [-0.4, 0.3, 3.0]])
    f = np.array([[0, 1, 2], [0, 2, 3]])
    colors = np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0], [0, 0, 1.0]])
    light = Light(ambient=1.0, key=0.0, fill=0.0, specular=0.0)
    r = Renderer((80, 100), backend).render([Mesh(v, f, colors)], K, light=light)
    fy, cy = K[1, 1], K[1, 2]
    for row in (15, 30, 45):
        ray_y = (row + 0.5 - cy) / fy  # y / z along the pixel's ray
        # the plane: y = -0.3 + 0.3 (z - 1); on the ray y = ray_y z
        z = (-0.3 - 0.3) / (ray_y - 0.3)
        blue = (z - 1.0) / 2.0
        np.testing.assert_allclose(r.image[row, 50, [0, 2]] / 255.0, [1 - blue, blue], atol=3 / 255)
    with pytest.raises(ValueError, match="color must be"):
        Renderer((8, 10), backend).render([Mesh(v, f, colors[:3])], K)


@needs_gl
def test_gl_and_numpy_agree_on_vertex_colours(two_hands):
    meshes, Kx, photo = two_hands
    gen = np.random.default_rng(3)
    coloured = [replace(m, color=gen.uniform(0, 1, (len(m.vertices), 3))) for m in meshes]
    a = Renderer(photo.shape[:2], "gl").render(coloured, Kx, photo)
    b = Renderer(photo.shape[:2], "numpy").render(coloured, Kx, photo)
    agree = (a.mesh_id == b.mesh_id) & (a.mesh_id >= 0) & np.isclose(a.depth, b.depth, rtol=1e-4, atol=0)
    assert agree.sum() > 2000
    assert np.percentile(np.abs(a.image[agree].astype(int) - b.image[agree]), 99.5) <= 2
