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


def measure(root: Path) -> dict:
    from mediapipe.python.solutions import hands as mp_hands

    from fourdhands.synth.shards import SyntheticSequences

    seqs = SyntheticSequences(root)
    visible = found = 0
    errors = []
    with mp_hands.Hands(static_image_mode=True, max_num_hands=2, min_detection_confidence=0.5) as solution:
        for seq in tqdm(seqs, desc=root.name, unit="seq"):
            g = seq.gt
            for t in range(len(g["present"])):
                image = seq.frame(t)
                h, w = image.shape[:2]
                result = solution.process(image)
                landmarks = [np.array([[p.x * w, p.y * h] for p in hand.landmark])
                             for hand in result.multi_hand_landmarks or []]
                wanted = g["present"][t] & g["visible"][t].any(1) & (g["boxes"][t, :, 2] > 0)
                for hand, det in enumerate(match(g["boxes"][t], wanted, landmarks)):
                    if not wanted[hand]:
                        continue
                    visible += 1
                    if det is not None:
                        found += 1
                        vis = g["visible"][t, hand]
                        err = np.linalg.norm(landmarks[det][vis] - g["keypoints_2d"][t, hand][vis], axis=1).mean()
                        errors.append(err / g["boxes"][t, hand, 2:].max())
    return {"visible": visible, "found": found, "recall": found / max(visible, 1),
            "error": float(np.median(errors)) if errors else float("nan"),
            "error_mean": float(np.mean(errors)) if errors else float("nan")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("data/synth"))
    parser.add_argument("--splits", nargs="+", default=list(SPLITS))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    lines = ["| split | visible hands | found | recall | 2D error / box (median) | (mean) |", "|---|---|---|---|---|---|"]
    for split in args.splits:
        r = measure(args.root / split)
        lines.append(f"| {split} | {r['visible']} | {r['found']} | {r['recall']:.2f} | {r['error']:.3f} | "
                     f"{r['error_mean']:.3f} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(f"# MediaPipe Hands on the synthetic evaluation splits\n\n"
                            f"`python benchmarks/detector_on_synth.py --root {args.root} --out {args.out}`\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
