"""How a model's errors fall with the training samples it has seen: every checkpoint of
one or more runs (a run started with ``init`` continues the count of the run it started
from), evaluated on one held-out split, next to the split's mean-prediction references
and the shipped model's goal (a third of the reference).

    python benchmarks/learning_curve.py runs/tiny_cross_s runs/tiny_long_cross_s \\
        --data data/synth/interacting --frames 96 --out benchmarks/results/learning_curve_cpu

Writes ``OUT.md`` (a table) and ``OUT.png`` (four panels). Each checkpoint's numbers are
kept in its folder (``eval/curve-<split>-<frames>.json``), so a rerun evaluates only new
checkpoints. ``--frames`` windows are spread evenly over the split (all with 0).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from fourdhands.checkpoint import load_checkpoint, read_config
from fourdhands.evaluate import predict_split, split_metrics
from fourdhands.io import atomic_path, write_json

KEYS = ("orient", "mean_orient", "mpjpe_wrist", "mean_pose_mpjpe", "pa_mpjpe", "mean_pose_pa_mpjpe", "mrrpe",
        "mean_v_mrrpe")


def samples_seen(ckpt: Path) -> int:
    """Training samples behind a checkpoint: its step times its batch, plus those of the
    checkpoint its run started from (``init``)."""
    train = read_config(ckpt).get("train", {})
    step = int(ckpt.name.split("-")[-1])
    before = samples_seen(Path(train["init"])) if train.get("init") else 0
    return before + step * int(train.get("batch_size", 0))


def measure(ckpt: Path, data: str, frames: int) -> dict:
    cache = ckpt / "eval" / f"curve-{Path(data).name}-{frames}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    net = load_checkpoint(ckpt)
    gap = read_config(ckpt).get("train", {}).get("sample", {}).get("gap", 2)
    with torch.no_grad():
        table = split_metrics(predict_split(net, data, gap, frames=frames or None))
    row = {"checkpoint": str(ckpt), "samples": samples_seen(ckpt), **{k: table["mean"][k] for k in KEYS}}
    cache.parent.mkdir(exist_ok=True)
    write_json(cache, row)
    return row


def plot(rows: list[dict], split: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (("orient", "mean_orient", "global orientation error (deg)", False),
              ("mpjpe_wrist", "mean_pose_mpjpe", "MPJPE, wrist-aligned (mm)", True),
              ("pa_mpjpe", "mean_pose_pa_mpjpe", "PA-MPJPE (mm)", False),
              ("mrrpe", "mean_v_mrrpe", "MRRPE (mm)", True))
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
    x = [r["samples"] / 1000 for r in rows]
    for ax, (key, ref, title, goal) in zip(axes.flat, panels):
        ax.plot(x, [r[key] for r in rows], "o-", label="model")
        if ref:
            level = rows[-1][ref]
            ax.axhline(level, color="grey", ls="--", label="mean prediction")
            if goal:
                ax.axhline(level / 3, color="green", ls=":", label="goal (mean / 3)")
        ax.set_title(title)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("training samples seen (thousands)")
    axes[0, 0].legend(loc="lower left")
    axes[0, 1].legend(loc="lower left")
    fig.suptitle(f"Learning curve on '{split}' (mean of both hands)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders (their step-* checkpoints)")
    parser.add_argument("--data", required=True, help="a held-out synthetic split")
    parser.add_argument("--frames", type=int, default=96, help="windows evaluated per checkpoint (0: all)")
    parser.add_argument("--out", required=True, help="output path without suffix")
    args = parser.parse_args(argv)
    ckpts = [c for run in args.runs for c in sorted(Path(run).glob("step-*")) if c.is_dir()]
    if not ckpts:
        sys.exit(f"no step-* checkpoints in {', '.join(args.runs)}")
    rows = sorted((measure(c, args.data, args.frames) for c in ckpts), key=lambda r: r["samples"])
    split = Path(args.data).name
    out = Path(args.out)
    lines = [f"# Learning curve on `{split}` ({args.frames or 'all'} windows)", "",
             f"Command: `python benchmarks/learning_curve.py {' '.join(args.runs)} --data {args.data} "
             f"--frames {args.frames} --out {args.out}`", "",
             "Mean of both hands. Orientation in degrees, the rest in mm; `ref` is the split's "
             "mean prediction (mean orientation, mean wrist-aligned hand, mean v).", "",
             "![learning curve](" + out.with_suffix(".png").name + ")", "",
             "| checkpoint | samples | orient | ref | MPJPE-w | ref | PA-MPJPE | ref | MRRPE | ref |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| `{r['checkpoint']}` | {r['samples']} | {r['orient']:.1f} | {r['mean_orient']:.1f} | "
                     f"{r['mpjpe_wrist']:.1f} | {r['mean_pose_mpjpe']:.1f} | {r['pa_mpjpe']:.1f} | "
                     f"{r['mean_pose_pa_mpjpe']:.1f} | "
                     f"{r['mrrpe']:.1f} | {r['mean_v_mrrpe']:.1f} |")
    with atomic_path(out.with_suffix(".md")) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    plot(rows, split, out.with_suffix(".png"))
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
