"""CPU speed of the PyTorch port of MediaPipe's hand-landmark network against LiteRT.

    python benchmarks/bench_encoder.py                    # eager, channels_last, jit.freeze
    python benchmarks/bench_encoder.py --compile          # also torch.compile (needs a C++ compiler)
    python benchmarks/bench_encoder.py --compile --threads 2 1   # tables at 2 and 1 threads

Both run the same real 224x224 hand crops cut from ``../shared/samples/real`` (skips when
absent) with 2 threads, at batch 1 and batch 2 (one frame's two hands). LiteRT does batch 2
either as two invocations or with its input resized to (2, 224, 224, 3); the ratio uses
the faster of the two. Repetitions are interleaved across all variants so that machine
noise hits them alike; the table reports medians and the load average before and after.
torch's OpenMP splits each op evenly between its threads, so one thread sharing a core with
another process stalls every op (XNNPACK's pool lets the caller steal the late thread's
tiles): on a busy 2-core machine the 2-thread torch numbers degrade far more than LiteRT's.
``OMP_WAIT_POLICY=PASSIVE`` (waiting threads yield their core at once) roughly halved them there.
Writes ``benchmarks/results/encoder_cpu.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from fourdhands.model.mediapipe_hand import load_mediapipe_hand, tflite_path

RESULTS = Path(__file__).parent / "results"
REAL = Path(__file__).resolve().parents[2] / "shared/samples/real"
# Hand centres and sizes in photo pixels (from mediapipe.solutions.hands), as in the test.
HANDS = [
    ("two_hands_on_face_close.jpg", 492, 702, 387),
    ("two_hands_on_face_close.jpg", 686, 684, 392),
    ("people_signing_many_hands.jpg", 432, 359, 137),
    ("people_signing_many_hands.jpg", 319, 247, 165),
]


def crops() -> np.ndarray:
    """(4, 224, 224, 3) float32 RGB in [0, 1]."""
    from PIL import Image

    out = []
    for name, cx, cy, size in HANDS:
        with Image.open(REAL / name) as im:
            h = size * 0.75
            box = (round(cx - h), round(cy - h), round(cx + h), round(cy + h))
            out.append(np.asarray(im.convert("RGB").crop(box).resize((224, 224), Image.BILINEAR),
                                  dtype=np.float32) / 255.0)
    return np.stack(out)


def litert_runner(batch: int, resized: bool, threads: int):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(tflite_path()), num_threads=threads)
    index = it.get_input_details()[0]["index"]
    if resized:
        it.resize_tensor_input(index, [batch, 224, 224, 3])
    it.allocate_tensors()
    out = [o["index"] for o in it.get_output_details()]

    def run(x: np.ndarray):
        if resized:
            it.set_tensor(index, x)
            it.invoke()
            return [it.get_tensor(o) for o in out]
        res = []
        for row in x:
            it.set_tensor(index, row[None])
            it.invoke()
            res.append([it.get_tensor(o).copy() for o in out])
        return res

    return run


def torch_variants(compile_too: bool) -> dict:
    """name -> callable taking an NCHW float tensor (each checked against the NCHW model)."""
    nchw = load_mediapipe_hand().to(memory_format=torch.contiguous_format)
    variants = {"torch eager, NCHW weights": nchw, "torch eager, channels_last (as loaded)": load_mediapipe_hand()}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the SAME-pad sizes are constants at 224
        traced = torch.jit.trace(load_mediapipe_hand(), torch.rand(2, 3, 224, 224), strict=False)
        variants["torch jit.freeze + optimize_for_inference"] = torch.jit.optimize_for_inference(
            torch.jit.freeze(traced.eval()))
    if compile_too:
        variants["torch.compile (inductor, first call excluded)"] = torch.compile(load_mediapipe_hand(), dynamic=False)
    return variants


def timed(fns: dict, x_np: np.ndarray, x_t: torch.Tensor, repeats: int, warmup: int = 3) -> dict:
    """Median ms of each function, repetitions interleaved."""
    times = {k: [] for k in fns}
    with torch.inference_mode():
        for _ in range(warmup):
            for k, (fn, kind) in fns.items():
                fn(x_np if kind == "np" else x_t)
        for _ in range(repeats):
            for k, (fn, kind) in fns.items():
                t0 = time.perf_counter()
                fn(x_np if kind == "np" else x_t)
                times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, nargs="+", default=[2], help="torch and LiteRT threads (one table each)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (inductor)")
    ap.add_argument("--out", type=Path, default=RESULTS / "encoder_cpu.md")
    args = ap.parse_args(argv)
    if not REAL.is_dir():
        print(f"skipped: {REAL} is absent")
        return 0
    data = crops()
    variants = torch_variants(args.compile)
    ref = variants["torch eager, NCHW weights"]
    check = torch.from_numpy(data[:2]).permute(0, 3, 1, 2).contiguous()
    with torch.inference_mode():
        want = ref(check)["landmarks"]
        for name, fn in variants.items():
            err = (fn(check)["landmarks"] - want).abs().max().item()
            assert err < 1e-2, f"{name} differs from eager by {err} px"

    import ai_edge_litert

    cmd = "python benchmarks/bench_encoder.py" + (" --compile" if args.compile else "") + \
        (f" --repeats {args.repeats}" if args.repeats != 30 else "") + \
        (" --threads " + " ".join(map(str, args.threads)) if args.threads != [2] else "")
    lines = [
        "# MediaPipe hand-landmark network (full): PyTorch port vs LiteRT, CPU",
        "",
        f"Command: `{cmd}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; torch {torch.__version__}, "
        f"ai-edge-litert {getattr(ai_edge_litert, '__version__', '?')} (XNNPACK), Python {sys.version.split()[0]}. "
        "Input: real 224x224 hand crops, float32; same thread count for torch (torch.set_num_threads) and "
        f"LiteRT (Interpreter num_threads), OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}. "
        f"Median of {args.repeats} interleaved repetitions; "
        "ratio = time / the faster LiteRT time at that batch and thread count. The load average counts "
        "other processes on the machine; with more runnable processes than CPUs, multi-threaded torch "
        "stalls at every op's barrier (see the script's docstring).",
    ]
    for threads in args.threads:
        torch.set_num_threads(threads)
        load_before = os.getloadavg()[0]
        rows = []
        for batch in (1, 2):
            x_np = np.ascontiguousarray(data[:batch])
            x_t = torch.from_numpy(x_np).permute(0, 3, 1, 2).contiguous()
            fns = {"LiteRT, one invoke per crop": (litert_runner(batch, False, threads), "np")}
            if batch > 1:
                fns["LiteRT, input resized to batch"] = (litert_runner(batch, True, threads), "np")
            fns.update({k: (v, "t") for k, v in variants.items()})
            med = timed(fns, x_np, x_t, args.repeats)
            lite = min(v for k, v in med.items() if k.startswith("LiteRT"))
            rows += [(batch, k, v, v / lite) for k, v in med.items()]
        load_after = os.getloadavg()[0]
        lines += [
            "",
            f"## {threads} thread{'s' if threads > 1 else ''} (1-min load average {load_before:.2f} before, "
            f"{load_after:.2f} after)",
            "",
            "| batch | runner | median ms | ratio to LiteRT |",
            "|---:|---|---:|---:|",
        ]
        lines += [f"| {b} | {k} | {v:.2f} | {r:.2f} |" for b, k, v, r in rows]
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(args.out)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
