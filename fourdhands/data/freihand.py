"""A reader of FreiHAND (Zimmermann et al., ICCV 2019) in its published layout, as a
sequence source of single frames (:mod:`fourdhands.data.sources`).

The layout and conventions, from the dataset's own toolbox (github.com/lmb-freiburg/freihand,
``utils/fh_utils.py``, ``utils/model.py``, ``utils/mano_utils.py``):

- ``<split>_K.json``, ``<split>_xyz.json``, ``<split>_mano.json`` beside the image folder
  ``<split>/rgb/``, for ``split`` ``training`` (32,560 samples) or ``evaluation`` (3,960;
  its xyz / mano files came out after the challenge). The three lists have one entry per
  sample: ``K`` `(3, 3)`; ``xyz`` `(21, 3)`, metres, in the camera frame (x right, y down,
  z forward, as OpenCV); ``mano`` `(1, 61)`.
- Keypoint order: wrist, then thumb, index, middle, ring and pinky from base to tip:
  OpenPose's order, this project's, so no reordering. The fingertips are MANO vertices
  744, 320, 443, 555 and 672 (``mano_utils.kpId2vertices``).
- Images: ``<split>/rgb/%08d.jpg``, 224 x 224. Each training sample exists in four
  versions (green screen ``gs``, ``hom``, ``sample``, ``auto``), image id ``idx + 32560 *
  k`` for the version's position ``k`` in that list (``sample_version.map_id``); the
  evaluation split has ``gs`` only.
- Every hand is a right hand; one hand per image; no visibility labels (all 21 keypoints
  are annotated).
- MANO (``model.split_theta``): ``theta[:48]`` the axis-angle pose (global orientation,
  then 15 finger joints, no PCA), ``theta[48:58]`` betas, ``theta[58:60]`` the root's
  image position and ``theta[60]`` a scale; the pose is relative to MANO's mean hand
  (the toolbox poses with ``flat_hand_mean=False``), and the translation follows from the
  middle MCP's 3D position. The reader keeps ``theta`` as read (``gt["mano_theta"]``) and
  as a fit (:data:`~fourdhands.hands.mano_fit.FIT_KEYS`: camera frame, mean-relative pose,
  translation unknown, so placed on the annotated wrist), which a MANO hand model turns
  into ground truth parameters; ``has_mano`` is False, so under the open hand model the
  keypoints supervise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import UserError
from ..hands.mano_fit import fit_arrays
from .annotation_file import stream_annotation
from .real_sequence import keypoint_arrays, read_rgb

SPLITS = ("training", "evaluation")
VERSIONS = ("gs", "hom", "sample", "auto")
TRAINING_SIZE = 32560  # unique training samples; the image ids of version k start at k * this


_LAYOUT = "a FreiHAND folder holds <split>_K.json, <split>_xyz.json, <split>_mano.json and <split>/rgb/"


def _arrays(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """The list of ``path`` as an `(N, *shape)` array, streamed an entry at a time."""
    rows = []
    for i, entry in enumerate(stream_annotation(path, "item", layout=_LAYOUT)):
        try:
            rows.append(np.asarray(entry, np.float64).reshape(shape))
        except (TypeError, ValueError):
            raise UserError(f"{path}: entry {i} is not {'x'.join(map(str, shape))} numbers") from None
    if not rows and not path.read_bytes().lstrip().startswith(b"["):
        raise UserError(f"{path}: expected a list")
    return np.stack(rows) if rows else np.zeros((0, *shape))


class FreiHandFrame:
    """One FreiHAND sample as a one-frame sequence (sequence-source item); its arrays are
    made when first asked for, so indexing a split opens no image."""

    num_frames = 1

    def __init__(self, source: "FreiHandFrames", index: int):
        self.image_path = source.image_path(index)
        self._source, self._index = source, index

    @property
    def gt(self) -> dict[str, np.ndarray]:
        return self._source.arrays(self._index)

    def frame(self, t: int) -> np.ndarray:
        return read_rgb(self.image_path)


class FreiHandFrames:
    """The samples of one FreiHAND split (module docstring), each a one-frame sequence;
    the right hand is hand 0, hand 1 is always absent."""

    def __init__(self, folder: str | Path, split: str = "training", version: str = "gs"):
        folder = Path(folder)
        if split not in SPLITS:
            raise UserError(f"FreiHAND split must be one of {', '.join(SPLITS)}, not {split!r}")
        if version not in VERSIONS or (split == "evaluation" and version != "gs"):
            raise UserError(f"FreiHAND {split} has no image version {version!r}")
        if not folder.is_dir():
            raise UserError(f"{folder}: no such FreiHAND folder")
        files = {k: folder / f"{split}_{k}.json" for k in ("K", "xyz", "mano")}
        K, xyz, theta = (_arrays(files[k], shape) for k, shape in (("K", (3, 3)), ("xyz", (21, 3)), ("mano", (61,))))
        if not len(K) == len(xyz) == len(theta):
            raise UserError(f"{folder}: {split}_K.json, _xyz.json and _mano.json list {len(K)}, {len(xyz)} and "
                            f"{len(theta)} samples; they must agree")
        self.folder, self.split, self.version = folder, split, version
        self._K, self._xyz, self._theta = K, xyz, theta
        offset = VERSIONS.index(version) * TRAINING_SIZE
        self._images = [folder / split / "rgb" / f"{i + offset:08d}.jpg" for i in range(len(K))]
        if self._images and not self._images[0].is_file():
            raise UserError(f"{self._images[0]}: missing (the images of {split}, version {version})")

    def __len__(self) -> int:
        return len(self._K)

    def __getitem__(self, i: int) -> FreiHandFrame:
        return FreiHandFrame(self, i)

    def image_path(self, i: int) -> Path:
        return self._images[i]

    def arrays(self, i: int) -> dict[str, np.ndarray]:
        """Sample ``i``'s sequence-source arrays (one frame, the right hand)."""
        kp3d = np.zeros((1, 2, 21, 3))
        kp3d[0, 0] = self._xyz[i]
        valid = np.zeros((1, 2, 21), bool)
        valid[0, 0] = True
        theta = self._theta[i]
        fit = np.zeros((1, 2, 61))
        fit[0, 0], fit[0, 0, 58:] = theta, np.nan  # theta[58:61] is image position and scale, not a translation
        fits = fit_arrays(fit[..., :48], fit[..., 48:58], fit[..., 58:], np.eye(3)[None], np.zeros((1, 3)),
                          valid[..., 0], mean_relative=True)
        return keypoint_arrays(kp3d, valid, self._K[i][None], _image_size(self._images[i]), mano_theta=theta, **fits)


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size
    except OSError as e:
        raise UserError(f"{path}: cannot read the image ({e})") from None
