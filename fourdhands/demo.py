"""``fourdhands demo``: the whole pipeline on a clip with known ground truth.

The package makes the clip itself, so the demo needs nothing but an install: a seeded
synthetic two-hand sequence (:mod:`fourdhands.synth`, split ``interacting``, 640x480,
30 fps) is written as ``OUT/input/clip.mp4`` with its ground truth
(``OUT/input/ground_truth.npz``) and its true hand boxes (``OUT/input/boxes.json``, the
format of ``--boxes``). Then ``fourdhands run`` reconstructs it into ``OUT/result/``
(overlay and side-view videos, per-frame parameters and meshes, ``summary.json``) with
the shipped checkpoint, and the result is scored against the ground truth
(``OUT/metrics.json``), with the protocols of ``fourdhands eval``.

Detection. MediaPipe finds most of this clip's hands (the right in 77 % of its frames, the
left in 71 %, for this build's engine), but its left/right labels are often wrong on it:
with the sides the tracker settles on, 40 % and 46 % are found as the right side. A hand
given the wrong side is reconstructed mirrored, so by default the reconstruction runs
from the clip's true boxes, which measures the network; MediaPipe, when installed, is
run over the clip as well and its recall against the true boxes is reported beside.
``detector="mediapipe"`` reconstructs from MediaPipe's tracked hands instead (the whole
pipeline as ``fourdhands run`` does it).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from .errors import UserError
from .io import atomic_folder, ensure_output_dir, write_json
from .sides import SIDES

SPLIT, SEED, FRAMES, SIZE, FPS = "interacting", 7, 48, (640, 480), 30.0


def make_clip(folder: Path) -> dict[str, np.ndarray]:
    """Write the demo clip, its ground truth and its boxes into ``folder`` (kept when
    already there); return the ground truth (see :mod:`fourdhands.synth.shards`)."""
    from .io import atomic_path
    from .media import VideoWriter
    from .synth.generate import generate
    from .synth.shards import SyntheticSequences

    folder.mkdir(parents=True, exist_ok=True)
    clip, truth = folder / "clip.mp4", folder / "ground_truth.npz"
    if clip.is_file() and truth.is_file():
        with np.load(truth) as z:
            return {k: z[k] for k in z.files}
    scratch = Path(tempfile.mkdtemp(prefix=".synth.", dir=folder))
    try:
        generate(scratch, sequences=1, frames=FRAMES, seed=SEED, split=SPLIT, image_size=SIZE, progress=False)
        seq = SyntheticSequences(scratch)[0]
        gt = dict(seq.gt)
        with VideoWriter(clip, FPS, SIZE) as video:
            for t in range(seq.num_frames):
                video.write(seq.frame(t))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    frames = {str(t): [{"box": gt["boxes"][t, h].tolist(), "hand": side, "score": 1.0,
                        "landmarks": gt["keypoints_2d"][t, h].tolist()}
                       for h, side in enumerate(SIDES) if gt["present"][t, h]]
              for t in range(len(gt["present"]))}
    write_json(folder / "boxes.json", {"frames": frames})
    with atomic_path(truth) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **gt)
    return gt


def score(result_dir: Path, gt: dict[str, np.ndarray]) -> dict:
    """Metrics of the run in ``result_dir`` against ``gt`` (the protocols of
    :mod:`fourdhands.evaluate`), on frames where a hand is both true and found; and how
    often each true hand was found."""
    import torch

    from .evaluate import split_metrics
    from .export import read_params
    from .geometry.rotations import axis_angle_to_matrix

    n = len(gt["present"])
    pred_kp = np.zeros((n, 2, 21, 3))
    pred_verts = np.zeros(gt["vertices"].shape)
    pred_v = np.zeros((n, 3))
    pred_orient = np.broadcast_to(np.eye(3), (n, 2, 3, 3)).copy()
    found = np.zeros((n, 2), bool)
    for t in range(n):
        record = read_params(result_dir / "frames" / f"frame_{t:06d}.npz")
        for h, side in enumerate(SIDES):
            if side in record:
                found[t, h] = True
                pred_kp[t, h] = record[side]["keypoints_3d"]
                pred_verts[t, h] = record[side]["vertices"] - record[side]["keypoints_3d"][:1]
                pred_orient[t, h] = axis_angle_to_matrix(torch.as_tensor(record[side]["global_orient"])).numpy()
        if "v" in record:
            pred_v[t] = record["v"]
    gt_kp = gt["keypoints_3d"].astype(float)
    arrays = {"pred_kp": pred_kp, "gt_kp": gt_kp, "pred_verts": pred_verts,
              "gt_verts": gt["vertices"] - gt_kp[:, :, :1], "pred_v": pred_v, "gt_v": gt["v"].astype(float),
              "pred_orient": pred_orient,
              "gt_orient": axis_angle_to_matrix(torch.as_tensor(gt["global_orient"], dtype=torch.float64)).numpy(),
              "present": gt["present"] & found, "sequence": np.zeros(n, int), "frame": np.arange(n)}
    table = split_metrics(arrays)
    true = gt["present"]
    table["found"] = {side: float((found[:, h] & true[:, h]).sum() / max(1, true[:, h].sum()))
                      for h, side in enumerate(SIDES)}
    table["invented"] = {side: int((found[:, h] & ~true[:, h]).sum()) for h, side in enumerate(SIDES)}
    return table


def detector_recall(folder: Path, gt: dict[str, np.ndarray]) -> dict[str, float]:
    """Share of the true hands (per side) that MediaPipe, with left/right tracking, finds
    on the clip: a tracked hand of the right side whose box overlaps the true one (IoU
    above 0.3)."""
    from .detect import HandTracker, make_detector
    from .media import open_source

    hits, tracker = np.zeros((len(gt["present"]), 2), bool), HandTracker()
    with make_detector("mediapipe", mode="video") as detector, open_source(folder / "clip.mp4") as clip:
        for frame in clip:
            for h, d in enumerate(tracker.update(detector.detect(frame.image))):
                if d is not None and gt["present"][frame.index, h]:
                    hits[frame.index, h] = _iou(np.asarray(d.box), gt["boxes"][frame.index, h]) > 0.3
    true = gt["present"]
    return {side: float(hits[:, h].sum() / max(1, true[:, h].sum())) for h, side in enumerate(SIDES)}


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two ``[cx, cy, sx, sy]`` boxes."""
    lo = np.maximum(a[:2] - a[2:] / 2, b[:2] - b[2:] / 2)
    hi = np.minimum(a[:2] + a[2:] / 2, b[:2] + b[2:] / 2)
    inter = np.prod(np.clip(hi - lo, 0, None))
    return float(inter / (np.prod(a[2:]) + np.prod(b[2:]) - inter))


def _mediapipe_available() -> bool:
    import importlib

    try:
        importlib.import_module("mediapipe")
    except ImportError:
        return False
    return True


def run_demo(out_dir: str | Path, hand_model: str | None = None, ckpt: str | None = None,
             detector: str = "boxes", progress: bool = True) -> dict:
    """Make the clip, run the pipeline on it, score it. ``detector``: the hands to
    reconstruct, ``"boxes"`` (the true ones) or ``"mediapipe"`` (module docstring)."""
    from .run import RunSettings, run

    if detector not in ("mediapipe", "boxes"):
        raise UserError(f"detector must be mediapipe or boxes, not {detector!r}")
    out = ensure_output_dir(out_dir)
    gt = make_clip(out / "input")
    use_boxes = detector == "boxes"
    settings = RunSettings(ckpt=ckpt, hand_model=hand_model, focal=float(gt["K"][0, 0, 0]),
                           principal_point=tuple(gt["K"][0, :2, 2].tolist()),
                           boxes=str(out / "input" / "boxes.json") if use_boxes else None,
                           progress=progress)
    # into a scratch folder first: a demo stopped halfway leaves the previous result whole
    with atomic_folder(out / "result") as scratch:
        summary = run(out / "input" / "clip.mp4", scratch, settings, final_out=out / "result")
        metrics = score(scratch, gt)
    report = {"detector": "true boxes" if use_boxes else "mediapipe", "run": summary, "metrics": metrics,
              "mediapipe_recall": detector_recall(out / "input", gt) if _mediapipe_available() else None}
    write_json(out / "metrics.json", report)
    return report
