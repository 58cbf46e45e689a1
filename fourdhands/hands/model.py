"""The hand model: MANO (from the user's official files) or the package's open hand.

:class:`HandModel` is a ``torch.nn.Module`` built from a MANO-format dict (see
:mod:`fourdhands.hands.mano_file`); all its arrays are buffers, so ``.to(device, dtype)``
moves and casts it. :func:`load_hand_model` builds one from a MANO ``.pkl`` / ``.npz``, a
folder holding ``MANO_RIGHT`` / ``MANO_LEFT``, or the name ``"open"``.

Pose convention (``flat_hand_mean``):

- ``True`` (the fourdhands default, as manopth and HaMeR): ``hand_pose`` is the absolute
  rotation of the 15 finger joints; zero is the flat hand.
- ``False`` (smplx's default): ``hands_mean`` (MANO's mean finger pose, a relaxed hand) is
  added to ``hand_pose``, so zero is the mean hand.

Which convention a parameter file means must be stored with it. ``rotmats`` (the final
per-joint rotations) bypass it: ``hands_mean`` is never added to them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import UserError
from ..sides import SIDES
from .joints import DEFAULT_TIPS, keypoints_from_joints, tip_vertex_ids
from .lbs import blend_shapes, lbs, vertices2joints
from .mano_file import (
    NUM_BETAS,
    NUM_JOINTS,
    fix_left_shapedirs as _fix_left_shapedirs,
    read_mano_file,
    validate_model_data,
)

__all__ = ["HandOutput", "HandModel", "load_hand_model", "SIDES"]

NUM_HAND_POSE = 3 * (NUM_JOINTS - 1)  # 45


@dataclass
class HandOutput:
    """Output of :meth:`HandModel.forward` (units: metres; ``transl`` applied to all).

    Attributes:
        vertices: (B, V, 3) mesh vertices.
        joints: (B, 16, 3) MANO joints, kinematic order (wrist, index1-3, middle1-3,
            pinky1-3, ring1-3, thumb1-3).
        keypoints: (B, 21, 3) OpenPose order (16 joints + 5 fingertip vertices).
        faces: (F, 3) long triangle vertex ids (shared, not batched).
        model_name: which hand model produced it (``"mano"``, ``"open"``, ...).
        side: ``"right"`` or ``"left"``.
    """

    vertices: Tensor
    joints: Tensor
    keypoints: Tensor
    faces: Tensor
    model_name: str = ""
    side: str = ""


def _check_side(side: str) -> str:
    if side not in SIDES:
        raise ValueError(f"hand side must be 'right' or 'left', got {side!r}")
    return side


class HandModel(nn.Module):
    """A MANO-parameterised hand: 16 joints, 3 + 45 axis-angle pose, 10 betas, LBS.

    Args:
        data: MANO-format dict (keys of :data:`~fourdhands.hands.mano_file.REQUIRED_KEYS`,
            optional ``tip_vertex_ids``); validated here.
        side: ``"right"`` or ``"left"``.
        name: the model's name, shown in outputs and logs (``"mano"``, ``"open"``, ...).
        flat_hand_mean: default pose convention (see the module docstring); overridable
            per call.
        tips: fingertip vertices: ``None`` = the dict's ``tip_vertex_ids`` if present,
            else ``"intaghand"``; or a convention name or 5 ids
            (see :func:`~fourdhands.hands.joints.tip_vertex_ids`).
        dtype: floating dtype of the buffers (change later with ``.to(dtype)``).
        source: where the data came from (a path), for messages.
    """

    def __init__(
        self,
        data: Mapping[str, Any],
        side: str,
        name: str = "mano",
        *,
        flat_hand_mean: bool = True,
        tips: str | Sequence[int] | None = None,
        dtype: torch.dtype = torch.float32,
        source: str | None = None,
    ):
        super().__init__()
        self.side = _check_side(side)
        self.name = str(name)
        self.source = source if source is not None else self.name
        self.flat_hand_mean = bool(flat_hand_mean)
        model = validate_model_data(data, f"hand model '{self.source}'")
        V = model["v_template"].shape[0]
        if tips is None:
            tips = model["tip_vertex_ids"] if "tip_vertex_ids" in model else DEFAULT_TIPS
        if isinstance(tips, str):
            self.tip_convention = tips
        else:
            self.tip_convention = "model" if tips is model.get("tip_vertex_ids") else "custom"
        tip_ids = tip_vertex_ids(tips, side=side, num_vertices=V)

        def buf(key: str) -> Tensor:
            return torch.as_tensor(model[key], dtype=dtype)

        self.register_buffer("v_template", buf("v_template"))
        self.register_buffer("shapedirs", buf("shapedirs"))
        self.register_buffer("posedirs", buf("posedirs"))
        self.register_buffer("J_regressor", buf("J_regressor"))
        self.register_buffer("lbs_weights", buf("weights"))
        self.register_buffer("hands_mean", buf("hands_mean"))
        self.register_buffer("hands_components", buf("hands_components"))
        self.register_buffer("faces", torch.as_tensor(model["f"], dtype=torch.long))
        parents = model["kintree_table"][0]
        self.register_buffer("parents", torch.as_tensor(parents, dtype=torch.long))
        self.register_buffer("tip_vertex_ids", torch.as_tensor(tip_ids, dtype=torch.long))
        # Python copies: indexing with them needs no device synchronisation.
        self._parents: list[int] = [int(p) for p in parents]
        self._tip_ids: tuple[int, ...] = tuple(tip_ids)

    # ------------------------------------------------------------------ properties
    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def dtype(self) -> torch.dtype:
        return self.v_template.dtype

    @property
    def device(self) -> torch.device:
        return self.v_template.device

    def extra_repr(self) -> str:
        return (
            f"name={self.name!r}, side={self.side!r}, vertices={self.num_vertices}, "
            f"faces={self.num_faces}, flat_hand_mean={self.flat_hand_mean}, "
            f"tips={self.tip_convention!r}"
        )

    # ------------------------------------------------------------------ helpers
    def _tensor(self, x: Any, arg: str, tail: tuple[int, ...]) -> Tensor:
        t = x if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))
        if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
            raise ValueError(f"{self.name} {self.side} hand: {arg} must be a float tensor")
        t = t.to(device=self.device, dtype=self.dtype)
        if t.ndim != 1 + len(tail) or tuple(t.shape[1:]) != tail:
            want = "(B, " + ", ".join(str(s) for s in tail) + ")"
            raise ValueError(
                f"{self.name} {self.side} hand: {arg} has shape {tuple(t.shape)}, expected {want}"
            )
        return t

    def _betas(self, betas: Any, batch: int) -> Tensor:
        if betas is None:
            return torch.zeros((batch, NUM_BETAS), dtype=self.dtype, device=self.device)
        t = betas if isinstance(betas, Tensor) else torch.as_tensor(np.asarray(betas))
        t = t.to(device=self.device, dtype=self.dtype)
        if t.ndim != 2 or t.shape[1] > self.shapedirs.shape[-1]:
            raise ValueError(
                f"{self.name} {self.side} hand: betas has shape {tuple(t.shape)}, "
                f"expected (B, {self.shapedirs.shape[-1]}) (or fewer columns)"
            )
        return t

    def pca_to_hand_pose(self, coeffs: Tensor) -> Tensor:
        """Finger pose (B, 45) from (B, k) PCA coefficients (k <= 45), as MANO / smplx.

        The result is relative to ``hands_mean`` when ``flat_hand_mean`` is False (add it
        via :meth:`forward`), exactly as smplx's ``use_pca`` path.
        """
        k = coeffs.shape[-1]
        return coeffs.to(self.hands_components) @ self.hands_components[:k]

    def rest_joints(self, betas: Tensor | None = None, batch: int = 1) -> Tensor:
        """(B, 16, 3) joints of the shaped rest hand (``J_regressor @ (T + S beta)``)."""
        b = self._betas(betas, batch)
        v_shaped = self.v_template + blend_shapes(b, self.shapedirs)
        return vertices2joints(self.J_regressor, v_shaped)

    def _pose(self, tensors: dict[str, Tensor], batch: int, flat: bool) -> tuple[Tensor, bool]:
        """What :func:`lbs` poses with: the rotation matrices `(B, 16, 3, 3)` as given, or
        the axis-angles `(B, 48)` (zeros where absent, ``hands_mean`` added unless ``flat``);
        and whether they are axis-angles."""
        if "rotmats" in tensors:
            return tensors["rotmats"], False
        go = tensors.get("global_orient", torch.zeros((batch, 3), dtype=self.dtype, device=self.device))
        hp = tensors.get("hand_pose")
        if hp is None:
            hp = torch.zeros((batch, NUM_HAND_POSE), dtype=self.dtype, device=self.device)
        if not flat:
            hp = hp + self.hands_mean
        return torch.cat([go, hp], dim=1), True

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        global_orient: Tensor | None = None,
        hand_pose: Tensor | None = None,
        betas: Tensor | None = None,
        transl: Tensor | None = None,
        rotmats: Tensor | None = None,
        flat_hand_mean: bool | None = None,
    ) -> HandOutput:
        """Pose and shape the hand.

        Args:
            global_orient: (B, 3) root axis-angle (rotation about the wrist joint); zeros
                if None.
            hand_pose: (B, 45) finger axis-angles (15 joints, MANO order); zeros if None.
            betas: (B, K) shape, K <= 10 (missing columns are zero); zeros if None.
            transl: (B, 3) translation added to vertices, joints and keypoints.
            rotmats: (B, 16, 3, 3) final per-joint rotations instead of the axis-angles
                (``hands_mean`` is never added to them); exclusive with
                ``global_orient`` / ``hand_pose``.
            flat_hand_mean: override of the model's convention for this call.
        Returns:
            :class:`HandOutput` (vertices (B, V, 3), joints (B, 16, 3), keypoints (B, 21, 3)
            in OpenPose order, faces (F, 3) long).
        """
        flat = self.flat_hand_mean if flat_hand_mean is None else bool(flat_hand_mean)
        tensors: dict[str, Tensor] = {}
        if rotmats is not None:
            if global_orient is not None or hand_pose is not None:
                raise ValueError(
                    f"{self.name} {self.side} hand: give either rotmats or "
                    "global_orient/hand_pose, not both"
                )
            tensors["rotmats"] = self._tensor(rotmats, "rotmats", (NUM_JOINTS, 3, 3))
        if global_orient is not None:
            tensors["global_orient"] = self._tensor(global_orient, "global_orient", (3,))
        if hand_pose is not None:
            tensors["hand_pose"] = self._tensor(hand_pose, "hand_pose", (NUM_HAND_POSE,))
        if transl is not None:
            tensors["transl"] = self._tensor(transl, "transl", (3,))
        betas_t = None if betas is None else self._betas(betas, 0)
        if betas_t is not None:
            tensors["betas"] = betas_t
        sizes = {k: int(v.shape[0]) for k, v in tensors.items()}
        if len(set(sizes.values())) > 1:
            listing = ", ".join(f"{k}: {n}" for k, n in sizes.items())
            raise ValueError(f"{self.name} {self.side} hand: batch sizes differ ({listing})")
        batch = next(iter(sizes.values())) if sizes else 1

        if betas_t is None:
            betas_t = self._betas(None, batch)
        pose, pose2rot = self._pose(tensors, batch, flat)
        vertices, joints = lbs(betas_t, pose, self.v_template, self.shapedirs, self.posedirs, self.J_regressor,
                               self._parents, self.lbs_weights, pose2rot=pose2rot)
        keypoints = keypoints_from_joints(joints, vertices, self.tip_vertex_ids)
        if "transl" in tensors:
            t = tensors["transl"].unsqueeze(1)
            vertices, joints, keypoints = vertices + t, joints + t, keypoints + t
        return HandOutput(vertices, joints, keypoints, self.faces, self.name, self.side)


# ---------------------------------------------------------------------------------------


def _find_side_file(folder: Path, side: str) -> Path | None:
    for ext in (".pkl", ".npz"):
        candidate = folder / f"MANO_{side.upper()}{ext}"
        if candidate.is_file():
            return candidate
    return None


def _side_from_filename(path: Path) -> str | None:
    stem = path.stem.upper()
    has_left, has_right = "LEFT" in stem, "RIGHT" in stem
    if has_left != has_right:
        return "left" if has_left else "right"
    return None


def _mano_path(spec, side: str) -> Path:
    """The MANO file of ``side`` that ``spec`` (a file or a folder) names: a file whose name
    says the other side stands for its folder (``MANO_RIGHT.pkl`` gives the left hand's
    ``MANO_LEFT`` beside it). UserError when there is none."""
    if not isinstance(spec, (str, os.PathLike)):
        raise UserError(
            f"hand model must be 'open' or a path to a MANO .pkl/.npz file, got {type(spec).__name__}"
        )
    path = Path(spec)
    if path.is_dir():
        found = _find_side_file(path, side)
        if found is None:
            raise UserError(
                f"hand model folder '{path}': no MANO_{side.upper()}.pkl or .npz in it"
            )
        path = found
    elif not path.exists():
        raise UserError(
            f"hand model '{spec}' does not exist (give 'open', a MANO .pkl/.npz file or a folder)"
        )
    named_side = _side_from_filename(path)
    if named_side is not None and named_side != side:
        sibling = _find_side_file(path.parent, side)
        if sibling is None:
            raise UserError(f"hand model file '{path}': the name says {named_side} hand, and there is no "
                            f"MANO_{side.upper()}.pkl or .npz beside it for the {side} hand")
        return sibling
    return path


def load_hand_model(
    spec: str | os.PathLike,
    side: str,
    *,
    flat_hand_mean: bool = True,
    fix_left_shapedirs: bool = False,
    tips: str | Sequence[int] = DEFAULT_TIPS,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = "cpu",
) -> HandModel:
    """Build a :class:`HandModel` for one side.

    Args:
        spec: ``"open"`` (the package's open hand model), a MANO ``.pkl`` / ``.npz`` file
            of that side, or a folder holding ``MANO_RIGHT`` / ``MANO_LEFT`` (.pkl or .npz).
        side: ``"right"`` or ``"left"``. When a file name says LEFT or RIGHT it must match.
        flat_hand_mean: pose convention (see the module docstring); True by default.
        fix_left_shapedirs: for the LEFT MANO file, apply the InterHand2.6M / IntagHand
            shapedirs fix (:func:`~fourdhands.hands.mano_file.fix_left_shapedirs`); it needs
            the right file, looked up as ``MANO_RIGHT.pkl`` / ``.npz`` beside the left one.
            Apply it per dataset (DexYCB was annotated without it). No effect for the
            right hand or the open model (whose left hand is an exact mirror).
        tips: fingertip vertices of the MANO mesh (a convention name or 5 ids). For the
            open model a convention name is ignored (the names refer to MANO's mesh) and
            the open model's own ``tip_vertex_ids`` are used; explicit ids are honoured.
        dtype, device: of the model's buffers; ``device=None`` leaves them on torch's
            current default device (e.g. inside ``with torch.device("meta")``).
    Raises:
        UserError: a bad spec, file or option (the user's); ValueError: a bad side (the caller's).
    """
    _check_side(side)
    if isinstance(spec, str) and spec.strip().lower() == "open":
        from .open_model import build_open_hand

        data = build_open_hand(side)
        model = HandModel(
            data,
            side,
            name="open",
            flat_hand_mean=flat_hand_mean,
            tips=None if isinstance(tips, str) else tips,
            dtype=dtype,
            source="open",
        )
        return model if device is None else model.to(device)

    path = _mano_path(spec, side)
    data = read_mano_file(path)
    if fix_left_shapedirs and side == "left":
        right_path = _find_side_file(path.parent, "right")
        if right_path is None:
            raise UserError(
                f"hand model file '{path}': fix_left_shapedirs needs MANO_RIGHT.pkl or "
                f"MANO_RIGHT.npz beside it in '{path.parent}'"
            )
        data = _fix_left_shapedirs(data, read_mano_file(right_path))
    model = HandModel(
        data,
        side,
        name="mano",
        flat_hand_mean=flat_hand_mean,
        tips=tips,
        dtype=dtype,
        source=str(path),
    )
    return model if device is None else model.to(device)
