"""What makes MediaPipe miss our synthetic hands? Recall by property of the hand and the
frame, and recall when the same sequences are rendered again with one thing changed.

    python benchmarks/detector_factors.py [--split single_hand] [--sequences 48] [--frames 10]
                                          [--seed 77] [--out benchmarks/results/detector_factors_cpu.md]

Detection and matching as in ``detector_on_synth.py`` (static mode, one pass, a hand is
found when a detection's landmarks sit in its box). The sequences are made in memory
with :class:`~fourdhands.synth.scene.Synthesizer`: many short sequences, because the
look (light, sleeve, blur, camera noise) is drawn once per sequence.

- **By property** (the unchanged renders): which side faces the camera, the box's longer
  side, the share of the 21 keypoints inside the image, and per sequence the viewpoint,
  the chance of motion blur, a sleeve, and the ambient light. These are correlations:
  properties drawn per sequence are confounded with each other.
- **Counterfactuals**: every variant renders the same sequences (the same motion, camera
  and draws) with one drawn value replaced after it was drawn, so its recall is paired
  with the unchanged one's. A variant that lifts recall names a cause; one that does not
  rules it out.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detector_on_synth import _landmarks, facing, match  # noqa: E402

from fourdhands.io import write_text  # noqa: E402
from fourdhands.synth import appearance, scene  # noqa: E402
from fourdhands.synth.appearance import decode_jpeg  # noqa: E402


def _with_look(change):
    """Patch: every drawn look goes through ``change(look) -> look``."""
    draw = appearance.sample_look
    return mock.patch.object(appearance, "sample_look", lambda *a, **k: change(draw(*a, **k)))


def _lit(look):
    return dataclasses.replace(look, lighting=dataclasses.replace(look.lighting,
                                                                  ambient=max(look.lighting.ambient, 0.45)))


def _clean(look):
    return dataclasses.replace(look, read_noise=0.0, shot_noise=0.0, jpeg_quality=95)


def _bare_arms():
    draw = scene.sample_forearm_look
    return mock.patch.object(scene, "sample_forearm_look", lambda *a: dataclasses.replace(draw(*a), cuff=None))


def _thicker_fingers():
    """Shape direction 8 (finger girth) +2: 1.6 mm more finger flesh."""
    draw = scene.sample_motion

    def thicker(*a, **k):
        m, decor = draw(*a, **k)
        m.betas[:, 8] += 2.0
        return m, decor
    return mock.patch.object(scene, "sample_motion", thicker)


@contextlib.contextmanager
def _all(*patches):
    with contextlib.ExitStack() as stack:
        for p in patches:
            stack.enter_context(p)
        yield


#: name -> (what changes, a context manager factory, image size)
VARIANTS = {
    "as generated": ("nothing", contextlib.nullcontext, (320, 240)),
    "no motion blur": ("blur chance 0", lambda: _with_look(lambda lk: dataclasses.replace(lk, blur_chance=0.0)),
                       (320, 240)),
    "bare forearms": ("no sleeves", _bare_arms, (320, 240)),
    "brighter shadows": ("ambient light at least 0.45 (drawn 0.15-0.45)", lambda: _with_look(_lit), (320, 240)),
    "clean camera": ("no sensor noise, JPEG quality 95 (drawn 55-95)", lambda: _with_look(_clean), (320, 240)),
    "thicker fingers": ("finger girth +1.6 mm", _thicker_fingers, (320, 240)),
    "640x480": ("twice the resolution", contextlib.nullcontext, (640, 480)),
    "all four looks": ("bare forearms, brighter shadows, clean camera, thicker fingers",
                       lambda: _all(_bare_arms(), _with_look(lambda lk: _clean(_lit(lk))), _thicker_fingers()),
                       (320, 240)),
}


def hand_records(split: str, seed: int, sequences: int, frames: int, size, patch) -> list[dict]:
    """One record per visible hand: found, and its properties."""
    from mediapipe.python.solutions import hands as mp_hands

    with patch():
        synth = scene.Synthesizer(size)
        made = [synth.sequence(split, seed, i, frames) for i in range(sequences)]
    records = []
    with mp_hands.Hands(static_image_mode=True, max_num_hands=2, min_detection_confidence=0.5) as solution:
        for seq in made:
            g, meta = seq.gt, seq.meta
            for t, jpeg in enumerate(seq.frames):
                image = decode_jpeg(jpeg)
                h, w = image.shape[:2]
                wanted = g["present"][t] & g["visible"][t].any(1) & (g["boxes"][t, :, 2] > 0)
                dets = match(g["boxes"][t], wanted, _landmarks(solution.process(image), w, h))
                for hand in np.flatnonzero(wanted):
                    k2 = g["keypoints_2d"][t, hand]
                    records.append(dict(
                        found=dets[hand] is not None, facing=facing(g["keypoints_3d"][t, hand], hand),
                        side=float(g["boxes"][t, hand, 2:].max()) * 320 / w,
                        in_image=float(((k2 >= 0) & (k2 < [w, h])).all(1).mean()),
                        viewpoint=meta["viewpoint"], blur=meta["blur_chance"],
                        sleeve=meta["sleeve_cuff_m"][hand] is not None, ambient=meta["lighting"]["ambient"]))
    return records


def _row(name: str, found: np.ndarray) -> str:
    return f"| {name} | {len(found)} | {found.mean():.2f} |"


def by_property(records: list[dict]) -> list[str]:
    found = np.array([r["found"] for r in records])
    col = {k: np.array([r[k] for r in records]) for k in records[0] if k != "found"}
    groups = [
        ("palm faces the camera (cos > 0.4)", col["facing"] > 0.4),
        ("edge-on (abs cos <= 0.4)", np.abs(col["facing"]) <= 0.4),
        ("back faces the camera (cos < -0.4)", col["facing"] < -0.4),
        ("box < 50 px (at 320 px wide)", col["side"] < 50), ("box 50-90 px", (col["side"] >= 50) & (col["side"] < 90)),
        ("box >= 90 px", col["side"] >= 90),
        ("all 21 keypoints in the image", col["in_image"] == 1.0),
        ("80-99 % of them", (col["in_image"] >= 0.8) & (col["in_image"] < 1.0)),
        ("under 80 % of them", col["in_image"] < 0.8),
        ("third-person view", col["viewpoint"] == "third_person"), ("egocentric view", col["viewpoint"] == "egocentric"),
        ("no motion blur drawn", col["blur"] == 0.0), ("motion blur in every frame", col["blur"] == 1.0),
        ("bare forearm", ~col["sleeve"]), ("sleeved forearm", col["sleeve"]),
        ("ambient light < 0.3", col["ambient"] < 0.3), ("ambient light >= 0.3", col["ambient"] >= 0.3),
    ]
    return [_row(name, found[sel]) for name, sel in groups if sel.any()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="single_hand")
    ap.add_argument("--sequences", type=int, default=48)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--seed", type=int, default=77)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    results = {}
    for name in tqdm(args.variants, desc="variants", unit="variant"):
        _, patch, size = VARIANTS[name]
        results[name] = hand_records(args.split, args.seed, args.sequences, args.frames, size, patch)
    base = args.variants[0]
    lines = [f"# What makes MediaPipe miss synthetic hands ({args.split})", "",
             f"`python benchmarks/detector_factors.py --split {args.split} --sequences {args.sequences} "
             f"--frames {args.frames} --seed {args.seed}`, {time.strftime('%Y-%m-%d')}. MediaPipe Hands, static "
             "mode; a hand is found when a detection's landmarks sit in its box (`detector_on_synth.py`).", "",
             f"## Recall by property ({base})", "", "| hands | count | recall |", "|---|---:|---:|",
             *by_property(results[base]), "",
             "## The same sequences, one thing changed", "",
             "| variant | what changes | hands | recall | change |", "|---|---|---:|---:|---:|"]
    ref = np.mean([r["found"] for r in results[base]])
    for name, records in results.items():
        found = np.array([r["found"] for r in records])
        lines.append(f"| {name} | {VARIANTS[name][0]} | {len(found)} | {found.mean():.2f} | {found.mean() - ref:+.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        write_text(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
