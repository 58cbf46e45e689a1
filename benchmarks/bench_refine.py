"""What ``--refine`` (clip-level optimisation) and ``--smooth`` (the online One-Euro filter)
buy on the held-out synthetic splits, against the network alone, with the same boxes.

    python benchmarks/bench_refine.py [--splits interacting occluded] [--sequences 5] [--out ...]

Each sequence of each split (``fourdhands synth`` folders under ``data/synth``) goes
through :class:`~fourdhands.pipeline.Reconstructor` with the shipped checkpoint and its
true boxes (their 2D keypoints turn the upright crops, as a detector's landmarks would;
refinement is given no landmarks, only the network's own keypoints). Then three arms on
the same network results: as they are, refined, smoothed. Per arm, mean of both hands:
Accel_E (mm/frame^2, the keypoints' acceleration error), wrist-aligned MPJPE, MRRPE, and
on frames with both hands the interpenetration: the deepest vertex of either hand inside
the other (exact inside tests on the full meshes; depth = distance to the other hand's
surface), mean over frames. Timing: the network's own time
(backbone and fusion) per frame against refinement's and the filter's.

Goals (issue 15): Accel_E at least 2x lower with refine, MPJPE-w at most 1 mm worse;
interpenetration on interacting at least 5x lower, MRRPE no worse; smooth lowers Accel_E
1.5x at under 1 ms a frame; refinement at most 50 % of the network's time per frame.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from fourdhands.geometry.inside import inside, surface_distance
from fourdhands.io import write_text
from fourdhands.pipeline import SIDES, Reconstructor, TrackedHand
from fourdhands.refine import ClipRefiner, RefineConfig
from fourdhands.run import load_network
from fourdhands.smoothing import HandSmoother
from fourdhands.synth.shards import SyntheticSequences

ROOT = Path(__file__).resolve().parents[1]
ARMS = ("network", "refine", "smooth")


def network_results(net, gap: int, seq) -> tuple[list, float]:
    gt = seq.gt
    rec = Reconstructor(net, gap=gap)
    results = []
    for t in range(seq.num_frames):
        hands = tuple(TrackedHand(tuple(gt["boxes"][t, h]), 1.0, gt["keypoints_2d"][t, h])
                      if gt["present"][t, h] else None for h in range(2))
        results += rec.push(seq.frame(t), hands, float(gt["K"][t, 0, 0]), tuple(gt["K"][t, :2, 2]))
    results += rec.finish()
    return results, rec.timings["backbone"] + rec.timings["fusion"]


def refined(results: list, models: dict) -> tuple[list, float]:
    refiner = ClipRefiner(models, RefineConfig())
    t0 = time.perf_counter()
    out = [r for res in results for r in refiner.push(res, {})] + refiner.finish()
    return out, time.perf_counter() - t0


def smoothed(results: list, models: dict, fps: float = 30.0) -> tuple[list, float]:
    import dataclasses

    smoother, seconds, out = HandSmoother(), 0.0, []
    for t, r in enumerate(results):
        t0 = time.perf_counter()
        params = smoother.update(t / fps, r)  # the filter alone is timed; the mesh below is the caller's
        seconds += time.perf_counter() - t0
        hands = {}
        for side, p in params.items():
            model = models[side]
            with torch.no_grad():
                o = model(**{k: torch.as_tensor(p[k], dtype=torch.float32)[None]
                             for k in ("global_orient", "hand_pose", "betas", "transl")})
            kp = o.keypoints[0].double().numpy()
            hands[side] = dataclasses.replace(r.hands[side], keypoints_3d=kp, vertices=o.vertices[0].double().numpy(),
                                              global_orient=p["global_orient"], hand_pose=p["hand_pose"],
                                              transl=p["transl"], betas=p["betas"])
        v = hands["left"].keypoints_3d[0] - hands["right"].keypoints_3d[0] if len(hands) == 2 else None
        out.append(dataclasses.replace(r, hands=hands, v=v))
    return out, seconds


def depth_inside(a: np.ndarray, b: np.ndarray, faces_b: np.ndarray) -> float:
    """The deepest of vertices ``a`` inside the mesh (``b``, ``faces_b``): its distance to
    that mesh's surface, metres (0 if none is inside)."""
    A, B, F = torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32), torch.as_tensor(faces_b)
    inner = A[inside(A, B, F)]
    return float(surface_distance(inner, B, F).max()) if len(inner) else 0.0


def scores(results: list, gt: dict, faces: dict, penetration: bool = True) -> dict[str, list]:
    s = {"accel": [], "mpjpe_w": [], "mrrpe": [], "penetration": []}
    for h, side in enumerate(SIDES):
        ok = np.array([r is not None and side in r.hands for r in results]) & gt["present"][:, h]
        kp = np.stack([r.hands[side].keypoints_3d if o else np.zeros((21, 3)) for r, o in zip(results, ok)])
        g = gt["keypoints_3d"][:, h]
        for t in np.nonzero(ok)[0]:
            s["mpjpe_w"].append(np.linalg.norm((kp[t] - kp[t, 0]) - (g[t] - g[t, 0]), axis=-1).mean())
        trip = ok[:-2] & ok[1:-1] & ok[2:]
        acc = (kp[2:] - 2 * kp[1:-1] + kp[:-2]) - (g[2:] - 2 * g[1:-1] + g[:-2])
        s["accel"] += list(np.linalg.norm(acc, axis=-1).mean(-1)[trip])
    for t, r in enumerate(results):
        if r is not None and r.v is not None and gt["present"][t].all():
            s["mrrpe"].append(np.linalg.norm(r.v - gt["v"][t]))
            if not penetration:
                continue
            right, left = r.hands["right"].vertices, r.hands["left"].vertices
            s["penetration"].append(max(depth_inside(right, left, faces["left"]),
                                        depth_inside(left, right, faces["right"])))
    return s


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "synth")
    ap.add_argument("--splits", nargs="+", default=["interacting", "occluded"])
    ap.add_argument("--sequences", type=int, default=None, help="the first N sequences of each split")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "refine_cpu.md")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    net, gap = load_network(None, None, "cpu")
    models = {"right": net.right_model, "left": net.left_model}
    faces = {side: m.faces.numpy() for side, m in models.items()}
    rows, timings = [], {}
    for split in args.splits:
        timing = timings[split] = {"network": 0.0, "refine": 0.0, "smooth": 0.0, "frames": 0}
        totals = {arm: {"accel": [], "mpjpe_w": [], "mrrpe": [], "penetration": []} for arm in ARMS}
        source = SyntheticSequences(args.data / split)
        for i in range(min(len(source), args.sequences or len(source))):
            seq = source[i]
            base, t_net = network_results(net, gap, seq)
            arms = {"network": (base, 0.0), "refine": refined(base, models), "smooth": smoothed(base, models)}
            timing["network"] += t_net
            timing["frames"] += len(base)
            for arm, (res, seconds) in arms.items():
                timing[arm] += seconds
                for k, v in scores(res, seq.gt, faces).items():
                    totals[arm][k] += v
            print(f"{split} sequence {i}: done", flush=True)
        for arm in ARMS:
            m = {k: 1000 * float(np.mean(v)) if v else float("nan") for k, v in totals[arm].items()}
            rows.append(f"| {split} | {arm} | {m['accel']:.2f} | {m['mpjpe_w']:.1f} | {m['mrrpe']:.1f} | "
                        f"{m['penetration']:.2f} |")
    timings["all"] = {k: sum(t[k] for t in timings.values()) for k in ("network", "refine", "smooth", "frames")}
    lines = [f"| {split} | {t['frames']} | {1000 * t['network'] / t['frames']:.1f} | "
             f"{1000 * t['refine'] / t['frames']:.1f} ({100 * t['refine'] / t['network']:.0f} %) | "
             f"{1000 * t['smooth'] / t['frames']:.2f} |" for split, t in timings.items()]
    text = "\n".join([
        "# Refinement and smoothing on the held-out synthetic splits", "",
        f"`python benchmarks/bench_refine.py{'' if args.data == ROOT / 'data' / 'synth' else f' --data {args.data}'}"
        f" --splits {' '.join(args.splits)}"
        f"{f' --sequences {args.sequences}' if args.sequences else ''}`, this CPU (2 cores), the shipped "
        f"checkpoint, true boxes, {time.strftime('%Y-%m-%d')}.", "",
        "| split | arm | Accel_E (mm/frame^2) | MPJPE-w (mm) | MRRPE (mm) | interpenetration (mm) |",
        "|---|---|---:|---:|---:|---:|", *rows, "",
        "Per frame, measured in this run: the network's own time (backbone + fusion), refinement's (and its share of "
        "the network's), the One-Euro filter's (the mesh from the smoothed parameters not counted: the run's writer "
        "recomputes it).", "",
        "| split | frames | network (ms) | refinement (ms) | filter (ms) |", "|---|---:|---:|---:|---:|", *lines, ""])
    write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
