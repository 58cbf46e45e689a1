"""``fourdhands run`` on the real kitchen clip with and without ``--refine`` (and with
``--smooth``): the frame-to-frame acceleration of the 2D keypoints, what refinement
costs beside the network, and a plot of one joint's track.

    python benchmarks/bench_kitchen_refine.py [--input ../shared/samples/real/egocentric_kitchen_hands.mp4]

MediaPipe finds the hands (its landmarks are refinement's 2D evidence beside the
network's own keypoints); rendering is off (it is the same in every arm). Acceleration:
``|k[t+1] - 2 k[t] + k[t-1]|`` of each 2D keypoint, px per frame^2, mean over keypoints and
over the frames where the hand is present three frames running. Writes
``benchmarks/results/kitchen_refine_cpu.md`` and ``kitchen_refine_track.png``.

Goal (issue 15): at least 2x lower with ``--refine``; refinement at most 50 % of the
network's own time per frame.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from fourdhands.export import read_params
from fourdhands.io import write_text
from fourdhands.run import RunSettings, run

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CLIP = ROOT.parent / "shared" / "samples" / "real" / "egocentric_kitchen_hands.mp4"
ARMS = {"network": {}, "refine": {"refine": True}, "smooth": {"smooth": True}}
JOINT = 8  # the index fingertip (OpenPose order)


def tracks(out: Path, names: list[str]) -> dict[str, np.ndarray]:
    """side -> `(F, 21, 2)` 2D keypoints, NaN where the hand is absent."""
    found = {side: np.full((len(names), 21, 2), np.nan) for side in ("right", "left")}
    for t, name in enumerate(names):
        record = read_params(out / "frames" / f"{name}.npz")
        for side in found:
            if side in record:
                found[side][t] = record[side]["keypoints_2d"]
    return found


def acceleration(track: np.ndarray) -> float:
    acc = track[2:] - 2 * track[1:-1] + track[:-2]
    per_frame = np.linalg.norm(acc, axis=-1).mean(-1)
    return float(np.nanmean(per_frame))


def plot(path: Path, runs: dict, side: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    for arm, style in (("network", dict(color="0.55", lw=1.2)), ("refine", dict(color="tab:orange", lw=1.8)),
                       ("smooth", dict(color="tab:blue", lw=1.0, ls="--"))):
        track = runs[arm]["tracks"][side][:, JOINT]
        for k, ax in enumerate(axes):
            ax.plot(track[:, k], label=arm, **style)
    axes[0].set_ylabel("x (px)")
    axes[1].set_ylabel("y (px)")
    axes[1].set_xlabel("frame")
    axes[0].set_title(f"{side} index fingertip on the kitchen clip: the network alone, --refine, --smooth")
    axes[0].legend(loc="best", fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", type=Path, default=CLIP)
    ap.add_argument("--out", type=Path, default=RESULTS / "kitchen_refine_cpu.md")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench_kitchen."))
    runs = {}
    try:
        for arm, extra in ARMS.items():
            t0 = time.perf_counter()
            s = run(args.input, work / arm, RunSettings(render=False, progress=False, animation=False, **extra))
            names = [p.stem for p in sorted((work / arm / "frames").glob("*.npz"))]
            runs[arm] = {"summary": s, "wall": time.perf_counter() - t0, "tracks": tracks(work / arm, names)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    frames = runs["network"]["summary"]["frames"]
    per = runs["network"]["summary"]["seconds_per_stage"]
    network = per["backbone"] + per["fusion"]
    rows = []
    for arm, r in runs.items():
        accel = {side: acceleration(tr) for side, tr in r["tracks"].items()}
        seconds = (r["summary"]["temporal"] or {}).get("seconds", {})
        rows.append((arm, accel, seconds))
    base = rows[0][1]
    lines = ["# `--refine` and `--smooth` on the real kitchen clip", "",
             f"`python benchmarks/bench_kitchen_refine.py`, this CPU (2 cores), the shipped checkpoint, MediaPipe, "
             f"{args.input.name} ({frames} frames), {time.strftime('%Y-%m-%d')}.", "",
             "| arm | 2D accel, right (px/frame^2) | left | ratio to the network, right / left | ms per frame |",
             "|---|---:|---:|---:|---:|"]
    for arm, accel, seconds in rows:
        spent = seconds.get("refine", 0.0) + seconds.get("smooth", 0.0)
        lines.append(f"| {arm} | {accel['right']:.2f} | {accel['left']:.2f} | "
                     f"{base['right'] / accel['right']:.2f}x / {base['left'] / accel['left']:.2f}x | "
                     f"{1000 * spent / frames:.1f} |")
    refine_s = rows[1][2].get("refine", 0.0)
    lines += ["", f"The network's own time (backbone + fusion): {1000 * network / frames:.1f} ms per frame; "
                  f"refinement {1000 * refine_s / frames:.1f} ms per frame ({100 * refine_s / network:.0f} % of it).",
              "", "![one joint's track](kitchen_refine_track.png)", ""]
    plot(args.out.with_name("kitchen_refine_track.png"), runs, "right")
    write_text(args.out, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
