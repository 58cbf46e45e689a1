"""A reader of DexYCB (Chao et al., CVPR 2021) in its published layout, as a sequence
source (:mod:`fourdhands.data.sources`): one sequence per (recording, camera).

The layout and conventions, from the dataset's toolkit (github.com/NVlabs/dex-ycb-toolkit,
``dex_ycb_toolkit/dex_ycb.py`` and ``hpe_eval.py``):

- ``<root>/<subject>/<recording>/meta.yml`` (``num_frames``, ``mano_sides`` with the one
  hand's side, ``mano_calib``), and per camera serial ``<root>/<subject>/<recording>/<serial>/``
  with ``color_%06d.jpg`` (640 x 480) and ``labels_%06d.npz``;
- ``<root>/calibration/intrinsics/<serial>_640x480.yml``: ``color: {fx, fy, ppx, ppy}``;
- a label's ``joint_3d`` `(1, 21, 3)` is in metres in that camera's frame (OpenCV axes),
  all -1 where the frame has no hand annotation; ``joint_2d`` `(1, 21, 2)` pixels;
  ``pose_m`` `(1, 51)`: 48 MANO pose values (PCA coefficients with the mean hand, as the
  toolkit's MANO layer takes them) and the translation; the betas are per subject in
  ``calibration/mano_<calib>/mano.yml``;
- keypoint order: wrist, then thumb, index, middle, ring and little from MCP to tip:
  OpenPose's, this project's;
- one hand per recording, its side in ``meta.yml``: a right hand goes to hand slot 0, a
  left one to slot 1 (its own left-hand MANO, no mirroring);
- the setups ``s0``-``s3`` and their ``train`` / ``val`` / ``test`` splits choose subjects,
  camera serials and recordings by index exactly as the toolkit does (Table 3 uses
  ``s0``'s test split).

Frames without a hand annotation stay in their sequence with the hand absent (so that
windows keep their timing) and are counted in ``unannotated``. The MANO fit (the
toolkit's ``ManoLayer(flat_hand_mean=False, use_pca=True, ncomps=45)``, no left-hand
shapedirs fix: ``pose_m[:3]`` the root, ``pose_m[3:48]`` PCA coefficients, ``pose_m[48:]``
the translation, in the camera frame; the subject's betas from
``calibration/mano_<calib>/mano.yml``) is kept as a fit
(:data:`~fourdhands.hands.mano_fit.FIT_KEYS`, ``fit_pca``), which a MANO hand model turns
into ground truth parameters with its own PCA components; ``has_mano`` is False, so under
the open hand model keypoints supervise, and MPVPE / orientation are not scored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError
from ..hands.mano_fit import fit_arrays
from .annotation_file import read_annotation
from .real_sequence import LazySequence, keypoint_arrays, read_rgb

SUBJECTS = ("20200709-weiy", "20200813-ceppner", "20200820-amousavian", "20200903-ynarang", "20200908-yux",
            "20200918-ftozetoramos", "20200928-ahanda", "20201002-dieterf", "20201015-ychao",
            "20201022-lmanuelli")
SERIALS = ("836212060125", "839512060362", "840412060917", "841412060263", "932122060857", "932122060861",
           "932122061900", "932122062010")
IMAGE_SIZE = (640, 480)

_ALL, _EVERY_FIFTH = range(100), [i for i in range(100) if i % 5 == 4]
#: (setup, split) -> (subject indices, serial indices, recording indices), as the toolkit.
SPLITS = {
    ("s0", "train"): (range(10), range(8), [i for i in range(100) if i % 5 != 4]),
    ("s0", "val"): ((0, 1), range(8), _EVERY_FIFTH),
    ("s0", "test"): (range(2, 10), range(8), _EVERY_FIFTH),
    ("s1", "train"): ((0, 1, 2, 3, 4, 5, 9), range(8), _ALL),
    ("s1", "val"): ((6,), range(8), _ALL),
    ("s1", "test"): ((7, 8), range(8), _ALL),
    ("s2", "train"): (range(10), range(6), _ALL),
    ("s2", "val"): (range(10), (6,), _ALL),
    ("s2", "test"): (range(10), (7,), _ALL),
    ("s3", "train"): (range(10), range(8), [i for i in range(100) if i // 5 not in (3, 7, 11, 15, 19)]),
    ("s3", "val"): (range(10), range(8), [i for i in range(100) if i // 5 in (3, 19)]),
    ("s3", "test"): (range(10), range(8), [i for i in range(100) if i // 5 in (7, 11, 15)]),
}


def _yaml(path: Path) -> dict:
    return read_annotation(path, dict, "DexYCB layout: <root>/<subject>/<recording>/meta.yml, "
                                       "<root>/calibration/intrinsics/<serial>_640x480.yml")


def _intrinsics(root: Path, serial: str) -> np.ndarray:
    path = root / "calibration" / "intrinsics" / f"{serial}_{IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}.yml"
    try:
        c = _yaml(path)["color"]
        return np.array([[c["fx"], 0.0, c["ppx"]], [0.0, c["fy"], c["ppy"]], [0.0, 0.0, 1.0]], float)
    except (KeyError, TypeError) as e:
        raise UserError(f"{path}: no color fx / fy / ppx / ppy ({e})") from None


class DexYCBSequence(LazySequence):
    """One recording seen by one camera: ``num_frames`` frames, labels read when first
    asked for; ``unannotated`` counts the frames whose label holds no hand (all -1)."""

    def __init__(self, folder: Path, num_frames: int, slot: int, K: np.ndarray, betas: Path):
        self.folder, self.num_frames, self.slot, self.K, self.betas = folder, num_frames, slot, K, betas

    def frame(self, t: int) -> np.ndarray:
        path = self.folder / f"color_{t:06d}.jpg"
        return read_rgb(path)

    def _label(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``t``'s ``joint_3d`` `(21, 3)` and ``pose_m`` `(51,)` (zeros when absent)."""
        path = self.folder / f"labels_{t:06d}.npz"
        try:
            with np.load(path) as label:
                pose = np.asarray(label["pose_m"], np.float64).reshape(51) if "pose_m" in label else np.zeros(51)
                return np.asarray(label["joint_3d"], np.float64).reshape(21, 3), pose
        except FileNotFoundError:
            raise UserError(f"{path}: missing") from None
        except (OSError, KeyError, ValueError) as e:
            raise UserError(f"{path}: no joint_3d of 21 x 3 / pose_m of 51 ({e})") from None

    def _betas(self) -> np.ndarray | None:
        """The subject's MANO betas `(10,)` (``calibration/mano_<calib>/mano.yml``), None
        when the calibration is not there."""
        if not self.betas.is_file():
            return None
        try:
            return np.asarray(_yaml(self.betas)["betas"], np.float64).reshape(10)
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"{self.betas}: no betas of 10 numbers ({e})") from None

    def _arrays(self) -> dict[str, np.ndarray]:
        n, s = self.num_frames, self.slot
        kp3d = np.zeros((n, 2, 21, 3))
        present = np.zeros((n, 2), bool)
        poses = np.zeros((n, 2, 51))
        for t in range(n):
            joints, poses[t, s] = self._label(t)
            if not np.all(joints == -1):
                kp3d[t, s], present[t, s] = joints, True
        valid = np.repeat(present[..., None], 21, -1)
        betas = self._betas()
        fitted = present & (betas is not None) & np.abs(poses).any(-1)
        fits = fit_arrays(poses[..., :48], np.broadcast_to(betas if betas is not None else np.zeros(10), (n, 2, 10)),
                          poses[..., 48:], np.repeat(np.eye(3)[None], n, 0), np.zeros((n, 3)), fitted,
                          mean_relative=True, pca=True)
        return keypoint_arrays(kp3d, valid, np.repeat(self.K[None], n, 0), IMAGE_SIZE, **fits)


class DexYCBSequences:
    """The (recording, camera) sequences of one DexYCB setup and split (module docstring)."""

    def __init__(self, root: str | Path, setup: str = "s0", split: str = "test"):
        root = Path(root)
        if (setup, split) not in SPLITS:
            raise UserError(f"DexYCB has no setup {setup!r} split {split!r} (setups s0-s3; train, val, test)")
        if not root.is_dir():
            raise UserError(f"{root}: no such DexYCB folder")
        subjects, serials, recordings = SPLITS[(setup, split)]
        intrinsics = {SERIALS[c]: _intrinsics(root, SERIALS[c]) for c in serials}
        self.sequences = []
        for i in subjects:
            folder = root / SUBJECTS[i]
            names = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
            if len(names) != 100:
                raise UserError(f"{folder}: expected 100 recordings, found {len(names)}")
            for r in recordings:
                meta = _yaml(folder / names[r] / "meta.yml")
                try:
                    side, frames = str(meta["mano_sides"][0]), int(meta["num_frames"])
                except (KeyError, IndexError, TypeError, ValueError) as e:
                    raise UserError(f"{folder / names[r] / 'meta.yml'}: no mano_sides / num_frames ({e})") from None
                if side not in ("right", "left"):
                    raise UserError(f"{folder / names[r] / 'meta.yml'}: mano_sides {side!r} is not right or left")
                calib = root / "calibration" / f"mano_{(meta.get('mano_calib') or [''])[0]}" / "mano.yml"
                for serial, K in intrinsics.items():
                    self.sequences.append(DexYCBSequence(folder / names[r] / serial, frames,
                                                         0 if side == "right" else 1, K, calib))

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int) -> DexYCBSequence:
        return self.sequences[i]
