"""What a hand detector is to the rest of the pipeline, and how to get one by name.

A detector takes one RGB image ``(H, W, 3)`` uint8 and returns the hands it sees as
:class:`~fourdhands.detect.tracking.Detection`: the *tight* box ``[cx, cy, sx, sy]`` around
the hand in the image's pixels (centre and side lengths; the network's crop enlarges it
later), the person's anatomical side (``"right"``/``"left"``) and scores. It may see more
than two hands; choosing the two to reconstruct is the tracker's job.

Detectors that follow a video keep state from frame to frame; ``reset()`` starts a new,
unrelated sequence (or image), ``close()`` frees what they hold.
"""

from __future__ import annotations

import abc

import numpy as np

from ..errors import UserError
from .tracking import Detection

DETECTORS = ("mediapipe", "boxes")


class Detector(abc.ABC):
    """A source of hand detections, frame by frame. Also a context manager (closes)."""

    name: str

    @abc.abstractmethod
    def detect(self, image: np.ndarray) -> list[Detection]:
        """Hands in ``image`` (``(H, W, 3)`` uint8 RGB), most confident first."""

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


def make_detector(name: str = "mediapipe", **options) -> Detector:
    """The detector called ``name`` with its ``options``:

    - ``"mediapipe"``: :class:`~fourdhands.detect.mediapipe_hands.MediaPipeHands` (options
      ``mode``, confidences, ...; see there);
    - ``"boxes"``: :class:`~fourdhands.detect.boxes_file.BoxesDetector` over the boxes file
      ``path=...``.
    """
    if name == "mediapipe":
        from .mediapipe_hands import MediaPipeHands

        return MediaPipeHands(**options)
    if name == "boxes":
        from .boxes_file import BoxesDetector, load_boxes

        if set(options) != {"path"}:
            raise UserError("the boxes detector takes one option, path= (the boxes file)")
        return BoxesDetector(load_boxes(options["path"]))
    raise UserError(f"unknown detector {name!r} (known: {', '.join(DETECTORS)})")
