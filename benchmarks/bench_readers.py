"""How long the real-dataset readers take to open (index) a dataset, and the memory they
hold, against its frame count: generated fixtures of N frames in each dataset's layout.

    python benchmarks/bench_readers.py [--frames 1000 10000 100000] [--out benchmarks/results/readers_cpu.md]

Per reader and N, in a fresh process (so that memory is the reader's alone): the seconds
from ``open_sequences`` to a usable source (``len``, and the first sample's arrays), and
the peak resident memory above the process's baseline (``ru_maxrss``). Fixtures: FreiHAND
(its three JSON lists; one image, the index opens none), HO-3D (recordings of 100 meta
pickles; the index lists file names, a sequence's pickles are read when it is first used).
DexYCB's index reads only meta.yml and the calibration, like HO-3D's; InterHand2.6M's
reads its whole JSON (not measured here: its fixture would be the dataset's own format
at size). The issue's goal: a million frames start training within seconds, memory
bounded.
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def write_freihand(folder: Path, n: int) -> str:
    rng = np.random.default_rng(0)
    K = [[500.0, 0.0, 112.0], [0.0, 500.0, 112.0], [0.0, 0.0, 1.0]]
    (folder / "training" / "rgb").mkdir(parents=True)
    xyz = (rng.normal(0, 0.03, (n, 21, 3)) + [0, 0, 0.5]).round(5).tolist()
    (folder / "training_K.json").write_text(json.dumps([K] * n))
    (folder / "training_xyz.json").write_text(json.dumps(xyz))
    (folder / "training_mano.json").write_text(json.dumps([[[0.0] * 61]] * n))
    from PIL import Image

    Image.new("RGB", (224, 224)).save(folder / "training" / "rgb" / "00000000.jpg")
    return f"freihand:{folder}"


def write_ho3d(folder: Path, n: int) -> str:
    meta = {"camMat": np.eye(3), "handJoints3D": np.zeros((21, 3)) + [0, 0, -0.5], "handPose": np.zeros(48),
            "handBeta": np.zeros(10), "handTrans": np.zeros(3)}
    data = pickle.dumps(meta, protocol=2)
    from PIL import Image

    for r in range(max(1, n // 100)):
        rec = folder / "train" / f"R{r:05d}"
        (rec / "meta").mkdir(parents=True)
        (rec / "rgb").mkdir()
        for t in range(min(100, n)):
            (rec / "meta" / f"{t:04d}.pkl").write_bytes(data)
        Image.new("RGB", (64, 48)).save(rec / "rgb" / "0000.jpg")
    return f"ho3d:{folder}"


WRITERS = {"freihand": write_freihand, "ho3d": write_ho3d}

_MEASURE = """
import resource, sys, time
sys.meta_path = [f for f in sys.meta_path if "editable" not in (getattr(f, "__module__", "") + repr(f)).lower()]
sys.path.insert(0, sys.argv[1])
import numpy, PIL.Image, yaml, fourdhands.data.sources as s  # imports before the baseline
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
source = s.open_sequences(sys.argv[2])
n = len(source)
source[0].gt
seconds = time.perf_counter() - t0
print(seconds, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024, n)
"""


def measure(spec: str) -> tuple[float, float, int]:
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(ROOT), spec], capture_output=True, text=True,
                         check=True).stdout.split()
    return float(out[0]), float(out[1]), int(out[2])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--readers", nargs="+", default=list(WRITERS))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "readers_cpu.md")
    args = parser.parse_args(argv)
    rows = ["| reader | frames | sequences | index seconds | memory above baseline (MiB) |", "|---|---:|---:|---:|---:|"]
    for reader in args.readers:
        for n in args.frames:
            with tempfile.TemporaryDirectory() as tmp:
                spec = WRITERS[reader](Path(tmp) / reader, n)
                seconds, mib, count = measure(spec)
            rows.append(f"| {reader} | {n} | {count} | {seconds:.2f} | {mib:.0f} |")
            print(rows[-1], flush=True)
    text = "\n".join(rows)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text(f"# Real-dataset readers: index time and memory against size\n\n"
                   f"`python benchmarks/bench_readers.py --frames {' '.join(map(str, args.frames))}`, this CPU, "
                   f"{time.strftime('%Y-%m-%d')}.\n\n{text}\n")
    tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
