"""Rendering speed on this machine: two posed hands of the open model, per backend.

    python benchmarks/bench_render.py
    python benchmarks/bench_render.py --size 480 640 --repeats 50

Each frame is one ``Renderer.render`` call (vertex normals, upload, draw, and colour,
depth and mesh id read back): the hands as closed meshes (the open model is watertight,
so back faces are skipped) over the default grey and over a photo-like image, and with
both sides of every face drawn (as for MANO, open at the wrist). Writes
``benchmarks/results/render_cpu.md`` (atomically) and prints it.
Goal: the GL backend takes <= 5 ms per 640x480 frame.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from fourdhands.geometry.rotations import axis_angle_to_matrix
from fourdhands.hands import load_hand_model, poses
from fourdhands.io import atomic_path
from fourdhands.render import gl
from fourdhands.render.renderer import Mesh, Renderer

RESULTS = Path(__file__).parent / "results"
GOAL_MS = 5.0
COLORS = {"right": (0.93, 0.62, 0.48), "left": (0.45, 0.62, 0.90)}


def two_hands(distance: float = 0.45) -> list[Mesh]:
    """The interlocked pair of open-model hands, seen from the right hand's back, centred
    ``distance`` metres in front of the camera."""
    scene = poses.interlocked()
    turn = axis_angle_to_matrix(torch.tensor([2.2, 0.3, 0.0], dtype=torch.float64)).numpy()
    meshes = []
    for side, p in scene.items():
        model = load_hand_model("open", side, dtype=torch.float64)
        out = model(**{k: torch.as_tensor(v)[None] for k, v in p.items()})
        meshes.append(Mesh(out.vertices[0].numpy() @ turn.T, out.faces.numpy(), COLORS[side], closed=True))
    centre = np.concatenate([m.vertices for m in meshes]).mean(0)
    for m in meshes:
        m.vertices = m.vertices - centre + [0.0, 0.0, distance]
    return meshes


def ms_per_frame(renderer: Renderer, meshes, K, background, repeats: int) -> tuple[float, float]:
    """Best and median milliseconds of ``repeats`` renders (after one warm-up)."""
    renderer.render(meshes, K, background)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        renderer.render(meshes, K, background)
        times.append(time.perf_counter() - t0)
    return 1e3 * min(times), 1e3 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, nargs=2, default=[480, 640], metavar=("H", "W"))
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    h, w = args.size
    meshes = two_hands()
    K = np.array([[1.2 * w, 0.0, w / 2], [0.0, 1.2 * w, h / 2], [0.0, 0.0, 1.0]])
    photo = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    backends = ["numpy"]
    try:
        device = gl.device_name()
        backends.insert(0, "gl")
    except gl.Unavailable as e:
        device = str(e)
    open_meshes = [dataclasses.replace(m, closed=False) for m in meshes]
    cases = [("closed", "grey", meshes, None), ("closed", "image", meshes, photo),
             ("both sides", "grey", open_meshes, None)]
    rows = []
    for backend in backends:
        renderer = Renderer((h, w), backend)
        for faces, label, scene, background in cases:
            best, median = ms_per_frame(renderer, scene, K, background, args.repeats)
            rows.append((renderer.backend, faces, label, best, median))
    gl_best = min((r[3] for r in rows if r[0] == gl.BACKEND), default=None)
    verdict = ("GL backend unavailable here" if gl_best is None else
               f"{'met' if gl_best <= GOAL_MS else 'NOT met'} ({gl_best:.2f} ms best)")
    lines = [
        "# Rendering speed (CPU)", "",
        f"Command: `python benchmarks/bench_render.py --size {h} {w} --repeats {args.repeats}`  ",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} at the start; Python {sys.version.split()[0]}; "
        f"GL: {device}.", "",
        f"Two interlocked open-model hands ({sum(len(m.faces) for m in meshes)} triangles), "
        f"{w}x{h}, ~{100 * np.mean(Renderer((h, w), backends[0]).render(meshes, K).mesh_id >= 0):.0f} % "
        "of the pixels covered. One frame = one `Renderer.render` call: normals, upload, "
        "draw, colour + depth + mesh id read back. Best and median of "
        f"{args.repeats} frames after a warm-up.", "",
        f"Goal GL <= {GOAL_MS:g} ms per frame: {verdict}.", "",
        "| backend | faces drawn | background | best ms/frame | median ms/frame |",
        "|---|---|---|---|---|",
    ] + [f"| {b} | {faces} | {label} | {best:.2f} | {median:.2f} |" for b, faces, label, best, median in rows]
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    with atomic_path(RESULTS / "render_cpu.md") as tmp:
        tmp.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
