"""Drawing hand meshes: :class:`Renderer` (GL in a headless EGL context, or NumPy where
that is unavailable) and side / top views of a scene.

Import the submodules for the rest: :mod:`.raster` (the NumPy z-buffer, :class:`Mesh`,
:class:`Light`), :mod:`.gl` (the OpenGL path), :mod:`.views`.
"""

from .raster import Light, Mesh
from .renderer import RenderResult, Renderer

__all__ = ["Light", "Mesh", "RenderResult", "Renderer"]
