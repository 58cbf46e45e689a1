"""A reader of ARCTIC (Fan et al., CVPR 2023) in its published layout, as a sequence
source (:mod:`fourdhands.data.sources`): one sequence per (subject, sequence, view), the
egocentric view 0 (a head-mounted camera that moves) and the allocentric views 1-8 (fixed).

The layout and conventions, from the dataset's toolkit (github.com/zc-alexfan/arctic:
``docs/data/data_doc.md``, ``docs/data/README.md``, ``docs/data/processing.md``,
``docs/setup.md``, ``src/arctic/processing.py``, ``src/arctic/split.py``,
``src/arctic/preprocess_dataset.py``, ``src/datasets/arctic_dataset.py``,
``src/datasets/dataset_utils.py``, ``src/mesh_loaders/arctic.py``,
``common/body_models.py``, ``common/transforms.py``) and smplx's MANO layer
(github.com/vchoutas/smplx, ``smplx/body_models.py``, ``smplx/vertex_ids.py``):

- ``root`` is ``arctic_data/data``: ``meta/misc.json`` (per subject ``s01``-``s10``:
  ``image_size`` `(9, 2)` ``[W, H]`` per view, ``intris_mat`` `(8, 3, 3)` of views 1-8,
  ``world2cam`` `(8, 4, 4)`, ``ioi_offset``), ``splits_json/protocol_p1.json`` /
  ``protocol_p2.json`` (``train`` / ``val`` / ``test`` lists of ``"s05/box_use_01"``; the
  training sequences are the train list less val and test, as ``split.py`` takes them),
  ``raw_seqs/<subject>/<seq>.{mano,object,egocam.dist,smplx}.npy`` and
  ``images/<subject>/<seq>/<view>/<%05d>.jpg``.
- Protocol ``p1`` is the allocentric split (views 1-8), ``p2`` the egocentric one (view
  0). The test split's ground truth is hidden (scored by the authors' server), so only
  ``train`` and ``val`` can be read.
- ``raw_seqs`` give MANO parameters in the world frame only (``<seq>.mano.npy``: per hand
  ``rot``, ``pose``, ``trans``, ``shape``). Camera-frame joints exist only after the
  toolkit's processing (``process_seqs.py``, which runs MANO): per sequence in
  ``processed_seqs/<subject>/<seq>.npy`` (made by the user, not downloadable), and, for
  the published splits, gathered in ``splits/<protocol>_<split>.npy`` (downloadable,
  ``bash/download_splits.sh``; ``data_dict[<subject>/<seq>]``). Both are ``np.save`` d
  dicts, read here through :class:`~fourdhands.safe_pickle.AllowListUnpickler` (NumPy
  arrays and builtins only), never ``np.load(allow_pickle=True)``. A sequence reads its own
  processed file when there is one, else the split file; with neither, it stops with a
  UserError saying that MANO is required (run ``process_seqs.py``) or the split file must
  be downloaded: keypoints are not made from ``raw_seqs`` here.
- In those files ``cam_coord["joints.right" | "joints.left"]`` is `(F, 10, 21, 3)`,
  metres, OpenCV camera axes (the toolkit projects with ``K @ X``; its viewer flips y and
  z for OpenGL), views ``[ego, 1..8, ego distorted]``; joints in smplx MANO order (16
  joints, then the fingertip vertices 744, 320, 443, 554, 671 of thumb, index, middle,
  ring, pinky, as ``setup.md``'s 21-joint smplx), reordered here by
  :data:`~fourdhands.hands.joints.MANO_TO_OPENPOSE`; ``cam_coord["right_valid" |
  "left_valid" | "is_valid"]`` `(F, 9)`; ``params["K_ego"]`` `(F, 3, 3)` and
  ``params["dist"]`` `(F, 8)` the egocentric intrinsics and lens distortion.
- Image ``n`` of a view shows annotation frame ``n - ioi_offset``; the toolkit uses the
  images ``10 .. F - 11`` only (the first and last ten may be black), and so do the
  sequences here: frame ``t`` is image ``t + 10``.

Choices: a hand is present where the toolkit scores it, ``<side>_valid`` (wrist and at
least three joints inside the view's box) times ``is_valid`` (the object's centre inside
it), with finite joints; other frames keep their place with the hand absent and are
counted in ``unannotated``. The right hand is slot 0, the left slot 1, each its own MANO
(no mirroring). The egocentric images are distorted; ``keypoints_2d`` are the pinhole
projections of the undistorted 3D joints, as the toolkit evaluates (``arctic_dataset.py``),
and ``gt["distortion"]`` keeps the 8 coefficients (zeros for views 1-8). MANO is kept as
read, not converted: ``gt["mano"]`` `(F, 2, 61)` ``[rot, pose, shape, trans]`` in the
world frame and ``gt["mano_rot_cam"]`` `(F, 2, 3)` the global orientation in the view's
camera; the convention is smplx's MANO with ``use_pca=False``, ``flat_hand_mean=False``
(the pose is relative to MANO's ``hands_mean``) and no left-hand shapedirs fix. Moving it
to the camera frame needs the hand model, so ``has_mano`` is False.

Indexing reads ``misc.json``, the protocol file and each sequence's ``object.npy`` header
(its frame count); annotations are read on the first ``.gt``. A split file is read once,
whole, and kept (GBs for ``train``: prefer per-sequence processed files there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import UserError
from ..hands.joints import MANO_TO_OPENPOSE
from ..safe_pickle import AllowListUnpickler, numpy_globals
from .annotation_file import read_annotation
from .real_sequence import LazySequence, keypoint_arrays, read_rgb

PROTOCOLS = {"p1": (1, 2, 3, 4, 5, 6, 7, 8), "p2": (0,)}  # split.py's get_selected_views
SPLITS = ("train", "val")
SKIP = 10  # the toolkit's first / last images left out (split.py, glob_fnames)
EGO_VIEW = 0
_LAYOUT = "ARCTIC layout: <root>/meta/misc.json, splits_json/, raw_seqs/, images/ (root: arctic_data/data)"


def _npy_header(fh) -> tuple[tuple[int, ...], np.dtype]:
    """``(shape, dtype)`` from an open ``.npy`` file's header, leaving it at the data."""
    fmt = np.lib.format
    version = fmt.read_magic(fh)
    shape, _, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(fh)
    return shape, dtype


def read_npy_dict(path: Path) -> dict:
    """The dict an ARCTIC ``np.save`` file holds, unpickled through the allow-list;
    UserError naming the file when it is missing, foreign or names anything else."""
    def refuse(module: str, name: str):
        raise UserError(f"{path}: refused to load '{module}.{name}' (an ARCTIC .npy holds arrays only)")

    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"{path}: missing") from None
    with fh:
        try:
            dtype = _npy_header(fh)[1]
            if not dtype.hasobject:
                raise UserError(f"{path}: holds a plain {dtype} array, not ARCTIC's pickled dict")
            data = AllowListUnpickler(fh, numpy_globals(), refuse, encoding="latin1").load()
        except UserError:
            raise
        except Exception as e:  # a truncated or foreign file fails anywhere in here
            raise UserError(f"{path}: not a readable ARCTIC .npy ({type(e).__name__}: {e})") from None
    data = data.item() if isinstance(data, np.ndarray) and data.shape == () else data
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a dict, found a {type(data).__name__}")
    return data


def npy_length(path: Path) -> int:
    """The first dimension of a plain ``.npy`` array, from its header only."""
    try:
        with open(path, "rb") as fh:
            shape = _npy_header(fh)[0]
    except FileNotFoundError:
        raise UserError(f"{path}: missing ({_LAYOUT})") from None
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable .npy ({e})") from None
    if not shape:
        raise UserError(f"{path}: expected a (frames, 7) array, found a scalar")
    return int(shape[0])


def read_misc(path: Path) -> dict[str, dict]:
    """``misc.json`` per subject: ``image_size`` `(9, 2)` int, ``K`` `(8, 3, 3)` of views
    1-8, ``offset`` (``ioi_offset``)."""
    misc = read_annotation(path, dict, _LAYOUT)
    out = {}
    for subject, entry in misc.items():
        try:
            sizes = np.asarray(entry["image_size"], np.int64).reshape(9, 2)
            K = np.asarray(entry["intris_mat"], np.float64).reshape(8, 3, 3)
            out[subject] = {"image_size": sizes, "K": K, "offset": int(entry["ioi_offset"])}
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"{path}: subject {subject} has no usable image_size (9 x 2), intris_mat "
                            f"(8 x 3 x 3) or ioi_offset ({type(e).__name__}: {e})") from None
    return out


def protocol_sequences(path: Path, split: str) -> list[str]:
    """The ``<subject>/<seq>`` names of ``split`` in a protocol file, as ``split.py``
    takes them (train: the train list less val and test)."""
    lists = read_annotation(path, dict, _LAYOUT)
    for key in ("train", "val", "test"):
        names = lists.get(key)
        if not isinstance(names, list):
            raise UserError(f"{path}: no {key!r} list of <subject>/<seq> names")
        bad = next((n for n in names if not (isinstance(n, str) and n.count("/") == 1)), None)
        if bad is not None:
            raise UserError(f"{path}: {key} entry {bad!r} is not <subject>/<seq>")
    held_out = set(lists["val"]) | set(lists["test"])
    return [n for n in lists["train"] if n not in held_out] if split == "train" else list(lists[split])


class _Annotations:
    """Where a split's camera-frame annotations live (module docstring): a sequence's own
    ``processed_seqs`` file (the last one read is kept, so a sequence's views share it),
    else the split file (read once, kept)."""

    def __init__(self, root: Path, protocol: str, split: str):
        self.root, self.split_file = root, root / "splits" / f"{protocol}_{split}.npy"
        self._split: dict | None = None
        self._last: tuple[Path | None, dict | None] = (None, None)

    def path(self, key: str) -> Path:
        """The file that holds ``key``'s annotations; UserError when none does."""
        own = self.root / "processed_seqs" / f"{key}.npy"
        if own.is_file():
            return own
        if self.split_file.is_file():
            return self.split_file
        raw = self.root / "raw_seqs" / f"{key}.mano.npy"
        raise UserError(f"{own}: missing, and so is {self.split_file}; ARCTIC's {raw.name} holds world-frame "
                        f"MANO parameters only, and camera-frame joints need MANO: run the toolkit's "
                        f"scripts_data/process_seqs.py with your MANO files, or download the splits")

    def entry(self, key: str) -> tuple[Path, dict]:
        """``(file, annotations)`` of ``<subject>/<seq>`` ``key``: a dict with ``cam_coord``
        and ``params``."""
        path = self.path(key)
        if path != self.split_file:
            if self._last[0] != path:
                self._last = (path, read_npy_dict(path))
            return path, self._last[1]
        if self._split is None:
            self._split = read_npy_dict(path)
        entries = self._split.get("data_dict")
        if not isinstance(entries, dict) or not isinstance(entries.get(key), dict):
            raise UserError(f"{path}: data_dict has no entry {key}")
        return path, entries[key]


def _hand_arrays(data: dict, view: int, index: np.ndarray, frames: int, where: str) -> tuple:
    """Both hands of one view at annotation frames ``index`` `(n,)`: keypoints `(n, 2, 21, 3)`
    (OpenPose order), toolkit validity `(n, 2)`, camera-frame global orientation `(n, 2, 3)`
    and world-frame MANO `(n, 2, 61)`; UserError naming ``where`` (file and entry)."""
    try:
        cam, params = data["cam_coord"], data["params"]
        joints = [np.asarray(cam[f"joints.{s}"], np.float64) for s in ("right", "left")]
        flags = [np.asarray(cam[k], bool) for k in ("right_valid", "left_valid", "is_valid")]
        rot_cam = [np.asarray(cam[f"rot_{s}_cam"], np.float64) for s in "rl"]
        mano = [np.concatenate([np.asarray(params[f"{k}_{s}"], np.float64).reshape(frames, -1)
                                for k in ("rot", "pose", "shape", "trans")], 1) for s in "rl"]
        if any(j.shape != (frames, 10, 21, 3) for j in joints) or any(f.shape != (frames, 9) for f in flags):
            raise ValueError(f"joints {joints[0].shape} / valid {flags[0].shape}, expected "
                             f"({frames}, 10, 21, 3) / ({frames}, 9)")
        if any(r.shape != (frames, 9, 3) for r in rot_cam) or any(m.shape[1] != 61 for m in mano):
            raise ValueError("rot_r_cam / rot_l_cam or the MANO parameters have the wrong shape")
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{where}: no usable cam_coord joints / validity and params MANO for {frames} frames "
                        f"({type(e).__name__}: {e})") from None
    kp = np.stack([j[index, view] for j in joints], 1)[:, :, list(MANO_TO_OPENPOSE)]
    valid = np.stack([flags[0][index, view], flags[1][index, view]], 1) & flags[2][index, view][:, None]
    return kp, valid, np.stack([r[index, view] for r in rot_cam], 1), np.stack([m[index] for m in mano], 1)


def _ego_camera(params: dict, index: np.ndarray, frames: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """The egocentric intrinsics `(n, 3, 3)` and distortion `(n, 8)` at frames ``index``."""
    try:
        K = np.asarray(params["K_ego"], np.float64)
        K = np.broadcast_to(K, (frames, 3, 3)) if K.shape == (3, 3) else K.reshape(frames, 3, 3)
        dist = np.asarray(params["dist"], np.float64)
        dist = np.broadcast_to(dist, (frames, 8)) if dist.shape == (8,) else dist.reshape(frames, 8)
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{where}: no usable params K_ego / dist for {frames} frames "
                        f"({type(e).__name__}: {e})") from None
    return K[index], dist[index]


class ArcticSequence(LazySequence):
    """One ARCTIC sequence seen by one view: frame ``t`` is image ``t + SKIP``, showing
    annotation frame ``t + SKIP - ioi_offset``; annotations read when first asked for."""

    def __init__(self, root: Path, key: str, view: int, frames: int, camera: dict, annotations: _Annotations):
        self.root, self.key, self.view, self.annotation_frames = root, key, view, frames
        self.subject, self.name = key.split("/")
        self.num_frames = max(frames - 2 * SKIP, 0)
        self.offset, self.image_size = camera["offset"], tuple(int(x) for x in camera["image_size"][view])
        self.K = None if view == EGO_VIEW else camera["K"][view - 1]
        self._annotations = annotations

    def image_path(self, t: int) -> Path:
        """Frame ``t``'s image (``images/<subject>/<seq>/<view>/<%05d>.jpg``)."""
        return self.root / "images" / self.subject / self.name / str(self.view) / f"{t + SKIP:05d}.jpg"

    def frame(self, t: int) -> np.ndarray:
        path = self.image_path(t)
        return read_rgb(path)

    def _arrays(self) -> dict[str, np.ndarray]:
        n, frames = self.num_frames, self.annotation_frames
        path, data = self._annotations.entry(self.key)
        where = f"{path}: entry {self.key}" if path == self._annotations.split_file else str(path)
        wanted = np.arange(n) + SKIP - self.offset
        inside = (wanted >= 0) & (wanted < frames)  # images outside the annotated span
        index = np.clip(wanted, 0, max(frames - 1, 0))
        kp, present, rot_cam, mano = _hand_arrays(data, self.view, index, frames, where)
        present &= inside[:, None] & np.isfinite(kp).all((-1, -2))
        kp = np.where(present[..., None, None], kp, 0.0)
        if self.view == EGO_VIEW:
            K, dist = _ego_camera(data["params"], index, frames, where)
        else:
            K, dist = np.repeat(self.K[None], n, 0), np.zeros((n, 8))
        return keypoint_arrays(kp, np.repeat(present[..., None], 21, -1), K, self.image_size, present=present,
                               mano=mano, mano_rot_cam=rot_cam, distortion=dist)


class ArcticSequences:
    """The (sequence, view) pairs of one ARCTIC protocol and split (module docstring);
    ``views`` overrides the protocol's views (0 egocentric, 1-8 allocentric)."""

    def __init__(self, root: str | Path, protocol: str = "p1", split: str = "val",
                 views: Sequence[int] | None = None):
        root = Path(root)
        if protocol not in PROTOCOLS:
            raise UserError(f"ARCTIC protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}")
        if split == "test":
            raise UserError("ARCTIC's test ground truth is hidden (scored by the authors' server): use train or val")
        if split not in SPLITS:
            raise UserError(f"ARCTIC split must be one of {', '.join(SPLITS)}, not {split!r}")
        views = tuple(PROTOCOLS[protocol] if views is None else views)
        if not views or any(v not in range(9) for v in views):
            raise UserError(f"ARCTIC views are 0 (egocentric) to 8, not {views!r}")
        if not root.is_dir():
            raise UserError(f"{root}: no such ARCTIC folder ({_LAYOUT})")
        misc = read_misc(root / "meta" / "misc.json")
        annotations = _Annotations(root, protocol, split)
        self.protocol, self.split, self.views, self.sequences = protocol, split, views, []
        for key in protocol_sequences(root / "splits_json" / f"protocol_{protocol}.json", split):
            subject = key.split("/")[0]
            if subject not in misc:
                raise UserError(f"{root / 'meta' / 'misc.json'}: no subject {subject} (needed by {key})")
            annotations.path(key)  # no annotations at all: say so now, not on the first .gt
            frames = npy_length(root / "raw_seqs" / f"{key}.object.npy")
            for view in views:
                seq = ArcticSequence(root, key, view, frames, misc[subject], annotations)
                if seq.num_frames and not seq.image_path(0).is_file():
                    raise UserError(f"{seq.image_path(0)}: missing (the images of {key}, view {view})")
                if seq.num_frames:
                    self.sequences.append(seq)

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int) -> ArcticSequence:
        return self.sequences[i]
