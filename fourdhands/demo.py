"""The main job on embedded defaults: two open-model hands in an interaction, written out.

Today it builds the open hand model, poses both hands with interlocked fingers in front
of a camera, and writes into a folder: a mesh file per hand (OBJ) and both together
(PLY with vertex colours, GLB with a node per hand), the parameters (JSON and NPZ, with units, frame and
``flat_hand_mean`` inside), and pictures (camera, side and top views; a gallery of
named poses).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .geometry.rotations import axis_angle_to_matrix
from .hands import load_hand_model
from .hands import poses
from .hands.placement import transform_params
from .export import params_record, write_meshes, write_params
from .io import atomic_path, ensure_output_dir
from .render.raster import Mesh
from .render.views import framed_view, view_strip

HAND_COLORS = {"right": (0.93, 0.62, 0.48), "left": (0.45, 0.62, 0.90)}
# The scene seen from the right hand's back, a little from the thumb side, centred 45 cm in front of the camera.
_CAMERA_ROTATION = (0.65, 0.35, -0.06)  # axis-angle applied to the scene
_CAMERA_DISTANCE = 0.45


def _place(models, scene, rotation, translation):
    """Hand outputs (float64) for the scene moved by ``rotation``, ``translation``."""
    placed, outputs = {}, {}
    for side, p in scene.items():
        model = models[side]
        orient = torch.as_tensor(p["global_orient"])[None]
        transl = torch.as_tensor(p["transl"])[None]
        root = model.rest_joints()[:, 0]
        orient, transl = transform_params(orient, transl, root, rotation, translation)
        hand_pose = torch.as_tensor(p["hand_pose"])[None]
        outputs[side] = model(global_orient=orient, hand_pose=hand_pose, transl=transl)
        placed[side] = {"global_orient": orient[0], "hand_pose": hand_pose[0],
                        "betas": torch.zeros(10, dtype=torch.float64), "transl": transl[0]}
    return placed, outputs


def _gallery(model, size=(300, 300)) -> np.ndarray:
    """The named poses side by side, each labelled, `(H, n*W, 3)` uint8."""
    tilt = axis_angle_to_matrix(torch.tensor([2.0, 0.0, 0.0], dtype=torch.float64))
    tiles = []
    for name, make in poses.NAMED.items():
        out = model(global_orient=torch.zeros(1, 3, dtype=torch.float64),
                    hand_pose=torch.as_tensor(make())[None])
        v = (out.vertices[0] @ tilt.T).numpy()
        tile = framed_view([Mesh(v, out.faces.numpy(), HAND_COLORS["right"])], "front", size)
        img = Image.fromarray(tile)
        ImageDraw.Draw(img).text((10, 8), name, fill=(40, 40, 40))
        tiles.append(np.asarray(img))
    return np.concatenate(tiles, axis=1)


def _save_png(path: Path, image: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def run_demo(out_dir: str | Path, hand_model: str = "open") -> dict:
    """Write the demo's files into ``out_dir``; return a summary (paths, timings)."""
    t0 = time.perf_counter()
    out = ensure_output_dir(out_dir)
    models = {side: load_hand_model(hand_model, side, dtype=torch.float64)
              for side in ("right", "left")}
    rotation = axis_angle_to_matrix(torch.tensor(_CAMERA_ROTATION, dtype=torch.float64))
    # centre the pair of hands on the optical axis
    _, rest = _place(models, poses.interlocked(), rotation, torch.zeros(3, dtype=torch.float64))
    centre = torch.cat([rest[s].vertices[0] for s in rest]).mean(0)
    translation = torch.tensor([0.0, 0.0, _CAMERA_DISTANCE], dtype=torch.float64) - centre
    params, outputs = _place(models, poses.interlocked(), rotation, translation)
    t_model = time.perf_counter() - t0

    meshes, written = [], []
    for side, o in outputs.items():
        v, f = o.vertices[0].numpy(), o.faces.numpy()
        meshes.append(Mesh(v, f, HAND_COLORS[side]))
        write_meshes(out / f"{side}_hand.obj", {side: (v, f)})
        written.append(f"{side}_hand.obj")
    both = {f"{side}_hand": (m.vertices, m.faces, m.color) for side, m in zip(outputs, meshes)}
    for name in ("hands.ply", "hands.glb"):
        write_meshes(out / name, both)
        written.append(name)

    v_rel = (outputs["left"].keypoints[0, 0] - outputs["right"].keypoints[0, 0]).numpy()
    hands = {side: {**{k: t.numpy() for k, t in params[side].items()},
                    "keypoints_3d": outputs[side].keypoints[0].numpy(),
                    "vertices": outputs[side].vertices[0].numpy()}
             for side in ("right", "left")}
    record = params_record(hands, hand_model=hand_model, flat_hand_mean=True,
                           extra={"v_left_minus_right_wrist": v_rel})
    for name in ("params.json", "params.npz"):
        write_params(out / name, record)
        written.append(name)

    _save_png(out / "hands.png", view_strip(meshes))
    _save_png(out / "gallery.png", _gallery(models["right"]))
    written += ["hands.png", "gallery.png"]
    return {"out_dir": str(out), "files": written, "hand_model": hand_model,
            "seconds_model": round(t_model, 3), "seconds_total": round(time.perf_counter() - t0, 3)}
