"""How long the real-dataset readers take to open (index) a dataset, and the memory they
hold, against its frame count: generated fixtures of N frames in each dataset's layout.

    python benchmarks/bench_readers.py [--frames 1000 10000 100000] [--out benchmarks/results/readers_cpu.md]

Per reader and N, in a fresh process (so that memory is the reader's alone): the seconds
from ``open_sequences`` to a usable source (``len``, and the first sample's arrays), and
in a second process the peak memory allocated meanwhile (``tracemalloc``, which counts
NumPy's arrays; a memory-mapped index is not allocated, it is paged in by the OS). Fixtures: FreiHAND
(its three JSON lists; one image, the index opens none), HO-3D (recordings of 100 meta
pickles; the index lists file names, a sequence's pickles are read when it is first used).
InterHand2.6M (its data, camera and joint_3d JSON at N images, 20 cameras per frame, one
capture per 10,000 images), measured twice: ``interhand2.6m`` streams the JSON into its
index and caches it, ``interhand2.6m (cached)`` opens the cached index (memory-mapped).
DexYCB's index reads only meta.yml and the calibration, like HO-3D's. The issue's goal:
a million frames start training within seconds, memory bounded.
"""

from __future__ import annotations

import argparse
import json
import os
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


def write_interhand(folder: Path, n: int) -> str:
    """N annotated images of one split: frames of 20 cameras, one capture per 10k images."""
    rng = np.random.default_rng(0)
    cams, per_capture = [f"4000{c:02d}" for c in range(20)], 10000
    images, anns, joints, cameras = [], [], {}, {}
    for i in range(n):
        capture, frame = i // per_capture, (i % per_capture) // len(cams)
        camera = cams[i % len(cams)]
        images.append({"id": i, "file_name": f"Capture{capture}/seq/cam{camera}/image{frame}.jpg", "width": 334,
                       "height": 512, "capture": capture, "camera": camera, "frame_idx": frame, "seq_name": "seq"})
        anns.append({"id": i, "image_id": i, "bbox": [10.0, 20.0, 100.0, 100.0], "joint_valid": [[1]] * 42,
                     "hand_type": "interacting", "hand_type_valid": 1})
        joints.setdefault(str(capture), {})[str(frame)] = {
            "world_coord": (rng.normal(0, 50, (42, 3)) + [0, 0, 1000]).round(2).tolist()}
        cameras[str(capture)] = {k: {c: v for c in cams} for k, v in (
            ("campos", [0.0, 0.0, -1000.0]), ("camrot", np.eye(3).tolist()), ("focal", [1000.0, 1000.0]),
            ("princpt", [167.0, 256.0]))}
    folder.mkdir(parents=True)
    for kind, value in (("data", {"images": images, "annotations": anns}), ("camera", cameras), ("joint_3d", joints)):
        (folder / f"InterHand2.6M_train_{kind}.json").write_text(json.dumps(value))
    return f"interhand2.6m:{folder}@train"


WRITERS = {"freihand": write_freihand, "ho3d": write_ho3d, "interhand2.6m": write_interhand}

_MEASURE = """
import sys, time, tracemalloc
sys.meta_path = [f for f in sys.meta_path if "editable" not in (getattr(f, "__module__", "") + repr(f)).lower()]
sys.path.insert(0, sys.argv[1])
import numpy, PIL.Image, yaml, ijson, fourdhands.data.sources as s  # imports before measuring
import fourdhands.data.freihand, fourdhands.data.ho3d, fourdhands.data.interhand
if sys.argv[3] == "memory":
    tracemalloc.start()  # NumPy's buffers are traced too; it slows allocation, so not timed
t0 = time.perf_counter()
source = s.open_sequences(sys.argv[2])
n = len(source)
source[0].gt
seconds = time.perf_counter() - t0
print(seconds, tracemalloc.get_traced_memory()[1] / 2**20, n)
"""


def measure(spec: str, cache: str, what: str) -> tuple[float, float, int]:
    """``(seconds, peak MiB, sequences)`` of one fresh process opening ``spec``; ``what``
    ``"time"`` (untraced, its seconds count) or ``"memory"`` (traced, its peak counts)."""
    env = {**os.environ, "FOURDHANDS_CACHE": cache}
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(ROOT), spec, what], capture_output=True, text=True,
                         check=True, env=env).stdout.split()
    return float(out[0]), float(out[1]), int(out[2])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--readers", nargs="+", default=list(WRITERS))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "readers_cpu.md")
    args = parser.parse_args(argv)
    rows = ["| reader | frames | sequences | index seconds | peak allocated (MiB) |", "|---|---:|---:|---:|---:|"]
    for reader in args.readers:
        for n in args.frames:
            with tempfile.TemporaryDirectory() as tmp:
                spec = WRITERS[reader](Path(tmp) / reader, n)
                runs = (reader, f"{reader} (cached)") if reader == "interhand2.6m" else (reader,)
                for k, name in enumerate(runs):  # the second opens the index the first one cached
                    mib = measure(spec, str(Path(tmp) / ("cache-traced" if k == 0 else "cache")), "memory")[1]
                    seconds, _, count = measure(spec, str(Path(tmp) / "cache"), "time")
                    rows.append(f"| {name} | {n} | {count} | {seconds:.2f} | {mib:.0f} |")
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
