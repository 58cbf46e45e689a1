"""Network speed on this machine: forward time per frame (two hands) per preset, fp32 and
bf16, achieved FLOP/s against the measured matmul peak, and the cost of temporal fusion in
video with cached per-frame features against single-frame mode.

    python benchmarks/bench_network.py                       # tiny, small, base
    python benchmarks/bench_network.py --presets tiny small base large huge --repeats 2

Writes ``benchmarks/results/network_<device>.md`` and ``.json`` (atomically) and prints
the table. Goals (issue 3): the ``small`` backbone at batch 18 reaches >= 75 % of the fp32
matmul peak; bf16 is >= 2.5x faster than fp32 with <= 1 % relative output error; the
cached temporal per-frame cost is <= 1.15x the single-frame cost.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from fourdhands.io import atomic_path, write_json
from fourdhands.model.config import model_config
from fourdhands.model.network import FourDHands
from fourdhands.model.profile import count_flops, profile

RESULTS = Path(__file__).parent / "results"


def best_time(fn, repeats: int, warmup: int = 2) -> float:
    """Fastest of ``repeats`` runs, seconds (the least disturbed by a noisy machine)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def best_times(fns, repeats: int, warmup: int = 2) -> list[float]:
    """Fastest run of each function, the functions taking turns."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def matmul_peak(dtype: torch.dtype, repeats: int, sizes=(512, 1024, 2048)) -> float:
    """Best FLOP/s of square matmuls of a few sizes."""
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        best = max(best, 2 * n ** 3 / best_time(lambda: a @ b, repeats))
    return best


def frame_inputs(config, t: int) -> dict:
    h, w = config.image_size
    g = torch.Generator().manual_seed(0)
    boxes = torch.tensor([[300.0, 240.0, 90.0, 120.0], [380.0, 250.0, 90.0, 120.0]])
    return dict(crops=torch.randn(1, t, 2, 3, h, w, generator=g), boxes=boxes.expand(1, t, 2, 4),
                image_size=torch.tensor([[640.0, 480.0]]))


def bench_preset(name: str, repeats: int, peak32: float, bf16: bool) -> dict:
    torch.manual_seed(0)
    config = model_config(name, "full")
    net = FourDHands(config).eval()
    prof = profile(config)
    x1 = frame_inputs(config, 1)
    x9 = frame_inputs(config, config.seq_len)
    row = {"preset": name, "parameters": prof.parameters,
           "gflops_single_frame": prof.flops_single_frame / 1e9}
    with torch.no_grad():
        feats = net.encode(x9["crops"], x9["boxes"])
        crops = torch.randn(18, 3, *config.image_size)
        # interleaved, best of each: on a noisy machine the ratios stay honest
        t32, t_encode, t_decode, t_backbone = best_times([
            lambda: net(**x1),
            lambda: net.encode(x1["crops"], x1["boxes"]),
            lambda: net.decode(feats, x9["boxes"], x9["image_size"]),
            lambda: net.backbone(crops),  # batch 18: a 9-frame window of two hands
        ], repeats)
        t16 = rel = float("nan")
        if bf16:  # one timed call: without native bf16 units it can be very slow
            with torch.autocast("cpu", dtype=torch.bfloat16):
                t16 = best_time(lambda: net(**x1), 1, warmup=0)
                out16 = net(**x1).camera_vertices.float()
            out32 = net(**x1).camera_vertices
            rel = ((out16 - out32).norm() / out32.norm()).item()
    backbone_flops = count_flops(lambda: net.backbone(crops))
    row.update({
        "ms_per_frame_fp32": 1e3 * t32,
        "ms_per_frame_bf16": 1e3 * t16,
        "bf16_speedup": t32 / t16,
        "bf16_relative_error": rel,
        "fp32_gflops_per_s": prof.flops_single_frame / t32 / 1e9,
        "fp32_fraction_of_peak": prof.flops_single_frame / t32 / peak32,
        "backbone_b18_fraction_of_peak": backbone_flops / t_backbone / peak32,
        "video_ms_per_frame": 1e3 * (t_encode + t_decode),
        "video_over_single_frame": (t_encode + t_decode) / t32,
    })
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "small", "base"])
    parser.add_argument("--bf16-presets", nargs="*", default=["tiny", "small"],
                        help="presets also timed under bf16 autocast")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peak32 = matmul_peak(torch.float32, args.repeats)
    peak16 = matmul_peak(torch.bfloat16, 1, sizes=(256, 512))
    rows = []
    for name in args.presets:
        print(f"measuring {name} ...", flush=True)
        rows.append(bench_preset(name, args.repeats, peak32, name in args.bf16_presets))
    # the peak again at the end: a machine busy at the start must not inflate "% of peak"
    later = matmul_peak(torch.float32, args.repeats)
    if later > peak32:
        for r in rows:
            r["fp32_fraction_of_peak"] *= peak32 / later
            r["backbone_b18_fraction_of_peak"] *= peak32 / later
        peak32 = later
    device = "cpu"
    meta = {"command": "python benchmarks/bench_network.py " + " ".join(
                f"--{k} {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in vars(args).items()),
            "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
            "torch": torch.__version__, "fp32_matmul_peak_gflops": peak32 / 1e9,
            "bf16_matmul_peak_gflops": peak16 / 1e9}
    RESULTS.mkdir(exist_ok=True)
    write_json(RESULTS / f"network_{device}.json", {"meta": meta, "rows": rows})
    lines = [
        f"# Network speed ({device})", "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}, torch {meta['torch']}; matmul peak fp32 "
        f"{meta['fp32_matmul_peak_gflops']:.0f} GFLOP/s, bf16 {meta['bf16_matmul_peak_gflops']:.0f} GFLOP/s.", "",
        "Per frame = two hands. `full` ablation, 256x192 crops, T=9. Ratios are measured in one run.", "",
        "| preset | params | GFLOPs/frame | fp32 ms/frame | bf16 ms/frame | bf16 speed-up | bf16 rel. error "
        "| fp32 % of peak | backbone b18 % of peak | video ms/frame | video / single |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['preset']} | {r['parameters'] / 1e6:.1f}M | {r['gflops_single_frame']:.1f} "
            f"| {r['ms_per_frame_fp32']:.0f} | {r['ms_per_frame_bf16']:.0f} | {r['bf16_speedup']:.2f}x "
            f"| {100 * r['bf16_relative_error']:.2f} % | {100 * r['fp32_fraction_of_peak']:.0f} % "
            f"| {100 * r['backbone_b18_fraction_of_peak']:.0f} % | {r['video_ms_per_frame']:.0f} "
            f"| {r['video_over_single_frame']:.2f}x |")
    text = "\n".join(lines) + "\n"
    with atomic_path(RESULTS / f"network_{device}.md") as tmp:
        tmp.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
