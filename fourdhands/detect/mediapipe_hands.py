"""Hands found by MediaPipe's legacy hand tracker (palm detector + 21-landmark model).

MediaPipe 0.10.21 carries both models inside its wheel and runs them on the CPU, offline
(newer wheels have no hand models). It is installed without its declared dependencies
(most serve other solutions), plus the few its import really needs::

    pip install --no-deps mediapipe==0.10.21
    pip install 'fourdhands[detect]'

Handedness. The legacy solution labels hands as if the image were mirrored (a selfie
camera): on an ordinary photo its "Left" is the person's *right* hand. Labels are swapped
here, except for views we mirrored ourselves. Checked on photos where the side is plain:
two_hands_gesturing_desk.jpg (one hand, the person's left: arm from the left shoulder,
palm to the camera, fingers pointing right, thumb up) comes out "Right";
people_signing_many_hands.jpg (the woman's OK sign, her right hand) and the right hand
of two_hands_on_face_close.jpg come out "Left"; in huge_two_hands_far_barbell.jpg (a man
seen from behind) the hand on the image's left, his left, comes out "Right".

Scores. The solution gives no detection score, only the handedness classifier's
confidence per hand (every hand it returns has passed the landmark model's presence
test, ``min_tracking_confidence``). A :class:`Detection`'s ``handedness_score`` is the
views' vote on the side (below); its ``score`` is the highest confidence among the views
that found the hand times the fraction of the views holding the hand whole that found it:
a hand that one view of many saw ranks below one they all saw.

Recall ("image" mode). One pass over the whole image misses hands: large hands crossing or
holding something, and small hands in large photos. So each image is seen through several
*views*, and what they find is merged:

- the whole image and its mirror image: the models are not symmetric, so the mirror finds
  hands the original misses, and its labels are a second opinion on the side;
- the image zoomed out (in a black border, ``zoom_out`` times its size), also mirrored:
  hands that fill the frame get into the palm detector's range;
- when the longer side exceeds ``tile_above`` px, square tiles of ``tile_fraction`` of the
  shorter side, neighbours overlapping by at least 0.45 of a tile: the palm detector sees
  the whole image at 192 px, where a hand of a large photo is a few pixels (it finds hands
  down to about 12-15 px there). A hand touching a tile's inner edge is left to the views
  that hold it whole.

Images larger than ``max_side`` are first scaled down (the detector sees 192 px anyway).
The views' hands are mapped back to the image and merged: two are the same hand when their
21 landmarks agree (mean distance below ``same_hand`` of the hand's size). Box overlap
alone would merge interacting hands: the crossed hands of two_hands_crossed_signing.jpg
have boxes overlapping at IoU 0.55. A tile that sees part of a large hand can fit a small
hand onto its fingers; such fragments lie inside the large hand's box and are dropped.

"video" mode follows consecutive frames with the solution's own tracking (the previous
frame's landmarks seed the next, the palm detector runs only while fewer than
``max_num_hands`` hands are tracked) on the whole frame only; the mirror view is off by
default (it doubles the cost and found 2 more hands in 121 frames of the kitchen clip).
"""

from __future__ import annotations

import math
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from ..errors import UserError
from .detection import Detection, Detector, check_image

INSTALL = "pip install --no-deps mediapipe==0.10.21 && pip install 'fourdhands[detect]'"
MODES = ("image", "video")
SWAP = {"right": "left", "left": "right"}
# labels of the legacy solution for a non-mirrored image (see the module docstring)
_LABELS = {"Left": "right", "Right": "left"}


@dataclass(frozen=True)
class View:
    """What one detector pass sees: the window ``[x0, x1) x [y0, y1)`` of the image (image
    px; parts outside the image are black), mirrored left-right when ``flip``."""

    x0: int
    y0: int
    x1: int
    y1: int
    flip: bool = False


@dataclass(frozen=True)
class Hand:
    """A hand in image px: ``keypoints (21, 2)``, the person's side, the confidence in that
    side, the highest MediaPipe confidence, and how many views found it."""

    keypoints: np.ndarray
    handedness: str
    handedness_score: float
    score: float
    views: int = 1


def plan_views(width: int, height: int, flip: bool, zoom_out: float, tile_above: int | None,
               tile_fraction: float = 0.5) -> list[View]:
    """The views of a ``width`` x ``height`` image (see the module docstring): the whole
    image, zoomed out when ``zoom_out > 1``, square tiles when the longer side exceeds
    ``tile_above``; each also mirrored when ``flip``."""
    views = [View(0, 0, width, height)]
    if zoom_out > 1:
        px = round((zoom_out - 1) / 2 * width)
        py = round((zoom_out - 1) / 2 * height)
        views.append(View(-px, -py, width + px, height + py))
    if flip:
        views += [View(v.x0, v.y0, v.x1, v.y1, flip=True) for v in views]
    if tile_above is not None and max(width, height) > tile_above:
        side = round(tile_fraction * min(width, height))
        views += [View(x, y, x + side, y + side) for y in _starts(height, side) for x in _starts(width, side)]
    return views


def _starts(length: int, size: int) -> list[int]:
    """Evenly spread starts of windows of ``size`` covering ``length``, neighbours
    overlapping by at least 0.45 of a window."""
    n = math.ceil(max(length - size, 0) / (0.55 * size)) + 1
    return [round(i * (length - size) / (n - 1)) for i in range(n)] if n > 1 else [0]


def view_pixels(image: np.ndarray, view: View) -> np.ndarray:
    """The ``(y1 - y0, x1 - x0, 3)`` C-contiguous pixels ``view`` sees of ``image``."""
    H, W = image.shape[:2]
    if (view.x0, view.y0, view.x1, view.y1) == (0, 0, W, H):
        out = image
    else:
        out = np.zeros((view.y1 - view.y0, view.x1 - view.x0, 3), image.dtype)
        x0, y0, x1, y1 = max(view.x0, 0), max(view.y0, 0), min(view.x1, W), min(view.y1, H)
        out[y0 - view.y0:y1 - view.y0, x0 - view.x0:x1 - view.x0] = image[y0:y1, x0:x1]
    return np.ascontiguousarray(out[:, ::-1] if view.flip else out)


def hand_in_image(keypoints: np.ndarray, handedness: str, score: float, view: View) -> Hand:
    """A hand found in ``view`` (``keypoints (21, 2)`` in the view's px, the person's side
    as it appears in the view) as a hand of the image: mirrored views swap x and side."""
    p = np.array(keypoints, dtype=float)
    if view.flip:
        p[:, 0] = (view.x1 - view.x0) - p[:, 0]
        handedness = SWAP[handedness]
    p += (view.x0, view.y0)
    return Hand(p, handedness, float(score), float(score))


def cut_by_view(hand: Hand, view: View, width: int, height: int, margin: float = 0.02) -> bool:
    """Whether ``hand`` (image px) reaches within ``margin`` (fraction of the view's size) of
    an edge of the view that lies inside the image: the view cut the hand, and the
    landmarks beyond the edge are guesses."""
    mx, my = margin * (view.x1 - view.x0), margin * (view.y1 - view.y0)
    x, y = hand.keypoints[:, 0], hand.keypoints[:, 1]
    return bool((view.x0 > 0 and x.min() < view.x0 + mx) or (view.x1 < width and x.max() > view.x1 - mx)
                or (view.y0 > 0 and y.min() < view.y0 + my) or (view.y1 < height and y.max() > view.y1 - my))


def same_hand(a: Hand, b: Hand, threshold: float) -> bool:
    """Whether ``a`` and ``b`` are one hand: mean landmark distance below ``threshold``
    times the larger hand's size (longer side of its landmarks' box)."""
    size = max(np.ptp(a.keypoints, axis=0).max(), np.ptp(b.keypoints, axis=0).max(), 1e-6)
    return float(np.linalg.norm(a.keypoints - b.keypoints, axis=1).mean()) < threshold * size


def merge_hands(hands: list[Hand], threshold: float = 0.25) -> list[Hand]:
    """One hand per group of :func:`same_hand` results, most confident first.

    Greedy in order of score: a hand joins the group of the first kept hand it matches.
    A group's landmarks are the median of its members' (robust to one odd view), its side
    the members' vote (mean probability of "right", weighing each by its confidence), its
    handedness score that vote's probability of the chosen side, its score the highest
    member's, its ``views`` the number of members.
    """
    groups: list[list[Hand]] = []
    for h in sorted(hands, key=lambda h: h.score, reverse=True):
        for g in groups:
            if same_hand(g[0], h, threshold):
                g.append(h)
                break
        else:
            groups.append([h])
    merged = []
    for g in groups:
        p_right = float(np.mean([h.handedness_score if h.handedness == "right" else 1 - h.handedness_score
                                 for h in g]))
        side = g[0].handedness if p_right == 0.5 else ("right" if p_right > 0.5 else "left")
        merged.append(Hand(np.median([h.keypoints for h in g], axis=0), side,
                           max(p_right, 1 - p_right), g[0].score, len(g)))
    return merged


def drop_fragments(hands: list[Hand], inside: float = 0.9, smaller: float = 0.5, margin: float = 0.1) -> list[Hand]:
    """``hands`` without those whose landmarks' box lies, for ``inside`` of its area, within
    the box of a hand at least ``1 / smaller`` times larger, grown by ``margin`` of its
    size on each side (fingertips of a part stick out of the whole's tight box a little)."""
    boxes = [np.concatenate([h.keypoints.min(axis=0), h.keypoints.max(axis=0)]) for h in hands]
    areas = [max(float(np.prod(b[2:] - b[:2])), 1e-9) for b in boxes]

    def part_of(i: int, j: int) -> bool:
        pad = margin * (boxes[j][2:] - boxes[j][:2])
        low, high = np.maximum(boxes[i][:2], boxes[j][:2] - pad), np.minimum(boxes[i][2:], boxes[j][2:] + pad)
        return areas[i] <= smaller * areas[j] and float(np.prod(np.clip(high - low, 0, None))) >= inside * areas[i]

    return [h for i, h in enumerate(hands) if not any(part_of(i, j) for j in range(len(hands)) if j != i)]


def to_detection(hand: Hand, width: int, height: int, looked: int = 1) -> Detection | None:
    """The :class:`Detection` of ``hand``: its landmarks' box clipped to the image, score
    its confidence times the fraction of the ``looked`` views (those holding it whole) that
    found it; ``None`` when nothing of it is inside the image."""
    x0, y0 = np.clip(hand.keypoints.min(axis=0), 0, (width, height))
    x1, y1 = np.clip(hand.keypoints.max(axis=0), 0, (width, height))
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    box = (float(x0 + x1) / 2, float(y0 + y1) / 2, float(x1 - x0), float(y1 - y0))
    return Detection(box, hand.handedness, hand.handedness_score,
                     hand.score * min(1.0, hand.views / max(looked, 1)), np.asarray(hand.keypoints, float))


class MediaPipeHands(Detector):
    """MediaPipe's legacy hand tracker as a :class:`Detector`.

    Args:
        mode: ``"image"`` for unrelated pictures (every image from scratch, several views);
            ``"video"`` for consecutive frames (tracking from frame to frame, whole frame).
        min_detection_confidence: palm detector's threshold.
        min_tracking_confidence: the landmark model's hand-presence threshold (applied in
            both modes; in video mode also what keeps a hand tracked).
        max_num_hands: hands per view, and per image after merging. Default 4 in image
            mode, so that the tracker can choose the two most confident; 2 in video mode,
            where more keeps the palm detector running on every frame (about 1.5x the time
            per frame).
        model_complexity: landmark model, 0 (lite) or 1 (full).
        flip: also look at the mirror image (default: in image mode only).
        zoom_out: size of the zoomed-out view relative to the image, 1 for none (image
            mode only).
        tile_above: longer image side (px) above which tiles are added; ``None``: never
            (image mode only).
        tile_fraction: tile side as a fraction of the image's shorter side.
        same_hand: landmark distance, as a fraction of hand size, under which two views'
            hands are one.
        max_side: longer side (px) images are scaled down to before detection.
    """

    name = "mediapipe"

    def __init__(self, mode: str = "image", min_detection_confidence: float = 0.3,
                 min_tracking_confidence: float = 0.3, max_num_hands: int | None = None,
                 model_complexity: int = 1, flip: bool | None = None, zoom_out: float = 1.5,
                 tile_above: int | None = 640, tile_fraction: float = 0.5, same_hand: float = 0.25,
                 max_side: int = 2048):
        if mode not in MODES:
            raise UserError(f"detector mode must be image or video, not {mode!r}")
        for label, value in (("min_detection_confidence", min_detection_confidence),
                             ("min_tracking_confidence", min_tracking_confidence)):
            if not 0 <= value <= 1:
                raise UserError(f"{label} must be in [0, 1], not {value}")
        if model_complexity not in (0, 1):
            raise UserError(f"model_complexity must be 0 or 1, not {model_complexity}")
        if max_num_hands is None:
            max_num_hands = 4 if mode == "image" else 2
        if max_num_hands < 1 or zoom_out < 1:
            raise UserError("max_num_hands must be at least 1 and zoom_out at least 1")
        self._hands_module = _import_mediapipe_hands()
        self.mode, self.max_num_hands, self.max_side, self.same_hand = mode, max_num_hands, max_side, same_hand
        self.flip = (mode == "image") if flip is None else flip
        # the extra views have no tracking state to follow a video with
        self.zoom_out = zoom_out if mode == "image" else 1.0
        self.tile_above = tile_above if mode == "image" else None
        self.tile_fraction = tile_fraction
        self._settings = dict(static_image_mode=mode == "image", max_num_hands=max_num_hands,
                              model_complexity=model_complexity,
                              min_detection_confidence=min_detection_confidence,
                              min_tracking_confidence=min_tracking_confidence)
        # one solution per view direction: in video mode each keeps its own tracking state
        self._solutions: dict[bool, object] = {}
        self._started: set = set()

    def detect(self, image: np.ndarray, name: str | None = None) -> list[Detection]:
        check_image(image)
        H, W = image.shape[:2]
        scale = min(1.0, self.max_side / max(H, W))
        if scale < 1:
            # copying views of a 24-megapixel photo costs more than detecting in them, and
            # the palm detector sees 192 px anyway
            size = (max(1, round(W * scale)), max(1, round(H * scale)))
            image = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
        h, w = image.shape[:2]
        views = self.views(w, h)
        found = []
        for view in views:
            for keypoints, side, score in self._run(view_pixels(image, view), view.flip):
                hand = hand_in_image(keypoints, side, score, view)
                if not cut_by_view(hand, view, w, h):
                    found.append(hand)
        detections = []
        for hand in drop_fragments(merge_hands(found, self.same_hand)):
            looked = sum(not cut_by_view(hand, v, w, h) for v in views)
            hand = replace(hand, keypoints=hand.keypoints * (W / w, H / h))
            detection = to_detection(hand, W, H, looked)
            if detection is not None:
                detections.append(detection)
        detections.sort(key=lambda d: d.score, reverse=True)
        return detections[:self.max_num_hands]

    def views(self, width: int, height: int) -> list[View]:
        """The views this detector looks at for a ``width`` x ``height`` image."""
        return plan_views(width, height, self.flip, self.zoom_out, self.tile_above, self.tile_fraction)

    def _run(self, pixels: np.ndarray, mirrored: bool):
        """``(keypoints (21, 2) px of pixels, side as it appears there, confidence)`` per hand."""
        solution = self._solution(mirrored)
        if solution in self._started:
            result = solution.process(pixels)
        else:
            with _quiet_native_stderr():  # MediaPipe's start-up warnings mean nothing to a user
                result = solution.process(pixels)
            self._started.add(solution)
        if not result.multi_hand_landmarks:
            return []
        h, w = pixels.shape[:2]
        out = []
        for landmarks, handedness in zip(result.multi_hand_landmarks, result.multi_handedness):
            label = handedness.classification[0]
            keypoints = np.array([(p.x * w, p.y * h) for p in landmarks.landmark])
            out.append((keypoints, _LABELS[label.label], label.score))
        return out

    def _solution(self, mirrored: bool):
        key = mirrored if self.mode == "video" else False
        if key not in self._solutions:
            with _quiet_native_stderr():
                self._solutions[key] = self._hands_module.Hands(**self._settings)
        return self._solutions[key]

    def reset(self) -> None:
        if self.mode == "video":
            self.close()

    def close(self) -> None:
        for solution in self._solutions.values():
            solution.close()
        self._solutions.clear()
        self._started.clear()


@contextmanager
def _quiet_native_stderr():
    """Silence what native code writes to file descriptor 2 (glog cannot be told to)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _import_mediapipe_hands():
    try:
        from mediapipe.python.solutions import hands
    except ImportError as e:
        raise UserError(f"the MediaPipe detector needs mediapipe 0.10.21 ({e}); install with: "
                        f"{INSTALL}") from None
    return hands
