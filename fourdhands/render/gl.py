"""The fast rendering path: OpenGL through moderngl, in a headless EGL context.

No display is needed: on a machine without a GPU, Mesa's llvmpipe (a multithreaded CPU
OpenGL) serves the context. It draws what :func:`fourdhands.render.raster.rasterize`
draws, the same way (:class:`~fourdhands.render.raster.Light`, pixel centres, depth along
z), several times faster. Use it through :class:`fourdhands.render.renderer.Renderer`,
which falls back to NumPy where no EGL context can be made.

Camera: vertices stay in the OpenCV camera frame and :func:`projection` maps them to clip
space so that normalised device coordinates are ``x = 2u/W - 1``, ``y = 2v/H - 1`` with
``(u, v) = K X / Z`` continuous pixel coordinates. GL samples pixel (i, j) at window
position (j + 0.5, i + 0.5), the package's pixel centre. GL's window rows count upwards
from row 0 and so do ``glReadPixels``' rows, so image row i is window row i: there is no
y flip anywhere (the image is upside down only by GL's naming of "bottom"; winding does
not matter, as GL culls nothing: back faces of closed meshes are dropped before upload,
by the code the NumPy backend uses).

Read-back: three colour attachments, read straight into the returned arrays: colour
(RGB8, into which a background image is uploaded), the fragment's z (R32F, metres,
interpolated perspective-correctly, cleared to inf) and the mesh index (R32F, cleared to
-1). The hardware depth buffer only decides which fragment wins; near and far planes are
fitted to the scene so its 24 bits resolve well below a micrometre at hand distances.

One context per process, made on first use; programs and vertex buffers live with it,
framebuffers are kept per image size (the few most recent), vertices are uploaded each
call. Not thread safe: render from one thread. A process forked after its parent made a
context cannot use GL at all (llvmpipe's threads do not survive fork(), and a new
context hangs on them): it is told GL is unavailable. Workers that should render with GL
must be forked before the parent first renders, or started with "spawn".
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass

import moderngl
import numpy as np

from .raster import BACKGROUND_GREY, NEAR, Light, Mesh, as_background, prepare

BACKEND = "moderngl-egl"
_KEEP_SIZES = 4  # framebuffers kept for this many image sizes (each ~16 bytes/pixel)
_COLOUR, _Z, _ID = range(3)  # colour attachments
_FLOATS_PER_VERTEX = 10  # position 3, normal 3, colour 3, mesh index 1

_MESH_VERTEX = """
#version 330 core
uniform mat4 projection;
in vec3 in_position;
in vec3 in_normal;
in vec3 in_color;
in float in_id;
out vec3 v_normal;
out float v_z;
out vec3 v_color;
flat out float v_id;
void main() {
    gl_Position = projection * vec4(in_position, 1.0);
    v_normal = in_normal;
    v_z = in_position.z;
    v_color = in_color;
    v_id = in_id;
}
"""

# raster._shade, term for term
_MESH_FRAGMENT = """
#version 330 core
uniform vec3 key_dir;
uniform vec3 fill_dir;
uniform vec3 half_dir;
uniform float ambient;
uniform float key;
uniform float fill;
uniform float specular;
uniform float shininess;
in vec3 v_normal;
in float v_z;
in vec3 v_color;
flat in float v_id;
layout(location = 0) out vec4 out_color;
layout(location = 1) out float out_z;
layout(location = 2) out float out_id;
void main() {
    vec3 n = v_normal / max(length(v_normal), 1e-12);
    float lit = ambient + key * max(dot(n, key_dir), 0.0) + fill * max(dot(n, fill_dir), 0.0);
    float highlight = pow(max(dot(n, half_dir), 0.0), shininess);
    out_color = vec4(clamp(v_color * lit + specular * highlight, 0.0, 1.0), 1.0);
    out_z = v_z;
    out_id = v_id;
}
"""

class Unavailable(RuntimeError):
    """No OpenGL context could be made in this process (no libEGL, no EGL device, ...)."""


def projection(K: np.ndarray, size: tuple[int, int], near: float, far: float) -> np.ndarray:
    """The `(4, 4)` matrix from camera-frame points `[X, Y, Z, 1]` to clip space.

    Rows 0-1 give ``x_ndc = 2u/W - 1``, ``y_ndc = 2v/H - 1`` for ``(u, v, 1) ~ K X``
    (skew included); row 3 gives ``w = Z``; row 2 maps Z in [near, far] to [-1, 1].
    """
    h, w = size
    P = np.zeros((4, 4))
    P[:2, :3] = np.diag([2.0 / w, 2.0 / h]) @ np.asarray(K, float)[:2] - [[0, 0, 1], [0, 0, 1]]
    P[2, 2:] = (far + near) / (far - near), -2.0 * far * near / (far - near)
    P[3, 2] = 1.0
    return P


def depth_range(meshes: list[Mesh]) -> tuple[float, float]:
    """Near and far planes around the scene's depths, with margin: everything between
    :data:`~fourdhands.render.raster.NEAR` and twice the farthest vertex is inside."""
    z = np.concatenate([np.asarray(m.vertices, float)[:, 2] for m in meshes])
    near = max(NEAR, 0.5 * z.min())
    return near, max(2.0 * z.max(), 2.0 * near)


def device_name() -> str:
    """What draws (GL_RENDERER, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"), making this
    process's context if not yet made.

    Raises:
        Unavailable: no context can be made in this process.
    """
    return _session().ctx.info["GL_RENDERER"]


def render(meshes: list[Mesh], K: np.ndarray, size: tuple[int, int],
           background: np.ndarray | None, light: Light):
    """Draw ``meshes`` as :func:`fourdhands.render.raster.rasterize` does.

    Unlike it, triangles crossing the near plane are clipped rather than skipped.

    Returns:
        image `(H, W, 3)` uint8, depth `(H, W)` float32 (metres along z, inf where
        empty), mesh_id `(H, W)` int16 (-1 where empty).

    Raises:
        Unavailable: no context can be made in this process.
    """
    gl = _session()
    target = gl.target(size)
    target.clear(as_background(background, size))
    indices = gl.upload(meshes)
    if indices:
        gl.set_uniforms(projection(K, size, *depth_range(meshes)), light)
        gl.mesh_vao.render(moderngl.TRIANGLES, vertices=indices)
    return target.read()


_process: _Process | None = None  # None: not tried yet


def _session() -> _Session:
    """This process's GL session, made on the first call (tried once per process)."""
    global _process
    if _process is None or _process.pid != os.getpid():
        _process = _open(_process)
    if _process.session is None:
        raise Unavailable(_process.failure)
    return _process.session


@dataclass
class _Process:
    """The outcome of trying to make this process's context: a session or why not."""

    pid: int
    session: _Session | None = None
    failure: str | None = None


def _open(parent: _Process | None) -> _Process:
    """Try to make a context, unless this is a child forked after its parent made one."""
    if parent is not None and parent.session is not None:
        return _Process(os.getpid(), failure=(
            "no GL in a process forked after its parent made a GL context (the driver's "
            "threads do not survive fork); fork workers before rendering, or use 'spawn'"))
    try:
        session = _Session(moderngl.create_context(standalone=True, backend="egl", require=330))
        session.target((1, 1))  # fails here, not in a render, where a format cannot be drawn into
    except Exception as e:  # glcontext raises plain Exceptions: missing libEGL, no device, ...
        reason = f"no usable EGL OpenGL context: {type(e).__name__}: {e}"
        return _Process(os.getpid(), failure=reason)
    return _Process(os.getpid(), session=session)


@dataclass
class _Target:
    """The framebuffer for one image size: colour (an RGB8 texture, so that a background
    image is written straight into it), z and mesh index (R32F) and a depth buffer."""

    size: tuple[int, int]
    framebuffer: moderngl.Framebuffer
    colour: moderngl.Texture

    def clear(self, background: np.ndarray | None) -> None:
        """Depth to far, z to inf, mesh index to -1, colour to ``background`` `(H, W, 3)`
        or the grey; leaves the framebuffer bound with every attachment writable."""
        grey = BACKGROUND_GREY / 255.0
        clears = [(_Z, (np.inf,) * 4), (_ID, (-1.0,) * 4)]
        if background is None:
            clears.append((_COLOUR, (grey, grey, grey, 1.0)))
        else:
            self.colour.write(background)  # before the clears, which it would otherwise flush
        fb = self.framebuffer
        fb.use()
        # A clear writes one value into every unmasked attachment, so clear them one at a
        # time under colour masks (on one framebuffer, so llvmpipe folds the clears into
        # the draw instead of filling each buffer on its own).
        for attachment, value in clears:
            fb.color_mask = _writing(attachment)
            fb.clear(color=value)
        fb.color_mask = _writing(_COLOUR, _Z, _ID)

    def read(self):
        """image `(H, W, 3)` uint8, depth `(H, W)` float32, mesh_id `(H, W)` int16."""
        h, w = self.size
        image = np.empty((h, w, 3), np.uint8)
        self.framebuffer.read_into(image, components=3, attachment=_COLOUR)
        depth = np.empty((h, w), np.float32)
        self.framebuffer.read_into(depth, components=1, attachment=_Z, dtype="f4")
        mesh_id = np.empty((h, w), np.float32)
        self.framebuffer.read_into(mesh_id, components=1, attachment=_ID, dtype="f4")
        return image, depth, mesh_id.astype(np.int16)


def _writing(*attachments: int) -> tuple:
    """A framebuffer colour mask that lets only ``attachments`` be written."""
    return tuple((k in attachments,) * 4 for k in (_COLOUR, _Z, _ID))


class _Session:
    """A context with its shader program, vertex buffers and per-size framebuffers."""

    def __init__(self, ctx: moderngl.Context):
        self.ctx = ctx
        self.targets: OrderedDict[tuple[int, int], _Target] = OrderedDict()
        self.light: Light | None = None  # the light the program's uniforms hold
        ctx.enable(moderngl.DEPTH_TEST)
        self.mesh_program = ctx.program(vertex_shader=_MESH_VERTEX, fragment_shader=_MESH_FRAGMENT)
        self.vertices = ctx.buffer(reserve=4)
        self.indices = ctx.buffer(reserve=4)
        self.mesh_vao = ctx.vertex_array(
            self.mesh_program,
            [(self.vertices, "3f 3f 3f 1f", "in_position", "in_normal", "in_color", "in_id")],
            index_buffer=self.indices, index_element_size=4)

    def target(self, size: tuple[int, int]) -> _Target:
        """Framebuffers for ``size`` `(H, W)`: made once, kept for the recent sizes."""
        if size in self.targets:
            self.targets.move_to_end(size)
            return self.targets[size]
        if len(self.targets) >= _KEEP_SIZES:
            _release(self.targets.popitem(last=False)[1])
        wh = (size[1], size[0])
        colour, z, mesh_id = (self.ctx.texture(wh, 3), self.ctx.renderbuffer(wh, 1, dtype="f4"),
                              self.ctx.renderbuffer(wh, 1, dtype="f4"))
        framebuffer = self.ctx.framebuffer([colour, z, mesh_id], self.ctx.depth_renderbuffer(wh))
        target = _Target(size, framebuffer, colour)
        self.targets[size] = target
        return target

    def upload(self, meshes: list[Mesh]) -> int:
        """Write the meshes' vertices (with normals, colour and index) and triangles
        (only those facing the camera for closed meshes) into the buffers, growing them
        as needed; returns the number of indices to draw."""
        if sum(len(m.faces) for m in meshes) == 0:
            return 0
        counts = [len(m.vertices) for m in meshes]
        data = np.empty((sum(counts), _FLOATS_PER_VERTEX), np.float32)
        faces, start = [], 0
        for index, (mesh, count) in enumerate(zip(meshes, counts)):
            v, f, normals = prepare(mesh)
            rows = data[start:start + count]
            rows[:, 0:3] = v
            rows[:, 3:6] = normals
            rows[:, 6:9] = mesh.vertex_colors()
            rows[:, 9] = index
            faces.append(f + start)
            start += count
        triangles = np.concatenate(faces).astype(np.uint32)
        _write(self.vertices, data)
        _write(self.indices, triangles)
        return triangles.size

    def set_uniforms(self, projection_matrix: np.ndarray, light: Light) -> None:
        program = self.mesh_program
        # GL reads matrices column by column
        program["projection"].write(projection_matrix.T.astype("f4").tobytes())
        if light == self.light:  # lights rarely change between frames; eight writes saved
            return
        for name, direction in zip(("key_dir", "fill_dir", "half_dir"), light.unit_directions()):
            program[name].value = tuple(direction)
        for name in ("ambient", "key", "fill", "specular", "shininess"):
            program[name].value = float(getattr(light, name))
        self.light = light


def _write(buffer: moderngl.Buffer, array: np.ndarray) -> None:
    """Replace ``buffer``'s contents with ``array`` (orphaning keeps vertex arrays valid)."""
    buffer.orphan(array.nbytes)
    buffer.write(array)


def _release(target: _Target) -> None:
    """Free a size's GL objects now rather than whenever Python collects them."""
    fb = target.framebuffer
    attachments = (*fb.color_attachments, fb.depth_attachment)
    fb.release()
    for attachment in attachments:
        attachment.release()
