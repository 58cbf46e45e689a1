"""What ``fourdhands run`` writes, frame by frame, so an interrupted run loses nothing.

Layout of ``OUT``::

    frames/<name>.json, frames/<name>.npz   per frame: per hand the MANO-layout parameters
                                            (flat_hand_mean stated), transl, 21 keypoints
                                            in 3D and 2D, vertices, box, crop box, score;
                                            v; the camera K; frame index and time
    meshes/<name>.glb                       both hands, one named node each (camera frame)
    overlay/<name>.jpg                      the meshes over the frame, boxes and labels
    side/<name>.jpg                         the hands seen from the camera's right side
    overlay.mp4, side.mp4                   (video input) the two picture series as videos
    summary.json                            counts, timings, settings

Every file is written atomically. A frame's ``.npz`` is written last, so its presence
means the frame is complete; ``--resume`` redoes only frames without one.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .export import params_record, write_meshes, write_params
from .io import atomic_path
from .pipeline import SIDES, FrameResult
from .render.raster import Mesh

COLOURS = {"right": (0.93, 0.55, 0.25), "left": (0.30, 0.60, 0.95)}
SIDE_VIEW_SIZE = (480, 480)
SIDE_VIEW_RADIUS = 0.25  # metres framed around the hands' midpoint: one scale for a whole video
FOLDERS = ("frames", "meshes", "overlay", "side")


def frame_record(result: FrameResult, name: str, time_s: float, hand_model: str) -> dict:
    """The self-describing per-frame record (:func:`fourdhands.export.params_record`)."""
    hands = {side: {"global_orient": h.global_orient, "hand_pose": h.hand_pose, "betas": h.betas,
                    "transl": h.transl, "keypoints_3d": h.keypoints_3d, "keypoints_2d": h.keypoints_2d,
                    "vertices": h.vertices, "box": h.box, "crop_box": h.crop_box,
                    "score": np.asarray(h.score)}
             for side, h in result.hands.items()}
    extra = {"frame": result.index, "name": name, "time": time_s,
             "image_size": np.asarray(result.image_size), "K": result.K,
             "present": np.array([s in result.hands for s in SIDES])}
    if result.v is not None:
        extra["v"] = result.v
    return params_record(hands, hand_model=hand_model, flat_hand_mean=True, extra=extra)


class RunOutputs:
    """Writes one run's files into ``out`` (an existing folder).

    Args:
        faces: side -> `(F, 3)` faces of the hand model.
        hand_model: its name, recorded in every parameter file.
        render: draw overlays and side views.
        max_render_side: overlays of larger images are drawn at this longer side.
    """

    def __init__(self, out: Path, faces: dict[str, np.ndarray], hand_model: str, render: bool = True,
                 max_render_side: int = 960):
        self.out, self.faces, self.hand_model = Path(out), faces, hand_model
        self.render, self.max_render_side = render, max_render_side
        for folder in FOLDERS if render else FOLDERS[:2]:
            (self.out / folder).mkdir(parents=True, exist_ok=True)
        self.timings = {"rendering": 0.0, "writing": 0.0}
        self._renderers: dict = {}

    def done(self) -> set[str]:
        """Names of the frames already complete."""
        return {p.stem for p in (self.out / "frames").glob("*.npz") if not p.name.startswith(".")}

    def write(self, result: FrameResult, name: str, time_s: float, image: np.ndarray) -> None:
        """Write every file of one frame (``image`` `(H, W, 3)` uint8, the input frame)."""
        t0 = time.perf_counter()
        if self.render:
            overlay = self._overlay(result, image)
            side = self._side_view(result)
            t1 = time.perf_counter()
            self.timings["rendering"] += t1 - t0
            _save_jpeg(self.out / "overlay" / f"{name}.jpg", overlay)
            _save_jpeg(self.out / "side" / f"{name}.jpg", side)
            t0 = t1
        if result.hands:
            write_meshes(self.out / "meshes" / f"{name}.glb",
                         {side: (h.vertices, self.faces[side], COLOURS[side]) for side, h in result.hands.items()})
        record = frame_record(result, name, time_s, self.hand_model)
        write_params(self.out / "frames" / f"{name}.json", record, compact=True)
        write_params(self.out / "frames" / f"{name}.npz", record)  # last: marks the frame complete
        self.timings["writing"] += time.perf_counter() - t0

    def videos(self, names: list[str], fps: float) -> list[str]:
        """Assemble ``overlay.mp4`` and ``side.mp4`` from the frames' pictures."""
        from .media import VideoWriter

        written = []
        for kind in ("overlay", "side"):
            paths = [self.out / kind / f"{n}.jpg" for n in names]
            if not paths or not all(p.is_file() for p in paths):
                continue
            first = np.asarray(Image.open(paths[0]).convert("RGB"))
            with VideoWriter(self.out / f"{kind}.mp4", fps, (first.shape[1], first.shape[0])) as video:
                for p in paths:
                    frame = Image.open(p).convert("RGB")
                    if frame.size != (first.shape[1], first.shape[0]):
                        frame = frame.resize((first.shape[1], first.shape[0]))
                    video.write(np.asarray(frame))
            written.append(f"{kind}.mp4")
        return written

    # ------------------------------------------------------------------ pictures
    def _renderer(self, size: tuple[int, int]):
        from .render.renderer import Renderer

        if size not in self._renderers:
            self._renderers[size] = Renderer(size)
        return self._renderers[size]

    def _meshes(self, result: FrameResult) -> list[Mesh]:
        return [Mesh(h.vertices, self.faces[side], COLOURS[side]) for side, h in result.hands.items()]

    def _overlay(self, result: FrameResult, image: np.ndarray) -> np.ndarray:
        """The meshes drawn over the frame (scaled to ``max_render_side``), with the tracked
        boxes and R/L labels."""
        h, w = image.shape[:2]
        scale = min(1.0, self.max_render_side / max(h, w))
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        background = image if scale == 1.0 else np.asarray(
            Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR, reducing_gap=2.0))
        picture = background
        if result.hands:
            K = result.K.copy()
            K[:2] *= np.array([[size[1] / w], [size[0] / h]])
            drawn = self._renderer(size).render(self._meshes(result), K, background=background)
            # half-transparent meshes: the hand stays visible under its fit
            on = drawn.mesh_id >= 0
            picture = background.copy()
            blend = 35 * background[on].astype(np.uint16) + 65 * drawn.image[on].astype(np.uint16)  # no uint8 wrap
            picture[on] = (blend // 100).astype(np.uint8)
        canvas = Image.fromarray(np.ascontiguousarray(picture))
        draw = ImageDraw.Draw(canvas)
        for side, hand in result.hands.items():
            cx, cy, sx, sy = np.asarray(hand.box) * np.array([size[1] / w, size[0] / h] * 2)
            colour = tuple(int(255 * c) for c in COLOURS[side])
            draw.rectangle([cx - sx / 2, cy - sy / 2, cx + sx / 2, cy + sy / 2], outline=colour, width=2)
            draw.text((cx - sx / 2 + 3, cy - sy / 2 + 2), f"{side[0].upper()} {hand.score:.2f}", fill=colour)
        return np.asarray(canvas)

    def _side_view(self, result: FrameResult) -> np.ndarray:
        from .render.views import framed_view

        if not result.hands:
            return np.full((*SIDE_VIEW_SIZE, 3), 230, np.uint8)
        roots = np.stack([h.keypoints_3d[0] for h in result.hands.values()])
        return framed_view(self._meshes(result), "side", SIDE_VIEW_SIZE, centre=roots.mean(0),
                           radius=SIDE_VIEW_RADIUS)


def _save_jpeg(path: Path, image: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="JPEG", quality=90)
