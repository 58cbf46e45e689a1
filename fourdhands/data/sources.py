"""Where samples come from: dataset kinds, each read as a *sequence source* for
:class:`~fourdhands.data.dataset.HandWindows` (``len(source)``; ``source[i]`` with ``.gt``,
``.num_frames`` and ``.frame(t)``).

A data spec on the command line or in a config is ``KIND:PATH``, or a bare ``PATH`` for a
folder written by ``fourdhands synth``:

- ``synth:PATH``: :class:`~fourdhands.synth.shards.SyntheticSequences`;
- ``interhand2.6m:PATH``: :class:`InterHandSequences`, InterHand2.6M's official annotation
  files (``PATH`` the folder holding ``*_data.json``, ``*_camera.json`` and
  ``*_joint_3d.json`` of one split; images as :func:`~fourdhands.data.interhand.read_interhand_frames`
  finds them);
- ``freihand:PATH``: :class:`~fourdhands.data.freihand.FreiHandFrames`, FreiHAND's training
  split (``PATH`` the folder holding ``training_K.json`` and ``training/rgb/``);
- ``dexycb:PATH``: :class:`~fourdhands.data.dexycb.DexYCBSequences`, DexYCB's ``s0`` test
  split (``PATH`` the dataset's root, holding the subjects and ``calibration/``);
- ``ho3d:PATH``: :class:`~fourdhands.data.ho3d.HO3DSequences`, HO-3D v2 / v3's ``train``
  split (``PATH`` the root holding ``train/`` and ``evaluation/``).

A split other than the default follows the path after ``@``: ``interhand2.6m:PATH@val``,
``freihand:PATH@evaluation``, ``dexycb:PATH@s1-train``.

Every source's ``gt`` has the synthetic format's arrays, plus ``joint_valid (F, 2, 21)``
(which keypoints are annotated; all of them for synthetic data) and the flag
``has_mano`` (whether ``global_orient`` / ``hand_pose`` / ``betas`` / ``transl`` are
ground truth; zeros stand in where they are not, and nothing may be scored or supervised
on them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError
from .real_sequence import LazySequence, keypoint_arrays, read_rgb

KINDS = ("synth", "interhand2.6m", "freihand", "dexycb", "ho3d")


def parse_spec(spec: str) -> tuple[str, Path]:
    """``(kind, path)`` of a data spec ``KIND:PATH`` or ``PATH`` (then ``synth``); a
    one-line UserError for an unknown kind."""
    text = str(spec)
    kind, sep, rest = text.partition(":")
    if sep and kind.lower() in KINDS:
        return kind.lower(), Path(rest)
    if sep and len(kind) > 1 and "/" not in kind and "\\" not in kind:  # "C:\\..." is a path
        raise UserError(f"data {text!r}: unknown dataset kind {kind!r} (known: {', '.join(KINDS)})")
    return "synth", Path(text)


def open_sequences(spec: str, skip_missing: bool = False):
    """The sequence source that ``spec`` names (see the module docstring). With
    ``skip_missing``, InterHand2.6M frames whose image is absent are left out (counted in
    the source's ``missing_images``) rather than a UserError."""
    kind, path = parse_spec(spec)
    folder, at, split = str(path).rpartition("@")
    path, split = (Path(folder), split) if at and kind != "synth" else (path, None)
    if kind == "interhand2.6m":
        return InterHandSequences(path, split or "test", skip_missing)
    if kind == "freihand":
        from .freihand import FreiHandFrames

        return FreiHandFrames(path, split or "training")
    if kind == "ho3d":
        from .ho3d import HO3DSequences

        return HO3DSequences(path, split or "train")
    if kind == "dexycb":
        from .dexycb import DexYCBSequences

        setup, _, part = (split or "s0-test").partition("-")
        return DexYCBSequences(path, setup, part)
    from ..synth.shards import SyntheticSequences

    return SyntheticSequences(path)


def sequence_name(spec: str) -> str:
    """A short name for a data spec's results (the folder's name)."""
    return parse_spec(spec)[1].name


class InterHandSequence(LazySequence):
    """The frames of one InterHand2.6M sequence (capture, sequence name) seen by one
    camera, in ``frame_idx`` order, as a sequence source's item."""

    def __init__(self, frames: list):
        self.frames = frames
        self.num_frames = len(frames)

    def frame(self, t: int) -> np.ndarray:
        """Image ``t`` decoded: `(H, W, 3)` uint8 RGB."""
        path = self.frames[t].image_path
        return read_rgb(path)

    def _arrays(self) -> dict[str, np.ndarray]:
        f = self.frames
        return keypoint_arrays(np.stack([x.keypoints_3d for x in f]), np.stack([x.valid for x in f]),
                               np.stack([x.K for x in f]), f[0].image_size, present=np.stack([x.present for x in f]))


class InterHandSequences:
    """InterHand2.6M's annotated images of one split as sequences: the images of a
    (capture, sequence name, camera) in frame order. The files' conventions (joint order,
    millimetres, world frame, validity) are converted by
    :func:`~fourdhands.data.interhand.read_interhand_frames`; its docstring names them.
    InterHand2.6M's MANO fits (``*_MANO_NeuralAnnot.json``) are not read yet, so
    ``has_mano`` is False: keypoints only."""

    def __init__(self, folder: str | Path, split: str = "test", skip_missing: bool = False):
        from .interhand import read_interhand_frames

        missing: list | None = [] if skip_missing else None
        groups: dict[tuple, list] = {}
        for f in read_interhand_frames(folder, split, missing=missing):
            groups.setdefault((f.capture, f.seq_name, f.camera), []).append(f)
        self.sequences = [InterHandSequence(sorted(g, key=lambda f: f.frame_idx))
                          for _, g in sorted(groups.items(), key=lambda item: item[0])]
        self.missing_images = len(missing or [])

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int) -> InterHandSequence:
        return self.sequences[i]
