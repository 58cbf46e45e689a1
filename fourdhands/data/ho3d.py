"""A reader of HO-3D v2 / v3 (Hampali et al., CVPR 2020) in its published layout, as a
sequence source (:mod:`fourdhands.data.sources`): one sequence per recording.

The layout and conventions, from the dataset's toolkit (github.com/shreyashampali/ho3d,
``vis_HO3D.py`` and ``utils/vis_utils.py``):

- ``<root>/<split>/<recording>/rgb/<id>.jpg`` (v3; ``.png`` in v2) and
  ``<root>/<split>/<recording>/meta/<id>.pkl``, ``split`` ``train`` or ``evaluation``;
- a meta pickle is a dict: ``camMat`` `(3, 3)`; ``handJoints3D`` `(21, 3)` metres in
  MANO's joint order (wrist; index, middle, pinky, ring, thumb, three each; then the
  tips of thumb, index, middle, ring, pinky), in OpenGL camera coordinates (y up, z
  towards the viewer), or `(3,)` with the root only in the evaluation split;
  ``handPose`` `(48,)` full axis-angle (flat mean hand), ``handTrans``, ``handBeta``;
  a frame without annotation holds None there;
- every hand is a right hand.

Here the joints are reordered to OpenPose's (the toolkit's ``jointsMapManoToSimple``) and
turned into OpenCV's camera frame (y and z negated, ``is_OpenGL_coords``). Pickles are read
through :class:`~fourdhands.safe_pickle.AllowListUnpickler` (NumPy arrays and builtins
only), never plain ``pickle.load``. Frames without a full 21-joint annotation (the
evaluation split, unannotated frames) have the hand absent and are counted in
``unannotated``. The MANO fit (the toolkit's ``forwardKinematics``: ``fullpose`` with
``flat_hand_mean=True``, ``trans``, the betas; its mesh lands in the OpenGL camera frame)
is kept as a fit (:data:`~fourdhands.hands.mano_fit.FIT_KEYS`, ``R = diag(1, -1, -1)``), which
a MANO hand model turns into ground truth parameters; ``has_mano`` is False, so under the
open hand model the keypoints supervise.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import UserError
from ..hands.mano_fit import fit_arrays
from ..safe_pickle import AllowListUnpickler, numpy_globals
from .real_sequence import LazySequence, keypoint_arrays, read_rgb

SPLITS = ("train", "evaluation")
#: OpenPose position -> MANO-order index of the same joint (the toolkit's jointsMapManoToSimple).
MANO_TO_OPENPOSE = (0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20)
OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0])


def read_meta(path: Path) -> dict:
    """One meta pickle, through the allow-list; UserError naming the file otherwise."""
    def refuse(module: str, name: str):
        raise UserError(f"{path}: refused to load '{module}.{name}' (an HO-3D meta file holds arrays only)")

    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: missing") from None
    try:
        meta = AllowListUnpickler(io.BytesIO(raw), numpy_globals(), refuse, encoding="latin1").load()
    except UserError:
        raise
    except Exception as e:  # a truncated or foreign pickle fails anywhere in here
        raise UserError(f"{path}: not a readable meta pickle ({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict):
        raise UserError(f"{path}: expected a dict, found a {type(meta).__name__}")
    return meta


class HO3DSequence(LazySequence):
    """One recording: its frames in id order, annotations read when first asked for."""

    def __init__(self, folder: Path, ids: list[str]):
        self.folder, self.ids, self.num_frames = folder, ids, len(ids)

    def image_path(self, t: int) -> Path:
        """Frame ``t``'s image (``.jpg`` in v3, ``.png`` in v2); UserError when neither is there."""
        for ext in (".jpg", ".png"):
            path = self.folder / "rgb" / f"{self.ids[t]}{ext}"
            if path.is_file():
                return path
        raise UserError(f"{self.folder / 'rgb' / self.ids[t]}.jpg: missing")

    def frame(self, t: int) -> np.ndarray:
        path = self.image_path(t)
        return read_rgb(path)

    def _arrays(self) -> dict[str, np.ndarray]:
        n = self.num_frames
        kp3d = np.zeros((n, 2, 21, 3))
        present = np.zeros((n, 2), bool)
        K = np.repeat(np.eye(3)[None], n, 0)
        fit = np.zeros((n, 2, 61))
        fitted = np.zeros((n, 2), bool)
        for t, frame_id in enumerate(self.ids):
            path = self.folder / "meta" / f"{frame_id}.pkl"
            meta = read_meta(path)
            try:
                K[t] = np.asarray(meta["camMat"], np.float64).reshape(3, 3)
                joints = meta.get("handJoints3D")
                joints = None if joints is None else np.asarray(joints, np.float64)
            except (KeyError, TypeError, ValueError) as e:
                raise UserError(f"{path}: no usable camMat / handJoints3D ({e})") from None
            if joints is None or joints.shape != (21, 3):
                continue  # unannotated, or the evaluation split's root only
            kp3d[t, 0] = joints[list(MANO_TO_OPENPOSE)] @ OPENGL_TO_OPENCV
            present[t, 0] = True
            if meta.get("handPose") is not None:
                fit[t, 0] = _fit(meta, path)
                fitted[t, 0] = True
        with Image.open(self.image_path(0)) as im:
            size = im.size
        fits = fit_arrays(fit[..., :48], fit[..., 48:58], fit[..., 58:], np.repeat(OPENGL_TO_OPENCV[None], n, 0),
                          np.zeros((n, 3)), fitted, mean_relative=False)
        return keypoint_arrays(kp3d, np.repeat(present[..., None], 21, -1), K, size, **fits)


def _fit(meta: dict, path: Path) -> np.ndarray:
    """handPose (48), handBeta (10), handTrans (3) of a meta dict, one row; UserError naming the file."""
    try:
        return np.concatenate([np.ravel(meta[k]).astype(np.float64) for k in ("handPose", "handBeta", "handTrans")]
                              ).reshape(61)
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{path}: handPose / handBeta / handTrans are not 48 / 10 / 3 numbers ({e})") from None


class HO3DSequences:
    """The recordings of one HO-3D split (module docstring)."""

    def __init__(self, root: str | Path, split: str = "train"):
        root = Path(root)
        if split not in SPLITS:
            raise UserError(f"HO-3D split must be one of {', '.join(SPLITS)}, not {split!r}")
        folder = root / split
        if not folder.is_dir():
            raise UserError(f"{folder}: missing (HO-3D layout: <root>/{split}/<recording>/meta/<id>.pkl)")
        self.sequences = []
        for rec in sorted(p for p in folder.iterdir() if p.is_dir()):
            ids = sorted(p.stem for p in (rec / "meta").glob("*.pkl"))
            if not ids:
                raise UserError(f"{rec / 'meta'}: no meta/<id>.pkl files")
            self.sequences.append(HO3DSequence(rec, ids))

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int) -> HO3DSequence:
        return self.sequences[i]
