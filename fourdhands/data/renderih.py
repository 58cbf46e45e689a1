"""A reader of RenderIH (Li et al., ICCV 2023), the synthetic interacting-hands dataset, in
its published layout, as a sequence source of single frames (:mod:`fourdhands.data.sources`).

The layout and conventions, from the dataset's own repository (github.com/adwardlee/RenderIH:
``README.md``, ``rendering_code/steps.md``, ``rendering_code/step6_change_interhand_annot.py``
which writes the released annotations, ``rendering_code/step7_gen_annotations.py`` and
``dataset/interhand_orisyn.py`` which read them, ``models/manolayer.py`` which poses them):

- ``<root>/train/color_img/<id>.jpg``: the renders, already cropped around both hands to
  256 x 256; ``<root>/train/color_annot/<id>.pkl``: one pickle per image, with the same
  ``<id>``. ``train`` is the only split released. The ids do not start at 0 (the authors'
  loaders use 366358 onwards, after their InterHand2.6M crops), so they are read from the
  annotation folder's file names, in numeric order.
- Each render is an independent frame (no sequences); both hands are in every image.
- An annotation pickle is a dict: ``camera`` with ``R`` `(3, 3)`, ``t`` `(1, 3)` metres and
  ``camera`` (the intrinsics K `(3, 3)` of the 256 x 256 crop); ``mano_params`` with a
  ``right`` and a ``left`` entry, each ``R`` `(1, 3, 3)` (the root rotation as a matrix),
  ``pose`` `(1, 45)`, ``shape`` `(1, 10)`, ``trans`` `(1, 3)` (and ``oripose``, the same pose
  as 48 axis-angles); plus ``image`` / ``annotation`` / ``inter_idx``, bookkeeping copied
  from InterHand2.6M. A point of the posed MANO hand goes to the camera frame (OpenCV axes,
  as InterHand2.6M's) as ``X_cam = R_cam @ X + t``.
- MANO convention (``models/manolayer.py``): ``pose`` holds all 45 PCA coefficients of
  MANO's ``hands_components``, the finger axis-angles being ``pose @ hands_components +
  hands_mean`` (i.e. smplx's ``flat_hand_mean=False`` pose, ``hands_mean`` added back); the
  root rotates about the shaped rest wrist and ``trans`` is added after posing (smplx's
  ``transl``); each hand has its own MANO file, the left one with the InterHand2.6M /
  IntagHand shapedirs fix applied; the 21 joints are the 16 MANO joints and vertices 745,
  317, 444, 556, 673 as fingertips (IntagHand's ids), in OpenPose order.
- The annotations hold **no joints**: the authors compute them with MANO (README: run
  ``step7_gen_annotations.py``, which writes ``<root>/train/ori_handdict/<id>.npy``, a
  pickled dict whose ``right`` / ``left`` entries hold ``joints3d`` `(21, 3)`, camera frame,
  metres, OpenPose order).

So the keypoints here come from, in this order: the MANO files the caller gives (``mano``, a
folder with ``MANO_RIGHT`` / ``MANO_LEFT``; posed with :mod:`fourdhands.hands.model` exactly
as above), else the ``ori_handdict`` file of the frame where step 7 was run; with neither,
asking for a frame's ``gt`` is a UserError saying that MANO is needed, while its raw
parameters (:attr:`RenderIHFrame.raw`) stay readable. The raw parameters also join ``gt``
(``mano_rot``, ``mano_pose_pca``, ``mano_shape``, ``mano_trans``, ``cam_R``, ``cam_t``).
``has_mano`` is False: turning them into this project's camera-frame, flat-mean parameters
needs MANO's own arrays and the left-hand fix, which a training run need not share.

The right hand is hand 0, the left hand 1. A hand whose parameters are None or not finite is
absent (the frame's ``unannotated`` counts frames with no hand). Pickles are read through
:class:`~fourdhands.safe_pickle.AllowListUnpickler` (NumPy arrays and builtins only), never
plain ``pickle.load``; nothing is written into the dataset's folder.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import UserError
from ..safe_pickle import AllowListUnpickler, numpy_globals
from ..sides import SIDES
from .real_sequence import LazySequence, keypoint_arrays, read_rgb

__all__ = ["RenderIHFrame", "RenderIHFrames", "read_pickle", "read_raw", "SPLITS"]

SPLITS = ("train",)
#: entry of ``mano_params[side]`` -> (name in ``raw``, shape per hand)
_HAND_ENTRIES = {"R": ("mano_rot", (3, 3)), "pose": ("mano_pose_pca", (45,)), "shape": ("mano_shape", (10,)),
                 "trans": ("mano_trans", (3,))}
_LAYOUT = "RenderIH layout: <root>/<split>/color_img/<id>.jpg and <root>/<split>/color_annot/<id>.pkl"


def read_pickle(path: Path, raw: bytes | None = None) -> Any:
    """A RenderIH pickle (or the pickle inside a step-7 ``.npy``: ``raw`` its bytes) through
    the allow-list; UserError naming the file when it is missing, foreign or unreadable."""
    def refuse(module: str, name: str):
        raise UserError(f"{path}: refused to load '{module}.{name}' (a RenderIH annotation holds arrays only)")

    try:
        raw = path.read_bytes() if raw is None else raw
    except FileNotFoundError:
        raise UserError(f"{path}: missing ({_LAYOUT})") from None
    try:
        return AllowListUnpickler(io.BytesIO(raw), numpy_globals(), refuse, encoding="latin1").load()
    except UserError:
        raise
    except Exception as e:  # a truncated or foreign pickle fails anywhere in here
        raise UserError(f"{path}: not a readable pickle ({type(e).__name__}: {e})") from None


def _read_npy_dict(path: Path) -> dict:
    """The dict that ``np.save`` wrote as a 0-d object array (step 7's ``ori_handdict``),
    unpickled through the allow-list rather than ``np.load(allow_pickle=True)``."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(fh)
            rest = fh.read()
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable .npy file ({e})") from None
    if dtype != object or shape != ():
        raise UserError(f"{path}: expected a saved dict (a 0-d object array), found {dtype} {shape}")
    value = read_pickle(path, rest)
    value = value.item() if isinstance(value, np.ndarray) and value.shape == () else value
    if not isinstance(value, dict):
        raise UserError(f"{path}: expected a dict, found a {type(value).__name__}")
    return value


def _array(value: Any, shape: tuple[int, ...], path: Path, entry: str) -> np.ndarray:
    """``value`` as float64 reshaped to ``shape`` (step 6 writes a leading batch axis of 1);
    UserError naming the file and the entry when the count differs."""
    try:
        a = np.asarray(value, np.float64)
        return a.reshape(shape)
    except (TypeError, ValueError):
        got = getattr(np.asarray(value, dtype=object), "shape", "?")
        raise UserError(f"{path}: entry {entry} is not {'x'.join(map(str, shape))} numbers (found {got})") from None


def _entry(d: Any, key: str, path: Path, where: str) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise UserError(f"{path}: no entry {where + '/' if where else ''}{key}")
    return d[key]


def read_raw(path: Path) -> dict[str, np.ndarray]:
    """One annotation pickle's parameters: ``cam_R`` `(3, 3)`, ``cam_t`` `(3,)` m, ``K``
    `(3, 3)`; per hand (axis 0 right, left) ``mano_rot`` `(2, 3, 3)`, ``mano_pose_pca``
    `(2, 45)`, ``mano_shape`` `(2, 10)`, ``mano_trans`` `(2, 3)` m; ``present`` `(2,)`, False
    (and zeros) where a hand's parameters are None or not finite."""
    data = read_pickle(path)
    camera = _entry(data, "camera", path, "")
    raw = {"cam_R": _array(_entry(camera, "R", path, "camera"), (3, 3), path, "camera/R"),
           "cam_t": _array(_entry(camera, "t", path, "camera"), (3,), path, "camera/t"),
           "K": _array(_entry(camera, "camera", path, "camera"), (3, 3), path, "camera/camera")}
    raw.update({name: np.zeros((2, *shape)) for name, shape in _HAND_ENTRIES.values()})
    raw["present"] = np.zeros(2, bool)
    params = _entry(data, "mano_params", path, "")
    for h, side in enumerate(SIDES):
        hand = _entry(params, side, path, "mano_params")
        if hand is None:
            continue  # a hand without parameters: absent
        values = {name: _array(_entry(hand, key, path, f"mano_params/{side}"), shape, path,
                               f"mano_params/{side}/{key}") for key, (name, shape) in _HAND_ENTRIES.items()}
        if all(np.isfinite(v).all() for v in values.values()):
            for name, v in values.items():
                raw[name][h] = v
            raw["present"][h] = True
    if not (np.isfinite(raw["cam_R"]).all() and np.isfinite(raw["cam_t"]).all() and np.isfinite(raw["K"]).all()):
        raw["present"][:] = False  # no camera, no keypoints
    return raw


def _mano_keypoints(models: dict, raw: dict[str, np.ndarray]) -> np.ndarray:
    """`(2, 21, 3)` camera-frame keypoints (m, OpenPose order) of the present hands, posed
    as RenderIH's ``ManoLayer`` does (module docstring); zeros for an absent hand."""
    import torch

    from ..hands.lbs import batch_rodrigues

    out = np.zeros((2, 21, 3))
    for h, side in enumerate(SIDES):
        if not raw["present"][h]:
            continue
        m = models[side]
        pca = torch.as_tensor(raw["mano_pose_pca"][h][None], dtype=m.dtype)
        # the stored coefficients span all 45 components; hands_mean is added back
        fingers = batch_rodrigues((m.pca_to_hand_pose(pca)[0] + m.hands_mean).reshape(15, 3))
        rotmats = torch.cat([torch.as_tensor(raw["mano_rot"][h][None], dtype=m.dtype), fingers])[None]
        with torch.no_grad():
            kp = m(rotmats=rotmats, betas=torch.as_tensor(raw["mano_shape"][h][None], dtype=m.dtype),
                   transl=torch.as_tensor(raw["mano_trans"][h][None], dtype=m.dtype)).keypoints[0]
        out[h] = kp.double().numpy() @ raw["cam_R"].T + raw["cam_t"]
    return out


def _step7_keypoints(path: Path, present: np.ndarray) -> np.ndarray:
    """`(2, 21, 3)` keypoints from a step-7 ``ori_handdict`` file, for the present hands."""
    handdict = _read_npy_dict(path)
    out = np.zeros((2, 21, 3))
    for h, side in enumerate(SIDES):
        if present[h]:
            hand = _entry(handdict, side, path, "")
            out[h] = _array(_entry(hand, "joints3d", path, side), (21, 3), path, f"{side}/joints3d")
    return out


class RenderIHFrame(LazySequence):
    """One RenderIH render as a one-frame sequence (sequence-source item); its annotation is
    read when ``gt`` or ``raw`` is first asked for."""

    num_frames = 1

    def __init__(self, source: "RenderIHFrames", frame_id: str):
        self.id, self._source = frame_id, source
        self.image_path = source.folder / "color_img" / f"{frame_id}.jpg"
        self.annotation_path = source.folder / "color_annot" / f"{frame_id}.pkl"
        self.handdict_path = source.folder / "ori_handdict" / f"{frame_id}.npy"

    @property
    def raw(self) -> dict[str, np.ndarray]:
        """The annotation's parameters as read (:func:`read_raw`); needs no MANO."""
        if getattr(self, "_raw", None) is None:
            self._raw = read_raw(self.annotation_path)
        return self._raw

    def frame(self, t: int) -> np.ndarray:
        return read_rgb(self.image_path)

    def _keypoints(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        models = self._source.hand_models
        if models is not None:
            return _mano_keypoints(models, raw)
        if self.handdict_path.is_file():
            return _step7_keypoints(self.handdict_path, raw["present"])
        raise UserError(f"{self.annotation_path}: RenderIH annotations hold MANO parameters only; their "
                        f"keypoints need MANO: give the folder with MANO_RIGHT.pkl / MANO_LEFT.pkl (mano=...), "
                        f"or run RenderIH's step7_gen_annotations.py to write {self.handdict_path.parent}/")

    def _arrays(self) -> dict[str, np.ndarray]:
        raw = self.raw
        kp3d = self._keypoints(raw)
        present = raw["present"] & np.isfinite(kp3d).all(axis=(1, 2))
        kp3d = np.where(present[:, None, None], kp3d, 0.0)
        try:
            with Image.open(self.image_path) as im:
                size = im.size
        except OSError as e:
            raise UserError(f"{self.image_path}: cannot read the image ({e})") from None
        extra = {k: raw[k][None] for k in ("mano_rot", "mano_pose_pca", "mano_shape", "mano_trans", "cam_R", "cam_t")}
        return keypoint_arrays(kp3d[None], np.repeat(present[None, :, None], 21, -1), raw["K"][None], size,
                               present=present[None], **extra)


def _numeric_order(name: str) -> tuple:
    return (0, int(name), name) if name.isdigit() else (1, 0, name)


class RenderIHFrames:
    """The renders of one RenderIH split (module docstring), each a one-frame sequence.

    Args:
        root: the folder holding ``train/``.
        split: ``"train"``, the only split released.
        mano: the folder with ``MANO_RIGHT`` / ``MANO_LEFT`` (``.pkl`` or ``.npz``), to compute
            the keypoints (:func:`~fourdhands.hands.model.load_hand_model`); without it they come from step 7's
            ``ori_handdict`` files, and ``gt`` is a UserError where those are absent.
    """

    def __init__(self, root: str | Path, split: str = "train", mano: str | os.PathLike | None = None):
        if split not in SPLITS:
            raise UserError(f"RenderIH split must be one of {', '.join(SPLITS)}, not {split!r}")
        self.root, self.split = Path(root), split
        self.folder = self.root / split
        annotations = self.folder / "color_annot"
        if not annotations.is_dir():
            raise UserError(f"{annotations}: missing ({_LAYOUT})")
        with os.scandir(annotations) as entries:  # names only: a million frames index in seconds
            ids = [e.name[:-4] for e in entries if e.name.endswith(".pkl")]
        if not ids:
            raise UserError(f"{annotations}: no <id>.pkl files ({_LAYOUT})")
        self.ids = sorted(ids, key=_numeric_order)
        first = self.folder / "color_img" / f"{self.ids[0]}.jpg"
        if not first.is_file():
            raise UserError(f"{first}: missing (the image of {annotations / self.ids[0]}.pkl; {_LAYOUT})")
        self.hand_models = None if mano is None else _load_models(mano)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> RenderIHFrame:
        return RenderIHFrame(self, self.ids[i])


def _load_models(mano: str | os.PathLike) -> dict:
    """Both MANO hands as RenderIH poses them: float64, IntagHand's fingertips, the left-hand
    shapedirs fix (the dataset's ``fix_shape``)."""
    import torch

    from ..hands.model import load_hand_model

    if str(mano).strip().lower() == "open":
        raise UserError("RenderIH's parameters are MANO's (PCA of MANO's own components): the open hand "
                        "model cannot pose them; give the folder with MANO_RIGHT.pkl / MANO_LEFT.pkl")
    return {side: load_hand_model(mano, side, fix_left_shapedirs=True, tips="intaghand", dtype=torch.float64)
            for side in SIDES}
