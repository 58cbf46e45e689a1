"""Synthetic data generation speed on this machine: frames generated per second, render
plus write, through the same ``generate`` job that ``fourdhands synth`` runs.

    python benchmarks/bench_synth.py
    python benchmarks/bench_synth.py --sizes 320x240 640x480 --sequences 8 --frames 30 --backends auto numpy

Each size runs the whole job (motion, posing, rendering, visibility, blur, noise, JPEG,
ground truth, tar shards) into a temporary folder, after setup (hand model, renderer);
the renderer's own share is timed alongside. Writes ``benchmarks/results/synth_cpu.md``
(atomically) and prints it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from fourdhands.io import atomic_path
from fourdhands.render.renderer import Renderer
from fourdhands.synth import generate

RESULTS = Path(__file__).parent / "results"


def measure(size: tuple[int, int], backend: str, args) -> dict:
    """Generate ``args.sequences`` x ``args.frames`` at ``size``: rates and sizes."""
    spent = {"render": 0.0}
    original = Renderer.render

    def timed(self, *a, **k):
        t0 = time.perf_counter()
        try:
            return original(self, *a, **k)
        finally:
            spent["render"] += time.perf_counter() - t0

    Renderer.render = timed
    try:
        with tempfile.TemporaryDirectory() as out:
            summary = generate(out, args.sequences, args.frames, args.seed, args.split, size,
                               shard_size=args.sequences, progress=False, backend=backend)
            megabytes = sum(p.stat().st_size for p in Path(out).iterdir()) / 1e6
    finally:
        Renderer.render = original
    frames = summary["frames"]
    return {"size": f"{size[0]}x{size[1]}", "backend": summary["backend"], "frames": frames,
            "fps": summary["frames_per_second"], "ms_per_frame": 1e3 * summary["seconds"] / frames,
            "render_ms_per_frame": 1e3 * spent["render"] / frames, "mb_per_frame": megabytes / frames}


def _size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=_size, default=[(320, 240), (640, 480)])
    parser.add_argument("--sequences", type=int, default=8)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--split", default="train")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backends", nargs="+", default=["auto"], choices=("auto", "gl", "numpy"))
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = []
    for backend in args.backends:
        for size in args.sizes:
            print(f"measuring {size[0]}x{size[1]} ({backend}) ...", flush=True)
            rows.append(measure(size, backend, args))
    command = ("python benchmarks/bench_synth.py --sizes " + " ".join(f"{w}x{h}" for w, h in args.sizes)
               + f" --sequences {args.sequences} --frames {args.frames} --split {args.split}"
               + f" --seed {args.seed} --backends {' '.join(args.backends)}")
    lines = [
        "# Synthetic data generation speed (CPU)", "",
        f"Command: `{command}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, load average {load:.1f} at the start; "
        f"Python {sys.version.split()[0]}.", "",
        f"One process, `{args.split}` split (its mixture of scenarios), {args.sequences} sequences of "
        f"{args.frames} frames per size. A frame = everything `fourdhands synth` does for it: motion "
        "and posing (per sequence, spread over its frames), rendering both hands and any objects, "
        "visibility and boxes, motion blur, sensor noise, JPEG, ground truth and the tar shard "
        "written to disk. Setup (building the hand model, the GL context) is excluded.", "",
        "| size | backend | frames/s | ms/frame | of which rendering ms | MB written/frame |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['size']} | {r['backend']} | {r['fps']:.1f} | {r['ms_per_frame']:.1f} "
                     f"| {r['render_ms_per_frame']:.1f} | {r['mb_per_frame']:.3f} |")
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    with atomic_path(RESULTS / "synth_cpu.md") as tmp:
        tmp.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
