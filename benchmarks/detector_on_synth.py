"""Does MediaPipe take our synthetic hands for hands? Its recall and 2D error on the
evaluation splits.

MediaPipe Hands (the legacy solution in the mediapipe wheel: palm detector + landmark
network), static-image mode, one pass over each whole frame, up to 2 hands, detection
confidence 0.5. A *visible* hand is one that is present, shows at least one visible
joint and has a box. It is *found* when a detection's 21 landmarks have their median
inside its box and at least 15 of them inside the box grown by 10 % (each detection
serves one hand at most, the first hand whose test it passes, right hand first). The 2D
error of a found hand is the mean distance of its landmarks to the true keypoints over
the visible joints, divided by the box's longer side. Left/right labels are not scored.

Two probes of why a hand is missed, per split:

- **crops**: each visible hand again, alone in a square crop twice its box's longer side,
  scaled to 256 px: a hand found there but not in the frame is lost to the frame (its
  scale, or the other hand beside it), not to how it looks;
- **facing**: recall by which side of the hand faces the camera, from the true keypoints
  (the palm's normal, wrist -> index and pinky knuckles, against the ray to the wrist):
  palm (cos > 0.4), edge-on, back (cos < -0.4).

And the project's own detector (:class:`~fourdhands.detect.mediapipe_hands.MediaPipeHands`,
the same models), matched the same way: in ``image`` mode (each frame through its views:
the frame and its mirror, zoomed out and not; what ``fourdhands run`` does for photos) and
in ``video`` mode (MediaPipe's tracking from frame to frame within each sequence; what it
does for a clip and what ``fourdhands demo --detector mediapipe`` uses). On real photos
the views find 11 of 15 hands where one static pass finds 6 (README, real photos).

Run: ``python benchmarks/detector_on_synth.py --root data/synth [--out FILE]`` (the
splits generated with their default seeds: ``fourdhands synth data/synth/<split>
--split <split> --sequences 12 --frames 24``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

SPLITS = ("interacting", "far_and_scaled", "single_hand", "occluded")


def match(boxes: np.ndarray, wanted: np.ndarray, landmarks: list[np.ndarray]) -> list[int | None]:
    """For each hand (boxes `(2, 4)` [cx, cy, sx, sy], ``wanted (2,)`` bool), the index of
    the detection (landmarks `(21, 2)` each) that it is matched to, or None."""
    taken, out = set(), []
    for h in range(2):
        found = None
        if wanted[h]:
            cx, cy, sx, sy = boxes[h]
            for i, lm in enumerate(landmarks):
                if i in taken:
                    continue
                med = np.median(lm, 0)
                inside = (np.abs(lm - [cx, cy]) <= 0.55 * np.array([sx, sy])).all(1).sum()
                if (np.abs(med - [cx, cy]) <= 0.5 * np.array([sx, sy])).all() and inside >= 15:
                    found = i
                    taken.add(i)
                    break
        out.append(found)
    return out


CROP_PX = 256


def facing(keypoints: np.ndarray, slot: int) -> float:
    """cos of the angle between the palm's outward normal and the direction to the camera
    (keypoints `(21, 3)` camera frame, OpenPose order; slot 0 right, 1 left)."""
    normal = np.cross(keypoints[5] - keypoints[0], keypoints[17] - keypoints[0])
    normal = normal if slot == 0 else -normal  # mirrored hands wind the other way
    to_camera = -keypoints[0]
    return float(normal @ to_camera / max(np.linalg.norm(normal) * np.linalg.norm(to_camera), 1e-12))


def crop_around(image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """A square crop twice the box's longer side (zero-padded), scaled to CROP_PX; and the
    scale and offset that take crop pixels back to the frame."""
    from PIL import Image

    side = 2.0 * float(box[2:].max())
    x0, y0 = box[0] - side / 2, box[1] - side / 2
    pil = Image.fromarray(image).crop((int(round(x0)), int(round(y0)), int(round(x0 + side)), int(round(y0 + side))))
    scale = side / CROP_PX
    return np.asarray(pil.resize((CROP_PX, CROP_PX), Image.BILINEAR)), scale, np.array([round(x0), round(y0)])


def _landmarks(result, w: int, h: int) -> list[np.ndarray]:
    return [np.array([[p.x * w, p.y * h] for p in hand.landmark]) for hand in result.multi_hand_landmarks or []]


def measure(root: Path) -> dict:
    from mediapipe.python.solutions import hands as mp_hands

    from fourdhands.detect.mediapipe_hands import MediaPipeHands
    from fourdhands.synth.shards import SyntheticSequences

    seqs = SyntheticSequences(root)
    # per visible hand: found in the frame, in its crop, by the views, by tracking; facing
    records, errors = [], []
    options = dict(static_image_mode=True, max_num_hands=2, min_detection_confidence=0.5)
    with mp_hands.Hands(**options) as solution, mp_hands.Hands(**options) as on_crops, \
            MediaPipeHands("image") as views:
        for seq in tqdm(seqs, desc=root.name, unit="seq"):
            g = seq.gt
            with MediaPipeHands("video") as tracking:
                for t in range(len(g["present"])):
                    image = seq.frame(t)
                    h, w = image.shape[:2]
                    landmarks = _landmarks(solution.process(image), w, h)
                    ours = {name: [d.landmarks for d in detector.detect(image)]
                            for name, detector in (("views", views), ("tracking", tracking))}
                    wanted = g["present"][t] & g["visible"][t].any(1) & (g["boxes"][t, :, 2] > 0)
                    by = {name: match(g["boxes"][t], wanted, found) for name, found in ours.items()}
                    for hand, det in enumerate(match(g["boxes"][t], wanted, landmarks)):
                        if not wanted[hand]:
                            continue
                        crop, scale, offset = crop_around(image, g["boxes"][t, hand])
                        in_crop = [lm * scale + offset for lm in _landmarks(on_crops.process(crop), CROP_PX, CROP_PX)]
                        only = np.arange(2) == hand
                        records.append((det is not None, match(g["boxes"][t], only, in_crop)[hand] is not None,
                                        by["views"][hand] is not None, by["tracking"][hand] is not None,
                                        facing(g["keypoints_3d"][t, hand], hand)))
                        if det is not None:
                            vis = g["visible"][t, hand]
                            err = np.linalg.norm(landmarks[det][vis] - g["keypoints_2d"][t, hand][vis], axis=1).mean()
                            errors.append(err / g["boxes"][t, hand, 2:].max())
    found, cropped, in_views, tracked, cos = (np.array(c) for c in zip(*records)) if records else (np.zeros(0),) * 5
    by_facing = {name: float(found[sel].mean()) if sel.any() else float("nan")
                 for name, sel in (("palm", cos > 0.4), ("edge", np.abs(cos) <= 0.4), ("back", cos < -0.4))}
    return {"visible": len(records), "found": int(found.sum()), "recall": float(found.mean()) if records else 0.0,
            "crops": float(cropped.mean()) if records else 0.0, "facing": by_facing,
            "views": float(in_views.mean()) if records else 0.0, "tracking": float(tracked.mean()) if records else 0.0,
            "error": float(np.median(errors)) if errors else float("nan"),
            "error_mean": float(np.mean(errors)) if errors else float("nan")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("data/synth"))
    parser.add_argument("--splits", nargs="+", default=list(SPLITS))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    lines = ["| split | visible hands | found | recall | recall on crops | palm / edge / back facing | "
             "2D error / box (median) | (mean) | our detector: views / tracking |",
             "|---|---|---|---|---|---|---|---|---|"]
    for split in args.splits:
        r = measure(args.root / split)
        f = r["facing"]
        lines.append(f"| {split} | {r['visible']} | {r['found']} | {r['recall']:.2f} | {r['crops']:.2f} | "
                     f"{f['palm']:.2f} / {f['edge']:.2f} / {f['back']:.2f} | {r['error']:.3f} | {r['error_mean']:.3f} | "
                     f"{r['views']:.2f} / {r['tracking']:.2f} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(f"# MediaPipe Hands on the synthetic evaluation splits\n\n"
                            f"`python benchmarks/detector_on_synth.py --root {args.root} --out {args.out}`\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
