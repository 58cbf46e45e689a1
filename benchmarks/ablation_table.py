"""The Table 5 ablation from ``fourdhands eval`` results: one row per checkpoint, per split
MPJPE (IntagHand protocol), MPJPE wrist-aligned against the split-mean-hand reference,
MRRPE against the split-mean-v reference, and Accel_E; then the paper's claims and the
shipped model's goals checked against the numbers.

    python benchmarks/ablation_table.py runs/tiny_baseline/step-0001500 ... runs/tiny_full/step-0000600

Each argument is a checkpoint evaluated with ``fourdhands eval`` (its default output,
``eval/<run>-<step>/eval.json`` in the working directory),
in the order baseline, cross_s_no_rat, cross_s, full. Prints Markdown.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROWS = ("baseline", "cross_s_no_rat", "cross_s", "full")


def load(ckpt: str) -> dict:
    from fourdhands.evaluate import default_eval_dir

    path = default_eval_dir(ckpt) / "eval.json"
    if not path.is_file():
        sys.exit(f"{path}: missing (run fourdhands eval --ckpt {ckpt} ... first)")
    return json.loads(path.read_text())["splits"]


def main(ckpts: list[str]) -> None:
    if len(ckpts) != len(ROWS):
        sys.exit(f"give {len(ROWS)} checkpoints: {', '.join(ROWS)}")
    results = {row: load(c) for row, c in zip(ROWS, ckpts)}
    splits = list(results["full"])
    print("# Table 5 on synthetic data (tiny preset, CPU budget)\n")
    print(f"Checkpoints: {', '.join(f'`{c}`' for c in ckpts)}. Mean of both hands, mm "
          "(Accel_E mm/frame^2). MPJPE: IntagHand protocol; MPJPE-w: wrist-aligned "
          "(InterHand2.6M) next to the split-mean-hand reference; MRRPE next to the "
          "split-mean-v reference; Orient: global orientation error in degrees, next to the "
          "split's mean orientation.\n")
    for split in splits:
        ref = results["full"][split]["mean"]
        print(f"## {split} (reference: mean hand {ref['mean_pose_mpjpe']:.1f}, mean v {ref['mean_v_mrrpe']:.1f}, "
              f"mean orientation {ref['mean_orient']:.1f}°)\n")
        print("| row | MPJPE | MPVPE | PA-MPJPE | MPJPE-w | MRRPE | Accel_E | Orient |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for row in ROWS:
            m = results[row][split]["mean"]
            print(f"| {row} | {m['mpjpe']:.1f} | {m['mpvpe']:.1f} | {m['pa_mpjpe']:.1f} | {m['mpjpe_wrist']:.1f} | "
                  f"{m['mrrpe']:.1f} | {m['accel']:.2f} | {m['orient']:.1f} |")
        print()

    def mean(row, split, key):
        return results[row][split]["mean"][key]

    print("## The paper's claims, checked\n")
    for split in splits:
        a, b = mean("cross_s_no_rat", split, "mrrpe"), mean("cross_s", split, "mrrpe")
        if a != a:  # no frame with both hands
            continue
        print(f"- RAT and MRRPE on {split}: {a:.1f} without, {b:.1f} with "
              f"({'lower' if b < a else 'not lower'}, {100 * (a - b) / a:+.1f} %)")
    for split in splits:
        a, b = mean("cross_s", split, "accel"), mean("full", split, "accel")
        print(f"- temporal fusion and Accel_E on {split}: {a:.2f} without, {b:.2f} with "
              f"({'lower' if b < a else 'not lower'})")
    if "occluded" in splits:
        a, b = mean("cross_s", "occluded", "mpjpe"), mean("full", "occluded", "mpjpe")
        print(f"- temporal fusion and MPJPE on occluded: {a:.1f} without, {b:.1f} with "
              f"({'lower' if b < a else 'not lower'})")
    print("\n## The shipped model's goals (full row)\n")
    for split in splits:
        m = results["full"][split]["mean"]
        pose = m["mean_pose_mpjpe"] / m["mpjpe_wrist"]
        both = m["mrrpe"] == m["mrrpe"]
        rel = f"mean v / model MRRPE = {m['mean_v_mrrpe'] / m['mrrpe']:.2f}x" if both else "no MRRPE (one hand)"
        met = pose >= 3 and (not both or m["mean_v_mrrpe"] / m["mrrpe"] >= 3)
        print(f"- {split}: mean hand / model MPJPE-w = {pose:.2f}x, {rel} (goal 3x: {'met' if met else 'not met'})")


if __name__ == "__main__":
    main(sys.argv[1:])
