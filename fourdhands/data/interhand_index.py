"""InterHand2.6M's annotation files as a columnar index: read once by streaming the JSON
(``ijson``), then kept as NumPy arrays in a cache folder, so that opening a split of a
million images takes seconds after the first time and holds only memory-mapped arrays.

The files (v1.0, the dataset's ``annotations/<split>/`` folder and mmpose's
``tests/data/interhand2.6m`` sample; facebookresearch/InterHand2.6M, ``data/InterHand2.6M/
dataset.py`` and ``tool/MANO_world_to_camera``):

- ``<split>_interhand2.6m_data.json`` or ``InterHand2.6M_<split>_data.json``: COCO-style
  ``images`` (``id``, ``file_name``, ``width``, ``height``, ``capture``, ``camera``,
  ``frame_idx``, ``seq_name``, ``subject``) and ``annotations`` (``image_id``, ``bbox``
  ``[x, y, w, h]``, ``joint_valid`` (42, 1), ``hand_type`` right / left / interacting,
  ``hand_type_valid``);
- ``..._camera.json``: ``{capture: {campos|camrot|focal|princpt: {camera: ...}}}``, mm;
- ``..._joint_3d.json``: ``{capture: {frame_idx: {world_coord (42, 3) mm, ...}}}``;
- optionally ``InterHand2.6M_<split>_MANO_NeuralAnnot.json``: ``{capture: {frame_idx:
  {right|left: {pose (48), shape (10), trans (3)} or null}}}``, world frame, translation
  in metres, axis-angle pose relative to MANO's mean hand (``smplx`` with ``use_pca=False``,
  ``flat_hand_mean=False``), the left hand with MANO's shapedirs fix (its first shape
  direction's x negated). Kept raw (:attr:`InterHandIndex.mano`): turning it into the
  camera frame moves the wrist, which needs MANO's own joint regressor.

The cache lives in ``$FOURDHANDS_CACHE`` (default ``~/.cache/fourdhands``), under
``interhand-index/<key>``, the key a hash of the files' paths, sizes and modification
times; nothing is written into the dataset's folder. Where the cache cannot be written
the index is built in memory each time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from ..errors import UserError
from .annotation_file import read_annotation, stream_annotation

INDEX_VERSION = 1
HAND_TYPES = ("right", "left", "interacting")
JOINTS = 42
_PATTERNS = ("{split}_interhand2.6m_{kind}.json", "InterHand2.6M_{split}_{kind}.json")


@dataclass
class InterHandIndex:
    """One split's annotations, one row per annotated image (in the data file's order)
    unless said otherwise. Strings are tables (``cameras``, ``seq_names``) indexed by codes.

    Attributes:
        image_id, capture, frame_idx, subject: `(N,)` int64 identifiers (``subject`` -1 when absent).
        file_name: `(N,)` bytes, relative to the image root.
        size: `(N, 2)` int32 ``(W, H)`` as annotated.
        camera: `(N,)` int32 row of the camera tables; ``K`` `(C, 3, 3)`, ``camrot``
            `(C, 3, 3)`, ``campos`` `(C, 3)` mm; ``camera_name`` `(C,)` str.
        seq: `(N,)` int32 code into ``seq_names`` `(S,)` str.
        joint_valid: `(N, 42)` bool, the annotation's (InterHand order, right hand first).
        hand_type: `(N,)` int8 index into :data:`HAND_TYPES`; ``hand_type_valid`` `(N,)` bool.
        bbox: `(N, 4)` float64 ``[x, y, w, h]``.
        joints: `(N,)` int32 row of ``world`` `(U, 42, 3)` float64 mm (one row per annotated
            (capture, frame)).
        mano: `(U, 2, 61)` float64 raw NeuralAnnot fits (pose 48, shape 10, trans 3; right,
            left) and ``mano_valid`` `(U, 2)` bool; all False without the MANO file.
    """

    image_id: np.ndarray
    capture: np.ndarray
    frame_idx: np.ndarray
    subject: np.ndarray
    file_name: np.ndarray
    size: np.ndarray
    camera: np.ndarray
    seq: np.ndarray
    joint_valid: np.ndarray
    hand_type: np.ndarray
    hand_type_valid: np.ndarray
    bbox: np.ndarray
    joints: np.ndarray
    K: np.ndarray
    camrot: np.ndarray
    campos: np.ndarray
    camera_name: np.ndarray
    seq_names: np.ndarray
    world: np.ndarray
    mano: np.ndarray
    mano_valid: np.ndarray

    def __len__(self) -> int:
        return len(self.image_id)


def find_annotation_files(folder: str | Path, split: str = "test") -> dict[str, Path]:
    """The ``data``, ``camera`` and ``joint_3d`` files of ``split`` in ``folder`` (mmpose's
    names or the dataset's), and ``mano`` when the NeuralAnnot file is there. A one-line
    UserError names the first file that is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder (InterHand2.6M annotations)")
    found = {}
    for kind in ("data", "camera", "joint_3d", "MANO_NeuralAnnot"):
        candidates = [folder / p.format(split=split, kind=kind) for p in _PATTERNS]
        path = next((c for c in candidates if c.is_file()), None)
        if path is not None:
            found["mano" if kind == "MANO_NeuralAnnot" else kind] = path
        elif kind != "MANO_NeuralAnnot":
            raise UserError(f"{candidates[0]}: no such file (InterHand2.6M {split} {kind} annotations; "
                            f"also looked for {candidates[1].name})")
    return found


def load_index(folder: str | Path, split: str = "test") -> InterHandIndex:
    """The index of ``split`` in ``folder``: from the cache when the files are unchanged,
    else streamed from the files (and cached). UserError for a missing or malformed file."""
    files = find_annotation_files(folder, split)
    cached = _cache_folder(files)
    if cached is not None and (cached / "done").is_file():
        return InterHandIndex(**{f.name: np.load(cached / f"{f.name}.npy", mmap_mode="r") for f in fields(InterHandIndex)})
    index = build_index(files)
    if cached is not None:
        _store(index, cached)
    return index


def _cache_folder(files: dict[str, Path]) -> Path | None:
    root = Path(os.environ.get("FOURDHANDS_CACHE") or Path.home() / ".cache" / "fourdhands")
    key = hashlib.sha1(str(INDEX_VERSION).encode())
    for kind in sorted(files):
        st = files[kind].resolve().stat()
        key.update(f"{kind}:{files[kind].resolve()}:{st.st_size}:{st.st_mtime_ns};".encode())
    return root / "interhand-index" / key.hexdigest()


def _store(index: InterHandIndex, folder: Path) -> None:
    """Writes the index to ``folder`` atomically (a sibling temporary folder renamed); a
    cache that cannot be written is left out, silently: it only saves time."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
    except OSError:
        return
    try:
        for f in fields(InterHandIndex):
            np.save(tmp / f"{f.name}.npy", np.asarray(getattr(index, f.name)))
        (tmp / "done").touch()
        os.replace(tmp, folder)
    except OSError:  # full disk, or another process stored the same index first
        shutil.rmtree(tmp, ignore_errors=True)


def build_index(files: dict[str, Path]) -> InterHandIndex:
    """The index streamed from the annotation files (:func:`find_annotation_files`)."""
    images = _images(files["data"])
    rows = _annotations(files["data"], images)
    world, frame_row = _world_joints(files["joint_3d"])
    keys = list(zip(images["capture"][rows["image"]].tolist(), images["frame_idx"][rows["image"]].tolist()))
    missing = next((k for k in keys if k not in frame_row), None)
    if missing is not None:
        raise UserError(f"{files['joint_3d']}: no world_coord for capture {missing[0]}, frame {missing[1]}")
    cams = _cameras(files["camera"], images, rows["image"])
    mano, mano_valid = _mano(files.get("mano"), frame_row, len(world))
    pick = rows.pop("image")
    return InterHandIndex(
        image_id=images["id"][pick], capture=images["capture"][pick], frame_idx=images["frame_idx"][pick],
        subject=images["subject"][pick], file_name=images["file_name"][pick], size=images["size"][pick],
        camera=cams["row"], seq=images["seq"][pick], joints=np.array([frame_row[k] for k in keys], np.int32),
        K=cams["K"], camrot=cams["camrot"], campos=cams["campos"], camera_name=cams["name"],
        seq_names=images["seq_names"], world=world, mano=mano, mano_valid=mano_valid, **rows)


def _images(path: Path) -> dict[str, np.ndarray]:
    rows, seqs = [], {}
    for im in stream_annotation(path, "images.item"):
        try:
            seq = seqs.setdefault(str(im.get("seq_name", "")), len(seqs))
            rows.append((int(im["id"]), int(im["capture"]), int(im["frame_idx"]), int(im.get("subject", -1)),
                         str(im["file_name"]).encode(), int(im["width"]), int(im["height"]), seq, str(im["camera"])))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise UserError(f"{path}: image {len(rows)} is incomplete or malformed ({type(e).__name__}: {e})") from None
    if not rows:
        raise UserError(f"{path}: no images (not COCO-style InterHand2.6M annotations)")
    cols = list(zip(*rows))
    order = np.argsort(np.array(cols[0], np.int64), kind="stable")
    return {"id": np.array(cols[0], np.int64)[order], "capture": np.array(cols[1], np.int64)[order],
            "frame_idx": np.array(cols[2], np.int64)[order], "subject": np.array(cols[3], np.int64)[order],
            "file_name": np.array(cols[4])[order], "size": np.array(cols[5:7], np.int32).T[order],
            "seq": np.array(cols[7], np.int32)[order], "camera_str": np.array(cols[8])[order],
            "seq_names": np.array(list(seqs) or [""])}


def _annotations(path: Path, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per annotation: its image's row in ``images`` and the annotation's fields."""
    image, valid, kind, kind_valid, bbox = [], [], [], [], []
    for n, ann in enumerate(stream_annotation(path, "annotations.item")):
        try:
            image_id = int(ann["image_id"])
            jv = np.asarray(ann["joint_valid"], np.float64).reshape(JOINTS) > 0
            hand_type = str(ann["hand_type"])
            box = [float(v) for v in ann["bbox"]][:4]
            flag = bool(ann["hand_type_valid"])
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            ident = ann.get("id", n) if isinstance(ann, dict) else n
            raise UserError(f"{path}: annotation {ident} is incomplete or malformed ({type(e).__name__}: {e})") from None
        if hand_type not in HAND_TYPES:
            raise UserError(f"{path}: annotation of image {image_id} has hand_type {hand_type!r} "
                            f"(expected right, left or interacting)")
        row = int(np.searchsorted(images["id"], image_id))
        if row == len(images["id"]) or images["id"][row] != image_id:
            raise UserError(f"{path}: annotation {ann.get('id', n)} names image {image_id}, which is not listed")
        image.append(row), valid.append(jv), kind.append(HAND_TYPES.index(hand_type))
        kind_valid.append(flag), bbox.append(box)
    return {"image": np.array(image, np.int64), "joint_valid": np.array(valid, bool).reshape(-1, JOINTS),
            "hand_type": np.array(kind, np.int8), "hand_type_valid": np.array(kind_valid, bool),
            "bbox": np.array(bbox, np.float64).reshape(-1, 4)}


def _world_joints(path: Path) -> tuple[np.ndarray, dict[tuple[int, int], int]]:
    """``(U, 42, 3)`` world joints (mm) and the row of each (capture, frame_idx)."""
    world, row = [], {}
    for capture, frames in stream_annotation(path, "", kv=True):
        if not isinstance(frames, dict):
            raise UserError(f"{path}: capture {capture} is not a dict of frames")
        for frame_idx, entry in frames.items():
            try:
                world.append(np.asarray(entry["world_coord"], np.float64).reshape(JOINTS, 3))
                row[(int(capture), int(frame_idx))] = len(world) - 1
            except (KeyError, TypeError, ValueError) as e:
                raise UserError(f"{path}: no usable world_coord for capture {capture}, frame {frame_idx} "
                                f"({type(e).__name__}: {e})") from None
    return np.array(world, np.float64).reshape(-1, JOINTS, 3), row


def _cameras(path: Path, images: dict[str, np.ndarray], image_rows: np.ndarray) -> dict[str, np.ndarray]:
    """The cameras the annotated images use: intrinsics and extrinsics, and each row's camera."""
    cameras = read_annotation(path, dict)
    pairs = list(zip(images["capture"][image_rows].tolist(), images["camera_str"][image_rows].tolist()))
    table = {p: i for i, p in enumerate(dict.fromkeys(pairs))}
    K, rot, pos = [], [], []
    for capture, camera in table:
        try:
            cam = cameras[str(capture)]
            pos.append(np.asarray(cam["campos"][camera], np.float64).reshape(3))
            rot.append(np.asarray(cam["camrot"][camera], np.float64).reshape(3, 3))
            (fx, fy), (cx, cy) = (np.asarray(cam[k][camera], np.float64).reshape(2) for k in ("focal", "princpt"))
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"{path}: no usable camera {camera} of capture {capture} "
                            f"({type(e).__name__}: {e})") from None
        K.append([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    return {"row": np.array([table[p] for p in pairs], np.int32), "K": np.array(K, np.float64).reshape(-1, 3, 3),
            "camrot": np.array(rot, np.float64).reshape(-1, 3, 3), "campos": np.array(pos, np.float64).reshape(-1, 3),
            "name": np.array([c for _, c in table] or [""])}


def _mano(path: Path | None, frame_row: dict[tuple[int, int], int], frames: int) -> tuple[np.ndarray, np.ndarray]:
    mano, valid = np.zeros((frames, 2, 61)), np.zeros((frames, 2), bool)
    if path is None:
        return mano, valid
    for capture, entries in stream_annotation(path, "", kv=True):
        for frame_idx, hands in (entries or {}).items():
            row = frame_row.get((int(capture), int(frame_idx)))
            for h, side in enumerate(("right", "left")):
                fit = (hands or {}).get(side)
                if row is None or fit is None:
                    continue
                try:
                    mano[row, h] = np.concatenate([np.ravel(fit[k]) for k in ("pose", "shape", "trans")])
                except (KeyError, TypeError, ValueError) as e:
                    raise UserError(f"{path}: capture {capture}, frame {frame_idx}, {side} hand is not "
                                    f"pose (48) / shape (10) / trans (3) ({type(e).__name__}: {e})") from None
                valid[row, h] = True
    return mano, valid
