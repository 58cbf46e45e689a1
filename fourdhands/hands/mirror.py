"""Right <-> left mirroring of hand parameters and points (the x = 0 plane of the camera).

Mirroring a point set ``x -> M x`` with ``M = diag(-1, 1, 1)`` turns a right hand into a
left hand. A rotation ``R`` becomes ``M R M``; for an axis-angle ``r`` that is
``(r_x, -r_y, -r_z)`` (the axis is a pseudo-vector), which is what the 4DHands / HaMeR
code does to the left pose when it flips the left crop.

The translation: MANO rotates the root about the wrist joint ``J0(beta)``, not the origin,
so a posed hand is ``v = R0 (u - J0) + J0 + t``. Mirroring gives
``M v = (M R0 M)(M u - M J0) + M J0 + M t``; a left model evaluated with the mirrored
pose places its root at its own ``J0_L(beta)``, so the exact translation is::

    t_L = M t_R + M J0_R(beta) - J0_L(beta)

When the left model is the exact mirror of the right (left template / shapedirs /
posedirs mirrored, same regressor and weights: then ``J0_L = M J0_R``) the joint-0 terms
cancel and ``t_L = M t_R``, which is what :func:`mirror_params` returns by default. For
any other pair (the official MANO_LEFT is only approximately the mirror of MANO_RIGHT, in
particular without the left-shapedirs fix) pass both models and the ``J0`` offset is
added. Likewise with ``flat_hand_mean=False`` the finger pose is mirrored as an absolute
rotation: ``hand_pose_L = mirror(hand_pose_R + mean_R) - mean_L``, which reduces to
``mirror(hand_pose_R)`` when ``mean_L = mirror(mean_R)``.

These are mirrors about the camera's x = 0 plane. An image flip about the image centre
(``u -> W - 1 - u``) is a different map unless the principal point is at the centre;
handle that in the camera, not here.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor

__all__ = ["mirror_pose", "mirror_rotmats", "mirror_points", "mirror_params", "mirror_model_data"]


def _sign_like(x: Any, pattern: tuple[float, float, float]):
    if isinstance(x, Tensor):
        return torch.tensor(pattern, dtype=x.dtype, device=x.device)
    return np.asarray(pattern, dtype=np.result_type(np.asarray(x).dtype, np.float32))


def mirror_pose(pose: Any) -> Any:
    """Mirror axis-angle poses across x = 0: negate y and z of every joint's vector.

    Args:
        pose: (..., 3k) axis-angles (e.g. global_orient (B, 3), hand_pose (B, 45) or the
            full (B, 48)); a torch tensor or numpy array.
    Returns:
        same shape and type. An involution: ``mirror_pose(mirror_pose(p)) == p``.
    """
    if pose.shape[-1] % 3 != 0:
        raise ValueError(f"pose's last dimension must be a multiple of 3, got {pose.shape[-1]}")
    shape = pose.shape
    grouped = pose.reshape(*shape[:-1], shape[-1] // 3, 3)
    return (grouped * _sign_like(pose, (1.0, -1.0, -1.0))).reshape(shape)


def mirror_rotmats(rotmats: Any) -> Any:
    """Mirror rotation matrices: ``M R M`` with ``M = diag(-1, 1, 1)``. (..., 3, 3)."""
    s = _sign_like(rotmats, (-1.0, 1.0, 1.0))
    return rotmats * s[:, None] * s[None, :]


def mirror_points(points: Any) -> Any:
    """Mirror points across the camera's x = 0 plane: negate x. (..., 3), torch or numpy."""
    return points * _sign_like(points, (-1.0, 1.0, 1.0))


_PARAM_KEYS = ("global_orient", "hand_pose", "betas", "transl", "rotmats")


def _as_tensor(x: Any, like: Tensor) -> Tensor:
    t = x if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))
    return t.to(device=like.device, dtype=like.dtype)


def _back(t: Tensor, ref: Any) -> Any:
    if isinstance(ref, Tensor):
        return t.to(device=ref.device, dtype=ref.dtype if ref.is_floating_point() else t.dtype)
    ref_dtype = np.asarray(ref).dtype
    out = t.detach().cpu().numpy()
    return out.astype(ref_dtype) if ref_dtype.kind == "f" else out


def mirror_params(
    params: Mapping[str, Any],
    *,
    source: Any = None,
    target: Any = None,
    flat_hand_mean: bool | None = None,
) -> dict:
    """Mirror one hand's parameters into the other hand's (right <-> left).

    Args:
        params: dict with any of ``global_orient`` (B, 3), ``hand_pose`` (B, 45),
            ``betas`` (B, K), ``transl`` (B, 3), ``rotmats`` (B, 16, 3, 3); torch or
            numpy. Other keys are copied unchanged; so are ``betas`` (shape is symmetric).
        source, target: optional :class:`~fourdhands.hands.model.HandModel` of the input's
            side and of the output's side. Without them the two models are assumed to be
            exact mirrors of each other and ``transl`` just has x negated (exact then, see
            the module docstring). With them, the joint-0 offset
            ``M J0_src(beta) - J0_tgt(beta)`` is added to ``transl`` (a ``transl`` is then
            always returned) and, for ``flat_hand_mean=False``, the finger pose is mirrored
            as an absolute rotation; then
            ``mirror_points(source(**p).vertices) == target(**mirror_params(p, ...)).vertices``
            whenever the two models' root-relative shapes are mirrors.
        flat_hand_mean: the convention of ``hand_pose`` (only used with models); default
            the source model's.
    Returns:
        a new dict with the mirrored parameters (same types as the input).
    """
    out = dict(params)
    for key in ("global_orient", "hand_pose"):
        if params.get(key) is not None:
            out[key] = mirror_pose(params[key])
    if params.get("rotmats") is not None:
        out["rotmats"] = mirror_rotmats(params["rotmats"])
    if params.get("transl") is not None:
        out["transl"] = mirror_points(params["transl"])
    if source is None and target is None:
        return out
    if source is None or target is None:
        raise ValueError("mirror_params: give both source and target models, or neither")

    ref = source.v_template
    given = {k: v for k, v in params.items() if k in _PARAM_KEYS and v is not None}
    batch = int(next(iter(given.values())).shape[0]) if given else 1
    # results are tensors when the inputs are (or when there are none), else numpy
    template = next(iter(given.values())) if given else ref
    betas = params.get("betas")
    betas_t = None if betas is None else _as_tensor(betas, ref)
    j0_src = source.rest_joints(betas_t, batch)[:, 0]
    j0_tgt = target.rest_joints(None if betas_t is None else betas_t.to(target.v_template), batch)[:, 0]
    offset = mirror_points(j0_src) - j0_tgt.to(j0_src)

    if params.get("transl") is not None:
        out["transl"] = _back(_as_tensor(out["transl"], ref) + offset, params["transl"])
    else:
        out["transl"] = _back(offset, template)

    flat = source.flat_hand_mean if flat_hand_mean is None else bool(flat_hand_mean)
    if not flat and params.get("rotmats") is None:
        hp_ref = params.get("hand_pose")
        hp = (
            _as_tensor(hp_ref, ref)
            if hp_ref is not None
            else torch.zeros((batch, 45), dtype=ref.dtype, device=ref.device)
        )
        new_hp = mirror_pose(hp + source.hands_mean) - target.hands_mean.to(hp)
        out["hand_pose"] = _back(new_hp, hp_ref if hp_ref is not None else template)
    return out


def mirror_model_data(right: Mapping[str, Any]) -> dict:
    """The exact mirror image (x -> -x) of a MANO-format model dict: right <-> left.

    Template and shape directions: x negated. Joint regressor, skinning weights, tree and
    tips: unchanged. Faces: reversed winding (so normals still point outwards). Pose
    directions: the pose feature ``(R - I)[a, b]`` of a mirrored rotation ``M R M`` is
    ``s_a s_b (R - I)[a, b]`` (``s = (-1, 1, 1)``), and a displacement's component c
    mirrors with ``s_c``, so ``posedirs_L[v, c, 9j + 3a + b] = s_c s_a s_b posedirs_R[...]``.
    hands_mean and the PCA rows: axis-angle mirrored (y, z negated). Returns new arrays.
    """
    s = np.array([-1.0, 1.0, 1.0])
    left = {k: np.array(v, copy=True) for k, v in right.items()}
    left["v_template"] = right["v_template"] * s
    left["shapedirs"] = right["shapedirs"] * s[None, :, None]
    feat_sign = np.tile(np.outer(s, s).reshape(9), 15)  # (135,)
    left["posedirs"] = right["posedirs"] * s[None, :, None] * feat_sign[None, None, :]
    left["f"] = np.asarray(right["f"])[:, ::-1].copy()
    aa = np.tile([1.0, -1.0, -1.0], 15)
    left["hands_mean"] = right["hands_mean"] * aa
    left["hands_components"] = right["hands_components"] * aa[None, :]
    return left
