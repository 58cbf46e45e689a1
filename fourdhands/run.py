"""``fourdhands run INPUT -o OUT``: images, folders and videos to both hands in 4D.

Four steps: *open* (:func:`open_run`: the input, the network, the detector and the output
folder), then for each frame *detect* (:mod:`fourdhands.detect`: MediaPipe with left/right
tracking, or a boxes file whose sides are given), *reconstruct*
(:class:`~fourdhands.pipeline.Reconstructor`) and *write*
(:class:`~fourdhands.outputs.RunOutputs`, on a background thread), held by
:class:`RunState`. The summary times decode, detection, crops, backbone, fusion,
rendering and writing (writing on the writer's thread, beside the network) and
``writer_wait``, the time the network waited for the writer.

A video or a folder is one sequence: tracking and temporal windows run through it. A
single image, or a folder with ``independent=True``, is a set of unrelated pictures: each
is detected on its own and reconstructed as a single frame.

Everything the user can get wrong is checked before anything is written (input readable,
checkpoint and hand model valid, boxes file well formed), and reported as one line.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import UserError
from .io import ensure_output_dir, write_json
from .outputs import BackgroundWriter

SHIPPED_CHECKPOINT = Path(__file__).parent / "checkpoints" / "mediapipe_full"
#: timed stages; "writing" runs on the writer's thread beside the others, "writer_wait" is
#: the time the run spent waiting for it
STAGES = ("decode", "detection", "crops", "backbone", "fusion", "rendering", "writing", "writer_wait")


@dataclass
class RunSettings:
    """Options of ``fourdhands run`` (the command line's flags)."""

    ckpt: str | None = None  # default: the shipped checkpoint
    hand_model: str | None = None  # default: the checkpoint's (the open hand model)
    focal: float | None = None  # pixels; default EXIF, then geometry.camera.field_of_view_focal
    principal_point: tuple[float, float] | None = None  # pixels; default the image centre
    boxes: str | None = None  # a boxes file instead of the detector
    device: str = "cpu"
    render: bool = True
    resume: bool = False
    translation: str = "crop"
    gap: int | None = None  # default: the checkpoint's training gap
    independent: bool = False  # a folder of unrelated images: an unreadable one is skipped, with a warning
    progress: bool = True
    detector_options: dict = field(default_factory=dict)
    refine: bool = False  # clip-level optimisation after the network (sequences)
    smooth: bool = False  # the online One-Euro filter (sequences)
    animation: bool = True  # a sequence's animated glTF, animation.glb


def load_network(ckpt: str | None, hand_model: str | None, device: str):
    """The network of ``ckpt`` (default the shipped one) on ``device``, its hand model
    replaced by ``hand_model`` when given; and the checkpoint's training gap."""
    import torch

    from .checkpoint import load_checkpoint, trained_gap
    from .hands import load_hand_model

    folder = Path(ckpt) if ckpt else SHIPPED_CHECKPOINT
    if not folder.exists():
        raise UserError(f"{folder}: no such checkpoint" + ("" if ckpt else " (the shipped model is missing from this install)"))
    if device != "cpu" and not (device.startswith("cuda") and torch.cuda.is_available()):
        raise UserError(f"--device {device}: not available here (use cpu)")
    net = load_checkpoint(folder, device=device)
    if hand_model:
        net.right_model = load_hand_model(hand_model, "right", device=device)
        net.left_model = load_hand_model(hand_model, "left", device=device)
    return net, trained_gap(folder)


@dataclass
class OpenedRun:
    """Step 1, *open*: everything a run works with, each checked before anything is written."""

    source: object  # a fourdhands.media source (image, folder or video)
    net: object  # the FourDHands network
    trained_gap: int
    detector: object  # a fourdhands.detect.Detector
    writer: object  # fourdhands.outputs.RunOutputs
    done: set  # frame names an earlier run wrote (resume)
    sequence: bool  # one sequence (video, folder) rather than unrelated images
    focal: float


def open_run(input_path: str | Path, out: str | Path, s: RunSettings) -> OpenedRun:
    """Open the input, the network and the detector, then the output folder; UserError
    (and nothing written) for any of the user's mistakes."""
    import torch

    from .detect import make_detector
    from .geometry.camera import field_of_view_focal
    from .media import open_source
    from .outputs import RunOutputs

    source = open_source(input_path, skip_unreadable=s.independent)
    if (s.refine or s.smooth) and not (source.kind == "video" or (source.kind == "folder" and not s.independent)):
        print("note: --refine / --smooth act on a sequence; unrelated images are left as the network gives them",
              file=sys.stderr)
    try:
        net, trained_gap = load_network(s.ckpt, s.hand_model, s.device)
        sequence = source.kind == "video" or (source.kind == "folder" and not s.independent)
        detector = (make_detector("boxes", path=s.boxes) if s.boxes else
                    make_detector("mediapipe", mode="video" if sequence else "image", **s.detector_options))
        out = Path(out)
        if not s.resume and (out / "frames").is_dir() and any((out / "frames").iterdir()):
            raise UserError(f"{out}: already holds results (use --resume to continue, or another folder)")
        ensure_output_dir(out)
    except BaseException:
        source.close()
        raise
    faces = {side: model.faces.cpu().numpy() for side, model in (("right", net.right_model), ("left", net.left_model))}
    writer = RunOutputs(out, faces, net.right_model.name, render=s.render)
    if source.kind == "video" and not s.resume:
        writer.stream_videos(source.fps)
    focal = s.focal if s.focal is not None else source.focal
    if focal is None:
        focal = float(field_of_view_focal(torch.tensor(source.size, dtype=torch.float64)))
    return OpenedRun(source, net, trained_gap, detector, writer, writer.done() if s.resume else set(), sequence,
                     float(focal))


class RunState:
    """Steps 2-4 for one frame at a time: *detect* (and track), *reconstruct*, *write*.

    A sequence has one reconstructor whose frame 0 is input 0; unrelated images get one
    each, whose frame 0 is that image (``offset``). Frames wait in ``images`` until their
    result is written."""

    def __init__(self, opened: OpenedRun, settings: RunSettings):
        from .detect import HandTracker

        self.o, self.s = opened, settings
        self.names: list[str] = []
        self.times: list[float] = []
        self.images: dict[int, np.ndarray] = {}
        self.timings = dict.fromkeys(STAGES, 0.0)
        self.counts = {"frames": 0, "written": 0, "skipped_done": 0, "right": 0, "left": 0, "both": 0, "none": 0}
        self.tracker = HandTracker()
        self.dropped = 0
        self.offset = 0
        self.recon = self._reconstructor(0) if opened.sequence else None
        self.sink = BackgroundWriter(opened.writer)
        self.temporal = None
        if opened.sequence and (settings.refine or settings.smooth):
            from .temporal_stage import TemporalStage

            self.temporal = TemporalStage(opened.net, settings.refine, settings.smooth, opened.source.fps)

    def _reconstructor(self, base: int):
        """A reconstructor whose frame 0 is input ``base``."""
        from .pipeline import Reconstructor

        gap = self.s.gap if self.s.gap is not None else self.o.trained_gap
        names, done = self.names, self.o.done
        return Reconstructor(self.o.net, gap=gap if self.o.sequence else 1, translation=self.s.translation,
                             needed=lambda i: base + i >= len(names) or names[base + i] not in done)

    def detect(self, frame):
        """Step 2: the ``(right, left)`` detections of ``frame`` (None where a hand is not found)."""
        from .detect import HandTracker, by_side

        t0 = time.perf_counter()
        detector = self.o.detector
        if not self.o.sequence:
            detector.reset()
            self.tracker = HandTracker()
        found = detector.detect(frame.image, frame.name)
        if detector.sides_known:
            hands = by_side(found)
        else:
            before = self.tracker.dropped
            hands = self.tracker.update(found)
            self.dropped += self.tracker.dropped - before
        self.timings["detection"] += time.perf_counter() - t0
        return hands

    def reconstruct(self, frame, hands) -> list:
        """Step 3: push ``frame`` and its hands; the results that are now complete."""
        from .pipeline import TrackedHand

        self.names.append(frame.name)
        self.times.append(frame.time)
        self.counts["frames"] += 1
        if frame.name in self.o.done:
            self.counts["skipped_done"] += 1
        index = len(self.names) - 1
        self.images[index] = frame.image
        if not self.o.sequence:
            self.offset = index
            self.recon = self._reconstructor(index)
        tracked = tuple(TrackedHand(d.box, d.score, d.landmarks) if d is not None else None for d in hands)
        if self.temporal is not None:
            self.temporal.landmarks(index, tracked)
        results = list(self.recon.push(frame.image, tracked, self.o.focal, self.s.principal_point))
        if not self.o.sequence:
            results += self.finish()
        return self.temporal.push(results) if self.temporal is not None else results

    def finish(self) -> list:
        """The reconstructor's last results (the end of a sequence or of one image)."""
        results = list(self.recon.finish())
        _add(self.timings, self.recon.timings)
        if self.temporal is not None:
            results = self.temporal.push(results) + self.temporal.finish()
        return results

    def write(self, results) -> None:
        """Step 4: hand each result with its frame to the background writer; let go of
        frames no longer needed (the writer holds its own references)."""
        for r in results:
            if r is None:
                continue
            index = r.index + self.offset
            self.counts["written"] += 1
            present = set(r.hands)
            self.counts["both" if len(present) == 2 else (present.pop() if present else "none")] += 1
            self.sink.write(r, self.names[index], self.times[index], self.images[index])
        kept_from = self.recon.next_out + self.offset
        if self.temporal is not None:  # frames held back by refinement are still to be written
            kept_from = min(kept_from, self.temporal.released)
        for i in [i for i in self.images if i < kept_from]:
            del self.images[i]


def run(input_path: str | Path, out: str | Path, settings: RunSettings | None = None,
        final_out: str | Path | None = None) -> dict:
    """Run the whole pipeline (open, then detect, reconstruct and write frame by frame);
    returns (and writes) the summary. ``final_out``: the folder ``out`` will be renamed to
    when the caller writes into a scratch folder first (the summary's ``output``)."""
    s = settings or RunSettings()
    started = time.perf_counter()
    opened = open_run(input_path, out, s)
    state = RunState(opened, s)
    bar = _progress(opened.source, s.progress)
    try:
        for frame in _decoded(opened.source, state.timings):
            state.write(state.reconstruct(frame, state.detect(frame)))
            if bar is not None:
                bar.update(1)
        if opened.sequence:
            state.write(state.finish())
        state.sink.close()
    except KeyboardInterrupt:
        state.sink.close(raise_errors=False)  # what was queued is written
        opened.writer.abort_videos()
        written = len(opened.writer.done())
        raise UserError(f"{out}: interrupted after {written} frames; run again with --resume to continue") from None
    except BaseException:
        state.sink.close(raise_errors=False)
        opened.writer.abort_videos()
        raise
    finally:
        state.sink.close(raise_errors=False)
        if bar is not None:
            bar.close()
        opened.source.close()
    if state.counts["frames"] == 0:
        raise UserError(f"{input_path}: no frames")
    t0 = time.perf_counter()
    videos = opened.writer.videos(state.names, opened.source.fps) if opened.source.kind == "video" and s.render else []
    if opened.sequence and s.animation:
        _animation(Path(out), state.names, opened.net, opened.source.fps)
    _add(state.timings, opened.writer.timings)
    # what writing cost the run: waiting for the queue, then for the last frames and the videos
    state.timings["writer_wait"] = state.sink.waited + time.perf_counter() - t0
    summary = _summary(input_path, final_out or out, s, opened, state, videos, time.perf_counter() - started)
    write_json(Path(out) / "summary.json", summary)
    return summary


def _animation(out: Path, names: list[str], net, fps: float | None) -> None:
    """``animation.glb``: the sequence's written frames as one animated glTF (frames read
    back from ``frames/*.npz``, so a resumed run's earlier frames are in it too)."""
    from .export import read_params
    from .gltf_animation import write_animation

    frames = []
    for name in names:
        path = out / "frames" / f"{name}.npz"
        record = read_params(path) if path.is_file() else {}
        frames.append({side: record[side] for side in ("right", "left") if side in record})
    if any(frames):
        write_animation(out / "animation.glb", frames, {"right": net.right_model, "left": net.left_model},
                        fps or 30.0)


def _decoded(source, timings: dict):
    """The source's frames, the time spent decoding them added to ``timings["decode"]``;
    a warning on stderr for each file the source passes over."""
    frames = iter(source)
    warned = 0
    while True:
        t0 = time.perf_counter()
        frame = next(frames, None)
        timings["decode"] += time.perf_counter() - t0
        for message in source.skipped[warned:]:
            print(f"warning: {message}; skipped", file=sys.stderr)
        warned = len(source.skipped)
        if frame is None:
            return
        yield frame


def _summary(input_path, out, s: RunSettings, o: OpenedRun, state: RunState, videos: list, total: float) -> dict:
    c, recon = state.counts, state.recon
    return {
        "input": str(input_path), "kind": o.source.kind, "output": str(out),
        "frames": c["frames"], "frames_written": c["written"], "frames_already_done": c["skipped_done"],
        "frames_with_both_hands": c["both"], "frames_with_right_only": c["right"],
        "frames_with_left_only": c["left"], "frames_without_hands": c["none"],
        "extra_hands_dropped": state.dropped, "files_skipped": len(o.source.skipped),
        "temporal": state.temporal.summary() if state.temporal is not None else None,
        "animation": "animation.glb" if (Path(out) / "animation.glb").is_file() else None,
        "skipped": list(o.source.skipped),
        "detector": "boxes file" if s.boxes else "mediapipe",
        "checkpoint": str(Path(s.ckpt) if s.ckpt else SHIPPED_CHECKPOINT),
        "hand_model": o.net.right_model.name, "flat_hand_mean": True,
        "translation": s.translation, "window": recon.window if recon else 1,
        "gap": recon.gap if recon else 1,
        "focal": o.focal,
        "focal_source": "--focal" if s.focal is not None else ("EXIF" if o.source.focal else "53 deg diagonal field of view"),
        "fps": o.source.fps, "videos": videos, "seconds": round(total, 3),
        "seconds_per_stage": {k: round(v, 3) for k, v in state.timings.items()},
        "frames_per_second": round(c["frames"] / total, 3) if total else None,
    }


def _add(into: dict, more: dict) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0.0) + v
    more.update(dict.fromkeys(more, 0.0))


def _progress(source, enabled: bool):
    if not enabled:
        return None
    from .progress import progress_bar

    return progress_bar(total=source.count, unit="frame", desc=source.path.name)
