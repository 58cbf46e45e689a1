"""The on-disk format of synthetic sequences: writer and reader.

A dataset folder ``OUT`` holds::

    OUT/manifest.json       the job and its completed shards (rewritten after each shard)
    OUT/shard-00000.tar     sequences 0 .. S-1 (S = shard size), then shard-00001.tar, ...

``manifest.json``::

    {"format": "fourdhands-synth/1", "split", "seed", "sequences", "frames",
     "image_size": [W, H], "hand_model": "open", "flat_hand_mean": true,
     "units": "metres", "frame": "camera, OpenCV", "shard_size", "backgrounds",
     "complete": bool, "shards": [{"path": "shard-00000.tar", "sequences": [0, 1, ...]}]}

Each shard is a plain (ustar) tar, WebDataset-style, with per sequence ``id``:

- ``seq{id:06d}/frame{t:04d}.jpg`` for t = 0 .. F-1, the rendered frames;
- ``seq{id:06d}/gt.npz``: ground truth (see :mod:`fourdhands.synth.scene` for the
  visibility, box and absent-hand rules), hand axis 0 = right, 1 = left:
  ``present (F,2) bool``, ``global_orient (F,2,3)``, ``hand_pose (F,2,45)``
  (flat_hand_mean=True), ``betas (F,2,10)``, ``transl (F,2,3)``,
  ``keypoints_3d (F,2,21,3)`` (OpenPose order), ``vertices (F,2,V,3)``,
  ``keypoints_2d (F,2,21,2)``, ``visible (F,2,21) bool``, ``boxes (F,2,4)``
  (``[cx, cy, sx, sy]``), ``v (F,3)``, ``K (F,3,3)`` (float32 all), ``image_size (2,)``
  int32 as ``[W, H]``;
- ``seq{id:06d}/meta.json``: scenario, split, seed, index, skin tones, light, camera
  effects, occluders, renderer backend.

Bytes are reproducible: tar members carry mtime 0, uid/gid 0, no owner names, mode 0644;
the npz's zip entries carry a fixed date. A shard is written under a temporary name and
renamed when complete, so a shard either exists whole or not at all.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..errors import UserError
from ..io import atomic_path, write_json
from .appearance import decode_jpeg

FORMAT = "fourdhands-synth/1"
MANIFEST = "manifest.json"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can carry
_MEMBER = re.compile(r"seq(\d{6})/(?:frame(\d{4})\.jpg|(gt\.npz)|(meta\.json))")


def shard_name(k: int) -> str:
    return f"shard-{k:05d}.tar"


def sequence_prefix(seq_id: int) -> str:
    return f"seq{seq_id:06d}"


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An uncompressed ``.npz`` (as ``np.savez``) with fixed entry dates: same arrays,
    same bytes. (Deflate would save ~10 % at a cost of ~2 ms per frame.)"""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for key, array in arrays.items():
            with archive.open(zipfile.ZipInfo(f"{key}.npy", _ZIP_DATE), "w") as fh:
                np.lib.format.write_array(fh, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def write_shard(path: str | Path, sequences: Iterable[tuple[int, object]]) -> list[int]:
    """Write ``(id, Sequence)`` pairs (:class:`fourdhands.synth.scene.Sequence`, drawn
    lazily, one at a time) into the shard ``path``, atomically. Returns the ids."""
    ids = []
    with atomic_path(path) as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for seq_id, seq in sequences:
            prefix = sequence_prefix(seq_id)
            for t, jpeg in enumerate(seq.frames):
                _add(tar, f"{prefix}/frame{t:04d}.jpg", jpeg)
            _add(tar, f"{prefix}/gt.npz", npz_bytes(seq.gt))
            _add(tar, f"{prefix}/meta.json", (json.dumps(seq.meta, indent=1) + "\n").encode())
            ids.append(seq_id)
    return ids


def write_manifest(root: str | Path, manifest: dict) -> None:
    write_json(Path(root) / MANIFEST, manifest)


def read_manifest(root: str | Path) -> dict:
    """The manifest of a dataset folder, checked; UserError naming what is wrong."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no such synthetic dataset folder")
    path = root / MANIFEST
    if not path.is_file():
        raise UserError(f"{root}: not a synthetic dataset (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: unreadable manifest ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UserError(f"{path}: not a {FORMAT} manifest")
    shards = manifest.get("shards")
    if not isinstance(shards, list) or not all(
            isinstance(s, dict) and isinstance(s.get("path"), str) and isinstance(s.get("sequences"), list)
            for s in shards):
        raise UserError(f"{path}: corrupt manifest (bad 'shards' list)")
    return manifest


# ---------------------------------------------------------------- reading

@dataclass
class _Entry:
    """Where one sequence's members lie in its shard: name -> (offset, size)."""

    shard: Path
    members: dict[str, tuple[int, int]] = field(default_factory=dict)


def _index_shard(path: Path, entries: dict[int, _Entry]) -> None:
    if not path.is_file():
        raise UserError(f"{path}: shard listed in the manifest is missing")
    try:
        with tarfile.open(path, "r:") as tar:
            for info in tar:
                match = _MEMBER.fullmatch(info.name)
                if not info.isfile() or match is None:
                    raise UserError(f"{path}: unexpected member '{info.name}'")
                entry = entries.setdefault(int(match.group(1)), _Entry(path))
                entry.members[info.name] = (info.offset_data, info.size)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise UserError(f"{path}: unreadable shard ({e})") from None


def _read(path: Path, offset: int, size: int) -> bytes:
    # a fresh handle per read: safe in DataLoader workers forked after indexing
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read(size)
    if len(data) != size:
        raise UserError(f"{path}: truncated shard")
    return data


class SyntheticSequence:
    """One stored sequence. ``gt`` and ``meta`` are read on first use and kept while
    this object lives (``SyntheticSequences[i]`` makes a fresh one each time, so memory
    is not held for sequences no one uses).

    Attributes:
        id: the sequence's index in its split.
        num_frames: F.
    """

    def __init__(self, seq_id: int, entry: _Entry):
        self.id = seq_id
        self._entry = entry
        prefix = sequence_prefix(seq_id)
        self._frames = [f"{prefix}/frame{t:04d}.jpg" for t in range(len(entry.members))
                        if f"{prefix}/frame{t:04d}.jpg" in entry.members]
        self.num_frames = len(self._frames)
        for name in (f"{prefix}/gt.npz", f"{prefix}/meta.json"):
            if name not in entry.members:
                raise UserError(f"{entry.shard}: sequence {seq_id} lacks {name.split('/')[1]}")
        if self.num_frames == 0 or self.num_frames != len(entry.members) - 2:
            raise UserError(f"{entry.shard}: sequence {seq_id} has missing or misnumbered frames")
        self._gt: dict[str, np.ndarray] | None = None
        self._meta: dict | None = None

    def _member(self, name: str) -> bytes:
        return _read(self._entry.shard, *self._entry.members[f"{sequence_prefix(self.id)}/{name}"])

    @property
    def gt(self) -> dict[str, np.ndarray]:
        """The ground-truth arrays (see the module docstring)."""
        if self._gt is None:
            try:
                with np.load(io.BytesIO(self._member("gt.npz")), allow_pickle=False) as z:
                    self._gt = {k: z[k] for k in z.files}
            except (ValueError, zipfile.BadZipFile, OSError) as e:
                raise UserError(f"{self._entry.shard}: sequence {self.id}: corrupt gt.npz ({e})") from None
        return self._gt

    @property
    def meta(self) -> dict:
        if self._meta is None:
            try:
                self._meta = json.loads(self._member("meta.json"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise UserError(f"{self._entry.shard}: sequence {self.id}: corrupt meta.json ({e})") from None
        return self._meta

    def frame_bytes(self, t: int) -> bytes:
        """The stored JPEG of frame ``t``."""
        return _read(self._entry.shard, *self._entry.members[self._frames[t]])

    def frame(self, t: int) -> np.ndarray:
        """Frame ``t`` decoded: `(H, W, 3)` uint8."""
        return decode_jpeg(self.frame_bytes(t))

    def __repr__(self) -> str:
        return f"SyntheticSequence(id={self.id}, frames={self.num_frames}, shard={self._entry.shard.name})"


class SyntheticSequences:
    """The sequences of a dataset folder, by random access into its shards (indexed
    once, when opened; nothing is extracted).

    ``len(ds)`` counts the sequences of the completed shards; ``ds[i]`` is the i-th of
    them in id order (a :class:`SyntheticSequence`). ``manifest`` is the job's manifest,
    ``ids`` the stored sequence ids.

    Raises:
        UserError: a missing folder, manifest or shard, or a corrupt one.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        entries: dict[int, _Entry] = {}
        for shard in self.manifest["shards"]:
            _index_shard(self.root / shard["path"], entries)
            missing = set(shard["sequences"]) - set(entries)
            if missing:
                raise UserError(f"{self.root / shard['path']}: sequences {sorted(missing)} are missing")
        self.ids = sorted(entries)
        self._entries = [entries[i] for i in self.ids]
        for seq_id, entry in zip(self.ids, self._entries):
            SyntheticSequence(seq_id, entry)  # checks the members now, not mid-training

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> SyntheticSequence:
        return SyntheticSequence(self.ids[i], self._entries[i])

    def __iter__(self) -> Iterator[SyntheticSequence]:
        return (self[i] for i in range(len(self)))

    @property
    def complete(self) -> bool:
        """Whether every sequence of the job has been written."""
        return bool(self.manifest.get("complete"))
