"""Where samples come from: dataset kinds, each read as a *sequence source* for
:class:`~fourdhands.data.dataset.HandWindows` (``len(source)``; ``source[i]`` with ``.gt``,
``.num_frames`` and ``.frame(t)``).

A data spec on the command line or in a config is ``KIND:PATH``, or a bare ``PATH`` for a
folder written by ``fourdhands synth``:

- ``synth:PATH``: :class:`~fourdhands.synth.shards.SyntheticSequences`;
- ``interhand2.6m:PATH``: :class:`InterHandSequences`, InterHand2.6M's official annotation
  files (``PATH`` the folder holding one split's ``*_data.json``, ``*_camera.json`` and
  ``*_joint_3d.json``; default split ``test``);
- ``reinterhand:PATH``: :class:`~fourdhands.data.reinterhand.ReInterHandSequences`
  (``PATH`` the folder of the ``m--*`` captures; ``test`` or ``train``, lighting after a
  dash: ``@train-envmap_per_segment``);
- ``freihand:PATH``: :class:`~fourdhands.data.freihand.FreiHandFrames` (``PATH`` holding
  ``training_K.json`` and ``training/rgb/``; ``training`` or ``evaluation``);
- ``dexycb:PATH``: :class:`~fourdhands.data.dexycb.DexYCBSequences` (the dataset's root;
  ``s0-test`` by default, any setup ``s0``-``s3`` and ``train`` / ``val`` / ``test``);
- ``ho3d:PATH``: :class:`~fourdhands.data.ho3d.HO3DSequences` (the root holding ``train/``
  and ``evaluation/``; ``train`` by default);
- ``hic:PATH``: :class:`~fourdhands.data.hic.HICSequences` (the folder holding
  ``HIC.json``; ``both``, the paper's frames with both hands, or ``all``; needs MANO);
- ``arctic:PATH``: :class:`~fourdhands.data.arctic.ArcticSequences` (``arctic_data/data``;
  protocol and split, ``p1-val`` by default: ``p1`` the allocentric views, ``p2`` the
  egocentric one);
- ``renderih:PATH``: :class:`~fourdhands.data.renderih.RenderIHFrames` (the root holding
  ``train/color_img`` and ``train/color_annot``; needs MANO or the authors' step-7 joints).

A split other than the default follows the path after ``@``: ``interhand2.6m:PATH@val``,
``freihand:PATH@evaluation``, ``dexycb:PATH@s1-train``, ``arctic:PATH@p2-val``.

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
from ..hands.mano_fit import fit_arrays
from .real_sequence import LazySequence, keypoint_arrays, read_rgb

def _interhand(path: Path, split: str | None, skip_missing: bool, mano):
    return InterHandSequences(path, split or "test", skip_missing)


def _freihand(path: Path, split: str | None, skip_missing: bool, mano):
    from .freihand import FreiHandFrames

    return FreiHandFrames(path, split or "training")


def _dexycb(path: Path, split: str | None, skip_missing: bool, mano):
    from .dexycb import DexYCBSequences

    setup, _, part = (split or "s0-test").partition("-")
    return DexYCBSequences(path, setup, part)


def _ho3d(path: Path, split: str | None, skip_missing: bool, mano):
    from .ho3d import HO3DSequences

    return HO3DSequences(path, split or "train")


def _reinterhand(path: Path, split: str | None, skip_missing: bool, mano):
    from .reinterhand import ReInterHandSequences

    part, _, lighting = (split or "test").partition("-")
    return ReInterHandSequences(path, part, lighting or "envmap_per_frame")


def _arctic(path: Path, split: str | None, skip_missing: bool, mano):
    from .arctic import ArcticSequences

    protocol, _, part = (split or "p1-val").partition("-")
    return ArcticSequences(path, protocol, part or "val")


def _renderih(path: Path, split: str | None, skip_missing: bool, mano):
    from .renderih import RenderIHFrames

    return RenderIHFrames(path, split or "train", mano=mano)


def _hic(path: Path, split: str | None, skip_missing: bool, mano):
    from .hic import HICSequences

    return HICSequences(path, split or "both", mano=mano)


def _synth(path: Path, split: str | None, skip_missing: bool, mano):
    from ..synth.shards import SyntheticSequences

    return SyntheticSequences(path)


#: kind -> opener(path, split or None, skip_missing, mano) of a sequence source.
_OPENERS = {"synth": _synth, "interhand2.6m": _interhand, "reinterhand": _reinterhand, "freihand": _freihand,
            "dexycb": _dexycb, "ho3d": _ho3d, "hic": _hic, "arctic": _arctic, "renderih": _renderih}
KINDS = tuple(_OPENERS)


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


def open_sequences(spec: str, skip_missing: bool = False, mano: str | Path | None = None):
    """The sequence source that ``spec`` names (see the module docstring). With
    ``skip_missing``, InterHand2.6M frames whose image is absent are left out (counted in
    the source's ``missing_images``) rather than a UserError. ``mano``: the user's MANO
    files (a folder with ``MANO_RIGHT`` / ``MANO_LEFT``), for the readers whose keypoints
    only MANO gives (HIC, RenderIH)."""
    kind, path = parse_spec(spec)
    folder, at, split = str(path).rpartition("@")
    path, split = (Path(folder), split) if at and kind != "synth" else (path, None)
    return _OPENERS[kind](path, split, skip_missing, mano)


def sequence_name(spec: str) -> str:
    """A short name for a data spec's results (the folder's name)."""
    return parse_spec(spec)[1].name


class InterHandSequence(LazySequence):
    """The frames of one InterHand2.6M sequence (capture, sequence name) seen by one
    camera, in ``frame_idx`` order, as a sequence source's item: rows of the split's
    :class:`~fourdhands.data.interhand_index.InterHandIndex`."""

    def __init__(self, index, rows: np.ndarray, roots: list[Path]):
        self.index, self.rows, self.roots = index, rows, roots
        self.num_frames = len(rows)

    def image_path(self, t: int) -> Path:
        from .interhand import resolve_image

        return resolve_image(self.roots, self.index.file_name[self.rows[t]].decode())

    def frame(self, t: int) -> np.ndarray:
        """Image ``t`` decoded: `(H, W, 3)` uint8 RGB; UserError when it is missing or not
        the annotated size."""
        from .interhand import require_size

        path = self.image_path(t)
        image = read_rgb(path)
        require_size(path, image.shape[1::-1], self.index.size[self.rows[t]])
        return image

    def _arrays(self) -> dict[str, np.ndarray]:
        from .interhand import index_arrays

        a = index_arrays(self.index, self.rows)
        frame_rows = np.asarray(self.index.joints)[self.rows]
        fits = np.asarray(self.index.mano)[frame_rows]  # NeuralAnnot: world frame, mean-relative pose
        cam = np.asarray(self.index.camera)[self.rows]
        R = np.asarray(self.index.camrot)[cam]
        t = -np.einsum("fij,fj->fi", R, np.asarray(self.index.campos)[cam]) * 1e-3  # X_cam = R (X - campos)
        return keypoint_arrays(a["keypoints_3d"], a["valid"], a["K"], self.index.size[self.rows[0]],
                               present=a["present"],
                               **fit_arrays(fits[..., :48], fits[..., 48:58], fits[..., 58:61], R, t,
                                            np.asarray(self.index.mano_valid)[frame_rows], mean_relative=True))


class InterHandSequences:
    """InterHand2.6M's annotated images of one split as sequences: the images of a
    (capture, sequence name, camera) in frame order. The files' conventions (joint order,
    millimetres, world frame, validity) are converted by
    :func:`~fourdhands.data.interhand.index_arrays`; its module docstring names them.
    Opening reads the split's cached index (:mod:`~fourdhands.data.interhand_index`), not
    the images. The NeuralAnnot MANO fits, when their file is there, are kept as fits
    (:data:`~fourdhands.hands.mano_fit.FIT_KEYS`: world frame, mean-relative pose, with the
    camera's ``R``, ``t``), which a MANO hand model turns into ground truth parameters;
    ``has_mano`` is False, so under the open hand model the keypoints supervise.

    With ``skip_missing``, frames whose image is absent are left out and counted in
    ``missing_images`` (each image is looked for when opening); without it, a missing
    image is a UserError when its frame is read."""

    def __init__(self, folder: str | Path, split: str = "test", skip_missing: bool = False):
        from .interhand import image_roots
        from .interhand_index import load_index

        folder = Path(folder)
        self.index = index = load_index(folder, split)
        roots = image_roots(folder, split)
        rows = np.arange(len(index))
        self.missing_images = 0
        if skip_missing:
            from .interhand import resolve_image

            there = np.array([resolve_image(roots, name.decode()).is_file() for name in index.file_name], bool)
            rows, self.missing_images = rows[there], int((~there).sum())
        keys = np.stack([np.asarray(index.capture)[rows], np.asarray(index.seq)[rows],
                         np.asarray(index.camera)[rows], np.asarray(index.frame_idx)[rows]])
        rows = rows[np.lexsort(keys[::-1])]  # by capture, sequence, camera, then frame
        group = np.stack([np.asarray(index.capture)[rows], np.asarray(index.seq)[rows], np.asarray(index.camera)[rows]])
        starts = np.flatnonzero(np.r_[True, (np.diff(group, axis=1) != 0).any(0)]) if len(rows) else np.zeros(0, int)
        self.sequences = [InterHandSequence(index, r, roots) for r in np.split(rows, starts[1:])] if len(rows) else []

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int) -> InterHandSequence:
        return self.sequences[i]
