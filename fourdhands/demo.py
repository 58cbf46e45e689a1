"""``fourdhands demo``: the whole pipeline on a clip with known ground truth.

The package makes the clip itself, so the demo needs nothing but an install: a seeded
synthetic two-hand sequence (:mod:`fourdhands.synth`, split ``interacting``, 640x480,
30 fps) is written as ``OUT/input/clip.mp4`` with its ground truth
(``OUT/input/ground_truth.npz``) and its true hand boxes (``OUT/input/boxes.json``, the
format of ``--boxes``). Then ``fourdhands run`` reconstructs it into ``OUT/result/``
(overlay and side-view videos, per-frame parameters and meshes, ``summary.json``) with
the shipped checkpoint, and the result is scored against the ground truth
(``OUT/metrics.json``), with the protocols of ``fourdhands eval``.

Detection: MediaPipe when it is installed (the real pipeline, detection and tracking
included), else the true boxes, and the demo says which.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from .errors import UserError
from .io import atomic_folder, ensure_output_dir, write_json

SPLIT, SEED, FRAMES, SIZE, FPS = "interacting", 7, 48, (640, 480), 30.0
SIDES = ("right", "left")


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
    frames = {str(t): [{"box": gt["boxes"][t, h].tolist(), "hand": side, "score": 1.0}
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
    from .evaluate import split_metrics
    from .export import read_params

    n = len(gt["present"])
    pred_kp = np.zeros((n, 2, 21, 3))
    pred_verts = np.zeros(gt["vertices"].shape)
    pred_v = np.zeros((n, 3))
    found = np.zeros((n, 2), bool)
    for t in range(n):
        record = read_params(result_dir / "frames" / f"frame_{t:06d}.npz")
        for h, side in enumerate(SIDES):
            if side in record:
                found[t, h] = True
                pred_kp[t, h] = record[side]["keypoints_3d"]
                pred_verts[t, h] = record[side]["vertices"] - record[side]["keypoints_3d"][:1]
        if "v" in record:
            pred_v[t] = record["v"]
    gt_kp = gt["keypoints_3d"].astype(float)
    arrays = {"pred_kp": pred_kp, "gt_kp": gt_kp, "pred_verts": pred_verts,
              "gt_verts": gt["vertices"] - gt_kp[:, :, :1], "pred_v": pred_v, "gt_v": gt["v"].astype(float),
              "present": gt["present"] & found, "sequence": np.zeros(n, int), "frame": np.arange(n)}
    table = split_metrics(arrays)
    true = gt["present"]
    table["found"] = {side: float((found[:, h] & true[:, h]).sum() / max(1, true[:, h].sum()))
                      for h, side in enumerate(SIDES)}
    table["invented"] = {side: int((found[:, h] & ~true[:, h]).sum()) for h, side in enumerate(SIDES)}
    return table


def _mediapipe_available() -> bool:
    import importlib

    try:
        importlib.import_module("mediapipe")
    except ImportError:
        return False
    return True


def run_demo(out_dir: str | Path, hand_model: str | None = None, ckpt: str | None = None,
             detector: str = "auto", progress: bool = True) -> dict:
    """Make the clip, run the pipeline on it, score it. ``detector``: ``"auto"``
    (MediaPipe if installed, else the true boxes), ``"mediapipe"`` or ``"boxes"``."""
    from .run import RunSettings, run

    if detector not in ("auto", "mediapipe", "boxes"):
        raise UserError(f"detector must be auto, mediapipe or boxes, not {detector!r}")
    out = ensure_output_dir(out_dir)
    gt = make_clip(out / "input")
    use_boxes = detector == "boxes" or (detector == "auto" and not _mediapipe_available())
    settings = RunSettings(ckpt=ckpt, hand_model=hand_model, focal=float(gt["K"][0, 0, 0]),
                           principal_point=tuple(gt["K"][0, :2, 2].tolist()),
                           boxes=str(out / "input" / "boxes.json") if use_boxes else None,
                           progress=progress)
    # into a scratch folder first: a demo stopped halfway leaves the previous result whole
    with atomic_folder(out / "result") as scratch:
        summary = run(out / "input" / "clip.mp4", scratch, settings)
        metrics = score(scratch, gt)
    summary["output"] = str(out / "result")
    report = {"detector": "true boxes" if use_boxes else "mediapipe", "run": summary, "metrics": metrics}
    write_json(out / "metrics.json", report)
    return report
