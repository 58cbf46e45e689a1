"""What a hand detector is to the rest of the pipeline: :class:`Detection` (one hand) and
:class:`Detector` (a source of them, frame by frame). Imports nothing from the rest of
``fourdhands.detect``: every detector and the tracker depend on this module, not on each
other.

A detector takes one RGB image ``(H, W, 3)`` uint8 and returns the hands it sees: the
*tight* box ``[cx, cy, sx, sy]`` around each hand in the image's pixels (centre and side
lengths; the network's crop enlarges it later), the person's anatomical side
(``"right"``/``"left"``) and scores. It may see more than two hands; choosing the two to
reconstruct is the tracker's job (:class:`~fourdhands.detect.tracking.HandTracker`),
unless the detector's sides are known (:attr:`Detector.sides_known`, a user's boxes file).

Detectors that follow a video keep state from frame to frame; ``reset()`` starts a new,
unrelated sequence (or image), ``close()`` frees what they hold.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Detection:
    """One detected hand: box ``[cx, cy, sx, sy]`` (image px), the detector's label
    (``"right"``/``"left"``), its confidence in that label, the detection score, and the
    detector's 21 landmarks `(21, 2)` (image px, OpenPose order) when it has them."""

    box: tuple[float, float, float, float]
    handedness: str
    handedness_score: float = 1.0
    score: float = 1.0
    landmarks: np.ndarray | None = None


class Detector(abc.ABC):
    """A source of hand detections, frame by frame. Also a context manager (closes)."""

    name: str
    #: True when each detection's side is given (one hand per side), not guessed: the
    #: pipeline takes the sides as they are instead of tracking identities.
    sides_known: bool = False

    @abc.abstractmethod
    def detect(self, image: np.ndarray, name: str | None = None) -> list[Detection]:
        """Hands in ``image`` (``(H, W, 3)`` uint8 RGB), most confident first. ``name``:
        the frame's name (its file stem), for detectors that look frames up by name."""

    def reset(self) -> None:
        """Forget the previous frames: the next image starts a new sequence."""

    def close(self) -> None:
        """Free what the detector holds; it is not used afterwards."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_image(image: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``image`` is ``(H, W, 3)`` uint8 (a caller's bug, not the user's)."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"a detector takes (H, W, 3) uint8 RGB images, not {got}")


def by_side(detections: list[Detection]) -> tuple[Detection | None, Detection | None]:
    """``(right, left)`` from detections whose sides are known (the first of each side)."""
    right = next((d for d in detections if d.handedness == "right"), None)
    left = next((d for d in detections if d.handedness == "left"), None)
    return right, left
