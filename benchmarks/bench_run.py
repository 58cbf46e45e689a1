"""End-to-end speed of ``fourdhands run`` on a 640x480 clip, split into its stages.

    python benchmarks/bench_run.py                      # the shipped checkpoint, the demo clip
    python benchmarks/bench_run.py --input ../shared/samples/real/egocentric_kitchen_hands.mp4 \
        --out benchmarks/results/run_kitchen_cpu.md   # a real clip, MediaPipe, default camera

The clip is the demo's (a synthetic two-hand video, 640x480, 30 fps; ``fourdhands demo``
makes the same one). Two runs in one process, one after the other: with rendering
(overlays, side views, the two videos) and with ``--no-render``. Hands come from MediaPipe
when it is installed, else from the clip's true boxes (then "detection" is a file lookup).

Goals (issue 6): the non-model overhead (decode, detection, crops, rendering, writing) at
most 25 % of the total; rendering, when on, at most 15 %. Issue 15: writing's share of
the run, with rendering on, under 10 % (the writer works on its own thread: its share is
the time the run waits for it, ``writer_wait``; its own busy time is shown beside).

Writes ``benchmarks/results/run_cpu.md`` (atomically) and prints it.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from fourdhands.demo import _mediapipe_available, make_clip
from fourdhands.io import write_text
from fourdhands.run import STAGES, RunSettings, run

RESULTS = Path(__file__).parent / "results"
MODEL = ("backbone", "fusion")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default=None, help="checkpoint (default: the shipped one)")
    ap.add_argument("--out", default=str(RESULTS / "run_cpu.md"))
    ap.add_argument("--input", default=None, help="a video of your own (MediaPipe's hands, default camera) "
                                                  "instead of the demo clip")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_run."))
    try:
        if args.input:
            clip, what, detector = Path(args.input), Path(args.input).name, "mediapipe"
            camera = {}
        else:
            gt = make_clip(work / "input")
            clip, what = work / "input" / "clip.mp4", "the demo clip"
            detector = "mediapipe" if _mediapipe_available() else "true boxes"
            camera = dict(focal=float(gt["K"][0, 0, 0]), principal_point=tuple(gt["K"][0, :2, 2].tolist()))
        rows = []
        for render in (True, False):
            settings = RunSettings(ckpt=args.ckpt, render=render, progress=False, **camera,
                                   boxes=None if detector == "mediapipe" else str(work / "input" / "boxes.json"))
            t0 = time.perf_counter()
            s = run(clip, work / f"out_{render}", settings)
            rows.append((render, s, time.perf_counter() - t0))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = ["# `fourdhands run`: end-to-end speed on this CPU", "",
             "Command: `python benchmarks/bench_run.py" + "".join(f" {a}" for a in sys.argv[1:]) + "`  ",
             f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
             f"torch {torch.__version__}; hands from {detector}; {what} "
             f"({rows[0][1]['frames']} frames), checkpoint {Path(rows[0][1]['checkpoint']).name}.", "",
             "| stage | " + " | ".join(f"{'render' if r else 'no render'} ms/frame | share" for r, _, _ in rows) + " |",
             "|---|" + "---:|---:|" * len(rows)]
    for stage in STAGES + ("other",):
        cells = []
        for _, s, wall in rows:
            per = s["seconds_per_stage"]
            on_run = sum(v for k, v in per.items() if k != "writing")  # writing: beside the run
            value = wall - on_run if stage == "other" else per.get(stage, 0.0)
            cells += [f"{1000 * value / s['frames']:.1f}", f"({100 * value / wall:.1f} %)" if stage == "writing"
                      else f"{100 * value / wall:.1f} %"]
        label = "writing (writer thread, beside)" if stage == "writing" else stage
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("| **total** | " + " | ".join(f"**{1000 * w / s['frames']:.1f}** | 100 %" for _, s, w in rows) + " |")
    lines += ["", "| run | frames/s | model (backbone + fusion) | non-model overhead | rendering |",
              "|---|---:|---:|---:|---:|"]
    for render, s, wall in rows:
        per = s["seconds_per_stage"]
        model = sum(per[k] for k in MODEL)
        lines.append(f"| {'render' if render else 'no render'} | {s['frames'] / wall:.2f} | "
                     f"{100 * model / wall:.1f} % | {100 * (wall - model) / wall:.1f} % | "
                     f"{100 * per['rendering'] / wall:.1f} % |")
    render_share = rows[0][1]["seconds_per_stage"]["rendering"] / rows[0][2]
    overhead = [(w - sum(s["seconds_per_stage"][k] for k in MODEL)) / w for _, s, w in rows]
    writing_share = rows[0][1]["seconds_per_stage"]["writer_wait"] / rows[0][2]
    lines += ["", f"Goal non-model overhead <= 25 %: {'met' if max(overhead) <= 0.25 else 'not met'} "
                  f"({', '.join(f'{100 * o:.1f} %' for o in overhead)}); rendering <= 15 % when on: "
                  f"{'met' if render_share <= 0.15 else 'not met'} ({100 * render_share:.1f} %); writing "
                  f"(the wait for the writer) < 10 % with rendering: {'met' if writing_share < 0.10 else 'not met'} "
                  f"({100 * writing_share:.1f} %).",
              "'other' is everything outside the timed stages (setup: loading the checkpoint, "
              "building the hand model, the summary)."]
    text = "\n".join(lines) + "\n"
    write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
