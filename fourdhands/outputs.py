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
:class:`BackgroundWriter` does the rendering and encoding on a worker thread, so that the
network waits only when a bounded queue of frames is full.
"""

from __future__ import annotations

import queue
import threading
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
        self._videos: dict | None = None  # kind -> VideoWriter, fed as frames are stored
        self._fps = 0.0

    def stream_videos(self, fps: float) -> None:
        """Encode ``overlay.mp4`` and ``side.mp4`` as frames are stored (a video input,
        rendering on), instead of reading the pictures back at the end."""
        if self.render:
            self._videos, self._fps = {}, float(fps)

    def done(self) -> set[str]:
        """Names of the frames already complete."""
        return {p.stem for p in (self.out / "frames").glob("*.npz") if not p.name.startswith(".")}

    def write(self, result: FrameResult, name: str, time_s: float, image: np.ndarray) -> None:
        """Write every file of one frame (``image`` `(H, W, 3)` uint8, the input frame)."""
        self.store(result, name, time_s, self.pictures(result, image))

    def pictures(self, result: FrameResult, image: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The frame's overlay and side view (None without rendering); drawn in the
        calling thread, which holds the process's GL context."""
        if not self.render:
            return None
        t0 = time.perf_counter()
        drawn = self._overlay(result, image), self._side_view(result)
        self.timings["rendering"] += time.perf_counter() - t0
        return drawn

    def store(self, result: FrameResult, name: str, time_s: float, pictures) -> None:
        """Encode and write one frame's files (``pictures`` from :meth:`pictures`); its
        ``.npz`` last. Thread-safe against :meth:`pictures` (no GL here)."""
        t0 = time.perf_counter()
        if pictures is not None:
            for kind, picture in zip(("overlay", "side"), pictures):
                _save_jpeg(self.out / kind / f"{name}.jpg", picture)
                if self._videos is not None:
                    self._stream(kind, picture)
        if result.hands:
            write_meshes(self.out / "meshes" / f"{name}.glb",
                         {side: (h.vertices, self.faces[side], COLOURS[side]) for side, h in result.hands.items()})
        record = frame_record(result, name, time_s, self.hand_model)
        write_params(self.out / "frames" / f"{name}.json", record, compact=True)
        write_params(self.out / "frames" / f"{name}.npz", record)  # last: marks the frame complete
        self.timings["writing"] += time.perf_counter() - t0

    def _stream(self, kind: str, picture: np.ndarray) -> None:
        from .media import VideoWriter

        video = self._videos.get(kind)
        if video is None:
            video = self._videos[kind] = VideoWriter(self.out / f"{kind}.mp4", self._fps, picture.shape[1::-1])
        if picture.shape[1::-1] != video.size:
            picture = np.asarray(Image.fromarray(picture).resize(video.size))
        video.write(picture)

    def abort_videos(self) -> None:
        """Drop the videos being streamed (a run that stopped): no partial file is left."""
        for video in (self._videos or {}).values():
            video.abort()
        self._videos = None

    def videos(self, names: list[str], fps: float) -> list[str]:
        """Finish ``overlay.mp4`` and ``side.mp4``: the streamed ones when they hold every
        frame of ``names``, else assembled from the frames' pictures (a resumed run)."""
        from .media import VideoWriter

        streamed = self._videos or {}
        if len(streamed) == 2 and all(v.frames_written == len(names) for v in streamed.values()):
            for video in streamed.values():
                video.close()
            self._videos = None
            return ["overlay.mp4", "side.mp4"]
        self.abort_videos()
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


class BackgroundWriter:
    """A :class:`RunOutputs` whose encoding and writing (:meth:`RunOutputs.store`) run on
    one worker thread, in order, behind a queue of ``depth`` frames; the pictures are drawn
    in the caller's thread (GL contexts belong to one thread), and :meth:`write` blocks
    only while the queue is full. An error raised by the worker (a full disk, an interrupt
    in a test) is raised again by the next :meth:`write` or by :meth:`close`; the frames
    queued after it are dropped (a frame's files are complete or absent, so ``--resume``
    redoes them). ``waited`` is the time the caller spent blocked."""

    def __init__(self, writer, depth: int = 4):
        self.writer, self.waited = writer, 0.0
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="fourdhands-writer", daemon=True)
        self._thread.start()

    def write(self, result: FrameResult, name: str, time_s: float, image: np.ndarray) -> None:
        """:meth:`RunOutputs.write`, its files written in the background."""
        self._raise()
        pictures = self.writer.pictures(result, image)
        t0 = time.perf_counter()
        self._queue.put((result, name, time_s, pictures))
        self.waited += time.perf_counter() - t0

    def close(self, raise_errors: bool = True) -> None:
        """Wait for the queued frames to be written and stop the worker (again: no-op)."""
        if self._thread.is_alive():
            t0 = time.perf_counter()
            self._queue.put(None)
            self._thread.join()
            self.waited += time.perf_counter() - t0
        if raise_errors:
            self._raise()

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self.writer.store(*item)
                except BaseException as e:  # raised again in the caller's thread
                    self._error = e

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error


def _save_jpeg(path: Path, image: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="JPEG", quality=90)
