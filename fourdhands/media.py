"""Frames in and video out: reading an image, a folder of images or a video as a stream
of RGB frames, and writing RGB frames to a video file.

Every frame is an ``(H, W, 3)`` uint8 RGB array, C-contiguous and writable, upright
(EXIF orientation for images, the display-matrix rotation for videos). Frames are
decoded one at a time, so memory does not grow with the length of the input.

Decisions a caller may need to know:

* Alpha (RGBA, LA, PA, P or L with a transparent colour) is composited over black.
* 16- and 32-bit integer greyscale (``I;16``, ``I;16B``, ``I;16L``, ``I``) is scaled by
  the fixed full range 0..65535 -> 0..255 (values outside are clipped), not by each
  image's own range: frames of a sequence keep their relative brightness instead of
  flickering, at the cost of 12-bit data stored in 16 bits looking dark.
* PIL's decompression-bomb limit is raised process-wide at import, so photos up to
  200 Mpx open (PIL only warns above ``MAX_IMAGE_PIXELS`` and refuses above twice it);
  larger images are a ``UserError``.
* A video whose container gives no frame rate is read as 30 fps.
* Written videos are H.264 (``libx264``, crf 20, preset veryfast: a quarter less encoding
  time than the default for about the same size, yuv420p) when PyAV's FFmpeg has it,
  else MPEG-4 Part 2; MP4/MOV get their index at the front (``movflags=faststart``).
  yuv420p needs even sides, so an odd width or height gets one black column or row on
  the right or bottom: the file is that much bigger than ``size``.
"""

from __future__ import annotations

import math
import os
import re
import struct
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator
from weakref import WeakSet

import av
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import UserError
from .io import atomic_path

IMAGE_EXTENSIONS = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".avi", ".m4v", ".mkv", ".mov", ".mp4", ".webm")

MAX_IMAGE_PIXELS = 200_000_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS // 2

DEFAULT_FPS = 30.0

# Pillow reports broken files with more than OSError: PNG chunk errors are SyntaxError,
# some TIFF and EXIF damage surfaces as struct.error, EOFError or ValueError.
_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error)
_VIDEO_ERRORS = (av.error.FFmpegError, OSError)

_EXIF_IFD = 0x8769
_FOCAL_LENGTH = 0x920A
_FOCAL_35MM = 0xA405
_FOCAL_PLANE_X_RES = 0xA20E
_FOCAL_PLANE_UNIT = 0xA210
_PIXEL_X_DIMENSION = 0xA002
_MM_PER_UNIT = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}  # EXIF FocalPlaneResolutionUnit codes


@dataclass(frozen=True, eq=False)  # eq would compare arrays element-wise
class Frame:
    """One decoded frame.

    Attributes:
        index: 0-based position in the source.
        image: ``(H, W, 3)`` uint8 RGB, C-contiguous, writable, upright.
        time: seconds from the start: the frame's timestamp for video (``index / fps``
            when it has none); ``index`` for images and folders, which have no rate.
        name: the file stem for an image or folder entry, ``frame_{index:06d}`` for video.
    """

    index: int
    image: np.ndarray
    time: float
    name: str


class FrameSource:
    """An opened input: its description, and its frames on demand.

    Attributes:
        path: the input as given.
        kind: ``"image"``, ``"folder"`` or ``"video"``.
        fps: a video's average frame rate; ``None`` for images and folders.
        count: the number of frames; for video the container's figure (estimated from
            its duration when it has none, ``None`` when it has neither) may be off.
        size: ``(W, H)`` of the first frame, upright. Folder entries may differ in size.
        focal: focal length in pixels from the (first) image's EXIF, see
            :func:`exif_focal`; ``None`` for video or without EXIF.
        skipped: the messages of files passed over so far (a folder opened with
            ``skip_unreadable``); empty otherwise.

    Use as a context manager, or call :meth:`close`, which also ends any unfinished
    iteration (closing its video file). Made by :func:`open_source`; ``read(start)``
    makes the iterator behind :meth:`frames`.
    """

    def __init__(self, path: Path, kind: str, *, fps: float | None, count: int | None,
                 size: tuple[int, int], focal: float | None,
                 read: Callable[[int], Iterator[Frame]]):
        self.path, self.kind, self.fps, self.count = path, kind, fps, count
        self.size, self.focal = size, focal
        self._read = read
        self._iterations: WeakSet = WeakSet()
        self._closed = False
        self.skipped: list[str] = []  # messages of the files passed over (skip_unreadable)

    def frames(self, start: int = 0) -> Iterator[Frame]:
        """Frames with ``index >= start`` in order, decoded lazily.

        A video seeks to the keyframe at or before ``start`` and decodes forward from
        there (exact for constant frame rate; it decodes from the beginning when the
        container cannot seek there). A frame that fails to decode ends the iteration
        with a ``UserError`` naming its index, after the frames before it. Each call
        is independent (a video opens its own file handle).
        """
        if self._closed:
            raise ValueError(f"{self.path}: frame source is closed")
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        iteration = self._read(start)
        self._iterations.add(iteration)
        return iteration

    def __iter__(self) -> Iterator[Frame]:
        return self.frames(0)

    def close(self) -> None:
        self._closed = True
        for iteration in list(self._iterations):
            iteration.close()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"FrameSource({str(self.path)!r}, kind={self.kind!r}, size={self.size}, "
                f"count={self.count}, fps={self.fps}, focal={self.focal})")


def open_source(path: str | os.PathLike, skip_unreadable: bool = False) -> FrameSource:
    """Open an image, a folder of images or a video (chosen by what ``path`` is).

    The first frame is decoded here, so a missing, unsupported, unreadable or empty
    input fails now with a one-line ``UserError`` rather than on iteration. With
    ``skip_unreadable``, a folder's images that cannot be read are passed over instead of
    ending the iteration: each one's message is appended to the source's ``skipped``
    (and a folder with no readable image is still an error).
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_dir():
        return _open_folder(path, skip_unreadable)
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return _open_image(path)
    if suffix in VIDEO_EXTENSIONS:
        return _open_video(path)
    raise UserError(f"{path}: unsupported file type {suffix or '(no extension)'} (images: "
                    f"{' '.join(IMAGE_EXTENSIONS)}; videos: {' '.join(VIDEO_EXTENSIONS)})")


# ---------------------------------------------------------------------------- images

def to_rgb8(image: Image.Image) -> np.ndarray:
    """Pixels of a PIL image of any mode as ``(H, W, 3)`` uint8 RGB (C-contiguous, writable).

    Alpha is composited over black; integer greyscale is scaled by 0..65535 -> 0..255
    (see the module docstring); every other mode goes through Pillow's ``convert("RGB")``.
    """
    if image.mode == "I" or image.mode.startswith("I;16"):
        grey = np.clip(np.asarray(image), 0, 65535).astype(np.uint32)
        grey8 = ((grey * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(grey8[:, :, None], 3, axis=2)
    if "A" in image.getbands() or "a" in image.getbands() or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA")).astype(np.uint16)
        rgb = (rgba[:, :, :3] * rgba[:, :, 3:] + 127) // 255
        return np.ascontiguousarray(rgb, dtype=np.uint8)
    return np.array(image.convert("RGB"), dtype=np.uint8, order="C")


def exif_focal(image: Image.Image, size: tuple[int, int]) -> float | None:
    """Focal length in pixels from EXIF, or ``None`` when EXIF cannot tell.

    ``size`` is ``(W, H)`` of the upright image. In order of preference:

    * ``FocalLengthIn35mmFilm`` = f35: ``f35 / 36 * max(W, H)``, i.e. the long side
      stands for the 36 mm side of the 35 mm frame (exact for 3:2 sensors; the
      standard's diagonal-based definition differs by a few % for 4:3);
    * ``FocalLength`` = f mm with ``FocalPlaneXResolution`` = r pixels per unit and
      ``FocalPlaneResolutionUnit`` (inch when absent): ``f * r / mm_per_unit``, scaled by
      ``stored width / PixelXDimension`` when the image was resized after capture.
    """
    try:
        exif = image.getexif()
        tags = {**exif, **exif.get_ifd(_EXIF_IFD)}
        f35 = float(tags.get(_FOCAL_35MM) or 0)
        if f35 > 0:
            focal = f35 / 36.0 * max(size)
        else:
            f_mm = float(tags.get(_FOCAL_LENGTH) or 0)
            x_res = float(tags.get(_FOCAL_PLANE_X_RES) or 0)
            mm_per_unit = _MM_PER_UNIT.get(tags.get(_FOCAL_PLANE_UNIT, 2))
            if not (f_mm > 0 and x_res > 0 and mm_per_unit):
                return None
            exif_width = float(tags.get(_PIXEL_X_DIMENSION) or 0)
            resized = image.width / exif_width if exif_width > 0 else 1.0
            focal = f_mm * x_res / mm_per_unit * resized
    except (TypeError, ValueError, ZeroDivisionError, struct.error):
        return None  # unusable EXIF means no focal length, not an unreadable image
    return focal if math.isfinite(focal) and focal > 0 else None


def _read_image(path: Path) -> tuple[np.ndarray, float | None]:
    """Decode one image file fully and upright; return its pixels and EXIF focal length."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()  # decode now, so truncated data raises here, not half an image later
                upright = ImageOps.exif_transpose(image)
                return to_rgb8(upright), exif_focal(image, upright.size)
    except Image.DecompressionBombError:
        raise UserError(f"{path}: image too large (over {MAX_IMAGE_PIXELS // 1_000_000} Mpx)") from None
    except UnidentifiedImageError:
        raise UserError(f"{path}: not a readable image (unknown or corrupt format)") from None
    except _IMAGE_ERRORS as e:
        raise UserError(f"{path}: not a readable image ({_first_line(e)})") from None


def _open_image(path: Path) -> FrameSource:
    image, focal = _read_image(path)
    height, width = image.shape[:2]

    def read(start: int) -> Iterator[Frame]:
        if start == 0:
            yield Frame(0, _read_image(path)[0], 0.0, path.stem)

    return FrameSource(path, "image", fps=None, count=1, size=(width, height), focal=focal,
                       read=read)


def _natural_key(name: str) -> tuple:
    """Sort key that orders digit runs by value: frame2 before frame10."""
    parts = re.split(r"(\d+)", name.casefold())
    return [int(p) if i % 2 else p for i, p in enumerate(parts)], name


def folder_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` in natural name order; hidden files are skipped."""
    try:
        entries = list(folder.iterdir())
    except OSError as e:
        raise UserError(f"{folder}: cannot list folder ({e.strerror})") from None
    images = [p for p in entries if p.suffix.lower() in IMAGE_EXTENSIONS
              and not p.name.startswith(".") and p.is_file()]
    return sorted(images, key=lambda p: _natural_key(p.name))


def _open_folder(folder: Path, skip_unreadable: bool = False) -> FrameSource:
    files = folder_images(folder)
    if not files:
        raise UserError(f"{folder}: no images in folder (looking for {' '.join(IMAGE_EXTENSIONS)})")
    skipped: list[str] = []
    first = None
    for path in files:  # the first readable image gives the size and focal
        try:
            first, focal = _read_image(path)
            break
        except UserError as e:
            if not skip_unreadable:
                raise
            last = e
    if first is None:
        raise UserError(f"{folder}: no readable image in folder (the last: {last})")
    height, width = first.shape[:2]

    def read(start: int) -> Iterator[Frame]:
        for index in range(start, len(files)):
            try:
                image = _read_image(files[index])[0]
            except UserError as e:
                if not skip_unreadable:
                    raise
                if str(e) not in skipped:
                    skipped.append(str(e))
                continue
            yield Frame(index, image, float(index), files[index].stem)

    source = FrameSource(folder, "folder", fps=None, count=len(files), size=(width, height), focal=focal, read=read)
    source.skipped = skipped
    return source


# ---------------------------------------------------------------------------- video

def _open_container(path: Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path), mode="r")
    except _VIDEO_ERRORS as e:
        raise UserError(f"{path}: not a readable video ({_first_line(e)})") from None
    if not container.streams.video:
        container.close()
        raise UserError(f"{path}: no video frames (the file has no video stream)")
    return container


def _stream_rate(stream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate and float(rate) > 0:
            return float(rate)
    return DEFAULT_FPS


def _stream_count(container, stream, fps: float) -> int | None:
    if stream.frames > 0:
        return stream.frames
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration:
        seconds = container.duration / av.time_base
    else:
        return None
    return round(seconds * fps)


def _upright(frame: av.VideoFrame) -> np.ndarray:
    image = frame.to_ndarray(format="rgb24")
    # av >= 13 reports the display matrix as a counter-clockwise angle; flips in the
    # matrix are not exposed and are ignored.
    quarter_turns = round(getattr(frame, "rotation", 0) / 90) % 4
    if quarter_turns:
        image = np.rot90(image, quarter_turns)
    return np.ascontiguousarray(image)


class _CutPacket(Exception):
    """A packet the demuxer could read only part of: the file was cut inside a frame."""


def _decode(container, stream) -> Iterator[av.VideoFrame]:
    """Decoded frames of ``stream`` in presentation order.

    A packet that is only partly in the file ends the iteration with ``_CutPacket``
    after the frames before it: with frame threading the decoder drops the error and
    would end quietly, as if the video were complete.
    """
    for packet in container.demux(stream):
        if packet.is_corrupt:
            yield from stream.decode(None)
            raise _CutPacket("the file ends inside a frame")
        yield from stream.decode(packet)


def _video_frames(path: Path, start: int, fps: float) -> Iterator[Frame]:
    container = _open_container(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        origin = stream.start_time or 0
        index: int | None = 0  # None: not known until the first frame after a seek
        if start > 0:
            try:
                container.seek(origin + int(start / fps / stream.time_base), stream=stream,
                               backward=True)
                index = None
            except _VIDEO_ERRORS:
                pass  # not seekable: decode from the beginning and drop
        decoded = _decode(container, stream)
        while True:
            try:
                frame = next(decoded, None)
            except (*_VIDEO_ERRORS, _CutPacket) as e:
                at = start if index is None else index
                raise UserError(f"{path}: video is damaged or cut short: cannot decode frame "
                                f"{at} ({_first_line(e)})") from None
            if frame is None:
                return
            if index is None:
                index = (round(float((frame.pts - origin) * stream.time_base) * fps)
                         if frame.pts is not None else None)
                if index is None or index > start:
                    # No timestamp, or the seek landed past `start`: only decoding from
                    # the beginning finds the frame.
                    try:
                        container.seek(origin, stream=stream, backward=True)
                    except _VIDEO_ERRORS as e:
                        raise UserError(f"{path}: cannot seek to frame {start} "
                                        f"({_first_line(e)})") from None
                    decoded, index = _decode(container, stream), 0
                    continue
            if index >= start:
                time = (float((frame.pts - origin) * stream.time_base)
                        if frame.pts is not None else index / fps)
                yield Frame(index, _upright(frame), time, f"frame_{index:06d}")
            index += 1
    finally:
        container.close()


def _open_video(path: Path) -> FrameSource:
    container = _open_container(path)
    with container:
        stream = container.streams.video[0]
        fps = _stream_rate(stream)
        count = _stream_count(container, stream, fps)
    probe = _video_frames(path, 0, fps)
    try:
        first = next(probe, None)
    finally:
        probe.close()
    if first is None:
        raise UserError(f"{path}: no video frames")
    height, width = first.image.shape[:2]
    return FrameSource(path, "video", fps=fps, count=count, size=(width, height), focal=None,
                       read=lambda start: _video_frames(path, start, fps))


class _Aborted(Exception):
    """Tells atomic_path that the body failed, so it deletes its temporary file."""


class VideoWriter:
    """Encode RGB frames into a video file that appears under its name only when complete.

    Frames go to a temporary file beside ``path`` (same extension, so FFmpeg picks the
    container from it); :meth:`close` finishes it and renames it to ``path``,
    :meth:`abort` deletes it. As a context manager it closes on success and aborts on
    an exception. ``size`` is ``(W, H)``; odd sides are padded to even with black (see
    the module docstring).
    """

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int]):
        self.path = Path(path)
        width, height = size
        if width < 1 or height < 1:
            raise ValueError(f"video size must be positive, got {size}")
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be positive, got {fps}")
        if not self.path.parent.is_dir():
            raise UserError(f"{self.path}: folder {self.path.parent} does not exist")
        self.size = (width, height)
        self.frames_written = 0
        self._canvas = np.zeros((height + height % 2, width + width % 2, 3), np.uint8)
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        self._container = None
        try:
            faststart = self.path.suffix.lower() in (".mp4", ".m4v", ".mov")
            self._container = av.open(str(tmp), mode="w",
                                      options={"movflags": "faststart"} if faststart else {})
            h264 = "libx264" in av.codecs_available
            self._stream = self._container.add_stream(
                "libx264" if h264 else "mpeg4", rate=Fraction(fps).limit_denominator(1001),
                options={"crf": "20", "preset": "veryfast"} if h264 else {})
            self._stream.width, self._stream.height = self._canvas.shape[1], self._canvas.shape[0]
            self._stream.pix_fmt = "yuv420p"
            if not h264:  # mpeg4's default 200 kb/s smears everything; ~0.25 bit per pixel is clean
                self._stream.bit_rate = max(1_000_000, int(self._canvas[:, :, 0].size * fps / 4))
            self._container.start_encoding()  # the header now: a video of no frames is still valid
        except (*_VIDEO_ERRORS, ValueError) as e:
            self.abort()
            raise UserError(f"{self.path}: cannot write video ({_first_line(e)})") from None

    def write(self, image: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` uint8 RGB frame of exactly ``size``."""
        if self._container is None:
            raise ValueError(f"{self.path}: video writer is closed")
        width, height = self.size
        if image.shape != (height, width, 3) or image.dtype != np.uint8:
            raise ValueError(f"frame must be ({height}, {width}, 3) uint8, "
                             f"got {image.shape} {image.dtype}")
        self._canvas[:height, :width] = image
        frame = av.VideoFrame.from_ndarray(self._canvas, format="rgb24")
        frame.pts = self.frames_written
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder, finish the file and rename it to ``path``. Idempotent."""
        if self._container is None:
            return
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
        except BaseException:
            self.abort()
            raise
        self._container = None
        atomic, self._atomic = self._atomic, None
        atomic.__exit__(None, None, None)

    def abort(self) -> None:
        """Stop writing and delete the temporary file; ``path`` is left untouched."""
        container, self._container = self._container, None
        if container is not None:
            try:
                container.close()
            except _VIDEO_ERRORS:
                pass  # the file is being thrown away
        if self._atomic is not None:
            atomic, self._atomic = self._atomic, None
            atomic.__exit__(_Aborted, _Aborted(), None)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
