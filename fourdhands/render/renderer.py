"""One renderer for every caller, with a fast path and a fallback.

``Renderer(size).render(meshes, K)`` draws hand meshes (vertices in the OpenCV camera
frame, metres) through intrinsics ``K`` and returns colour, depth along z and the index
of the mesh seen at each pixel. Two backends draw the same picture:

- ``"moderngl-egl"`` (:mod:`fourdhands.render.gl`): OpenGL in a headless EGL context,
  on a GPU or on Mesa's llvmpipe (CPU). Needs libEGL.so.1 and libGL.so.1 and an EGL
  driver: on Debian/Ubuntu ``apt-get install libegl1 libgl1 libegl-mesa0
  libgl1-mesa-dri`` (Mesa, llvmpipe included), or a GPU vendor's.
- ``"numpy"`` (:mod:`fourdhands.render.raster`): a pure NumPy z-buffer, slower, runs
  anywhere.

``backend="auto"`` (the default) takes GL when this process can make an EGL context
(tried once per process) and NumPy otherwise, and logs once which one runs and why.
Both shade with the same :class:`Light`, cover the same pixels (those whose centres
(j + 0.5, i + 0.5) fall inside a triangle, but for centres within GL's sub-pixel
precision of an edge) and agree on depth to float32 precision.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from . import gl
from .raster import Light, Mesh, rasterize

__all__ = ["Light", "Mesh", "RenderResult", "Renderer", "BACKENDS"]

NUMPY = "numpy"
BACKENDS = ("auto", "gl", "numpy")

_log = logging.getLogger(__name__)
_said: set[str] = set()


@dataclass
class RenderResult:
    """What a render returns.

    Attributes:
        image: `(H, W, 3)` uint8 colour, the background where no mesh is.
        depth: `(H, W)` float32 metres along the camera's z, inf where no mesh is.
        mesh_id: `(H, W)` int16 index into the meshes drawn, -1 where none is.
    """

    image: np.ndarray
    depth: np.ndarray
    mesh_id: np.ndarray


class Renderer:
    """Renders meshes into images of one size.

    Args:
        size: `(H, W)` of the images.
        backend: ``"auto"`` (GL if possible, else NumPy), ``"gl"`` (GL or raise
            :class:`fourdhands.render.gl.Unavailable`) or ``"numpy"``.

    Attributes:
        backend: which backend runs, ``"moderngl-egl"`` or ``"numpy"`` (for logs).
    """

    def __init__(self, size: tuple[int, int], backend: str = "auto"):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.size = (int(size[0]), int(size[1]))
        self.backend = _choose(backend)

    def render(self, meshes: list[Mesh], K: np.ndarray, background: np.ndarray | None = None,
               light: Light | None = None) -> RenderResult:
        """Draw ``meshes`` (vertices in the camera frame) seen through ``K`` `(3, 3)`, over
        ``background`` `(H, W, 3)` uint8 (default: light grey), shaded by ``light``
        (default: ``Light()``)."""
        K = np.asarray(K, float)
        if K.shape != (3, 3):
            raise ValueError(f"K must be (3, 3), got {K.shape}")
        light = Light() if light is None else light
        if self.backend == gl.BACKEND:
            return RenderResult(*gl.render(meshes, K, self.size, background, light))
        image, depth, mesh_id = rasterize(meshes, K, self.size, background, light)
        return RenderResult(image, depth.astype(np.float32), mesh_id.astype(np.int16))


def _choose(backend: str) -> str:
    """The backend that runs for the one asked for; logs the choice once per process."""
    if backend == NUMPY:
        _say_once(logging.INFO, "rendering with the NumPy rasteriser (asked for)")
        return NUMPY
    try:
        name = gl.device_name()
    except gl.Unavailable as e:
        if backend == "gl":
            raise
        _say_once(logging.WARNING, f"{e}; rendering with the NumPy rasteriser instead (slower)")
        return NUMPY
    _say_once(logging.INFO, f"rendering with {gl.BACKEND} ({name})")
    return gl.BACKEND


def _say_once(level: int, message: str) -> None:
    if message not in _said:
        _said.add(message)
        _log.log(level, message)
