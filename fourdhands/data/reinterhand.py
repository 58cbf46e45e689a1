"""A reader of Re:InterHand (Moon et al., NeurIPS 2023 Datasets and Benchmarks, "A Dataset
of Relighted 3D Interacting Hands", mks0601.github.io/ReInterHand) in its published layout,
as a sequence source (:mod:`fourdhands.data.sources`): one sequence per (capture, Mugsy
camera), its frames in frame order.

Sources (read for facts, nothing copied): the dataset's official loader in InterWild,
github.com/facebookresearch/InterWild ``data/ReInterHand/ReInterHand.py``, with
``common/utils/transforms.py`` (``world2cam``, ``cam2pixel``), ``common/utils/mano.py``
and ``common/utils/preprocessing.py`` (``get_mano_data``); its download scripts
``tool/ReInterHand/download/*.py`` (folder names) and ``tool/ReInterHand/render/
reih_render_mano_3rd.py`` (MANO fits, units). The ``keypoints_orig`` layout is not in
an official loader: it is as two third-party loaders read it (a ReInterHand-to-egodex
converter and a ``HandPoseDataset``, found in the code index), so it is the less certain
of the two keypoint sources.

Layout: ``<root>/<capture_id>/`` for each capture ``m--<date>--...--two-hands`` (``root``
is InterWild's ``data/ReInterHand/data``; a folder holding ``data/`` is accepted too):

- ``Mugsy_cameras/cam_params.json``: ``{camera: {"R" (3, 3), "t" (3,) mm, "focal" (2,),
  "princpt" (2,)}}``; world -> camera ``X_cam = R @ X_world + t`` (not InterHand2.6M's
  ``R @ (X - campos)``), pinhole pixels ``u = fx x / z + cx``; OpenCV axes (x right, y
  down, z forward; the render script flips x and y only for PyTorch3D);
- ``Mugsy_cameras/<lighting>/images/<camera>/<%06d>.png``: ``envmap_per_frame`` (the
  official loader's default: rendered at 5 fps, the frames are the file names) or
  ``envmap_per_segment`` (30 fps, the frames are the second column of the capture's
  ``frame_list.txt``, ``<segment> <frame>`` a line);
- 3D keypoints, world coordinates, millimetres, one of:
  ``orig_fits/{right,left}/Keypoints/keypoint-<%06d>.json`` (the official loader's): 24
  joints of the authors' own hand model per hand, named Wrist, Thumb_0-4, Index_1-4,
  Middle_1-4, Ring_1-4, Pinky_0-4, Forearm_Stub; as the loader maps them by name, Thumb_0,
  Pinky_0 and the forearm stub are dropped and Thumb_1-4 are OpenPose's thumb CMC..tip
  (:data:`ORIG_FIT_TO_OPENPOSE`); or ``keypoints_orig/keypoints_orig/<frame>.json`` (42
  joints, InterHand2.6M's order, right 0-20 then left 21-41, reordered by
  :func:`~fourdhands.hands.joints.interhand_to_openpose`). ``orig_fits`` is preferred
  when both are there;
- ``mano_fits/params/<frame>_{right,left}.json``: ``pose`` (48, axis-angle, global
  orientation first, no PCA), ``shape`` (10), ``trans`` (3, metres), in the *world* frame,
  for smplx's MANO with ``use_pca=False, flat_hand_mean=False`` (the pose is relative to
  MANO's mean hand) and the left-hand shapedirs fix applied (InterWild flips the x-column
  when the two models' columns agree). They are kept as fits
  (:data:`~fourdhands.hands.mano_fit.FIT_KEYS`, with the camera's ``R`` and ``t``), which a
  MANO hand model turns into ground truth parameters; ``has_mano`` is False, so under the
  open hand model the keypoints supervise. A capture with MANO fits but neither
  keypoint source is a UserError (its joints need the MANO model).

Splits, as the official loader: ``test`` is the three captures of :data:`TEST_CAPTURES`,
``train`` every other capture. The Ego cameras (``Ego_cameras/``: fisheye, per-frame
extrinsics) are not read: this project's cameras are pinhole.

Here the right hand is slot 0, the left slot 1 (each its own hand, no mirroring). A hand
is *present* where its keypoints are annotated and at least one of them projects inside
the image in front of the camera (the official loader's "hand exists" rule, joints in
the image); then all 21 are valid. Per-frame annotation files that are absent, or hold
non-finite or all-zero joints, leave the hand absent and are counted (``missing_hands``),
as are annotated hands out of the view (``out_of_view``); ``unannotated`` counts frames
with neither hand present. ``gt["frame_index"]`` `(F,)` keeps the capture's frame
numbers, which need not be consecutive (the 5 fps renders are a subset of the capture's
frames, and the published frames skip between segments).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import UserError
from ..hands.joints import interhand_to_openpose
from ..hands.mano_fit import fit_arrays
from ..sides import SIDES
from .annotation_file import read_annotation
from .real_sequence import LazySequence, keypoint_arrays, read_rgb

SPLITS = ("train", "test")
LIGHTINGS = ("envmap_per_frame", "envmap_per_segment")
#: The official loader's test captures; every other capture is training data.
TEST_CAPTURES = (
    "m--20221215--0949--RNS217--pilot--ProjectGoliathScript--Hands--two-hands",
    "m--20221216--0953--NKC880--pilot--ProjectGoliathScript--Hands--two-hands",
    "m--20230317--1130--QZX685--pilot--ProjectGoliath--Hands--two-hands",
)
ORIG_FIT_JOINTS = 24
#: OpenPose position -> index among a hand's 24 orig-fit joints (Wrist 0, Thumb_1-4 2-5,
#: Index_1-4 6-9, Middle_1-4 10-13, Ring_1-4 14-17, Pinky_1-4 19-22).
ORIG_FIT_TO_OPENPOSE = (0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 19, 20, 21, 22)
MANO_SIZE = 61  # pose 48, shape 10, trans 3
_MM_TO_M = 1e-3
_LAYOUT = ("Re:InterHand layout: <root>/<capture>/Mugsy_cameras/cam_params.json, "
           "Mugsy_cameras/<lighting>/images/<camera>/<frame>.png, orig_fits/ or keypoints_orig/")


def _cameras(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``{camera: (K (3, 3), R (3, 3), t (3,) mm)}`` of one capture's ``cam_params.json``."""
    cameras = {}
    for name, cam in read_annotation(path, dict, _LAYOUT).items():
        try:
            R = np.asarray(cam["R"], np.float64).reshape(3, 3)
            t = np.asarray(cam["t"], np.float64).reshape(3)
            (fx, fy), (cx, cy) = (np.asarray(cam[k], np.float64).reshape(2) for k in ("focal", "princpt"))
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"{path}: camera {name}: no usable R (3x3), t (3), focal (2), princpt (2) "
                            f"({type(e).__name__}: {e})") from None
        cameras[str(name)] = (np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]), R, t)
    return cameras


def _keypoint_source(folder: Path) -> str:
    """Which keypoints a capture holds: ``"orig_fits"`` or ``"keypoints_orig"``; a UserError
    naming what is missing otherwise (a MANO-only capture needs the MANO model)."""
    if (folder / "orig_fits").is_dir():
        for side in SIDES:
            if not (folder / "orig_fits" / side / "Keypoints").is_dir():
                raise UserError(f"{folder / 'orig_fits' / side / 'Keypoints'}: missing ({_LAYOUT})")
        return "orig_fits"
    if (folder / "keypoints_orig" / "keypoints_orig").is_dir():
        return "keypoints_orig"
    if (folder / "mano_fits" / "params").is_dir():
        raise UserError(f"{folder}: only MANO fits (mano_fits/params), no orig_fits/ or keypoints_orig/: its 3D "
                        "joints need the MANO model (MANO_RIGHT.pkl / MANO_LEFT.pkl) run on the fits, which this "
                        "reader does not do; download orig_fits (InterWild tool/ReInterHand/download)")
    raise UserError(f"{folder / 'orig_fits'}: missing, and no keypoints_orig/keypoints_orig/ either ({_LAYOUT})")


def _joints(path: Path, count: int) -> np.ndarray | None:
    """A keypoint file's `(count, 3)` world joints (mm); None when absent (unannotated)."""
    if not path.is_file():
        return None
    try:
        return np.asarray(read_annotation(path), np.float64).reshape(count, 3)
    except (TypeError, ValueError) as e:
        raise UserError(f"{path}: expected {count} x 3 numbers (world joints, mm) ({e})") from None


def _usable(hand: np.ndarray | None) -> bool:
    """Whether a hand's joints are an annotation: finite and not all zero (a placeholder)."""
    return hand is not None and bool(np.isfinite(hand).all()) and bool(np.any(hand != 0))


class _Capture:
    """One capture's cameras and its per-frame annotations, read once and shared by the
    capture's camera sequences (every camera sees the same world joints)."""

    def __init__(self, folder: Path):
        self.folder, self.name = folder, folder.name
        self.cameras = _cameras(folder / "Mugsy_cameras" / "cam_params.json")
        self.source = _keypoint_source(folder)
        self._joints: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._mano: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def joints(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``frame``'s world joints `(2, 21, 3)` mm, OpenPose order, and which of the
        two hands are annotated `(2,)`."""
        if frame not in self._joints:
            if self.source == "orig_fits":
                hands = [_joints(self.folder / "orig_fits" / side / "Keypoints" / f"keypoint-{frame:06d}.json",
                                 ORIG_FIT_JOINTS) for side in SIDES]
                hands = [None if h is None else h[list(ORIG_FIT_TO_OPENPOSE)] for h in hands]
            else:
                folder = self.folder / "keypoints_orig" / "keypoints_orig"
                path = next((p for p in (folder / f"{frame}.json", folder / f"{frame:06d}.json") if p.is_file()),
                            folder / f"{frame}.json")
                both = _joints(path, 2 * 21)
                hands = [None, None] if both is None else list(interhand_to_openpose(both.reshape(2, 21, 3), axis=1))
            ok = np.array([_usable(h) for h in hands])
            world = np.stack([h if good else np.zeros((21, 3)) for h, good in zip(hands, ok)])
            self._joints[frame] = (world, ok)
        return self._joints[frame]

    def mano(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``frame``'s raw MANO fits `(2, 61)` ``[pose | shape | trans]`` (world frame)
        and which hands have one `(2,)`."""
        if frame not in self._mano:
            params, ok = np.zeros((2, MANO_SIZE)), np.zeros(2, bool)
            for h, side in enumerate(SIDES):
                path = self.folder / "mano_fits" / "params" / f"{frame}_{side}.json"
                if not path.is_file():
                    continue
                fit = read_annotation(path, dict)
                try:
                    params[h] = np.concatenate([np.asarray(fit[k], np.float64).reshape(n)
                                                for k, n in (("pose", 48), ("shape", 10), ("trans", 3))])
                except (KeyError, TypeError, ValueError) as e:
                    raise UserError(f"{path}: no usable pose (48), shape (10), trans (3) "
                                    f"({type(e).__name__}: {e})") from None
                ok[h] = True
            self._mano[frame] = (params, ok)
        return self._mano[frame]


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size
    except OSError as e:  # missing files included
        raise UserError(f"{path}: cannot read the image ({e})") from None


def _in_view(kp3d: np.ndarray, K: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`(F, 2)`: whether any of a hand's `(F, 2, 21, 3)` camera-frame joints projects inside
    the ``(W, H)`` image, in front of the camera."""
    z = kp3d[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = K[0, 0] * kp3d[..., 0] / z + K[0, 2]
        v = K[1, 1] * kp3d[..., 1] / z + K[1, 2]
    inside = (z > 0) & (u >= 0) & (u < size[0]) & (v >= 0) & (v < size[1])
    return inside.any(-1)


class ReInterHandSequence(LazySequence):
    """One capture seen by one Mugsy camera: ``frames`` (the capture's frame numbers, in
    order) with their images; annotations read when ``gt`` is first asked for."""

    def __init__(self, capture: _Capture, camera: str, image_folder: Path, frames: list[int], names: list[str]):
        self.capture, self.camera, self.image_folder = capture, camera, image_folder
        self.frames, self._names, self.num_frames = frames, names, len(frames)

    def image_path(self, t: int) -> Path:
        return self.image_folder / self._names[t]

    def frame(self, t: int) -> np.ndarray:
        path = self.image_path(t)
        return read_rgb(path)

    @property
    def missing_hands(self) -> int:
        """(frame, hand) pairs without a usable annotation (file absent, non-finite, zeros)."""
        self.gt  # the counts are made with the arrays
        return self._missing_hands

    @property
    def out_of_view(self) -> int:
        """(frame, hand) pairs annotated but with no joint inside the image."""
        self.gt
        return self._out_of_view

    def _arrays(self) -> dict[str, np.ndarray]:
        n = self.num_frames
        K, R, t = self.capture.cameras[self.camera]
        size = _image_size(self.image_path(0))
        kp3d, annotated = np.zeros((n, 2, 21, 3)), np.zeros((n, 2), bool)
        mano, mano_valid = np.zeros((n, 2, MANO_SIZE)), np.zeros((n, 2), bool)
        for i, f in enumerate(self.frames):
            world, annotated[i] = self.capture.joints(f)
            cam_mm = world.reshape(-1, 3) @ R.T + t  # X_cam = R X_world + t, both in mm
            kp3d[i] = np.where(annotated[i][:, None, None], cam_mm.reshape(2, 21, 3) * _MM_TO_M, 0.0)
            mano[i], mano_valid[i] = self.capture.mano(f)
        present = annotated & _in_view(kp3d, K, size)
        self._missing_hands, self._out_of_view = int((~annotated).sum()), int((annotated & ~present).sum())
        fits = fit_arrays(mano[..., :48], mano[..., 48:58], mano[..., 58:], np.repeat(R[None], n, 0),
                          np.repeat(t[None] * _MM_TO_M, n, 0), mano_valid, mean_relative=True)
        return keypoint_arrays(kp3d, np.repeat(present[..., None], 21, -1), np.repeat(K[None], n, 0), size,
                               present=present, frame_index=np.asarray(self.frames, np.int64), **fits)


def _image_frames(folder: Path) -> tuple[list[int], list[str]]:
    """The frames of one camera's image folder (``<%06d>.png`` names), in frame order."""
    found = []
    for name in os.listdir(folder):
        stem, ext = os.path.splitext(name)
        if ext.lower() in (".png", ".jpg") and stem.isdigit():
            found.append((int(stem), name))
    found.sort()
    return [f for f, _ in found], [n for _, n in found]


def _segment_frames(path: Path) -> list[int]:
    """The frames of a capture's ``frame_list.txt`` (``<segment> <frame>`` a line), in order."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise UserError(f"{path}: missing (envmap_per_segment frames are listed there)") from None
    frames = set()
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].isdigit():
            raise UserError(f"{path}: line {number} is not '<segment> <frame>': {line.strip()!r}")
        frames.add(int(parts[1]))
    return sorted(frames)


class ReInterHandSequences:
    """The (capture, camera) sequences of one Re:InterHand split (module docstring).

    Args:
        root: the folder holding the ``m--*`` capture folders (or one holding ``data/``).
        split: ``"test"`` (default) or ``"train"``.
        lighting: ``"envmap_per_frame"`` (default, 5 fps) or ``"envmap_per_segment"`` (30 fps).

    ``cameras_without_images`` counts calibrated cameras that have no image folder (skipped,
    as the official loader finds no frames for them)."""

    def __init__(self, root: str | Path, split: str = "test", lighting: str = "envmap_per_frame"):
        root = Path(root)
        if split not in SPLITS:
            raise UserError(f"Re:InterHand split must be one of {', '.join(SPLITS)}, not {split!r}")
        if lighting not in LIGHTINGS:
            raise UserError(f"Re:InterHand lighting must be one of {', '.join(LIGHTINGS)}, not {lighting!r}")
        if not root.is_dir():
            raise UserError(f"{root}: no such Re:InterHand folder")
        if not any(p.name.startswith("m--") for p in root.iterdir()) and (root / "data").is_dir():
            root = root / "data"  # InterWild's data/ReInterHand, holding data/m--*
        captures = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("m--")
                          and (p.name in TEST_CAPTURES) == (split == "test"))
        if not captures:
            raise UserError(f"{root}: no capture folders m--* of the {split} split ({_LAYOUT})")
        self.root, self.split, self.lighting = root, split, lighting
        self.sequences: list[ReInterHandSequence] = []
        self.cameras_without_images = 0
        for folder in captures:
            self._add_capture(_Capture(folder))

    def _add_capture(self, capture: _Capture) -> None:
        images = capture.folder / "Mugsy_cameras" / self.lighting / "images"
        if not images.is_dir():
            raise UserError(f"{images}: missing ({_LAYOUT})")
        listed = _segment_frames(capture.folder / "frame_list.txt") if self.lighting == "envmap_per_segment" else None
        for camera in sorted(capture.cameras):
            folder = images / camera
            if not folder.is_dir():
                self.cameras_without_images += 1
                continue
            frames, names = (listed, [f"{f:06d}.png" for f in listed]) if listed is not None else _image_frames(folder)
            if frames:
                self.sequences.append(ReInterHandSequence(capture, camera, folder, frames, names))

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int) -> ReInterHandSequence:
        return self.sequences[i]
