"""Synthetic hands beside real ones, cropped alike (each hand's box, squared and grown by
1.3, at 112 px): top row synthetic (the evaluation splits), bottom row real
(InterHand2.6M frames by their ground-truth boxes, and the real photos by MediaPipe's
boxes). Shuffled within the rows, it is a test of whether proportions and skin give the
synthetic hands away.

    python docs/synth_vs_real.py docs/images/synth_vs_real.png [--synth data/synth]
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "samples"
SIZE, COUNT = 112, 8


def crop(image: np.ndarray, box) -> np.ndarray:
    cx, cy, sx, sy = box
    half = 0.65 * max(sx, sy)
    im = Image.fromarray(image)
    box = tuple(int(round(x)) for x in (cx - half, cy - half, cx + half, cy + half))
    return np.asarray(im.crop(box).resize((SIZE, SIZE), Image.BILINEAR))  # black beyond the image


def synthetic(root: Path) -> list[np.ndarray]:
    from fourdhands.synth.shards import SyntheticSequences

    out = []
    for split in ("interacting", "single_hand", "far_and_scaled"):
        seqs = SyntheticSequences(root / split)
        for i in range(len(seqs)):
            g = seqs[i].gt
            for h in np.flatnonzero(g["present"][0] & (g["boxes"][0, :, 2] > 40)):
                out.append(crop(seqs[i].frame(0), g["boxes"][0, h]))
            if len(out) >= COUNT * (1 + ("interacting", "single_hand", "far_and_scaled").index(split)) // 3 + 2:
                break
    return out[:COUNT]


def real() -> list[np.ndarray]:
    from fourdhands.data.interhand import read_interhand_frames
    from fourdhands.detect import make_detector

    out = []
    for frame in read_interhand_frames(SHARED / "datasets" / "interhand26m"):
        image = np.asarray(Image.open(frame.image_path).convert("RGB"))
        out += [crop(image, frame.boxes[h]) for h in range(2) if frame.present[h]]
    with make_detector("mediapipe") as detector:
        for path in sorted((SHARED / "real").glob("*.jpg")):
            if len(out) >= COUNT:
                break
            image = np.asarray(Image.open(path).convert("RGB"))
            out += [crop(image, d.box) for d in detector.detect(image)[:1]]
    return out[:COUNT]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--synth", type=Path, default=Path("data/synth"))
    args = parser.parse_args()
    rows = [np.concatenate(tiles, 1) for tiles in (synthetic(args.synth), real())]
    Image.fromarray(np.concatenate(rows, 0)).save(args.out)


if __name__ == "__main__":
    main()
