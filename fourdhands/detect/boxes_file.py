"""Hand boxes given by the user (``--boxes FILE``) instead of a detector.

Two formats, told apart by the file's extension (``.json``, ``.csv``; any other: JSON if
the file starts with ``{``, else CSV).

JSON::

    {"frames": {
        "0":          [{"box": [412.0, 300.5, 120.0, 140.0], "hand": "right", "score": 1.0},
                       {"box": [230.0, 310.0, 110.0, 135.0], "hand": "left"}],
        "img_0042.jpg": [{"box": [640, 360, 200, 210], "hand": "left"}]
    }}

CSV (the header line is required; ``score`` is an optional last column)::

    frame,hand,cx,cy,sx,sy,score
    0,right,412.0,300.5,120.0,140.0,1.0
    img_0042.jpg,left,640,360,200,210,1.0

- ``box`` / ``cx,cy,sx,sy``: the tight box around the hand in the original image's pixels:
  centre and side lengths (both sides > 0). The network's crop enlarges it.
- ``hand``: ``right`` or ``left``, the person's anatomical side; at most one of each per
  frame. ``score`` (default 1) is the detection score, in [0, 1]. The side is taken as
  certain.
- ``landmarks`` (JSON only, optional): the hand's 21 2D keypoints in image pixels,
  OpenPose order (wrist, thumb, index, middle, ring, pinky, base to tip), as a list of 21
  ``[x, y]``; an upright network turns its crop by them (wrist -> middle knuckle up).
- frame keys: a frame is looked up by its name first (an image's file name; an image
  extension on the key is ignored, so ``img_0042.jpg`` and ``img_0042`` are the same
  frame; a video's frames are called ``frame_000012``), then, for
  a whole-number key, by its 0-based index in the input (video frames, folder entries in
  order). A frame with no key has no hands.

Any mistake is reported as one line naming the file and where it is (JSON line and column,
CSV row, frame key).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..media import IMAGE_EXTENSIONS
from ..sides import SIDES
from .detection import Detection, Detector

_CSV_COLUMNS = ["frame", "hand", "cx", "cy", "sx", "sy"]
_HAND_KEYS = {"box", "hand", "score", "landmarks"}


@dataclass(frozen=True)
class BoxesFile:
    """The hands of a boxes file, by frame name and by frame index."""

    path: Path
    by_name: dict[str, list[Detection]]
    by_index: dict[int, list[Detection]]

    def detections_for(self, index: int, name: str) -> list[Detection]:
        """The hands of the frame called ``name`` (file stem) at position ``index``; none
        when the file does not list it."""
        if name in self.by_name:
            return list(self.by_name[name])
        return list(self.by_index.get(index, []))


class BoxesDetector(Detector):
    """A boxes file behind the :class:`Detector` interface, its sides taken as given.
    ``detect(image, name)`` serves the frame called ``name`` when the file lists it by
    name, else by position: the number of images passed to ``detect`` before this one.
    Positions count over the whole input (a folder of unrelated images, too), so
    ``reset`` does not restart them."""

    name = "boxes"
    sides_known = True

    def __init__(self, boxes: BoxesFile):
        self.boxes = boxes
        self.index = 0

    def detect(self, image: np.ndarray, name: str | None = None) -> list[Detection]:
        found = self.boxes.detections_for(self.index, name if name is not None else "")
        self.index += 1
        return found


def load_boxes(path: str | Path) -> BoxesFile:
    """Read and check a boxes file (format in the module's docstring); ``UserError`` on any
    mistake."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"{path}: no such boxes file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read the boxes file ({e})") from None
    suffix = path.suffix.lower()
    is_json = suffix == ".json" or (suffix != ".csv" and text.lstrip().startswith("{"))
    frames = _parse_json(path, text) if is_json else _parse_csv(path, text)
    by_name: dict[str, list[Detection]] = {}
    by_index: dict[int, list[Detection]] = {}
    for key, hands in frames.items():
        name = Path(key).stem if Path(key).suffix.lower() in IMAGE_EXTENSIONS else key
        if name in by_name:
            raise UserError(f"{path}: frame {key!r} is listed twice (keys are compared without "
                            "their extension)")
        by_name[name] = hands
        if key.isdigit():
            by_index[int(key)] = hands
    return BoxesFile(path, by_name, by_index)


def _parse_json(path: Path, text: str) -> dict[str, list[Detection]]:
    def no_duplicate_keys(pairs):
        keys = [k for k, _ in pairs]
        for k in keys:
            if keys.count(k) > 1:
                raise UserError(f"{path}: key {k!r} appears twice in one object")
        return dict(pairs)

    try:
        data = json.loads(text, object_pairs_hook=no_duplicate_keys)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("frames"), dict):
        raise UserError(f'{path}: expected an object {{"frames": {{...}}}} at the top')
    frames: dict[str, list[Detection]] = {}
    for key, hands in data["frames"].items():
        where = f"{path}: frame {key!r}"
        if not isinstance(hands, list):
            raise UserError(f"{where}: expected a list of hands, got {type(hands).__name__}")
        found = []
        for i, hand in enumerate(hands):
            at = f"{where}, hand {i + 1}"
            if not isinstance(hand, dict):
                raise UserError(f"{at}: expected an object with box, hand (and score)")
            for k in ("box", "hand"):
                if k not in hand:
                    raise UserError(f"{at}: missing {k!r}")
            unknown = set(hand) - _HAND_KEYS
            if unknown:
                raise UserError(f"{at}: unknown key {sorted(unknown)[0]!r} (known: box, hand, score, landmarks)")
            box = hand["box"]
            if not isinstance(box, list) or len(box) != 4:
                raise UserError(f"{at}: box must be a list of 4 numbers [cx, cy, sx, sy]")
            found.append(_detection(at, box, hand["hand"], hand.get("score", 1.0), hand.get("landmarks")))
        frames[str(key)] = _one_per_side(where, found)
    return frames


def _parse_csv(path: Path, text: str) -> dict[str, list[Detection]]:
    rows = [(n, r) for n, r in enumerate(csv.reader(io.StringIO(text)), start=1) if any(c.strip() for c in r)]
    if not rows:
        raise UserError(f"{path}: empty boxes file")
    header = [c.strip().lower() for c in rows[0][1]]
    if header not in (_CSV_COLUMNS, _CSV_COLUMNS + ["score"]):
        raise UserError(f"{path}: the first line must be the header {','.join(_CSV_COLUMNS)}[,score], "
                        f"not {','.join(rows[0][1])}")
    found: dict[str, list[Detection]] = {}
    for n, row in rows[1:]:
        at = f"{path}: row {n}"
        if len(row) != len(header):
            raise UserError(f"{at}: {len(row)} columns, the header has {len(header)}")
        cells = [c.strip() for c in row]
        score = cells[6] if len(cells) == 7 else 1.0
        found.setdefault(cells[0], []).append(_detection(at, cells[2:6], cells[1], score))
    return {key: _one_per_side(f"{path}: frame {key!r}", hands) for key, hands in found.items()}


def _detection(at: str, box, hand, score, landmarks=None) -> Detection:
    """A checked Detection; ``at`` says where in the file for the error message."""
    names = ("cx", "cy", "sx", "sy")
    values = [_number(at, name, v) for name, v in zip(names, box)]
    if values[2] <= 0 or values[3] <= 0:
        raise UserError(f"{at}: box sides must be positive, got sx={values[2]:g}, sy={values[3]:g}")
    side = hand.strip().lower() if isinstance(hand, str) else hand
    if side not in SIDES:
        raise UserError(f"{at}: hand must be 'right' or 'left', not {hand!r}")
    score = _number(at, "score", score)
    if not 0 <= score <= 1:
        raise UserError(f"{at}: score must be in [0, 1], got {score:g}")
    if landmarks is not None:
        if not (isinstance(landmarks, list) and len(landmarks) == 21
                and all(isinstance(p, list) and len(p) == 2 for p in landmarks)):
            raise UserError(f"{at}: landmarks must be a list of 21 [x, y] points")
        landmarks = np.array([[_number(at, "landmark", v) for v in p] for p in landmarks])
    return Detection(box=tuple(values), handedness=side, handedness_score=1.0, score=score, landmarks=landmarks)


def _number(at: str, name: str, value) -> float:
    # bool is an int to Python, but true/false in a box is a mistake
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UserError(f"{at}: {name} must be a number, not {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise UserError(f"{at}: {name} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise UserError(f"{at}: {name} must be finite, not {value!r}")
    return number


def _one_per_side(where: str, hands: list[Detection]) -> list[Detection]:
    sides = [d.handedness for d in hands]
    for side in SIDES:
        if sides.count(side) > 1:
            raise UserError(f"{where}: {sides.count(side)} {side} hands (at most one of each per frame)")
    return hands
