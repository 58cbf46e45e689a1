"""Accuracy on real images: the 4 InterHand2.6M frames, and 2D agreement with MediaPipe on the photos.

    python benchmarks/eval_real.py                        # the shipped checkpoint
    python benchmarks/eval_real.py --ckpt runs/mediapipe_full/step-0000600 --out /tmp/real.md

1. InterHand2.6M (``../shared/samples/datasets/interhand26m``, read by
   :func:`fourdhands.data.interhand.read_interhand_frames`): each frame is given to the
   network alone (a fresh :class:`~fourdhands.pipeline.Reconstructor`, gap 1, as ``fourdhands
   run`` treats a single image) with its *true* tight boxes (the box of the hand's projected
   valid joints) and its true intrinsics (focal ``(fx + fy) / 2``, which differ by < 0.02 %
   here, and the principal point). Reported:

   - MPJPE per hand (mm), InterHand2.6M protocol (PROTOCOLS.md): each hand's own wrist
     subtracted, no scaling, valid joints only (:func:`fourdhands.metrics.mpjpe_wrist`);
     the mean over the hands of all frames, per side and together;
   - MRRPE (mm): the error of left wrist - right wrist, camera frame, on frames with both
     hands present and both wrists valid (:func:`fourdhands.metrics.mrrpe`);
   - 2D: PCK@0.2, the fraction of valid joints whose 2D keypoint lies within
     ``0.2 * max(sx, sy)`` of the true one, with ``[cx, cy, sx, sy]`` the hand's true tight box
     (the "box size" is the longer side of that box), and the mean 2D error (px), pooled over
     the valid joints of all hands. (a) Our network: its 3D keypoints in the camera frame
     projected with the frame's intrinsics (``HandResult.keypoints_2d``). (b) MediaPipe's
     own 21 landmarks (same order as ours: wrist, thumb CMC..tip, index MCP..tip, ...),
     from :class:`fourdhands.detect.mediapipe_hands.MediaPipeHands` in image mode on the
     whole image; a landmark hand is matched to a true hand by box overlap (IoU of the
     landmarks' box with the true box, at least 0.3; the assignment maximising total IoU,
     plus 0.25 for agreeing sides). A true hand with no match counts as missed (its joints
     are out of the MediaPipe PCK, and the table says how many hands were found).
     (b') MediaPipe given the true box too, as our network is: the same detector on a
     square window of side ``2 * max(sx, sy)`` centred on the true box (black beyond the
     image), the best-overlapping hand it finds (IoU >= 0.3) taken. On these frames the
     whole-image detector finds few hands (dark studio, hands touching).

2. Photos (``../shared/samples/real/*.jpg``): MediaPipe's detector as ``fourdhands run``
   uses it (image mode, the tracker keeping the two most confident hands), its boxes given
   to the network with the photo's EXIF focal length (else the pipeline's default) and
   the principal point at the image centre; the agreement of our reprojected keypoints
   with MediaPipe's landmarks of the same hand: PCK@0.2 of the detection box's longer side
   and the mean distance (px), over all 21 keypoints of every hand the network saw. No
   ground truth: this measures agreement, not accuracy.

Only the pipeline's public surface is used (``load_network``, ``Reconstructor``,
``TrackedHand``, ``FrameResult.hands[side].keypoints_3d / .keypoints_2d``, ``FrameResult.v``),
so the script keeps working as the network changes. Missing sample folders or MediaPipe
are reported and skipped. Writes ``benchmarks/results/real_cpu.md`` (atomically) and prints it.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fourdhands.io import write_text
from fourdhands.metrics import mpjpe_wrist, mrrpe
from fourdhands.pipeline import Reconstructor, TrackedHand
from fourdhands.sides import SIDES

RESULTS = Path(__file__).parent / "results"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "samples"
PCK_FRACTION = 0.2
MIN_IOU = 0.3
CROP_FACTOR = 2.0


# ----------------------------------------------------------------------------- helpers
def box_iou(a, b) -> float:
    """IoU of two ``[cx, cy, sx, sy]`` boxes."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    lo = np.maximum(a[:2] - a[2:] / 2, b[:2] - b[2:] / 2)
    hi = np.minimum(a[:2] + a[2:] / 2, b[:2] + b[2:] / 2)
    inter = float(np.prod(np.clip(hi - lo, 0, None)))
    union = float(np.prod(a[2:]) + np.prod(b[2:])) - inter
    return inter / union if union > 0 else 0.0


def landmark_box(points: np.ndarray) -> np.ndarray:
    lo, hi = points.min(axis=0), points.max(axis=0)
    return np.concatenate([(lo + hi) / 2, hi - lo])


def errors_2d(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, box) -> tuple[np.ndarray, float]:
    """Distances (px) of the valid joints, and the PCK threshold ``0.2 * max(sx, sy)``."""
    d = np.linalg.norm(np.asarray(pred, float) - np.asarray(gt, float), axis=-1)[np.asarray(valid, bool)]
    return d, PCK_FRACTION * float(max(box[2], box[3]))


@dataclass
class Pool2D:
    """PCK and mean error pooled over joints."""

    hits: int = 0
    joints: int = 0
    total_px: float = 0.0

    def add(self, d: np.ndarray, threshold: float) -> None:
        self.hits += int((d <= threshold).sum())
        self.joints += int(d.size)
        self.total_px += float(d.sum())

    def cells(self) -> str:
        if not self.joints:
            return "- | -"
        return f"{self.hits / self.joints:.3f} | {self.total_px / self.joints:.1f}"


def reconstruct(net, image: np.ndarray, boxes, focal=None, principal_point=None, landmarks=None):
    """The network's result for one image with ``boxes`` ``{side: [cx, cy, sx, sy]}`` and
    optional 2D ``landmarks`` ``{side: (21, 2)}`` (they turn an upright network's crops)."""
    rec = Reconstructor(net, gap=1)
    landmarks = landmarks or {}
    hands = tuple(TrackedHand(box=tuple(float(x) for x in boxes[s]), landmarks=landmarks.get(s))
                  if s in boxes else None for s in SIDES)
    results = list(rec.push(image, hands, focal=focal, principal_point=principal_point)) + list(rec.finish())
    results = [r for r in results if r is not None]
    return results[0] if results else None


def read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


# ----------------------------------------------------------------------------- MediaPipe
def mediapipe_detector():
    """MediaPipe in image mode as ``fourdhands run`` builds it, or the reason it cannot be."""
    try:
        from fourdhands.detect import make_detector

        return make_detector("mediapipe", mode="image"), None
    except Exception as e:  # UserError when mediapipe is missing
        return None, str(e).splitlines()[0]


def mediapipe_hands(detector, image: np.ndarray):
    """``[(Detection, landmarks (21, 2) px)]`` of ``image``, most confident first (the
    landmarks every MediaPipe detection carries)."""
    return [(d, np.asarray(d.landmarks, float).reshape(21, 2)) for d in detector.detect(image)]


def mediapipe_in_box(detector, image: np.ndarray, box, factor: float = CROP_FACTOR):
    """MediaPipe on the square window of side ``factor * max(sx, sy)`` centred on ``box``
    (black beyond the image): ``[(Detection, landmarks (21, 2) in image px)]``."""
    cx, cy, sx, sy = (float(v) for v in box)
    n = max(16, int(round(factor * max(sx, sy))))
    x0, y0 = int(round(cx - n / 2)), int(round(cy - n / 2))
    H, W = image.shape[:2]
    crop = np.zeros((n, n, 3), np.uint8)
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + n, W), min(y0 + n, H)
    if xb > xa and yb > ya:
        crop[ya - y0:yb - y0, xa - x0:xb - x0] = image[ya:yb, xa:xb]
    return [(d, k + (x0, y0)) for d, k in mediapipe_hands(detector, crop)]


def match_hands(gt_boxes: dict, found) -> dict:
    """``{side: index into found}``: the assignment of landmark hands to true hands that
    maximises total IoU (each at least ``MIN_IOU``) plus 0.25 per agreeing side."""
    sides = list(gt_boxes)
    best, best_score = {}, 0.0
    options = list(range(len(found))) + [None] * len(sides)
    for choice in set(itertools.permutations(options, len(sides))):
        score, pairs = 0.0, {}
        for side, k in zip(sides, choice):
            if k is None:
                continue
            iou = box_iou(gt_boxes[side], landmark_box(found[k][1]))
            if iou < MIN_IOU:
                break
            score += iou + (0.25 if found[k][0].handedness == side else 0.0)
            pairs[side] = k
        else:
            if score > best_score:
                best, best_score = pairs, score
    return best


# ----------------------------------------------------------------------------- evaluations
def eval_interhand(net, folder: Path, detector, lines: list[str]) -> None:
    from fourdhands.data.interhand import read_interhand_frames

    frames = read_interhand_frames(folder)
    per_side = {s: {"pred": [], "gt": [], "valid": []} for s in SIDES}
    rr = {"pr": [], "pl": [], "gr": [], "gl": []}
    pools = {"ours": Pool2D(), "mp_image": Pool2D(), "mp_box": Pool2D()}
    found_count = {"mp_image": 0, "mp_box": 0}
    hands_total = 0
    rows = []
    for f in frames:
        image = read_rgb(f.image_path)
        boxes = {s: f.boxes[h] for h, s in enumerate(SIDES) if f.present[h]}
        fx, fy = f.focal
        # the true 2D wrist and middle knuckle turn the crops, as the true boxes place them
        truth_2d = {s: f.keypoints_2d[h] for h, s in enumerate(SIDES) if f.present[h] and f.valid[h][[0, 9]].all()}
        result = reconstruct(net, image, boxes, focal=(fx + fy) / 2, principal_point=f.principal_point,
                             landmarks=truth_2d)
        whole = mediapipe_hands(detector, image) if detector is not None else []
        matched = match_hands(boxes, whole) if detector is not None else {}
        cells = {}
        for h, side in enumerate(SIDES):
            if not f.present[h]:
                cells[side] = ("-",) * 4
                continue
            hands_total += 1
            gt2d, valid, box = f.keypoints_2d[h], f.valid[h], f.boxes[h]
            hand = result.hands.get(side) if result is not None else None
            if hand is None:  # the network gave nothing for a hand it was given
                ours_3d = ours_2d = "none"
            else:
                per_side[side]["pred"].append(hand.keypoints_3d)
                per_side[side]["gt"].append(f.keypoints_3d[h])
                per_side[side]["valid"].append(valid)
                ours_3d = f"{mpjpe_wrist(hand.keypoints_3d[None], f.keypoints_3d[h][None], valid[None]):.1f}"
                d, thr = errors_2d(hand.keypoints_2d, gt2d, valid, box)
                pools["ours"].add(d, thr)
                ours_2d = f"{(d <= thr).mean():.2f} / {d.mean():.1f}"
            mp = {}
            for key, found, pick in (("mp_image", whole, matched.get(side)),
                                     ("mp_box", None, None)):
                if detector is None:
                    mp[key] = "-"
                    continue
                if key == "mp_box":
                    found = mediapipe_in_box(detector, image, box)
                    pick = match_hands({side: box}, found).get(side)
                if pick is None:
                    mp[key] = "missed"
                    continue
                det, landmarks = found[pick]
                dm, thr = errors_2d(landmarks, gt2d, valid, box)
                pools[key].add(dm, thr)
                found_count[key] += 1
                mp[key] = f"{(dm <= thr).mean():.2f} / {dm.mean():.1f}" + ("" if det.handedness == side else " (side wrong)")
            cells[side] = (ours_3d, ours_2d, mp["mp_image"], mp["mp_box"])
        both = f.present.all() and f.valid[:, 0].all() and result is not None and all(s in result.hands for s in SIDES)
        e_rr = "-"
        if both:
            pr, pl = result.hands["right"].keypoints_3d, result.hands["left"].keypoints_3d
            rr["pr"].append(pr), rr["pl"].append(pl)
            rr["gr"].append(f.keypoints_3d[0]), rr["gl"].append(f.keypoints_3d[1])
            e_rr = f"{mrrpe(pr[None], pl[None], f.keypoints_3d[0][None], f.keypoints_3d[1][None]):.1f}"
            if result.v is not None:  # v is left wrist - right wrist: the same vector
                assert np.allclose(result.v, pl[0] - pr[0], atol=1e-6)
        for h, side in enumerate(SIDES):
            if f.present[h]:
                c = cells[side]
                rows.append(f"| {f.image_path.name} ({f.seq_name}) | {f.hand_type} | {side} | {c[0]} | "
                            f"{e_rr if h == 0 or not f.present[0] else ''} | {c[1]} | {c[2]} | {c[3]} |")

    def side_mpjpe(sides):
        p = {k: sum((per_side[s][k] for s in sides), []) for k in ("pred", "gt", "valid")}
        return mpjpe_wrist(np.stack(p["pred"]), np.stack(p["gt"]), np.stack(p["valid"])) if p["pred"] else float("nan")

    mr = mrrpe(*(np.stack(rr[k]) for k in ("pr", "pl", "gr", "gl"))) if rr["pr"] else float("nan")
    n_r, n_l = len(per_side["right"]["pred"]), len(per_side["left"]["pred"])
    mp_found = {k: (f"{v} / {hands_total}" if detector is not None else "not run") for k, v in found_count.items()}
    lines += [f"## InterHand2.6M: {len(frames)} real frames, true boxes, intrinsics and upright angles (true wrist -> middle knuckle)", "",
              "| MPJPE right (mm) | MPJPE left (mm) | MPJPE all hands (mm) | MRRPE (mm) |",
              "|---:|---:|---:|---:|",
              f"| {side_mpjpe(['right']):.1f} ({n_r} hands) | {side_mpjpe(['left']):.1f} ({n_l} hands) | "
              f"{side_mpjpe(SIDES):.1f} | {mr:.1f} ({len(rr['pr'])} frames) |", "",
              "2D against the true keypoints (valid joints of the hands each method gave):", "",
              "| method | hands | PCK@0.2 | mean 2D error (px) |", "|---|---:|---:|---:|",
              f"| ours (network, reprojected; true boxes) | {n_r + n_l} / {hands_total} | {pools['ours'].cells()} |",
              f"| MediaPipe, whole image (as `fourdhands run` detects) | {mp_found['mp_image']} | "
              f"{pools['mp_image'].cells()} |",
              f"| MediaPipe, in a {CROP_FACTOR:g}x square window around the true box | {mp_found['mp_box']} | "
              f"{pools['mp_box'].cells()} |", "",
              "Per hand (2D cells: PCK@0.2 / mean error px; MediaPipe hands matched by box IoU >= "
              f"{MIN_IOU:g}, \"missed\" when none):", "",
              "| frame | hand type | hand | MPJPE (mm) | MRRPE (mm) | ours 2D | MediaPipe image 2D | "
              "MediaPipe window 2D |",
              "|---|---|---|---:|---:|---:|---:|---:|", *rows, ""]


def eval_photos(net, folder: Path, detector, lines: list[str]) -> None:
    from fourdhands.detect.tracking import HandTracker
    from fourdhands.media import open_source

    pool = Pool2D()
    rows = []
    photos = sorted(folder.glob("*.jpg"))
    for path in photos:
        with open_source(path) as source:
            image = next(iter(source)).image
            focal = source.focal
        found = mediapipe_hands(detector, image)
        right, left = HandTracker().update([d for d, _ in found])
        chosen = {s: d for s, d in zip(SIDES, (right, left)) if d is not None}
        landmarks = {s: next(k for d2, k in found if d2 is d or tuple(d2.box) == tuple(d.box))
                     for s, d in chosen.items()}
        result = (reconstruct(net, image, {s: d.box for s, d in chosen.items()}, focal=focal, landmarks=landmarks)
                  if chosen else None)
        one = Pool2D()
        for side, d in chosen.items():
            hand = result.hands.get(side) if result is not None else None
            if hand is None:
                continue
            e, thr = errors_2d(hand.keypoints_2d, landmarks[side], np.ones(21, bool), d.box)
            one.add(e, thr)
            pool.add(e, thr)
        sides = "+".join(chosen) or "none"
        rows.append(f"| {path.name} | {image.shape[1]}x{image.shape[0]} | {len(found)} | {sides} | "
                    f"{'EXIF' if focal else 'default'} | {one.cells()} |")
    lines += [f"## Photos: our reprojected keypoints vs MediaPipe's landmarks ({len(photos)} photos)", "",
              "| photo | size | hands MediaPipe found | hands compared | focal | PCK@0.2 | mean (px) |",
              "|---|---|---:|---|---|---:|---:|", *rows,
              f"| **all** | | | {pool.joints // 21} hands | | {pool.cells()} |", ""]


# ----------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default=None, help="checkpoint folder (default: the shipped one)")
    ap.add_argument("--out", default=str(RESULTS / "real_cpu.md"), help="markdown file to write")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--samples", default=str(SHARED), help="the shared samples folder (default: ../shared/samples)")
    args = ap.parse_args()

    from fourdhands import run as run_module

    started = time.perf_counter()
    net, _ = run_module.load_network(args.ckpt, None, args.device)
    net.eval()
    ckpt = args.ckpt or getattr(run_module, "SHIPPED_CHECKPOINT", "the shipped checkpoint")
    try:
        ckpt = Path(ckpt).resolve().relative_to(Path(__file__).resolve().parents[1])
    except ValueError:
        pass
    hand_model = getattr(getattr(net, "right_model", None), "name", "?")
    samples = Path(args.samples)
    command = "python benchmarks/eval_real.py" + "".join(f" {shlex.quote(a)}" for a in sys.argv[1:])
    lines = ["# Real images: InterHand2.6M frames and MediaPipe agreement", "",
             f"Command: `{command}`  ",
             f"Checkpoint {ckpt}, hand model {hand_model}; {platform.processor() or platform.machine()}, "
             f"torch {torch.__version__}, device {args.device}.", "",
             "MPJPE: InterHand2.6M protocol (wrist-aligned per hand, no scaling, valid joints). "
             "MRRPE: error of left wrist - right wrist. PCK@0.2: fraction of valid joints within "
             "0.2 x box size of the reference 2D point, box size = max(sx, sy) of the hand's tight box "
             "(InterHand2.6M: the true box of the projected valid joints; photos: MediaPipe's landmark box). "
             "Details in the script's docstring.", ""]

    detector, why = mediapipe_detector()
    if detector is None:
        lines += [f"MediaPipe not available ({why}): its columns and the photos are skipped.", ""]
    ih = samples / "datasets" / "interhand26m"
    with torch.no_grad():
        if ih.is_dir():
            eval_interhand(net, ih, detector, lines)
        else:
            lines += [f"InterHand2.6M frames skipped: {ih} is not here.", ""]
            print(f"skipping InterHand2.6M: {ih} is not here", file=sys.stderr)
        real = samples / "real"
        if detector is not None and real.is_dir():
            eval_photos(net, real, detector, lines)
        elif not real.is_dir():
            lines += [f"Photos skipped: {real} is not here.", ""]
            print(f"skipping photos: {real} is not here", file=sys.stderr)
    if detector is not None:
        detector.close()
    lines.append(f"Took {time.perf_counter() - started:.0f} s.")
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
