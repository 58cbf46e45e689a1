"""Contact sheet of the synthetic splits for the README: one row per split, frames of one
sequence with the ground-truth 2D keypoints (visible ones filled, hidden ones hollow) and
hand boxes drawn on top (right hand orange, left hand blue).

    python docs/synth_sheet.py docs/images/synth.png
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from fourdhands.synth.generate import generate
from fourdhands.synth.shards import SyntheticSequences

COLOURS = [(255, 140, 40), (60, 140, 255)]
SPLITS = ("interacting", "far_and_scaled", "single_hand", "occluded")


def annotate(image: np.ndarray, gt: dict, t: int) -> Image.Image:
    img = Image.fromarray(image)
    draw = ImageDraw.Draw(img)
    for h in range(2):
        if not gt["present"][t, h]:
            continue
        cx, cy, sx, sy = gt["boxes"][t, h]
        if sx > 0:
            draw.rectangle([cx - sx / 2, cy - sy / 2, cx + sx / 2, cy + sy / 2], outline=COLOURS[h])
        for (u, v), vis in zip(gt["keypoints_2d"][t, h], gt["visible"][t, h]):
            r = 1.6
            draw.ellipse([u - r, v - r, u + r, v + r], outline=COLOURS[h], fill=COLOURS[h] if vis else None)
    return img


def main(out: str) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for split in SPLITS:
            root = Path(tmp) / split
            generate(root, sequences=1, frames=24, seed=7, split=split, image_size=(240, 180), progress=False)
            seq = SyntheticSequences(root)[0]
            rows.append(np.concatenate([np.asarray(annotate(seq.frame(t), seq.gt, t)) for t in (0, 8, 16, 23)], 1))
    Image.fromarray(np.concatenate(rows, 0)).save(out)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "synth.png")
