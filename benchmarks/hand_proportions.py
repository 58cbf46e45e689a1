"""Finger lengths in palm lengths: the open hand model next to real hands.

A finger's length is the sum of its three segments, base joint to tip (the thumb from
its CMC joint); the palm length is wrist -> middle-finger MCP; the MCP spread is index
MCP -> pinky MCP. All in the 21-keypoint OpenPose order, from 3D points, so bent
fingers measure the same as straight ones.

Rows:
- the open hand model at rest (beta = 0), and the cited anthropometry it is built from
  (``fourdhands.hands.anthropometry``);
- InterHand2.6M's real, triangulated 3D joints (``../shared/samples/datasets``);
- MediaPipe's world landmarks on the real photos (``../shared/samples/real``), the
  median over the hands it finds.

Below the table, the finger girth: the open hand's skin across its index PIP joint (the
mesh cut by the plane through the joint normal to the proximal phalanx, its breadth in
the palm's plane) against the cited breadth.

Run: ``python benchmarks/hand_proportions.py [--out benchmarks/results/proportions.md]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "samples"
COLUMNS = ("thumb", "index", "middle", "ring", "pinky", "MCP spread")


def ratios(keypoints: np.ndarray) -> np.ndarray:
    """`(..., 21, 3)` keypoints -> `(..., 6)`: five finger lengths and the MCP spread,
    each over the palm length."""
    k = np.asarray(keypoints, float)
    palm = np.linalg.norm(k[..., 9, :] - k[..., 0, :], axis=-1)
    out = []
    for f in range(5):
        ids = [1 + 4 * f + i for i in range(4)]
        out.append(sum(np.linalg.norm(k[..., b, :] - k[..., a, :], axis=-1) for a, b in zip(ids, ids[1:])))
    out.append(np.linalg.norm(k[..., 17, :] - k[..., 5, :], axis=-1))
    return np.stack(out, -1) / palm[..., None]


def open_model_row() -> np.ndarray:
    import torch

    from fourdhands.hands import load_hand_model

    with torch.no_grad():
        return ratios(load_hand_model("open", "right")().keypoints[0].numpy())


def index_pip_breadth() -> float:
    """Metres: the rest skin's breadth across the index PIP joint."""
    import torch
    import trimesh

    from fourdhands.hands import load_hand_model
    from fourdhands.hands.open_model import FINGER_JOINTS

    model = load_hand_model("open", "right")
    with torch.no_grad():
        out = model()
    joints = out.joints[0].numpy().astype(float)
    base, pip = (joints[j] for j in FINGER_JOINTS[1][:2])
    normal = (pip - base) / np.linalg.norm(pip - base)
    skin = trimesh.Trimesh(out.vertices[0].numpy(), model.faces.numpy(), process=False)
    ring = min(skin.section(plane_origin=pip, plane_normal=normal).discrete,
               key=lambda loop: np.linalg.norm(loop - pip, axis=1).mean())
    side = np.cross(normal, [0.0, 1.0, 0.0])
    return float(np.ptp(ring @ (side / np.linalg.norm(side))))


def cited_row() -> np.ndarray:
    from fourdhands.hands.anthropometry import keypoint_ratios

    return keypoint_ratios()


def interhand_rows() -> np.ndarray | None:
    from fourdhands.data.interhand import read_interhand_frames

    folder = SHARED / "datasets" / "interhand26m"
    if not folder.is_dir():
        return None
    rows = []
    for frame in read_interhand_frames(folder):
        for h in range(2):
            if frame.present[h] and frame.valid[h].all():
                rows.append(ratios(frame.keypoints_3d[h]))
    return np.array(rows) if rows else None


def mediapipe_rows() -> np.ndarray | None:
    try:
        from mediapipe.python.solutions import hands as mp_hands
    except ImportError:
        return None
    from PIL import Image

    rows = []
    with mp_hands.Hands(static_image_mode=True, max_num_hands=4, min_detection_confidence=0.3) as solution:
        for path in sorted((SHARED / "real").glob("*.jpg")):
            image = np.asarray(Image.open(path).convert("RGB"))
            result = solution.process(image)
            for hand in result.multi_hand_world_landmarks or []:
                rows.append(ratios(np.array([[p.x, p.y, p.z] for p in hand.landmark])))
    return np.array(rows) if rows else None


def table() -> str:
    lines = ["| | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]

    def add(name, row):
        lines.append(f"| {name} | " + " | ".join(f"{x:.2f}" for x in row) + " |")

    add("open hand model (beta = 0)", open_model_row())
    add("cited anthropometry (joint centres)", cited_row())
    ih = interhand_rows()
    if ih is not None:
        add(f"InterHand2.6M 3D joints (mean of {len(ih)} hands)", ih.mean(0))
    mp = mediapipe_rows()
    if mp is not None:
        add(f"MediaPipe world landmarks on real photos (median of {len(mp)} hands)", np.median(mp, 0))
    from fourdhands.hands.anthropometry import INDEX_PIP_BREADTH

    lines += ["", f"Index finger breadth across the PIP joint: open hand model {1000 * index_pip_breadth():.1f} mm, "
              f"cited {1000 * INDEX_PIP_BREADTH:.1f} mm (FAA HFDS, US adults: medians men 21, women 18 mm; "
              "5th-95th 19-23 and 16-21 mm)."]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="write the table (markdown) here")
    args = parser.parse_args(argv)
    text = table()
    print(text)
    if args.out:
        args.out.write_text("# Hand proportions\n\n`python benchmarks/hand_proportions.py --out "
                            f"{args.out}`\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
