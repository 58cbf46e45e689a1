"""A reader of InterHand2.6M's official annotation files, in fourdhands' conventions.

The files (v1.0: ``*_data.json``, ``*_camera.json``, ``*_joint_3d.json`` and the optional
``*_MANO_NeuralAnnot.json``) are described, streamed and cached by
:mod:`fourdhands.data.interhand_index`. World -> camera is ``X_cam = camrot @ (X_world -
campos)`` (millimetres), pixels ``u = fx x / z + cx``, ``v = fy y / z + cy``.

Joint order in the files: per hand thumb tip..thumb1, index tip..1, middle, ring, pinky,
wrist (21); the right hand is joints 0-20, the left 21-41. Here each hand becomes 21
keypoints in OpenPose order (:func:`fourdhands.hands.joints.interhand_to_openpose`), in
metres and the OpenCV camera frame of the image (InterHand2.6M's camera frame already is
x right, y down, z forward); hand axis 0 is the right hand, 1 the left.

Choices (the official loader, ``InterHand2.6M/data/InterHand2.6M/dataset.py``, is followed
where it decides):

- ``valid``: the *annotation's* ``joint_valid`` (the data json's, as the official loader
  uses; the joint_3d json carries a copy), and, as the official loader does, a hand whose
  wrist (its root) is invalid has all its joints marked invalid (its root-relative pose
  is undefined).
- ``present``: the hand's side is in ``hand_type`` (``"interacting"`` holds both) and
  ``hand_type_valid`` is set, and the hand has at least one valid joint. Where
  ``hand_type_valid`` is 0 the label is not trusted and a hand is present when it has a
  valid joint.
- ``boxes``: the tight box ``[cx, cy, sx, sy]`` (image px) of the *projected valid
  keypoints* of each hand, not clipped to the image; zeros for an absent hand. Not the
  annotation's ``bbox``: that is one box per image, around both hands when they interact,
  so it cannot give a box per hand. Being a box of joint centres, it is slightly tighter
  than the hand's silhouette (fingertip joints lie a few mm inside the skin); it is the
  same kind of box MediaPipe's detections have (its landmarks' box), i.e. what the
  pipeline gets at run time. The annotation's box is kept as ``bbox``.
- ``keypoints_2d``: the projection of ``keypoints_3d`` with ``K`` (also for invalid joints,
  whose 3D position may be a placeholder such as ``[1, 1, 1]`` mm: use ``valid``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..hands.joints import interhand_to_openpose
from ..sides import SIDES
from .interhand_index import HAND_TYPES, InterHandIndex, find_annotation_files, load_index

__all__ = ["InterHandFrame", "read_interhand_frames", "find_annotation_files",
           "project_points", "keypoint_box", "index_arrays", "SIDES", "JOINTS_PER_HAND"]

JOINTS_PER_HAND = 21
_MM_TO_M = 1e-3


@dataclass(frozen=True, eq=False)  # eq would compare arrays element-wise
class InterHandFrame:
    """One annotated InterHand2.6M image, fourdhands' conventions (module docstring).

    Attributes:
        image_path: the image file.
        image_size: ``(W, H)`` pixels.
        K: ``(3, 3)`` float64 intrinsics (focal and principal point of the camera).
        keypoints_3d: ``(2, 21, 3)`` float64, metres, camera frame, OpenPose order; axis 0
            is (right, left).
        keypoints_2d: ``(2, 21, 2)`` float64, the projection of ``keypoints_3d`` (px).
        valid: ``(2, 21)`` bool, joint validity (wrist-invalid hands all invalid).
        present: ``(2,)`` bool, which hands are in the frame.
        boxes: ``(2, 4)`` float64 ``[cx, cy, sx, sy]`` tight boxes of the projected valid
            keypoints; zeros where absent.
        bbox: ``(4,)`` float64 the annotation's box as ``[cx, cy, sx, sy]`` (one per image).
        hand_type: ``"right"``, ``"left"`` or ``"interacting"``, as annotated.
        hand_type_valid: whether the annotators trusted ``hand_type``.
        image_id, capture, camera, frame_idx, seq_name, subject: identifiers from the files
            (``subject`` is -1 when absent).
    """

    image_path: Path
    image_size: tuple[int, int]
    K: np.ndarray
    keypoints_3d: np.ndarray
    keypoints_2d: np.ndarray
    valid: np.ndarray
    present: np.ndarray
    boxes: np.ndarray
    bbox: np.ndarray
    hand_type: str
    hand_type_valid: bool
    image_id: int
    capture: int
    camera: str
    frame_idx: int
    seq_name: str
    subject: int = -1

    @property
    def focal(self) -> tuple[float, float]:
        """``(fx, fy)`` in pixels."""
        return float(self.K[0, 0]), float(self.K[1, 1])

    @property
    def principal_point(self) -> tuple[float, float]:
        """``(cx, cy)`` in pixels."""
        return float(self.K[0, 2]), float(self.K[1, 2])


# ----------------------------------------------------------------------------- geometry
def project_points(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """``(..., 3)`` camera-frame points -> ``(..., 2)`` pixels with the pinhole ``K``."""
    p = np.asarray(points, np.float64)
    z = p[..., 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = p[..., :2] / z
    return xy * np.array([K[0, 0], K[1, 1]]) + np.array([K[0, 2], K[1, 2]])


def keypoint_box(points_2d: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``[cx, cy, sx, sy]`` of the valid ``(J, 2)`` points; zeros when none is valid."""
    pts = np.asarray(points_2d, np.float64)[np.asarray(valid, bool)]
    if len(pts) == 0:
        return np.zeros(4)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    return np.concatenate([(lo + hi) / 2, hi - lo])


# ----------------------------------------------------------------------------- files
def index_arrays(index: InterHandIndex, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The conventions of the module docstring applied to ``rows`` `(F,)` of ``index``:
    ``K`` `(F, 3, 3)`, ``keypoints_3d`` `(F, 2, 21, 3)` metres in the camera frame,
    ``valid`` `(F, 2, 21)`, ``present`` `(F, 2)`."""
    rows = np.asarray(rows, np.int64)
    cam = np.asarray(index.camera)[rows]
    rot, pos = np.asarray(index.camrot)[cam], np.asarray(index.campos)[cam]
    world = np.asarray(index.world)[np.asarray(index.joints)[rows]]
    cam_mm = np.einsum("fij,fkj->fki", rot, world - pos[:, None])  # camrot @ (X - campos)
    kp3d = interhand_to_openpose(cam_mm.reshape(-1, 2, JOINTS_PER_HAND, 3) * _MM_TO_M, axis=2)
    valid = interhand_to_openpose(np.asarray(index.joint_valid)[rows].reshape(-1, 2, JOINTS_PER_HAND), axis=2).copy()
    valid &= valid[:, :, :1]  # root (wrist) invalid -> the whole hand invalid (official loader)
    kind = np.asarray(HAND_TYPES)[np.asarray(index.hand_type)[rows]]
    labelled = np.stack([(kind == side) | (kind == "interacting") for side in SIDES], axis=1)
    trusted = np.asarray(index.hand_type_valid)[rows][:, None]
    present = np.where(trusted, labelled, True) & valid.any(axis=2)
    return {"K": np.asarray(index.K)[cam], "keypoints_3d": kp3d, "valid": valid, "present": present}


def image_roots(folder: Path, split: str, image_root: str | Path | None = None) -> list[Path]:
    """Where the data file's ``file_name`` may be relative to, in the order tried: the
    given ``image_root``, else ``folder`` itself (mmpose's sample layout),
    ``folder/images/<split>`` and the dataset's ``<root>/images/<split>`` beside
    ``<root>/annotations/<split>``."""
    if image_root is not None:
        return [Path(image_root)]
    return [folder, folder / "images" / split, folder.parent.parent / "images" / split]


def resolve_image(roots: list[Path], file_name: str) -> Path:
    """The first root holding ``file_name``, else the path under the first root."""
    for root in roots:
        if (root / file_name).is_file():
            return root / file_name
    return roots[0] / file_name


def _check_image_size(path: Path, size: tuple[int, int]) -> None:
    """UserError unless ``path`` is an image of ``size`` ``(W, H)`` (its header only)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            actual = int(im.width), int(im.height)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file (image of the InterHand2.6M annotations)") from None
    except (OSError, UnidentifiedImageError) as e:
        raise UserError(f"{path}: cannot read the image ({e})") from None
    require_size(path, actual, size)


def require_size(path: Path, actual: tuple[int, int], annotated) -> None:
    """UserError unless an image's ``actual`` ``(W, H)`` is the ``annotated`` one."""
    want = tuple(int(v) for v in annotated)
    if tuple(actual) != want:
        raise UserError(f"{path}: image is {actual[0]}x{actual[1]} px, the annotations say {want[0]}x{want[1]}")


def read_interhand_frames(folder: str | Path, split: str = "test", image_root: str | Path | None = None,
                          check_images: bool = True, missing: list | None = None) -> list[InterHandFrame]:
    """Every annotated image of ``split`` in ``folder``, in the data file's order, as
    :class:`InterHandFrame` objects (for a few thousand frames; a whole split is read as
    sequences by :class:`~fourdhands.data.sources.InterHandSequences`).

    Args:
        folder: the folder with the annotation files (:func:`find_annotation_files`).
        split: ``"test"``, ``"val"`` or ``"train"`` (the files' name prefix).
        image_root: where ``file_name`` is relative to (:func:`image_roots`).
        check_images: open each image's header to check it exists and has the annotated
            size (a missing image raises UserError).
        missing: when a list, annotated images that are not there are appended to it and
            their frames left out, instead of a UserError.
    Raises:
        UserError: a file missing, not JSON, or without the entries the annotations need;
        the one-line message names the file.
    """
    folder = Path(folder)
    index = load_index(folder, split)
    roots = image_roots(folder, split, image_root)
    arrays = index_arrays(index, np.arange(len(index)))
    frames = []
    for i in range(len(index)):
        path = resolve_image(roots, index.file_name[i].decode())
        size = tuple(int(v) for v in index.size[i])
        if missing is not None and not path.is_file():
            missing.append(path)
            continue
        if check_images:
            _check_image_size(path, size)
        frames.append(_frame(index, i, path, size, {k: v[i] for k, v in arrays.items()}))
    return frames


def _frame(index: InterHandIndex, i: int, path: Path, size: tuple[int, int], a: dict) -> InterHandFrame:
    kp2d = project_points(a["keypoints_3d"], a["K"])
    boxes = np.stack([keypoint_box(kp2d[h], a["valid"][h]) if a["present"][h] else np.zeros(4) for h in range(2)])
    x, y, w, h = index.bbox[i]
    return InterHandFrame(
        image_path=path, image_size=size, K=a["K"], keypoints_3d=a["keypoints_3d"], keypoints_2d=kp2d,
        valid=a["valid"], present=a["present"], boxes=boxes, bbox=np.array([x + w / 2, y + h / 2, w, h]),
        hand_type=HAND_TYPES[int(index.hand_type[i])], hand_type_valid=bool(index.hand_type_valid[i]),
        image_id=int(index.image_id[i]), capture=int(index.capture[i]),
        camera=str(index.camera_name[int(index.camera[i])]), frame_idx=int(index.frame_idx[i]),
        seq_name=str(index.seq_names[int(index.seq[i])]), subject=int(index.subject[i]))
