"""The README's pictures of the open hand model: its named poses, and two interlocked
hands from the camera, the side and the top.

    python docs/hand_pictures.py docs/images
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from fourdhands.geometry.rotations import axis_angle_to_matrix
from fourdhands.hands import load_hand_model, poses
from fourdhands.hands.placement import transform_params
from fourdhands.io import atomic_path
from fourdhands.outputs import COLOURS
from fourdhands.render.raster import Mesh
from fourdhands.render.views import framed_view, view_strip

# The scene seen from the right hand's back, a little from the thumb side, 45 cm away.
CAMERA_ROTATION = (0.65, 0.35, -0.06)
CAMERA_DISTANCE = 0.45


def interlocked_meshes(models) -> list[Mesh]:
    """Both hands of :func:`poses.interlocked`, centred on the optical axis."""
    rotation = axis_angle_to_matrix(torch.tensor(CAMERA_ROTATION, dtype=torch.float64))
    outputs = {}
    for side, p in poses.interlocked().items():
        model = models[side]
        orient, transl = transform_params(torch.as_tensor(p["global_orient"])[None], torch.as_tensor(p["transl"])[None],
                                          model.rest_joints()[:, 0], rotation, torch.zeros(3, dtype=torch.float64))
        outputs[side] = model(global_orient=orient, hand_pose=torch.as_tensor(p["hand_pose"])[None], transl=transl)
    centre = torch.cat([o.vertices[0] for o in outputs.values()]).mean(0)
    shift = torch.tensor([0.0, 0.0, CAMERA_DISTANCE], dtype=torch.float64) - centre
    return [Mesh((o.vertices[0] + shift).numpy(), o.faces.numpy(), COLOURS[side]) for side, o in outputs.items()]


def gallery(model, size=(300, 300)) -> np.ndarray:
    """The named poses side by side, each labelled, `(H, n*W, 3)` uint8."""
    tilt = axis_angle_to_matrix(torch.tensor([2.0, 0.0, 0.0], dtype=torch.float64))
    tiles = []
    for name, make in poses.NAMED.items():
        out = model(global_orient=torch.zeros(1, 3, dtype=torch.float64), hand_pose=torch.as_tensor(make())[None])
        tile = Image.fromarray(framed_view([Mesh((out.vertices[0] @ tilt.T).numpy(), out.faces.numpy(),
                                                 COLOURS["right"])], "front", size))
        ImageDraw.Draw(tile).text((10, 8), name, fill=(40, 40, 40))
        tiles.append(np.asarray(tile))
    return np.concatenate(tiles, axis=1)


def main(folder: str) -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    models = {side: load_hand_model("open", side, dtype=torch.float64) for side in ("right", "left")}
    for name, image in (("poses.png", gallery(models["right"])),
                        ("interlocked.png", view_strip(interlocked_meshes(models)))):
        with atomic_path(out / name) as tmp:
            Image.fromarray(image).save(tmp, format="PNG")
        print(out / name)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/images")
