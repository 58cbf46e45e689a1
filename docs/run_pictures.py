"""The README's picture of `fourdhands run` on real photos: overlay and side view per photo.

    python docs/run_pictures.py docs/images/run_examples.png [--ckpt CKPT]

Runs the whole pipeline (MediaPipe detection, tracking, the network) on photos from
``../shared/samples/real`` and lays each photo's overlay next to its side view.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from PIL import Image

from fourdhands.io import atomic_path
from fourdhands.run import RunSettings, run

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "real"
PHOTOS = ("two_hands_crossed_signing.jpg", "two_hands_on_face_close.jpg", "people_signing_many_hands.jpg",
          "two_hands_trumpet_object.jpg")
HEIGHT = 300


def _fit(image: Image.Image) -> Image.Image:
    return image.resize((round(image.width * HEIGHT / image.height), HEIGHT), Image.LANCZOS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="PNG to write")
    ap.add_argument("--ckpt", default=None, help="checkpoint (default: the shipped one)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in PHOTOS:
            path = SAMPLES / name
            if not path.is_file():
                print(f"skipped {name}: not in {SAMPLES}")
                continue
            out = Path(tmp) / path.stem
            run(path, out, RunSettings(ckpt=args.ckpt, progress=False))
            pair = [_fit(Image.open(out / folder / f"{path.stem}.jpg").convert("RGB")) for folder in ("overlay", "side")]
            row = Image.new("RGB", (sum(p.width for p in pair) + 8, HEIGHT), "white")
            row.paste(pair[0], (0, 0))
            row.paste(pair[1], (pair[0].width + 8, 0))
            rows.append(row)
    if not rows:
        raise SystemExit(f"no photos found in {SAMPLES}")
    sheet = Image.new("RGB", (max(r.width for r in rows), len(rows) * (HEIGHT + 8) - 8), "white")
    for i, row in enumerate(rows):
        sheet.paste(row, (0, i * (HEIGHT + 8)))
    with atomic_path(Path(args.out)) as tmp_png:
        sheet.save(tmp_png, format="PNG")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
