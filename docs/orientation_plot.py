"""The distribution of synthetic hand orientations (fourdhands.synth.motion's held
hands), plotted per viewpoint: where the fingers point in the image, where the forearm
leaves the wrist, and whether the palm or the back faces the camera.

    python docs/orientation_plot.py docs/images/orientations.png
"""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy.spatial.transform import Rotation

from fourdhands.synth.forearm import wrist_rotation
from fourdhands.synth.motion import RIGHT, VIEWPOINTS, _start_orientation, View, wrist_bends

DRAWS = 4000
FINGERS = np.array([-1.0, 0.0, 0.0])  # right hand, rest frame: wrist -> middle finger
PALM = np.array([0.0, -1.0, 0.0])  # the palm's outward normal
ELBOW = np.array([1.0, 0.0, 0.0])  # wrist -> elbow, before the wrist bend


def sample(viewpoint: str, rng: np.random.Generator):
    """Finger and forearm image angles (degrees, 0 = up, clockwise) and palm . view."""
    fingers, arms, palms = [], [], []
    K = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])
    for _ in range(DRAWS):
        bends = wrist_bends(rng)
        R = Rotation.from_rotvec(_start_orientation(rng, RIGHT, View(K, 320, 240, 1, viewpoint, bends)))
        f = R.apply(FINGERS)
        a = (R * wrist_rotation("right", bends[RIGHT]).inv()).apply(ELBOW)
        fingers.append(np.degrees(np.arctan2(f[0], -f[1])))
        arms.append(np.degrees(np.arctan2(a[0], -a[1])))
        palms.append(-R.apply(PALM)[2])  # +1: palm to the camera
    return np.array(fingers), np.array(arms), np.array(palms)


def main(out: str) -> None:
    rng = np.random.default_rng(0)
    fig = plt.figure(figsize=(12, 4 * len(VIEWPOINTS)))
    for row, viewpoint in enumerate(VIEWPOINTS):
        fingers, arms, palms = sample(viewpoint, rng)
        for col, (values, title) in enumerate([(fingers, "fingers point (image)"), (arms, "forearm leaves (image)")]):
            ax = fig.add_subplot(len(VIEWPOINTS), 3, 3 * row + col + 1, projection="polar")
            ax.set_theta_zero_location("N")
            ax.set_theta_direction(-1)
            ax.hist(np.radians(values), bins=36, color="tab:orange" if col == 0 else "tab:blue")
            ax.set_yticklabels([])
            ax.set_title(f"{viewpoint}: {title}", fontsize=10)
        ax = fig.add_subplot(len(VIEWPOINTS), 3, 3 * row + 3)
        ax.hist(palms, bins=20, range=(-1, 1), color="tab:green")
        ax.set_xlabel("palm normal . towards camera (+1 palm, -1 back)")
        ax.set_title(f"{viewpoint}: palm or back ({(palms > 0).mean():.0%} palm)", fontsize=10)
    fig.suptitle(f"Right-hand orientations at the first key, {DRAWS} draws per viewpoint "
                 f"(shares: {', '.join(f'{k} {v:.0%}' for k, v in VIEWPOINTS.items())}); the left hand mirrors them")
    fig.tight_layout()
    fig.savefig(out, dpi=80)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "orientations.png")
