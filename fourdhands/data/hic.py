"""A reader of HIC, the hand-hand and hand-object sequences of "Capturing Hands in Action
using Discriminative Salient Points and Physics Simulation" (Tzionas et al., IJCV 2016), in
the form IntagHand / InterWild / 4DHands evaluate on: InterWild's COCO-style ``HIC.json``
over the dataset's own folders. A sequence source (:mod:`fourdhands.data.sources`): one
sequence per HIC sequence id, frames in frame order.

Sources (facts read, no code taken): InterWild (github.com/facebookresearch/InterWild)
``data/HIC/HIC.py``, ``data/HIC/download.py`` and ``README.md`` (the layout, the fixed
camera, meshes in metres in the camera frame, ``hand_type``); HACO
(github.com/dqj5182/HACO_RELEASE) ``data/HIC/dataset.py`` (images carry ``seq_name``;
annotations ``bbox``, ``joint_2d`` / ``joint_valid``); seungjun-moon/hand_dataset_cvt
``scripts/convert_hic.py`` (frame numbers are the image names' numbers; the MANO fits'
folders); RenderIH (github.com/adwardlee/RenderIH) ``utils/dataset_gen/tzionas_generation.py``
(joints regressed from the fits' vertices with MANO's J_regressor and fingertip vertices).

The layout (InterWild's README): ``<root>/HIC.json`` with ``<root>`` = InterWild's
``data/HIC/data`` (``data/HIC`` itself is accepted too); the sequences' zips unpacked
there (InterWild downloads ``01``-``11`` hand-hand and ``15``-``21`` hand-object:
``<seq>/1/rgb/<frame>.png``, 640 x 480) and the MANO fits
(``IJCV16___Results_MANO___parms_for___joints21/...``).
``HIC.json`` has ``images`` (``id``, ``file_name``, ``width``, ``height``, ``seq_name``)
and ``annotations`` (``image_id``, ``hand_type`` one of ``right`` / ``left`` /
``interacting``, ``right_mano_path`` / ``left_mano_path``: a PLY mesh per hand or null);
both paths are relative to ``<root>``.

Conventions:

- Camera: one fixed Kinect colour camera, fx = fy = 525, principal point (319.5, 239.5)
  (InterWild's constants); the meshes are in its frame, already OpenCV's (x right, y down,
  z forward), in metres. No world frame to undo.
- Keypoints: HIC.json holds meshes (778 vertices, MANO's topology), not 3D joints. The 21
  keypoints are regressed as IntagHand / InterWild do: MANO's ``J_regressor`` (16 joints)
  applied to the mesh, plus 5 fingertip vertices (``tips``, default this project's
  ``"intaghand"`` ids 745, 317, 444, 556, 673; InterWild's evaluation takes 445 for the
  middle tip), reordered to OpenPose's order. ``J_regressor`` exists only in the official,
  license-gated MANO files, so ``mano`` (a folder with ``MANO_RIGHT`` / ``MANO_LEFT``
  ``.pkl`` / ``.npz``, or one of the files) is required; without it the reader raises a
  UserError that says so. The ``joint_2d`` of HIC.json (28 noisy 2D joints, no wrist) are
  not used. The meshes are kept as ``gt["vertices"]`` `(F, 2, 778, 3)` (for MPVPE).
- Left and right: each hand is its own MANO side (``right_mano_path`` -> slot 0,
  ``left_mano_path`` -> slot 1), no mirroring. As the meshes are given, the left-hand
  shapedirs fix and ``flat_hand_mean`` do not arise; there are no MANO parameters in
  HIC.json to keep (the fits' pickles beside the PLYs are not read), so ``has_mano`` is
  False and ``global_orient`` / ``hand_pose`` / ``betas`` / ``transl`` are zeros.
- Presence: a hand is present where its mesh is given and ``hand_type`` admits it
  (``interacting`` admits both). An image without an annotation, or with no hand present,
  stays in its sequence with both hands absent and is counted in ``unannotated``.
- Both hands visible (the 4DHands paper's HIC subset, "only uses samples in which both
  hands are visible", and InterWild's interacting-hand scores): ``hand_type ==
  "interacting"`` with both meshes given. Every sequence has ``both_visible`` `(F,)`
  (from HIC.json alone) and ``gt["both_visible"]``. Split ``"both"`` (the default) keeps
  only those frames: each run of consecutive such frames of a sequence becomes a sequence
  of its own, so a T-frame window never jumps over a dropped frame; the source counts the
  frames left out in ``dropped``. Split ``"all"`` keeps every image of HIC.json.
- Frame order: the image's ``frame_idx`` if it has one, else the last number in its file
  name (``001.png`` -> 1); sequence id: ``seq_name``, else the first folder of
  ``file_name``. Frame steps are those of HIC.json.

Indexing reads HIC.json and lists the folders it names (every image and mesh must be there:
the first missing one is a one-line UserError); the meshes are read on a sequence's first
``gt``. Nothing is written into the dataset's folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from ..errors import UserError
from ..hands.joints import DEFAULT_TIPS, MANO_TO_OPENPOSE
from ..sides import SIDES
from .annotation_file import read_annotation
from .real_sequence import LazySequence, keypoint_arrays, read_rgb

SPLITS = ("both", "all")
HAND_TYPES = ("right", "left", "interacting")
#: The fixed intrinsics of HIC's camera (InterWild's ``focal`` and ``princpt``).
K = np.array([[525.0, 0.0, 319.5], [0.0, 525.0, 239.5], [0.0, 0.0, 1.0]])
INDEX_NAME = "HIC.json"
_LAYOUT = ("HIC layout: <root>/HIC.json (InterWild's data/HIC/data) with the images and "
           "MANO meshes it names under <root>")
_NEEDS_MANO = ("HIC's ground truth is MANO meshes without 3D joints; its keypoints are regressed "
               "with MANO's J_regressor, which only the official MANO files hold: pass mano= a "
               "folder with MANO_RIGHT.pkl and MANO_LEFT.pkl (or .npz)")


@dataclass(frozen=True)
class HICFrame:
    """One image of HIC.json and what its annotation says (nothing read from disk).

    Attributes:
        image: the image file.
        number: its frame number (the order within its sequence).
        size: ``(W, H)`` pixels, as HIC.json says.
        meshes: ``(right, left)`` PLY mesh files, None where a hand has none.
        hand_type: ``"right"``, ``"left"``, ``"interacting"``, or None (no annotation).
        image_id: HIC.json's image id.
    """

    image: Path
    number: int
    size: tuple[int, int]
    meshes: tuple[Path | None, Path | None]
    hand_type: str | None
    image_id: int

    @property
    def present(self) -> tuple[bool, bool]:
        """``(right, left)``: the hand has a mesh and ``hand_type`` admits it."""
        return tuple(m is not None and self.hand_type in (side, "interacting")
                     for m, side in zip(self.meshes, SIDES))

    @property
    def both_visible(self) -> bool:
        """Both hands visible and meshed (the paper's evaluation subset)."""
        return self.hand_type == "interacting" and all(self.present)


def find_index(root: str | Path) -> Path:
    """``<root>/HIC.json``, or ``<root>/data/HIC.json`` (InterWild's ``data/HIC``);
    UserError naming the file when neither is there."""
    root = Path(root)
    for path in (root / INDEX_NAME, root / "data" / INDEX_NAME):
        if path.is_file():
            return path
    if not root.is_dir():
        raise UserError(f"{root}: no such HIC folder")
    raise UserError(f"{root / INDEX_NAME}: missing ({_LAYOUT})")


def _frame_number(image: dict, file_name: str, position: int) -> int:
    """``frame_idx`` if given, else the last number in the file name, else the position."""
    if image.get("frame_idx") is not None:
        return int(image["frame_idx"])
    digits = re.findall(r"\d+", PurePosixPath(file_name).stem)
    return int(digits[-1]) if digits else position


def _annotation(ann: dict | None, folder: Path, index: Path) -> tuple[tuple, str | None]:
    """``((right mesh, left mesh), hand_type)`` of one annotation (None: no annotation)."""
    if ann is None:
        return (None, None), None
    label = f"{index}: annotation {ann.get('id', '?')} (image {ann.get('image_id')})"
    hand_type = ann.get("hand_type")
    if hand_type not in HAND_TYPES:
        raise UserError(f"{label} has hand_type {hand_type!r} (expected right, left or interacting)")
    meshes = []
    for side in SIDES:
        rel = ann.get(f"{side}_mano_path")
        if rel is not None and not (isinstance(rel, str) and rel):
            raise UserError(f"{label}: {side}_mano_path is {rel!r}, not a file path or null")
        meshes.append(None if rel is None else folder / rel)
    return tuple(meshes), hand_type


def _annotations_by_image(annotations: list, index: Path) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for i, ann in enumerate(annotations):
        try:
            image_id = int(ann["image_id"])
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"{index}: annotation {i} has no usable image_id ({type(e).__name__}: {e})") from None
        if image_id in out:
            raise UserError(f"{index}: image {image_id} has more than one annotation (annotation {i})")
        out[image_id] = ann
    return out


def read_hic_index(index: str | Path) -> dict[str, list[HICFrame]]:
    """HIC.json's images as ``{sequence id: frames in frame order}``, sequence ids sorted
    (module docstring). UserError naming the file and the entry when one is malformed."""
    index = Path(index)
    data = read_annotation(index, dict, _LAYOUT)
    images, annotations = data.get("images"), data.get("annotations")
    if not isinstance(images, list) or not isinstance(annotations, list):
        raise UserError(f"{index}: not COCO-style HIC annotations (needs the lists 'images' and 'annotations')")
    by_image = _annotations_by_image(annotations, index)
    sequences: dict[str, list[HICFrame]] = {}
    for i, image in enumerate(images):
        try:
            image_id, file_name = int(image["id"]), str(image["file_name"])
            size = (int(image["width"]), int(image["height"]))
            number = _frame_number(image, file_name, i)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise UserError(f"{index}: image {i} is incomplete or malformed ({type(e).__name__}: {e})") from None
        seq = image.get("seq_name")
        seq = str(seq) if seq is not None else PurePosixPath(file_name).parts[0]
        meshes, hand_type = _annotation(by_image.pop(image_id, None), index.parent, index)
        sequences.setdefault(seq, []).append(
            HICFrame(index.parent / file_name, number, size, meshes, hand_type, image_id))
    if by_image:
        image_id = next(iter(by_image))
        raise UserError(f"{index}: an annotation refers to image {image_id}, which 'images' does not list")
    return {seq: sorted(frames, key=lambda f: f.number) for seq, frames in sorted(sequences.items())}


def check_files(frames: list[HICFrame]) -> None:
    """Every image and mesh of ``frames`` exists, found by listing each folder once;
    UserError naming the first that is missing."""
    listing: dict[Path, set[str]] = {}
    for f in frames:
        for path, what in ((f.image, "an image"), *((m, "a mesh") for m in f.meshes if m is not None)):
            folder = path.parent
            if folder not in listing:
                listing[folder] = set(os.listdir(folder)) if folder.is_dir() else set()
            if path.name not in listing[folder]:
                raise UserError(f"{path}: missing ({what} that HIC.json lists)")


def read_ply_vertices(path: Path, num_vertices: int) -> np.ndarray:
    """A PLY mesh's vertices `(V, 3)` float64 (metres); UserError naming the file when it
    cannot be read or has not ``num_vertices`` vertices."""
    import trimesh

    try:
        # process=False: keep MANO's vertex order (no merging or reordering)
        mesh = trimesh.load(path, file_type="ply", process=False)
        vertices = np.asarray(mesh.vertices, np.float64)
    except FileNotFoundError:
        raise UserError(f"{path}: missing") from None
    except Exception as e:  # trimesh raises many kinds for a damaged file
        raise UserError(f"{path}: not a readable PLY mesh ({type(e).__name__}: {e})") from None
    if vertices.shape != (num_vertices, 3):
        raise UserError(f"{path}: {len(vertices)} vertices, expected MANO's {num_vertices}")
    return vertices


def keypoint_regressors(mano: str | Path, tips=DEFAULT_TIPS) -> dict[str, np.ndarray]:
    """Per side, the `(21, V)` matrix taking a MANO mesh `(V, 3)` to its 21 keypoints in
    OpenPose order: MANO's 16 ``J_regressor`` rows and 5 one-hot fingertip rows.
    ``mano``: a folder with ``MANO_RIGHT`` / ``MANO_LEFT`` (.pkl or .npz), or one of them."""
    import torch

    from ..hands.model import load_hand_model

    if str(mano).strip().lower() == "open":
        raise UserError("HIC's meshes have MANO's topology; the open hand model cannot regress their "
                        "joints: pass mano= the folder with the official MANO files")
    folder = Path(mano).parent if Path(mano).is_file() else Path(mano)
    out = {}
    for side in SIDES:
        model = load_hand_model(folder, side, tips=tips, dtype=torch.float64)
        J = model.J_regressor.numpy()
        tip_rows = np.zeros((5, J.shape[1]))
        tip_rows[np.arange(5), model.tip_vertex_ids.numpy()] = 1.0
        out[side] = np.concatenate([J, tip_rows])[list(MANO_TO_OPENPOSE)]
    return out


class HICSequence(LazySequence):
    """Frames of one HIC sequence (or, in split ``"both"``, one run of them), in frame
    order; meshes read on first ``gt``. ``seq_name`` is HIC's sequence id,
    ``frame_numbers`` the frames' numbers, ``both_visible`` `(F,)` bool."""

    def __init__(self, seq_name: str, frames: list[HICFrame], regressors: dict[str, np.ndarray]):
        self.seq_name, self.frames, self.num_frames = seq_name, frames, len(frames)
        self.frame_numbers = [f.number for f in frames]
        self.both_visible = np.array([f.both_visible for f in frames], bool)
        self._regressors = regressors

    def frame(self, t: int) -> np.ndarray:
        return read_rgb(self.frames[t].image)

    def _arrays(self) -> dict[str, np.ndarray]:
        n = self.num_frames
        V = self._regressors["right"].shape[1]
        vertices, kp3d = np.zeros((n, 2, V, 3)), np.zeros((n, 2, 21, 3))
        present = np.array([f.present for f in self.frames], bool).reshape(n, 2)
        for t, f in enumerate(self.frames):
            for h, side in enumerate(SIDES):
                if present[t, h]:
                    vertices[t, h] = read_ply_vertices(f.meshes[h], V)
                    kp3d[t, h] = self._regressors[side] @ vertices[t, h]
        return keypoint_arrays(kp3d, np.repeat(present[..., None], 21, -1), np.repeat(K[None], n, 0),
                               self.frames[0].size, present=present, vertices=vertices,
                               both_visible=self.both_visible.copy())


def _runs(frames: list[HICFrame]) -> list[list[HICFrame]]:
    """The maximal runs of consecutive both-visible frames."""
    runs: list[list[HICFrame]] = []
    previous = False
    for f in frames:
        if f.both_visible:
            if not previous:
                runs.append([])
            runs[-1].append(f)
        previous = f.both_visible
    return runs


class HICSequences:
    """HIC's sequences of one split (module docstring): ``"both"`` (default) the runs of
    frames with both hands visible, ``"all"`` every image of HIC.json. ``dropped``
    counts the frames a split leaves out."""

    def __init__(self, root: str | Path, split: str = "both", mano: str | Path | None = None,
                 tips=DEFAULT_TIPS):
        if split not in SPLITS:
            raise UserError(f"HIC split must be one of {', '.join(SPLITS)}, not {split!r}")
        if mano is None:
            raise UserError(_NEEDS_MANO)
        index = find_index(root)
        by_sequence = read_hic_index(index)
        check_files([f for frames in by_sequence.values() for f in frames])
        regressors = keypoint_regressors(mano, tips)
        self.index, self.split = index, split
        self.sequences: list[HICSequence] = []
        for seq, frames in by_sequence.items():
            parts = [frames] if split == "all" else _runs(frames)
            self.sequences += [HICSequence(seq, part, regressors) for part in parts]
        total = sum(len(frames) for frames in by_sequence.values())
        self.dropped = total - sum(s.num_frames for s in self.sequences)

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int) -> HICSequence:
        return self.sequences[i]
