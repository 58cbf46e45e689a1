"""Hand detection and left/right tracking for in-the-wild input.

- :mod:`.detection`: the interface (:class:`Detection`, :class:`Detector`);
- :mod:`.mediapipe_hands`: MediaPipe's hand tracker behind it;
- :mod:`.boxes_file`: a user's boxes file behind it;
- :mod:`.tracking`: who is the right hand and who the left, through time.
"""

from __future__ import annotations

from ..errors import UserError
from .detection import Detection, Detector, by_side
from .tracking import HandTracker

DETECTORS = ("mediapipe", "boxes")

__all__ = ["DETECTORS", "Detection", "Detector", "HandTracker", "by_side", "make_detector"]


def make_detector(name: str = "mediapipe", **options) -> Detector:
    """The detector called ``name`` with its ``options``:

    - ``"mediapipe"``: :class:`~fourdhands.detect.mediapipe_hands.MediaPipeHands` (options
      ``mode``, confidences, ...; see there);
    - ``"boxes"``: :class:`~fourdhands.detect.boxes_file.BoxesDetector` over the boxes file
      ``path=...``.

    Raises UserError for an unknown name or a bad boxes file (the user's choices).
    """
    if name == "mediapipe":
        from .mediapipe_hands import MediaPipeHands

        return MediaPipeHands(**options)
    if name == "boxes":
        from .boxes_file import BoxesDetector, load_boxes

        if set(options) != {"path"}:
            raise TypeError(f"the boxes detector takes one option, path= (the boxes file), not {sorted(options)}")
        return BoxesDetector(load_boxes(options["path"]))
    raise UserError(f"unknown detector {name!r} (known: {', '.join(DETECTORS)})")
