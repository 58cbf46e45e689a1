"""The overlay a user looks at: meshes blended over the frame in their own colours."""

import numpy as np
import torch

from fourdhands.hands import load_hand_model
from fourdhands.outputs import COLOURS, RunOutputs
from fourdhands.pipeline import FrameResult, HandResult
from fourdhands.render.raster import Mesh
from fourdhands.render.renderer import Renderer


def test_overlay_blends_the_lit_mesh_over_the_frame(tmp_path):
    model = load_hand_model("open", "right")
    out = model(global_orient=torch.tensor([[np.pi / 2, 0.0, 0.0]]), transl=torch.tensor([[0.0, 0.0, 0.5]]))
    verts = out.vertices[0].double().numpy()
    K = np.array([[300.0, 0, 80], [0, 300.0, 60], [0, 0, 1]])
    hand = HandResult(np.zeros(3), np.zeros(45), np.zeros(10), np.zeros(3), out.keypoints[0].numpy(),
                      np.zeros((21, 2)), verts, np.array([150.0, 112, 6, 6]), np.array([150.0, 112, 8, 8]), 1.0)
    result = FrameResult(0, (160, 120), K, {"right": hand})
    frame = np.full((120, 160, 3), 200, np.uint8)
    writer = RunOutputs(tmp_path, {"right": model.faces.numpy(), "left": model.faces.numpy()}, "open")
    overlay = writer._overlay(result, frame)
    drawn = Renderer((120, 160)).render([Mesh(verts, model.faces.numpy(), COLOURS["right"])], K, background=frame)
    on = drawn.mesh_id >= 0
    on[100:, 140:] = False  # the (corner) box and its label
    expected = (0.35 * 200 + 0.65 * drawn.image[on].astype(float))
    assert on.sum() > 200
    assert np.abs(overlay[on].astype(float) - expected).max() <= 1.0
    # a lit orange hand stays orange, not wrapped-around dark
    assert overlay[on].mean(0)[0] > 150


def test_the_background_writer_stores_in_order_without_making_the_caller_wait():
    import threading

    from fourdhands.outputs import BackgroundWriter

    release, stored = threading.Event(), []

    class Slow:
        def pictures(self, result, image):
            return ("drawn", image)  # the caller's thread draws

        def store(self, result, name, time_s, pictures):
            release.wait(10)
            stored.append((name, pictures))

    sink = BackgroundWriter(Slow(), depth=4)
    for i in range(3):  # the worker is stuck on the first frame: the queue takes the rest
        sink.write(None, f"f{i}", float(i), i)
    assert stored == []  # nothing waited for the (blocked) writing
    release.set()
    sink.close()
    assert stored == [("f0", ("drawn", 0)), ("f1", ("drawn", 1)), ("f2", ("drawn", 2))]
    sink.close()  # again: nothing


def test_a_writer_error_comes_back_to_the_caller_and_later_frames_are_dropped():
    import pytest

    from fourdhands.errors import UserError
    from fourdhands.outputs import BackgroundWriter

    stored = []

    class Full:
        def pictures(self, result, image):
            return None

        def store(self, result, name, time_s, pictures):
            if name == "f1":
                raise UserError("out/f1.npz: no space left on device")
            stored.append(name)

    sink = BackgroundWriter(Full())
    for name in ("f0", "f1", "f2"):
        sink.write(None, name, 0.0, None)
    with pytest.raises(UserError, match="no space left"):
        sink.close()
    assert stored == ["f0"]
    with pytest.raises(UserError, match="no space left"):
        sink.write(None, "f3", 0.0, None)
