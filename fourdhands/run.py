"""``fourdhands run INPUT -o OUT``: images, folders and videos to both hands in 4D.

The stages, each timed for the summary: decode (:mod:`fourdhands.media`), detection
(:mod:`fourdhands.detect`: MediaPipe, or boxes from a file), left/right tracking
(:class:`~fourdhands.detect.tracking.HandTracker`), crops + backbone + fusion
(:class:`~fourdhands.pipeline.Reconstructor`), rendering and writing
(:class:`~fourdhands.outputs.RunOutputs`).

A video or a folder is one sequence: tracking and temporal windows run through it. A
single image, or a folder with ``independent=True``, is a set of unrelated pictures: each
is detected on its own and reconstructed as a single frame.

Everything the user can get wrong is checked before anything is written (input readable,
checkpoint and hand model valid, boxes file well formed), and reported as one line.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import UserError
from .io import ensure_output_dir, write_json

SHIPPED_CHECKPOINT = Path(__file__).parent / "checkpoints" / "mediapipe_full"
STAGES = ("decode", "detection", "crops", "backbone", "fusion", "rendering", "writing")


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
    independent: bool = False  # a folder of unrelated images
    progress: bool = True
    detector_options: dict = field(default_factory=dict)


def load_network(ckpt: str | None, hand_model: str | None, device: str):
    """The network of ``ckpt`` (default the shipped one) on ``device``, its hand model
    replaced by ``hand_model`` when given; and the checkpoint's training gap."""
    import torch

    from .checkpoint import load_checkpoint, read_config
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
    gap = read_config(folder).get("train", {}).get("sample", {}).get("gap", 5)
    return net, int(gap)


def _detector(settings: RunSettings, kind: str):
    if settings.boxes:
        from .detect.boxes_file import load_boxes

        return load_boxes(settings.boxes)
    from .detect.detector import make_detector

    mode = "video" if kind != "image" and not settings.independent else "image"
    return make_detector("mediapipe", mode=mode, **settings.detector_options)


def run(input_path: str | Path, out: str | Path, settings: RunSettings | None = None) -> dict:
    """Run the whole pipeline; returns (and writes) the summary."""
    from .detect.tracking import HandTracker
    from .media import open_source
    from .outputs import RunOutputs
    import torch

    from .geometry.camera import field_of_view_focal
    from .pipeline import Reconstructor, TrackedHand

    s = settings or RunSettings()
    started = time.perf_counter()
    source = open_source(input_path)
    net, trained_gap = load_network(s.ckpt, s.hand_model, s.device)
    detector = _detector(s, source.kind)
    out = Path(out)
    if not s.resume and (out / "frames").is_dir() and any((out / "frames").iterdir()):
        raise UserError(f"{out}: already holds results (use --resume to continue, or another folder)")
    ensure_output_dir(out)
    faces = {"right": net.right_model.faces.cpu().numpy(), "left": net.left_model.faces.cpu().numpy()}
    writer = RunOutputs(out, faces, net.right_model.name, render=s.render)
    done = writer.done() if s.resume else set()
    sequence = source.kind == "video" or (source.kind == "folder" and not s.independent)

    names: list[str] = []
    times: list[float] = []
    images: dict[int, np.ndarray] = {}  # frames waiting for their window (bounded)
    timings = dict.fromkeys(STAGES, 0.0)
    counts = {"frames": 0, "written": 0, "skipped_done": 0, "right": 0, "left": 0, "both": 0, "none": 0}
    focal = s.focal if s.focal is not None else source.focal
    if focal is None:
        focal = float(field_of_view_focal(torch.tensor(source.size, dtype=torch.float64)))
    tracker = HandTracker()
    dropped = 0

    def new_reconstructor(base: int):
        """``base``: the input index of the reconstructor's frame 0."""
        gap = s.gap if s.gap is not None else trained_gap
        return Reconstructor(net, gap=gap if sequence else 1, translation=s.translation,
                             needed=lambda i: base + i >= len(names) or names[base + i] not in done)

    recon = new_reconstructor(0) if sequence else None
    offset = 0  # index of the reconstructor's frame 0 (independent images restart it)

    def emit(results):
        for r in results:
            index = r.index + offset if r is not None else None
            if r is None:
                continue
            counts["written"] += 1
            present = set(r.hands)
            counts["both" if len(present) == 2 else (present.pop() if present else "none")] += 1
            writer.write(r, names[index], times[index], images[index])
        for i in [i for i in images if i < (recon.next_out + offset if recon else len(names))]:
            del images[i]

    bar = _progress(source, s.progress)
    frames = iter(source)
    try:
        while True:
            t0 = time.perf_counter()
            frame = next(frames, None)
            timings["decode"] += time.perf_counter() - t0
            if frame is None:
                break
            names.append(frame.name)
            times.append(frame.time)
            counts["frames"] += 1
            if not sequence:
                offset = len(names) - 1
                recon = new_reconstructor(offset)
            t0 = time.perf_counter()
            if s.boxes:  # the user's sides are taken as certain
                given = {d.handedness: d for d in detector.detections_for(frame.index, frame.name)}
                right, left = given.get("right"), given.get("left")
            else:
                if not sequence:
                    detector.reset()
                    tracker = HandTracker()
                right, left = tracker.update(detector.detect(frame.image))
                dropped = tracker.dropped if sequence else dropped + tracker.dropped
            timings["detection"] += time.perf_counter() - t0
            if frame.name in done:
                counts["skipped_done"] += 1
            images[len(names) - 1] = frame.image
            hands = tuple(TrackedHand(d.box, d.score, d.landmarks) if d is not None else None
                          for d in (right, left))
            emit(recon.push(frame.image, hands, focal, s.principal_point))
            if not sequence:
                emit(recon.finish())
                _add(timings, recon.timings)
            if bar is not None:
                bar.update(1)
        if sequence:
            emit(recon.finish())
            _add(timings, recon.timings)
    except KeyboardInterrupt:
        raise UserError(f"{out}: interrupted after {counts['written']} frames; run again with --resume "
                        "to continue") from None
    finally:
        if bar is not None:
            bar.close()
        source.close()
    if counts["frames"] == 0:
        raise UserError(f"{input_path}: no frames")
    t0 = time.perf_counter()
    videos = writer.videos(names, source.fps) if source.kind == "video" and s.render else []
    writer.timings["writing"] += time.perf_counter() - t0
    _add(timings, writer.timings)
    total = time.perf_counter() - started
    summary = {
        "input": str(input_path), "kind": source.kind, "output": str(out),
        "frames": counts["frames"], "frames_written": counts["written"],
        "frames_already_done": counts["skipped_done"],
        "frames_with_both_hands": counts["both"], "frames_with_right_only": counts["right"],
        "frames_with_left_only": counts["left"], "frames_without_hands": counts["none"],
        "extra_hands_dropped": dropped,
        "detector": "boxes file" if s.boxes else "mediapipe",
        "checkpoint": str(Path(s.ckpt) if s.ckpt else SHIPPED_CHECKPOINT),
        "hand_model": net.right_model.name, "flat_hand_mean": True,
        "translation": s.translation, "window": recon.window if recon else 1,
        "gap": recon.gap if recon else 1,
        "focal": focal, "focal_source": "--focal" if s.focal is not None else ("EXIF" if source.focal else "53 deg diagonal field of view"),
        "fps": source.fps, "videos": videos, "seconds": round(total, 3),
        "seconds_per_stage": {k: round(v, 3) for k, v in timings.items()},
        "frames_per_second": round(counts["frames"] / total, 3) if total else None,
    }
    write_json(out / "summary.json", summary)
    return summary


def _add(into: dict, more: dict) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0.0) + v
    more.update(dict.fromkeys(more, 0.0))


def _progress(source, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=source.count, unit="frame", desc=source.path.name, dynamic_ncols=True)
