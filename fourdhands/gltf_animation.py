"""A whole clip as one animated, skinned glTF 2.0 binary (``.glb``): Blender, three.js.

Layout of the file:

- one scene; its root node ``camera`` turns OpenCV's camera axes (x right, y down,
  z forward) into glTF's (y up, z toward the viewer): a 180 degree rotation about x. The
  coordinates under it are exactly the camera frame (metres), so the clip shows upright.
- per hand present in the clip, under ``camera``: a node ``right_hand`` / ``left_hand``
  (its scale is animated to 0, STEP, in the frames where the hand is absent) holding the
  joint tree ``<side>_wrist``, ``<side>_index1``, ... (MANO's 16 joints and kinematic
  tree); and at the scene's root the skinned mesh node ``<side>_hand_mesh`` (mesh
  ``<side>_hand``). glTF ignores a skinned mesh node's own transform (only its joints
  place it); three.js does not, so the mesh nodes sit at the root, untransformed, as the
  Khronos validator asks (NODE_SKINNED_MESH_NON_ROOT).
- one animation ``clip``: a keyframe per frame at ``t / fps`` seconds (rounded down to
  float32, :func:`keyframe_times`); LINEAR joint rotations, joint translations and morph
  target weights, so sampling at a frame's time gives that frame exactly. The scene's
  extras hold ``fps``, ``frames``, units, frame and hand model.

Exactness: the skinned vertices at frame t equal ``model(global_orient, hand_pose,
betas, transl).vertices`` (to float32 precision). The morph targets are the shape
directions (``beta0``..``beta9``: weight betas), followed, for models with
pose-corrective blend shapes (MANO; not the open model), by the 135 pose directions
(weight the entries of ``R_j - I``, as :func:`~fourdhands.hands.lbs.pose_features`).
Each target's weight is stored rescaled to [0, 1] over the clip (:func:`normalise_morphs`;
Blender clamps shape key values to their slider range, [0, 1] unless widened, and its
importer widens it from the first keyframe only): with ``(lo, hi)`` the target's range
in ``mesh.extras.targetRanges``, ``weight = lo + stored * (hi - lo)``; the base mesh is
``v_template + sum_k lo_k d_k`` and the stored targets ``(hi_k - lo_k) d_k``.
The inverse bind matrices are ``T(-J(beta_bind))`` with ``beta_bind`` the hand's betas
in its first frame; since the joints' rest places move with the betas, each frame's
joint transforms are ``G'_j = T(transl) G_j(theta, beta) T(J_j(beta_bind) - J_j(beta))``
(``G_j`` the kinematic chain of :func:`~fourdhands.hands.lbs.batch_rigid_transform`),
written as local rotation and translation per node.

Viewers: the skin uses as many ``JOINTS_n`` / ``WEIGHTS_n`` sets of 4 as the model's
most-influenced vertex needs, heaviest first (three.js reads only the first set, and
renormalises it). Normals are those of the bind mesh (no normal morph targets).
Blender's importer places keys at ``time * scene fps``: set the scene's frame rate to the
clip's before importing. three.js: play the action with ``LoopOnce`` (looping, the last
frame's time is the clip's end and wraps to frame 0).
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pygltflib as gl
import torch

from .errors import UserError
from .export import CAMERA_FRAME, _suffix, _writable_parent
from .geometry.rotations import matrix_to_quaternion
from .hands.joints import MANO_JOINT_NAMES
from .hands.lbs import batch_rodrigues, pose_features
from .hands.model import HandModel
from .io import atomic_path
from .sides import SIDES

__all__ = ["write_animation", "hand_tracks", "joint_animation", "skin_mesh", "normalise_morphs",
           "keyframe_times", "CAMERA_ROTATION"]

#: The ``camera`` root node's rotation (x, y, z, w): 180 degrees about x.
CAMERA_ROTATION = (1.0, 0.0, 0.0, 0.0)
#: Base colours of the hands' materials (those of the run's overlays).
COLOURS = {"right": (0.93, 0.55, 0.25), "left": (0.30, 0.60, 0.95)}
_PARAM_SIZES = {"global_orient": 3, "hand_pose": 45, "transl": 3}
_FLOAT, _UBYTE, _UINT = gl.FLOAT, gl.UNSIGNED_BYTE, gl.UNSIGNED_INT
_DTYPES = {_FLOAT: np.float32, _UBYTE: np.uint8, _UINT: np.uint32}
_TYPES = {1: gl.SCALAR, 3: gl.VEC3, 4: gl.VEC4, 16: gl.MAT4}


def _numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _param(params: Mapping, key: str, size: int, side: str, frame: int) -> np.ndarray:
    """One parameter of one hand in one frame as a flat (size,) array (betas may be shorter,
    zero-padded; betas and transl may be absent: zeros)."""
    if key not in params or params[key] is None:
        if key in ("global_orient", "hand_pose"):
            raise ValueError(f"frame {frame}, {side} hand: no {key}")
        return np.zeros(size)
    a = _numpy(params[key]).reshape(-1)
    if key == "betas" and a.size <= size:
        return np.concatenate([a, np.zeros(size - a.size)])
    if a.size != size:
        raise ValueError(f"frame {frame}, {side} hand: {key} has {a.size} values, expected {size}")
    return a


def hand_tracks(frames: Sequence[Mapping], side: str, num_betas: int = 10) -> dict | None:
    """One hand's parameters over the clip, absent frames holding the last present pose
    (frames before the first presence hold the first).

    Args:
        frames: per frame, side -> params (``global_orient (3,)``, ``hand_pose (45,)``,
            ``betas (<= num_betas,)``, ``transl (3,)``); a missing side = hand absent.
        side: ``"right"`` or ``"left"``.
        num_betas: the model's number of shape directions (betas are zero-padded to it).
    Returns:
        None if the hand is never present, else ``present (T,)`` bool, ``first`` (its first
        frame), ``global_orient (T, 3)``, ``hand_pose (T, 45)``, ``betas (T, num_betas)``,
        ``transl (T, 3)``.
    """
    present = np.array([f.get(side) is not None for f in frames], dtype=bool)
    if not present.any():
        return None
    first = int(np.argmax(present))
    source = np.maximum.accumulate(np.where(present, np.arange(len(frames)), first))
    sizes = dict(_PARAM_SIZES, betas=num_betas)
    out: dict = {"present": present, "first": first}
    for key, size in sizes.items():
        out[key] = np.stack([_param(frames[i][side], key, size, side, int(i)) for i in source])
    return out


def joint_animation(model: HandModel, tracks: Mapping) -> dict:
    """Per-frame local transforms of the 16 joint nodes and the morph target weights.

    Args:
        model: the hand model (its ``flat_hand_mean`` convention is honoured).
        tracks: from :func:`hand_tracks`.
    Returns:
        ``rotations (T, 16, 3, 3)`` (the joints' local rotations), ``translations (T, 16, 3)``
        (local; the wrist's includes ``transl``), ``bind_joints (16, 3)`` = ``J(beta_bind)``,
        ``weights (T, N)`` (betas, then pose features when the model has pose blend shapes).
    """
    shapedirs = _numpy(model.shapedirs)
    v_shaped = _numpy(model.v_template) + np.einsum("tk,vck->tvc", tracks["betas"], shapedirs)
    J = np.einsum("jv,tvc->tjc", _numpy(model.J_regressor), v_shaped)  # (T, 16, 3)
    hand_pose = tracks["hand_pose"]
    if not model.flat_hand_mean:
        hand_pose = hand_pose + _numpy(model.hands_mean)
    pose = np.concatenate([tracks["global_orient"], hand_pose], axis=1)
    rot_t = batch_rodrigues(torch.from_numpy(pose.reshape(len(pose), -1, 3)))
    R = rot_t.numpy()
    parents = [int(p) for p in model.parents.tolist()]
    J_b = J[tracks["first"]]
    Rd = np.einsum("tjab,tjb->tja", R, J_b[None] - J)
    translations = np.empty_like(J)
    translations[:, 0] = tracks["transl"] + J[:, 0] + Rd[:, 0]
    translations[:, 1:] = J[:, 1:] - J_b[parents[1:]] + Rd[:, 1:]
    weights = [tracks["betas"]]
    if np.any(_numpy(model.posedirs)):
        weights.append(pose_features(rot_t).numpy())
    return {"rotations": R, "translations": translations, "bind_joints": J_b,
            "weights": np.concatenate(weights, axis=1)}


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit area-weighted vertex normals ((0, 0, 1) where undefined)."""
    corners = vertices[faces]
    face_n = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_n)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.where(length > 1e-12, normals / np.maximum(length, 1e-12), [0.0, 0.0, 1.0])


def _skin_sets(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(S, V, 4) joint ids and (S, V, 4) weights, heaviest first, unused slots (0, 0)."""
    order = np.argsort(-weights, axis=1, kind="stable")
    w = np.take_along_axis(weights, order, axis=1)
    sets = max(1, math.ceil(int((weights != 0).sum(axis=1).max()) / 4))
    w, ids = w[:, : 4 * sets], order[:, : 4 * sets].copy()
    ids[w == 0] = 0
    V = len(weights)
    return ids.reshape(V, sets, 4).transpose(1, 0, 2), w.reshape(V, sets, 4).transpose(1, 0, 2)


def skin_mesh(model: HandModel, bind_betas: np.ndarray) -> dict:
    """The skinned mesh of one hand.

    Args:
        model: the hand model.
        bind_betas: (K,) the betas of the bind pose (the hand's first frame).
    Returns:
        ``positions (V, 3)`` (= v_template), ``normals (V, 3)`` (of the shaped bind mesh),
        ``faces (F, 3)``, ``joints (S, V, 4)`` / ``weights (S, V, 4)`` (S sets of 4
        influences), ``targets (N, V, 3)``, ``target_names`` (N), ``inverse_bind
        (16, 4, 4)``, ``default_weights (N,)`` (bind betas, zero pose features).
    """
    v_template = _numpy(model.v_template)
    shapedirs = _numpy(model.shapedirs)
    posedirs = _numpy(model.posedirs)
    faces = model.faces.cpu().numpy()
    shaped = v_template + shapedirs @ bind_betas
    J_b = _numpy(model.J_regressor) @ shaped
    targets = [shapedirs.transpose(2, 0, 1)]
    names = [f"beta{k}" for k in range(shapedirs.shape[-1])]
    if np.any(posedirs):
        targets.append(posedirs.transpose(2, 0, 1))
        names += [f"pose_{MANO_JOINT_NAMES[1 + p // 9]}_R{p % 9 // 3}{p % 3}"
                  for p in range(posedirs.shape[-1])]
    inverse_bind = np.tile(np.eye(4), (len(J_b), 1, 1))
    inverse_bind[:, :3, 3] = -J_b
    joints, weights = _skin_sets(_numpy(model.lbs_weights))
    default = np.zeros(len(names))
    default[: len(bind_betas)] = bind_betas
    return {"positions": v_template, "normals": _vertex_normals(shaped, faces), "faces": faces,
            "joints": joints, "weights": weights, "targets": np.concatenate(targets),
            "target_names": names, "inverse_bind": inverse_bind, "default_weights": default}


def normalise_morphs(mesh: Mapping, weights: np.ndarray) -> tuple[dict, np.ndarray]:
    """Rescale each morph target so that its weights over the clip lie in [0, 1], exactly
    (the same mesh for every weight).

    Args:
        mesh: from :func:`skin_mesh` (``positions``, ``targets (N, V, 3)``,
            ``default_weights (N,)``).
        weights: (T, N) the targets' weights per frame (:func:`joint_animation`).
    Returns:
        the mesh with ``positions`` + ``sum_k lo_k targets_k``, ``targets`` scaled by
        ``hi - lo``, ``default_weights`` rescaled and ``target_ranges (N, 2)`` = ``(lo, hi)``;
        and the (T, N) rescaled weights. The range holds every weight and the default
        (hi = lo + 1 where they are all equal).
    """
    every = np.concatenate([weights, mesh["default_weights"][None]])
    lo, hi = every.min(axis=0), every.max(axis=0)
    hi = np.where(hi - lo > 1e-9, hi, lo + 1.0)
    span = hi - lo
    out = dict(mesh)
    out["positions"] = mesh["positions"] + np.einsum("k,kvc->vc", lo, mesh["targets"])
    out["targets"] = mesh["targets"] * span[:, None, None]
    out["default_weights"] = (mesh["default_weights"] - lo) / span
    out["target_ranges"] = np.stack([lo, hi], axis=1)
    return out, np.clip((weights - lo) / span, 0.0, 1.0)


def _quaternions(R: np.ndarray) -> np.ndarray:
    """(T, J, 3, 3) rotations -> (T, J, 4) glTF quaternions (x, y, z, w), signs continuous
    over time (so that interpolation between keyframes takes the short way)."""
    q = matrix_to_quaternion(torch.from_numpy(R)).numpy()
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    for t in range(1, len(q)):
        flip = np.sum(q[t] * q[t - 1], axis=-1) < 0
        q[t, flip] *= -1
    return q[..., [1, 2, 3, 0]]


class _GlbBuilder:
    """A glTF document with one binary buffer, grown accessor by accessor."""

    def __init__(self):
        self.gltf = gl.GLTF2(asset=gl.Asset(version="2.0", generator="fourdhands"))
        self.data = bytearray()

    def accessor(self, array, component: int = _FLOAT, target: int | None = None,
                 bounds: bool = False) -> int:
        """Append ``array`` ((count,) or (count, n), or (count, 4, 4) matrices given
        row-major, stored column-major); returns its accessor index."""
        a = np.asarray(array)
        if a.ndim == 3:
            a = a.transpose(0, 2, 1).reshape(len(a), 16)
        a = np.ascontiguousarray(a.reshape(len(a), -1), dtype=_DTYPES[component])
        raw = a.tobytes()
        self.gltf.bufferViews.append(gl.BufferView(buffer=0, byteOffset=len(self.data),
                                                   byteLength=len(raw), target=target))
        self.data += raw + b"\0" * (-len(raw) % 4)
        acc = gl.Accessor(bufferView=len(self.gltf.bufferViews) - 1, componentType=component,
                          count=len(a), type=_TYPES[a.shape[1]])
        if bounds:
            acc.min = [float(x) for x in a.min(axis=0)]
            acc.max = [float(x) for x in a.max(axis=0)]
        self.gltf.accessors.append(acc)
        return len(self.gltf.accessors) - 1

    def node(self, **kwargs) -> int:
        self.gltf.nodes.append(gl.Node(**kwargs))
        return len(self.gltf.nodes) - 1

    def save(self, path: Path) -> None:
        self.gltf.buffers = [gl.Buffer(byteLength=len(self.data))]
        self.gltf.set_binary_blob(bytes(self.data))
        self.gltf.save_binary(str(path))


def _add_mesh(b: _GlbBuilder, side: str, mesh: Mapping) -> int:
    """The hand's mesh (with its morph targets and material); returns its mesh index."""
    attributes = {"POSITION": b.accessor(mesh["positions"], target=gl.ARRAY_BUFFER, bounds=True),
                  "NORMAL": b.accessor(mesh["normals"], target=gl.ARRAY_BUFFER)}
    for s, (ids, w) in enumerate(zip(mesh["joints"], mesh["weights"])):
        attributes[f"JOINTS_{s}"] = b.accessor(ids, _UBYTE, target=gl.ARRAY_BUFFER)
        attributes[f"WEIGHTS_{s}"] = b.accessor(w, target=gl.ARRAY_BUFFER)
    targets = [gl.Attributes(POSITION=b.accessor(d, target=gl.ARRAY_BUFFER, bounds=True))
               for d in mesh["targets"]]
    indices = b.accessor(mesh["faces"].reshape(-1), _UINT, target=gl.ELEMENT_ARRAY_BUFFER)
    b.gltf.materials.append(gl.Material(
        name=f"{side}_hand", pbrMetallicRoughness=gl.PbrMetallicRoughness(
            baseColorFactor=[*COLOURS[side], 1.0], metallicFactor=0.0, roughnessFactor=0.8)))
    primitive = gl.Primitive(attributes=gl.Attributes(**attributes), indices=indices,
                             material=len(b.gltf.materials) - 1, targets=targets)
    b.gltf.meshes.append(gl.Mesh(name=f"{side}_hand", primitives=[primitive],
                                 weights=[float(x) for x in mesh["default_weights"]],
                                 extras={"targetNames": mesh["target_names"],
                                         "targetRanges": mesh["target_ranges"].tolist()}))
    return len(b.gltf.meshes) - 1


def _add_hand(b: _GlbBuilder, side: str, model: HandModel, tracks: Mapping,
              times: int, anim: gl.Animation) -> tuple[int, int]:
    """One hand's nodes, skin, mesh and animation channels; returns the indices of its
    root node (to go under ``camera``) and of its mesh node (a scene root)."""
    motion = joint_animation(model, tracks)
    mesh, weights = normalise_morphs(skin_mesh(model, tracks["betas"][tracks["first"]]),
                                     motion["weights"])
    parents = [int(p) for p in model.parents.tolist()]
    root = b.node(name=f"{side}_hand")
    mesh_node = b.node(name=f"{side}_hand_mesh", mesh=_add_mesh(b, side, mesh))
    J_b = motion["bind_joints"]
    joints = [b.node(name=f"{side}_{MANO_JOINT_NAMES[j]}",
                     translation=[float(x) for x in J_b[j] - (J_b[parents[j]] if j else 0.0)])
              for j in range(len(parents))]
    for j, p in enumerate(parents[1:], start=1):
        b.gltf.nodes[joints[p]].children.append(joints[j])
    b.gltf.nodes[root].children = [joints[0]]
    b.gltf.skins.append(gl.Skin(name=f"{side}_hand", joints=joints, skeleton=joints[0],
                                inverseBindMatrices=b.accessor(mesh["inverse_bind"])))
    b.gltf.nodes[mesh_node].skin = len(b.gltf.skins) - 1

    def channel(node: int, path: str, values, interpolation: str = gl.ANIM_LINEAR) -> None:
        anim.samplers.append(gl.AnimationSampler(input=times, output=b.accessor(values),
                                                 interpolation=interpolation))
        anim.channels.append(gl.AnimationChannel(
            sampler=len(anim.samplers) - 1, target=gl.AnimationChannelTarget(node=node, path=path)))

    quats = _quaternions(motion["rotations"])
    for j, node in enumerate(joints):
        channel(node, "rotation", quats[:, j])
        channel(node, "translation", motion["translations"][:, j])
    channel(mesh_node, "weights", weights.reshape(-1))
    scale = np.repeat(tracks["present"].astype(np.float64)[:, None], 3, axis=1)
    channel(root, "scale", scale, gl.ANIM_STEP)
    return root, mesh_node


def keyframe_times(num_frames: int, fps: float) -> np.ndarray:
    """(T,) float32 keyframe times: ``t / fps`` rounded down to float32, so that a viewer
    sampling at frame t's exact time never falls before keyframe t (a STEP key, such as a
    hand's hiding, would otherwise show the frame before; LINEAR keys move by < 1e-7 of a
    frame's change)."""
    exact = np.arange(num_frames) / float(fps)
    times = exact.astype(np.float32)
    return np.where(times > exact, np.nextafter(times, np.float32(-np.inf)), times)


def _check_clip(path: Path, frames, fps: float) -> None:
    if len(frames) == 0:
        raise UserError(f"{path}: the clip has no frames to animate")
    if not (isinstance(fps, numbers.Real) and math.isfinite(fps) and fps > 0):
        raise UserError(f"{path}: frame rate must be a positive number of frames per second, got {fps!r}")
    for i, frame in enumerate(frames):
        unknown = set(frame) - set(SIDES)
        if unknown:
            raise ValueError(f"frame {i}: unknown hand sides {sorted(unknown)} (use {SIDES})")


def write_animation(path: str | os.PathLike, frames: Sequence[Mapping[str, Mapping]],
                    models: Mapping[str, HandModel], fps: float) -> None:
    """Write a clip as one animated, skinned ``.glb`` (see the module docstring), atomically.

    Args:
        path: the ``.glb`` file to write (its folder must exist).
        frames: per frame of the clip, side (``"right"``, ``"left"``) -> params
            ``global_orient (3,)``, ``hand_pose (45,)`` (the model's ``flat_hand_mean``
            convention, True by default), ``betas (10,)``, ``transl (3,)`` (camera frame,
            metres; NumPy or torch). A side missing in a frame: that hand is hidden there
            (scale 0) and keeps its last pose. A hand never present is left out.
        models: side -> the :class:`~fourdhands.hands.model.HandModel` the params are for.
        fps: frames per second; frame t is at ``t / fps`` seconds.
    Raises:
        UserError: wrong suffix, a missing or unwritable folder, an empty clip, no hand
            present in any frame, a bad fps. ValueError: malformed params, no model for a
            present hand.
    """
    path, frames = Path(path), list(frames)
    _suffix(path, (".glb",), "an animation")
    _check_clip(path, frames, fps)
    _writable_parent(path)
    b = _GlbBuilder()
    times = b.accessor(keyframe_times(len(frames), fps), bounds=True)
    anim = gl.Animation(name="clip")
    camera = b.node(name="camera", rotation=list(CAMERA_ROTATION))
    hands, mesh_nodes = {}, []
    for side in SIDES:
        if side not in models and any(f.get(side) is not None for f in frames):
            raise ValueError(f"the {side} hand is present in the clip but models has no {side} model")
        tracks = hand_tracks(frames, side, int(models[side].shapedirs.shape[-1])) if side in models else None
        if tracks is not None:
            hands[side] = models[side].name
            root, mesh_node = _add_hand(b, side, models[side], tracks, times, anim)
            b.gltf.nodes[camera].children.append(root)
            mesh_nodes.append(mesh_node)
    if not hands:
        raise UserError(f"{path}: no hand is present in any of the clip's {len(frames)} frames")
    b.gltf.animations = [anim]
    b.gltf.scenes = [gl.Scene(name="clip", nodes=[camera, *mesh_nodes], extras={
        "units": "metres", "frame": CAMERA_FRAME, "fps": float(fps), "frames": len(frames),
        "hand_model": hands, "flat_hand_mean": {s: models[s].flat_hand_mean for s in hands}})]
    b.gltf.scene = 0
    with atomic_path(path) as tmp:
        b.save(tmp)
