"""What every real-dataset reader shares: the sequence-source arrays of annotated
keypoints (:func:`keypoint_arrays`), a sequence whose arrays are made when first asked
for (:class:`LazySequence`), and reading an image (:func:`read_rgb`)."""

from __future__ import annotations

import abc
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import UserError
from .interhand import keypoint_box, project_points


def read_rgb(path: Path) -> np.ndarray:
    """A dataset's image `(H, W, 3)` uint8 RGB; UserError naming it when it cannot be read."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except OSError as e:  # missing files included
        raise UserError(f"{path}: cannot read the image ({e})") from None


def keypoint_arrays(keypoints_3d: np.ndarray, valid: np.ndarray, K: np.ndarray, image_size,
                    present: np.ndarray | None = None, **extra) -> dict[str, np.ndarray]:
    """The arrays of :mod:`fourdhands.data.sources` for frames whose truth is keypoints:
    ``keypoints_3d`` `(F, 2, 21, 3)` metres, camera frame, OpenPose order; ``valid``
    `(F, 2, 21)` the annotated joints; ``K`` `(F, 3, 3)`; ``image_size`` ``(W, H)``;
    ``present`` `(F, 2)` (default: a hand with any annotated joint). The 2D keypoints are
    the projections, the boxes those of the annotated ones; v is defined where both wrists
    are annotated; MANO parameters are zeros and ``has_mano`` False. ``extra`` joins the
    dict (a dataset's raw MANO, kept for later)."""
    n = len(keypoints_3d)
    valid = np.asarray(valid, bool)
    present = valid.any(-1) if present is None else np.asarray(present, bool)
    valid = valid & present[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        kp2d = np.stack([project_points(keypoints_3d[t], K[t]) for t in range(n)]) if n else np.zeros((0, 2, 21, 2))
    kp2d = np.where(present[..., None, None], kp2d, 0.0)
    boxes = np.array([[keypoint_box(kp2d[t, h], valid[t, h]) for h in range(2)] for t in range(n)]).reshape(n, 2, 4)
    both = present.all(1) & valid[:, :, 0].all(1)
    return {
        "present": present, "global_orient": np.zeros((n, 2, 3)), "hand_pose": np.zeros((n, 2, 45)),
        "betas": np.zeros((n, 2, 10)), "transl": np.zeros((n, 2, 3)), "keypoints_3d": keypoints_3d,
        "keypoints_2d": kp2d, "visible": valid, "joint_valid": valid, "boxes": boxes,
        "v": (keypoints_3d[:, 1, 0] - keypoints_3d[:, 0, 0]) * both[:, None], "K": np.asarray(K, np.float64),
        "image_size": np.asarray(image_size, np.int32), "has_mano": np.asarray(False), **extra,
    }


class LazySequence(abc.ABC):
    """A sequence-source item whose ``gt`` is built by :meth:`_arrays` on first use, so
    that indexing a dataset reads only its file names."""

    num_frames: int

    @property
    def gt(self) -> dict[str, np.ndarray]:
        if getattr(self, "_gt", None) is None:
            self._gt = self._arrays()
        return self._gt

    @property
    def unannotated(self) -> int:
        """Frames where no hand is annotated."""
        return int((~self.gt["present"].any(1)).sum())

    @abc.abstractmethod
    def _arrays(self) -> dict[str, np.ndarray]:
        """The sequence's arrays (:func:`keypoint_arrays`), read from the dataset's files."""
