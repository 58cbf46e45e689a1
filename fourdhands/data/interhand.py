"""A reader of InterHand2.6M's official annotation files, in fourdhands' conventions.

The files (v1.0 layout, as in mmpose's ``tests/data/interhand2.6m`` and the dataset's
``annotations/<split>/`` folder):

- ``<split>_interhand2.6m_data.json`` (or ``InterHand2.6M_<split>_data.json``): COCO-style
  ``images`` (``id``, ``file_name``, ``width``, ``height``, ``capture``, ``camera``,
  ``frame_idx``, ``seq_name``, ...) and ``annotations`` (``image_id``, ``bbox``
  ``[x, y, w, h]``, ``joint_valid`` ``(42, 1)`` of 0/1, ``hand_type`` one of ``"right"``,
  ``"left"``, ``"interacting"``, and ``hand_type_valid``);
- ``..._camera.json``: ``{capture: {"campos"|"camrot"|"focal"|"princpt": {camera: ...}}}``,
  millimetres; world -> camera is ``X_cam = camrot @ (X_world - campos)``, pixels
  ``u = fx x / z + cx``, ``v = fy y / z + cy``;
- ``..._joint_3d.json``: ``{capture: {frame_idx: {"world_coord" (42, 3) mm, "joint_valid",
  "hand_type", "hand_type_valid"}}}``.

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

Whole files are read into memory; for the full dataset (GBs of JSON) read one split at a
time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..hands.joints import interhand_to_openpose
from ..sides import SIDES
from .annotation_file import read_annotation

__all__ = ["InterHandFrame", "read_interhand_frames", "find_annotation_files", "world_to_camera",
           "project_points", "keypoint_box", "SIDES", "JOINTS_PER_HAND"]

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
def world_to_camera(world: np.ndarray, camrot: np.ndarray, campos: np.ndarray) -> np.ndarray:
    """``(N, 3)`` world points (mm) -> camera frame (mm): ``camrot @ (X - campos)``."""
    world = np.asarray(world, np.float64)
    return (world - np.asarray(campos, np.float64).reshape(1, 3)) @ np.asarray(camrot, np.float64).T


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
_PATTERNS = ("{split}_interhand2.6m_{kind}.json", "InterHand2.6M_{split}_{kind}.json")


def find_annotation_files(folder: str | Path, split: str = "test") -> dict[str, Path]:
    """The ``data``, ``camera`` and ``joint_3d`` files of ``split`` in ``folder`` (mmpose's
    names ``test_interhand2.6m_data.json`` or the dataset's ``InterHand2.6M_test_data.json``).
    Raises a one-line UserError naming the file that is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder (InterHand2.6M annotations)")
    found = {}
    for kind in ("data", "camera", "joint_3d"):
        candidates = [folder / p.format(split=split, kind=kind) for p in _PATTERNS]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise UserError(f"{candidates[0]}: no such file (InterHand2.6M {split} {kind} annotations; "
                            f"also looked for {candidates[1].name})")
        found[kind] = path
    return found


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return int(im.width), int(im.height)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file (image of the InterHand2.6M annotations)") from None
    except (OSError, UnidentifiedImageError) as e:
        raise UserError(f"{path}: cannot read the image ({e})") from None


def _resolve_image(folder: Path, image_root: Path | None, split: str, file_name: str) -> Path:
    roots = [image_root] if image_root is not None else [folder, folder / "images" / split,
                                                         folder.parent.parent / "images" / split]
    for root in roots:
        if (root / file_name).is_file():
            return root / file_name
    return roots[0] / file_name


def _camera(cameras: dict, capture: int, camera: str, file: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intrinsics ``K (3, 3)``, ``camrot (3, 3)`` and ``campos (3,)`` (mm) of one camera of a
    capture, from the camera file's dict."""
    try:
        cam = cameras[str(capture)]
        campos = np.asarray(cam["campos"][camera], np.float64).reshape(3)
        camrot = np.asarray(cam["camrot"][camera], np.float64).reshape(3, 3)
        focal = np.asarray(cam["focal"][camera], np.float64).reshape(2)
        princpt = np.asarray(cam["princpt"][camera], np.float64).reshape(2)
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{file}: no usable camera {camera} of capture {capture} "
                        f"({type(e).__name__}: {e})") from None
    K = np.array([[focal[0], 0.0, princpt[0]], [0.0, focal[1], princpt[1]], [0.0, 0.0, 1.0]])
    return K, camrot, campos


def _world_joints(joints: dict, capture: int, frame_idx: int, file: Path) -> np.ndarray:
    """The 42 world joints `(42, 3)` (mm, InterHand order) of one frame of a capture."""
    try:
        world = np.asarray(joints[str(capture)][str(frame_idx)]["world_coord"], np.float64)
        return world.reshape(2 * JOINTS_PER_HAND, 3)
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{file}: no usable world_coord for capture {capture}, frame "
                        f"{frame_idx} ({type(e).__name__}: {e})") from None


def read_interhand_frames(folder: str | Path, split: str = "test", image_root: str | Path | None = None,
                          check_images: bool = True, missing: list | None = None) -> list[InterHandFrame]:
    """Every annotated image of ``split`` in ``folder``, in the data file's order.

    Args:
        folder: the folder with the three annotation files (:func:`find_annotation_files`).
        split: ``"test"``, ``"val"`` or ``"train"`` (the files' name prefix).
        image_root: where ``file_name`` is relative to; default: ``folder`` itself
            (mmpose's sample layout), else ``folder/images/<split>`` or the dataset's
            ``<root>/images/<split>`` beside ``<root>/annotations/<split>``.
        missing: when a list, annotated images that are not there are appended to it and
            their frames left out, instead of a UserError.
        check_images: open each image's header to check it exists and has the annotated
            size (a missing image raises UserError).
    Returns:
        A list of :class:`InterHandFrame`.
    Raises:
        UserError: a file missing, not JSON, or without the entries the annotations need;
        the one-line message names the file.
    """
    folder = Path(folder)
    files = find_annotation_files(folder, split)
    data, cameras, joints = (read_annotation(files[k], dict) for k in ("data", "camera", "joint_3d"))
    root = Path(image_root) if image_root is not None else None

    try:
        images = {int(im["id"]): im for im in data["images"]}
        annotations = list(data["annotations"])
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{files['data']}: not COCO-style InterHand2.6M annotations (missing {e})") from None

    frames = []
    for ann in annotations:
        try:
            image_id = int(ann["image_id"])
            im = images[image_id]
            capture, camera, frame_idx = int(im["capture"]), str(im["camera"]), int(im["frame_idx"])
            file_name, size = str(im["file_name"]), (int(im["width"]), int(im["height"]))
            joint_valid = np.asarray(ann["joint_valid"], np.float64).reshape(2 * JOINTS_PER_HAND) > 0
            hand_type, hand_type_valid = str(ann["hand_type"]), bool(ann["hand_type_valid"])
            x, y, w, h = (float(v) for v in ann["bbox"])
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"{files['data']}: annotation {ann.get('id', '?') if isinstance(ann, dict) else '?'} "
                            f"is incomplete or malformed ({type(e).__name__}: {e})") from None
        if hand_type not in ("right", "left", "interacting"):
            raise UserError(f"{files['data']}: annotation of image {image_id} has hand_type {hand_type!r} "
                            f"(expected right, left or interacting)")
        K, camrot, campos = _camera(cameras, capture, camera, files["camera"])
        cam_mm = world_to_camera(_world_joints(joints, capture, frame_idx, files["joint_3d"]), camrot, campos)
        # (42, 3) interhand order -> (2, 21, 3) openpose order, right first
        kp3d = interhand_to_openpose(cam_mm.reshape(2, JOINTS_PER_HAND, 3) * _MM_TO_M, axis=1)
        valid = interhand_to_openpose(joint_valid.reshape(2, JOINTS_PER_HAND), axis=1).copy()
        valid &= valid[:, :1]  # root (wrist) invalid -> the whole hand invalid (official loader)
        labelled = np.array([hand_type in (side, "interacting") for side in SIDES])
        present = (labelled if hand_type_valid else np.ones(2, bool)) & valid.any(axis=1)
        kp2d = project_points(kp3d, K)
        boxes = np.stack([keypoint_box(kp2d[h], valid[h]) if present[h] else np.zeros(4) for h in range(2)])

        path = _resolve_image(folder, root, split, file_name)
        if missing is not None and not path.is_file():
            missing.append(path)
            continue
        if check_images:
            actual = _image_size(path)
            if actual != size:
                raise UserError(f"{path}: image is {actual[0]}x{actual[1]} px, the annotations say "
                                f"{size[0]}x{size[1]}")
        frames.append(InterHandFrame(
            image_path=path, image_size=size, K=K, keypoints_3d=kp3d, keypoints_2d=kp2d, valid=valid,
            present=present, boxes=boxes, bbox=np.array([x + w / 2, y + h / 2, w, h]), hand_type=hand_type,
            hand_type_valid=hand_type_valid, image_id=image_id, capture=capture, camera=camera,
            frame_idx=frame_idx, seq_name=str(im.get("seq_name", "")), subject=int(im.get("subject", -1))))
    return frames
