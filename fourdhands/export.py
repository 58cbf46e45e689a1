"""Writing hands to files other programs open: meshes (OBJ, PLY, GLB) and parameters
(NPZ, JSON), each file written atomically.

Parameter files always carry what is needed to read them right: units, the coordinate
frame, ``flat_hand_mean`` and which hand model produced them, inside the file.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np
import orjson
import trimesh

from .errors import UserError
from .io import atomic_path

MESH_FORMATS = (".obj", ".ply", ".glb")
PARAM_FORMATS = (".json", ".npz")
CAMERA_FRAME = "camera, OpenCV axes (x right, y down, z forward)"
_META_KEYS = ("format", "units", "frame", "flat_hand_mean", "hand_model")
FORMAT = "fourdhands-params/1"


def _suffix(path: Path, allowed: tuple[str, ...], what: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in allowed:
        raise UserError(f"{path}: cannot write {what} as {suffix or 'no extension'} "
                        f"(use {', '.join(allowed)})")
    return suffix


def _writable_parent(path: Path) -> None:
    if not path.parent.is_dir():
        raise UserError(f"{path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise UserError(f"{path}: folder {path.parent} is not writable")


def _trimesh(vertices, faces, color=None) -> trimesh.Trimesh:
    colors = None
    if color is not None:
        rgba = np.r_[np.clip(np.asarray(color, float), 0, 1) * 255, 255].astype(np.uint8)
        colors = np.tile(rgba, (len(vertices), 1))
    return trimesh.Trimesh(np.asarray(vertices, float), np.asarray(faces, np.int64),
                           vertex_colors=colors, process=False)


def write_meshes(path: str | os.PathLike, meshes: Mapping[str, tuple]) -> None:
    """Write one or more named meshes into one file, format by extension.

    Args:
        path: ``.obj``, ``.ply`` or ``.glb``.
        meshes: name -> ``(vertices (V, 3), faces (F, 3))`` or
            ``(vertices, faces, color)`` with an RGB colour in [0, 1]. GLB keeps each mesh
            as a named node; OBJ and PLY hold them concatenated (PLY with vertex colours).
    """
    path = Path(path)
    suffix = _suffix(path, MESH_FORMATS, "meshes")
    _writable_parent(path)
    parts = {name: _trimesh(*m) for name, m in meshes.items()}
    if suffix == ".glb":
        target = trimesh.Scene()
        for name, mesh in parts.items():
            target.add_geometry(mesh, node_name=name, geom_name=name)
    else:
        target = trimesh.util.concatenate(list(parts.values()))
    with atomic_path(path) as tmp:
        target.export(tmp, file_type=suffix[1:])


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def params_record(hands: Mapping[str, Mapping[str, np.ndarray]], *, hand_model: str,
                  flat_hand_mean: bool, extra: Mapping | None = None) -> dict:
    """A self-describing parameter record.

    Args:
        hands: side (``"right"``, ``"left"``) -> arrays such as ``global_orient (3,)``,
            ``hand_pose (45,)``, ``betas (10,)``, ``transl (3,)``, ``keypoints_3d (21, 3)``
            (any leading frame axis is fine).
        hand_model: the hand model's name (``"open"``, ``"mano"``).
        flat_hand_mean: whether ``hand_pose`` is absolute (True) or relative to MANO's mean.
        extra: further top-level entries (e.g. ``v``, ``focal``).
    """
    record = {"format": FORMAT, "units": "metres", "frame": CAMERA_FRAME,
              "flat_hand_mean": bool(flat_hand_mean), "hand_model": str(hand_model)}
    record.update({k: {name: np.asarray(a) for name, a in arrays.items()} for k, arrays in hands.items()})
    record.update({k: np.asarray(v) for k, v in (extra or {}).items()})
    return record


def write_params(path: str | os.PathLike, record: Mapping, compact: bool = False) -> None:
    """Write a :func:`params_record` as JSON (nested) or NPZ (``side/name`` keys).

    ``compact``: JSON without indentation (smaller, for records with vertices, e.g. one
    per video frame). JSON is encoded by ``orjson`` (3-10x the standard library's speed,
    the same document)."""
    path = Path(path)
    suffix = _suffix(path, PARAM_FORMATS, "parameters")
    _writable_parent(path)
    missing = [k for k in _META_KEYS if k not in record]
    if missing:
        raise ValueError(f"parameter record lacks {missing}: build it with params_record")
    with atomic_path(path) as tmp:
        if suffix == ".json":
            tmp.write_bytes(orjson.dumps(_plain(dict(record)), option=0 if compact else orjson.OPT_INDENT_2) + b"\n")
        else:
            flat = {}
            for key, value in record.items():
                if isinstance(value, Mapping):
                    flat.update({f"{key}/{name}": np.asarray(a) for name, a in value.items()})
                else:
                    flat[key] = np.asarray(value)
            with open(tmp, "wb") as fh:
                np.savez(fh, **flat)


def read_params(path: str | os.PathLike) -> dict:
    """Read a parameter file written by :func:`write_params` back into a record
    (arrays as NumPy, metadata as plain values)."""
    path = Path(path)
    suffix = _suffix(path, PARAM_FORMATS, "parameters")
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        if suffix == ".json":
            raw = json.loads(path.read_text())
        else:
            with np.load(path, allow_pickle=False) as npz:
                raw = {}
                for key in npz.files:
                    side, _, name = key.partition("/")
                    if name:
                        raw.setdefault(side, {})[name] = npz[key]
                    else:
                        raw[key] = npz[key].item() if npz[key].ndim == 0 else npz[key]
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise UserError(f"{path}: not a readable parameter file ({e})") from None
    if raw.get("format") != FORMAT:
        raise UserError(f"{path}: not a fourdhands parameter file (format {raw.get('format')!r})")
    return {k: ({n: np.asarray(a) for n, a in v.items()} if isinstance(v, dict)
                else (np.asarray(v) if isinstance(v, list) else v))
            for k, v in raw.items()}
