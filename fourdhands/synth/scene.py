"""One synthetic sequence: motion, camera, rendering and its ground truth.

A sequence is fully determined by ``(seed, split, index)``: its random streams are
``numpy.random.SeedSequence(seed, spawn_key=(crc32(split), index, stream))``, one
stream per concern (camera, motion, occluders, look, effects), so that changing how one
concern draws does not shift another's draws.

Ground truth (hand slot 0 = right, 1 = left; camera frame, OpenCV axes, metres; pixel
coordinates continuous, pixel (i, j) centred at (j + 0.5, i + 0.5)):

- ``present (F, 2)``: the hand is in the scene (its parameters are ground truth), whether
  or not it is seen. A present hand may be out of the image or hidden.
- ``visible (F, 2, 21)``: the joint's projection lies inside the image AND no other
  surface (the other hand, an object) at that pixel of the z-buffer is more than
  :data:`VISIBILITY_TOLERANCE` in front of the joint. Joints lie inside the hand's own
  flesh, so the hand's own surface, always in front of them, never hides them
  (self-occlusion does not count, as in InterHand2.6M); the tolerance lets skin that
  merely touches a joint's skin, or presses into it, leave it visible.
- ``boxes (F, 2, 4)``: ``[cx, cy, sx, sy]``, the tight box of the hand as seen: the
  smallest box holding every pixel (a unit square) where the hand is the nearest surface
  and every visible keypoint; zeros when the hand shows no pixel and no visible joint.
- ``keypoints_2d``: the projection of ``keypoints_3d`` with ``K`` (also when hidden).
- ``v (F, 3)``: left wrist - right wrist when both are present.
- Absent hands: ``present`` False, every array of theirs zeros (``visible`` False);
  ``v`` is zeros when either hand is absent.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import trimesh
from scipy.spatial.transform import Rotation

from ..geometry.inside import boundary_loops, close_holes
from ..hands import load_hand_model
from ..render.renderer import Mesh, Renderer
from ..sides import SIDES
from . import appearance
from ..hands.contact import separate
from .forearm import REST_AXIS, forearm_mesh, sample_forearm_look, upper_arm_points, wrist_rotation, wrist_section
from .motion import HandRest, Motion, limit_elbow, project, sample_motion, upper_arm_direction
from .occluders import plan_occluders
from .skin import skin_albedo, skin_layout

VISIBILITY_TOLERANCE = 0.01  # m
_STREAMS = ("camera", "motion", "occluders", "look", "effects", "arm")
_SUBDIVISION = {"sphere": 2, "sections": 20}  # occluder tessellation: smooth at 640 px


def stream(seed: int, split: str, index: int, name: str) -> np.random.Generator:
    """The random stream ``name`` of sequence ``index`` of ``split`` under ``seed``."""
    key = (zlib.crc32(split.encode()), int(index), _STREAMS.index(name))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=key)))


def sample_camera(rng: np.random.Generator, image_size: tuple[int, int]) -> np.ndarray:
    """Intrinsics `(3, 3)`: a horizontal field of view of 40-75 degrees, square pixels,
    the principal point within 5 % of the image centre."""
    w, h = image_size
    focal = w / (2 * np.tan(np.radians(rng.uniform(40.0, 75.0)) / 2))
    cx, cy = np.array([w, h]) * (0.5 + np.clip(rng.normal(0.0, 0.02, 2), -0.05, 0.05))
    return np.array([[focal, 0.0, cx], [0.0, focal, cy], [0.0, 0.0, 1.0]])


def visibility(keypoints_2d: np.ndarray, depth_of_joint: np.ndarray, mesh_id: np.ndarray,
               depth: np.ndarray, own: int, tolerance: float = VISIBILITY_TOLERANCE) -> np.ndarray:
    """Which joints are visible (the rule of the module docstring): `(J,)` bool.

    Args:
        keypoints_2d: `(J, 2)` pixels; depth_of_joint: `(J,)` their camera z.
        mesh_id, depth: `(H, W)` the z-buffer (index of the nearest mesh, -1 if none; its z).
        own: the index of the joints' hand among the meshes.
    """
    h, w = mesh_id.shape
    col = np.floor(keypoints_2d[:, 0]).astype(np.int64)
    row = np.floor(keypoints_2d[:, 1]).astype(np.int64)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    r, c = np.clip(row, 0, h - 1), np.clip(col, 0, w - 1)
    other = (mesh_id[r, c] != own) & (mesh_id[r, c] >= 0)
    hidden = other & (depth[r, c] < depth_of_joint - tolerance)
    return inside & ~hidden


def seen_box(mask: np.ndarray, keypoints_2d: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """``[cx, cy, sx, sy]`` of the pixels in ``mask (H, W)`` (as unit squares) and the
    ``visible (J,)`` points of ``keypoints_2d (J, 2)``; zeros if there are none: `(4,)`."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    corners = [keypoints_2d[visible]]
    if len(rows):
        corners.append(np.array([[cols[0], rows[0]], [cols[-1] + 1.0, rows[-1] + 1.0]]))
    points = np.concatenate(corners)
    if len(points) == 0:
        return np.zeros(4)
    lo, hi = points.min(0), points.max(0)
    return np.r_[(lo + hi) / 2, hi - lo]


def _primitive(kind: str, size: np.ndarray) -> trimesh.Trimesh:
    if kind == "box":
        return trimesh.creation.box(extents=size)
    if kind == "sphere":
        return trimesh.creation.icosphere(subdivisions=_SUBDIVISION["sphere"], radius=size[0])
    if kind == "cylinder":
        return trimesh.creation.cylinder(radius=size[0], height=size[1], sections=_SUBDIVISION["sections"])
    return trimesh.creation.capsule(height=size[1], radius=size[0], count=[_SUBDIVISION["sections"]] * 2)


@dataclass
class Sequence:
    """A generated sequence: JPEG frames, ground truth (see the module docstring for
    the arrays) and a JSON-ready description."""

    frames: list[bytes]
    gt: dict[str, np.ndarray]
    meta: dict


class Synthesizer:
    """Makes sequences of one image size with one hand model and renderer.

    Args:
        image_size: ``(W, H)`` pixels.
        hand_model: ``"open"`` or a MANO file / folder (see ``load_hand_model``).
        backgrounds: user photos to draw backgrounds from (None: procedural only).
        backend: renderer backend (``"auto"``, ``"gl"``, ``"numpy"``).
    """

    def __init__(self, image_size: tuple[int, int], hand_model: str = "open",
                 backgrounds: list[Path] | None = None, backend: str = "auto"):
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.hand_model = str(hand_model)
        self.photos = list(backgrounds or [])
        # float32: the ground truth is stored in float32, and LBS runs twice as fast
        self.models = [load_hand_model(hand_model, side) for side in SIDES]
        self.faces = [m.faces.numpy() for m in self.models]
        self.closures = [boundary_loops(f) for f in self.faces]  # MANO's wrist holes; none in the open model
        self.renderer = Renderer((self.image_size[1], self.image_size[0]), backend=backend)
        with torch.no_grad():
            roots = torch.cat([m.rest_joints()[:, 0] for m in self.models])
            keypoints = torch.stack([m().keypoints[0] for m in self.models]) - roots[:, None]
        self.rest = HandRest(roots.numpy().astype(float), keypoints.numpy().astype(float))
        self.skins = [skin_layout(m) for m in self.models]
        self.wrists = [wrist_section(m.v_template.numpy().astype(float), r, side)
                       for m, r, side in zip(self.models, self.rest.root, SIDES)]

    @property
    def num_vertices(self) -> int:
        return self.models[0].num_vertices

    # ------------------------------------------------------------------ posing
    def _pose(self, m: Motion) -> dict[str, np.ndarray]:
        """Hand parameters and posed geometry `(F, 2, ...)`, zeros for absent hands."""
        frames = m.wrist.shape[0]
        out = {"global_orient": m.orient.copy(), "hand_pose": m.hand_pose,
               "betas": np.repeat(m.betas[None], frames, 0), "transl": np.zeros((frames, 2, 3)),
               "vertices": np.zeros((frames, 2, self.num_vertices, 3)), "keypoints_3d": np.zeros((frames, 2, 21, 3))}
        for slot in np.flatnonzero(m.present):
            model = self.models[slot]
            betas = torch.as_tensor(out["betas"][:, slot])
            with torch.no_grad():
                root = model.rest_joints(betas[:1])[:, 0].numpy()  # one shape per sequence
                # the wrist joint sits at J0 + transl whatever the orientation
                out["transl"][:, slot] = m.wrist[:, slot] - root
                posed = model(global_orient=torch.as_tensor(m.orient[:, slot]),
                              hand_pose=torch.as_tensor(out["hand_pose"][:, slot]),
                              betas=betas, transl=torch.as_tensor(out["transl"][:, slot]))
            out["vertices"][:, slot] = posed.vertices.numpy()
            out["keypoints_3d"][:, slot] = posed.keypoints.numpy()
        if m.contact_tolerance is not None and m.present.all():
            closed = [close_holes(torch.as_tensor(out["vertices"][:, s]), self.faces[s], self.closures[s])
                      for s in range(2)]
            shift = separate(np.stack([v.numpy() for v, _ in closed], 1), out["keypoints_3d"],
                             [f.numpy() for _, f in closed], m.contact_tolerance)
            out["transl"] += shift
            out["vertices"] += shift[:, :, None]
            out["keypoints_3d"] += shift[:, :, None]
        return out

    # ------------------------------------------------------------------ one sequence
    def sequence(self, split: str, seed: int, index: int, frames: int) -> Sequence:
        """Generate sequence ``index`` of ``split`` under ``seed``, ``frames`` long."""
        size = self.image_size
        K = sample_camera(stream(seed, split, index, "camera"), size)
        m, decor = sample_motion(stream(seed, split, index, "motion"), split, frames, K, size, self.rest)
        hands = self._pose(m)
        occluders = plan_occluders(stream(seed, split, index, "occluders"), m, hands["keypoints_3d"], K, size, decor)
        look_rng = stream(seed, split, index, "look")
        look = appearance.sample_look(look_rng, size, self.photos)
        occluder_colors = [appearance.random_color(look_rng) for _ in occluders]
        shapes = [_primitive(o.kind, o.size) for o in occluders]
        slots = np.flatnonzero(m.present)
        albedo = {s: skin_albedo(self.skins[s], look.skin[s], look_rng) for s in slots}
        arm_looks = {s: sample_forearm_look(look_rng, appearance.random_color(look_rng)) for s in slots}
        uppers = _upper_arms(stream(seed, split, index, "arm"), m, hands, K, size)
        arms = {s: forearm_mesh(self.wrists[s], SIDES[s], m.wrist_bend[s], arm_looks[s], look.skin[s], uppers[s],
                                scale=_arm_scale(m, s)) for s in slots}

        keypoints_2d = np.zeros((frames, 2, 21, 2))
        keypoints_2d[:, slots] = project(hands["keypoints_3d"][:, slots], K)
        visible = np.zeros((frames, 2, 21), bool)
        boxes = np.zeros((frames, 2, 4))
        effects = stream(seed, split, index, "effects")
        jpegs = []
        for t in range(frames):
            meshes = [Mesh(self.skins[s].subdivide(hands["vertices"][t, s]), self.skins[s].faces, albedo[s])
                      for s in slots]
            for s in slots:  # forearms after the hands: mesh i < len(slots) is hand slots[i]
                turn = Rotation.from_rotvec(hands["global_orient"][t, s])
                arm_v, arm_f, arm_rgb = arms[s]
                meshes.append(Mesh(turn.apply(arm_v) + hands["keypoints_3d"][t, s, 0], arm_f, arm_rgb))
            for o, shape, color in zip(occluders, shapes, occluder_colors):
                placed = Rotation.from_rotvec(o.rotation[t]).apply(shape.vertices) + o.centre[t]
                meshes.append(Mesh(placed, shape.faces, tuple(color)))
            result = self.renderer.render(meshes, K, background=look.background, light=look.lighting)
            image = result.image
            for i, s in enumerate(slots):
                visible[t, s] = visibility(keypoints_2d[t, s], hands["keypoints_3d"][t, s, :, 2],
                                           result.mesh_id, result.depth, i)
                boxes[t, s] = seen_box(result.mesh_id == i, keypoints_2d[t, s], visible[t, s])
            if effects.uniform() < look.blur_chance:
                image = self._blur(image, result.mesh_id, t, keypoints_2d, slots, occluders, K, look.exposure)
            image = appearance.sensor_noise(effects, image, look.read_noise, look.shot_noise)
            jpegs.append(appearance.encode_jpeg(image, look.jpeg_quality))

        gt = _ground_truth(m, hands, keypoints_2d, visible, boxes, K, size)
        meta = {
            "split": split, "seed": int(seed), "index": int(index), "scenario": m.scenario,
            "frames": int(frames), "image_size": list(size), "hand_model": self.hand_model,
            "flat_hand_mean": True, "backend": self.renderer.backend,
            **_scene_meta(m, arm_looks, uppers, occluders, occluder_colors, look),
        }
        return Sequence(jpegs, gt, meta)

    @staticmethod
    def _blur(image, mesh_id, t, keypoints_2d, slots, occluders, K, exposure):
        """Motion blur of each hand and object along its image motion over the exposure."""
        frames = keypoints_2d.shape[0]
        before, after = max(t - 1, 0), min(t + 1, frames - 1)
        span = max(after - before, 1)
        moving = [keypoints_2d[:, s].mean(1) for s in slots] * 2  # hands, then their forearms
        moving += [project(o.centre, K) for o in occluders]
        for i, track in enumerate(moving):
            shift = (track[after] - track[before]) / span * exposure
            image = appearance.motion_blur(image, mesh_id == i, shift)
        return image


def _ground_truth(m, hands: dict, keypoints_2d, visible, boxes, K, size) -> dict:
    """A sequence's ``gt.npz`` arrays (see :mod:`fourdhands.synth.shards`)."""
    frames = len(keypoints_2d)
    wrists = hands["keypoints_3d"][:, :, 0]
    return {
        "present": np.repeat(m.present[None], frames, 0),
        **{k: hands[k].astype(np.float32)
           for k in ("global_orient", "hand_pose", "betas", "transl", "keypoints_3d", "vertices")},
        "keypoints_2d": keypoints_2d.astype(np.float32),
        "visible": visible,
        "boxes": boxes.astype(np.float32),
        "v": ((wrists[:, 1] - wrists[:, 0]) * m.present.all()).astype(np.float32),
        "K": np.repeat(K[None], frames, 0).astype(np.float32),
        "image_size": np.array(size, np.int32),
    }


def _arm_scale(m, s: int) -> float:
    """The arm's size for hand ``s``: as the hand's overall size (6 % per unit of beta_0)."""
    return 1.0 + 0.06 * float(m.betas[s, 0])


_ARM_DRAWS = 8  # upper-arm directions drawn per hand from the viewpoint's prior, and as many anyhow


def _upper_arms(rng: np.random.Generator, m, hands: dict, K: np.ndarray, size) -> dict[int, np.ndarray]:
    """Each present hand's elbow -> shoulder direction `(3,)` in its rest frame, drawn in
    the camera frame for the hand's first-frame forearm. No body is drawn for a shoulder
    to join, so of :data:`_ARM_DRAWS` draws from the viewpoint's prior
    (:func:`~fourdhands.synth.motion.upper_arm_direction`), then as many in any direction
    the elbow allows, the one kept has its shoulder end in view (in front of the camera,
    within a cap's radius of the image) in the fewest frames, each frame in which the upper
    arm passes within 15 cm of the camera in view counting 5; the prior's first at a tie."""
    out = {}
    for s in np.flatnonzero(m.present):
        side, bend = SIDES[s], m.wrist_bend[s]
        turns = Rotation.from_rotvec(hands["global_orient"][:, s])
        forearm = (turns[0] * wrist_rotation(side, bend).inv()).apply(REST_AXIS[side])
        best, fewest = None, None
        drawn = [upper_arm_direction(rng, s, m.viewpoint, forearm) for _ in range(_ARM_DRAWS)]
        drawn += [limit_elbow(rng.normal(size=3), forearm) for _ in range(_ARM_DRAWS)]
        for camera_upper in drawn:
            upper = turns[0].inv().apply(camera_upper)
            points = upper_arm_points(side, bend, upper, _arm_scale(m, s))
            placed = np.stack([turns.apply(p) for p in points], 1) + hands["keypoints_3d"][:, s, :1]  # (F, 4, 3)
            inside = _in_view(placed.reshape(-1, 3), K, size, 0.06).reshape(-1, 4)
            close = inside & (placed[..., 2] < 0.15)
            seen = int(inside[:, -1].sum()) + 5 * int(close.any(1).sum())
            if fewest is None or seen < fewest:
                best, fewest = upper, seen
        out[s] = best
    return out


def _in_view(points: np.ndarray, K: np.ndarray, size, radius: float) -> np.ndarray:
    """`(N,)` whether a ball of ``radius`` (m) at each of ``points (N, 3)`` (camera frame)
    reaches into the image, in front of the camera."""
    z = points[:, 2]
    ahead = z > 0.05
    uv = project(np.where(ahead[:, None], points, [0.0, 0.0, 1.0]), K)
    reach = K[0, 0] * radius / np.maximum(z, 0.05)
    inside = ((uv > -reach[:, None]) & (uv < np.asarray(size, float) + reach[:, None])).all(1)
    return ahead & inside


def _scene_meta(m, arm_looks: dict, uppers: dict, occluders, occluder_colors, look) -> dict:
    """What ``meta.json`` says of a sequence's scene: hands, arms, objects, look."""
    return {
        "present": [bool(p) for p in m.present],
        "hidden": m.hide,
        "viewpoint": m.viewpoint,
        "wrist_bend_deg": np.round(np.degrees(m.wrist_bend), 2).tolist(),
        "sleeve_cuff_m": [None if not m.present[s] else arm_looks[s].cuff for s in range(2)],
        "upper_arm_rest": [uppers[s].tolist() if s in uppers else None for s in range(2)],
        "occluders": [{"kind": o.kind, "size_m": np.round(o.size, 4).tolist(), "rgb": np.round(c, 4).tolist()}
                      for o, c in zip(occluders, occluder_colors)],
        **look.meta(),
    }
