"""Does the data pipeline keep training fed? Training samples per second from the
dataset (2 DataLoader workers, augmentation on) against the samples per second one
training step of the network consumes (forward + backward + AdamW), per setting.

    python benchmarks/bench_data.py                 # makes a small synthetic set in a temp folder
    python benchmarks/bench_data.py --data data/synth/train
    python benchmarks/bench_data.py --data dexycb:/data/DexYCB@s0-train --out benchmarks/results/data_dexycb_cpu.md

Writes ``--out`` (default ``benchmarks/results/data_cpu.md``, atomically) and prints it. Both rates are
measured in the same run, one after the other, each with the whole machine; in a real run
they share it, so a ratio near 1 means the step would wait.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from fourdhands.data import HandWindows, SampleConfig
from fourdhands.io import atomic_path
from fourdhands.model.config import model_config
from fourdhands.model.network import FourDHands
from fourdhands.objective import loss_terms
from fourdhands.synth.generate import generate
from fourdhands.data.sample import network_inputs
from fourdhands.data.sources import open_sequences

RESULTS = Path(__file__).parent / "results"


def data_rate(source, sample: SampleConfig, batch: int, workers: int, batches: int) -> float:
    ds = HandWindows(source, sample, seed=0)
    loader = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(0))
    it = iter(loader)
    next(it)  # workers started, first batch out
    t0 = time.perf_counter()
    n = 0
    for _ in range(batches):
        batch_ = next(it, None)
        if batch_ is None:  # a small dataset: go round again
            it = iter(loader)
            batch_ = next(it)
        n += len(batch_["crops"])
    return n / (time.perf_counter() - t0)


def step_rate(preset: str, ablation: str, sample: SampleConfig, source, batch: int, steps: int) -> float:
    torch.manual_seed(0)
    cfg = model_config(preset, ablation, image_size=sample.crop_hw, seq_len=max(sample.seq_len, 1))
    net = FourDHands(cfg).train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, fused=True)
    ds = HandWindows(source, sample, seed=0)
    b = torch.utils.data.default_collate([ds[i] for i in range(batch)])
    models = (net.right_model, net.left_model)

    def one():
        loss = loss_terms(net(**network_inputs(b)), b, models).total
        opt.zero_grad()
        loss.backward()
        opt.step()

    one()
    t0 = time.perf_counter()
    for _ in range(steps):
        one()
    return batch * steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None,
                        help="a data spec: a synthetic folder or KIND:PATH[@SPLIT] (default: make a synthetic set)")
    parser.add_argument("--out", type=Path, default=RESULTS / "data_cpu.md")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data
        if root is None:
            root = Path(tmp) / "synth"
            generate(root, sequences=8, frames=24, seed=0, split="train", image_size=(320, 240), progress=False)
        source = open_sequences(str(root))
        settings = [("small", "full", (256, 192), 9), ("small", "cross_s", (256, 192), 1),
                    ("tiny", "full", (128, 96), 9), ("tiny", "cross_s", (128, 96), 1)]
        rows = []
        for preset, ablation, hw, t in settings:
            sample = SampleConfig(crop_hw=hw, seq_len=t, gap=2, augment=True)
            print(f"measuring {preset} {ablation} {hw} T={t} ...", flush=True)
            d = data_rate(source, sample, args.batch, args.workers, args.batches)
            s = step_rate(preset, ablation, sample, source, args.batch, args.steps)
            rows.append((preset, ablation, hw, t, d, s))
    lines = ["# Data pipeline against the training step (CPU)", "",
             f"Command: `python benchmarks/bench_data.py --batch {args.batch} --workers {args.workers} "
             f"--batches {args.batches} --steps {args.steps}" + (f" --data {args.data}" if args.data else "")
             + (f" --out {args.out}`" if args.out != RESULTS / "data_cpu.md" else "`"), "",
             ("Synthetic 320x240 frames" if args.data is None else f"Frames of `{args.data}`")
             + ", augmentation on, batch of windows. `data` = samples/s from the "
             f"DataLoader with {args.workers} workers; `step` = samples/s one training step consumes "
             "(forward, backward, AdamW); fed when data/step >= 1.", "",
             "| preset | ablation | crop | T | data samples/s | step samples/s | data / step |",
             "|---|---|---|---|---|---|---|"]
    for preset, ablation, hw, t, d, s in rows:
        lines.append(f"| {preset} | {ablation} | {hw[0]}x{hw[1]} | {t} | {d:.1f} | {s:.2f} | {d / s:.1f}x |")
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    with atomic_path(args.out) as tmp_path:
        tmp_path.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
