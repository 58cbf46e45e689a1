"""Windows from real synthetic shards: the schema, crops that hold their hands, and a
flip that is exactly the mirror image with the hands swapped."""

import numpy as np
import pytest
import torch

from fourdhands.data import HandWindows, SampleConfig
from fourdhands.data.augment import crop_affines
from fourdhands.synth.generate import generate
from fourdhands.synth.shards import SyntheticSequences


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds") / "interacting"
    generate(root, sequences=2, frames=8, seed=3, split="interacting", image_size=(160, 120), progress=False)
    return SyntheticSequences(root)


def plain(**kw):
    return SampleConfig(crop_hw=(64, 48), seq_len=3, gap=2, **kw)


def test_sample_schema(source):
    ds = HandWindows(source, plain(augment=True), seed=1)
    assert len(ds) == 16
    s = ds[5]
    shapes = {"crops": (3, 2, 3, 64, 48), "boxes": (3, 2, 4), "present": (3, 2), "global_orient": (3, 2, 3),
              "hand_pose": (3, 2, 45), "betas": (3, 2, 10), "transl": (3, 2, 3), "keypoints_3d": (3, 2, 21, 3),
              "keypoints_2d": (3, 2, 21, 2), "visible": (3, 2, 21), "v": (3, 3), "K": (3, 3), "image_size": (2,),
              "frames": (3,)}
    for k, shape in shapes.items():
        assert tuple(s[k].shape) == shape, k
    assert s["frames"].tolist() == [3, 5, 7] and int(s["sequence"]) == 0
    assert s["crops"].dtype == torch.float32 and s["present"].dtype == torch.bool
    # same draw, same sample; another draw, another augmentation
    torch.testing.assert_close(ds.sample(5, 0)["crops"], ds.sample(5, 0)["crops"])
    assert not torch.equal(ds.sample(5, 0)["crops"], ds.sample(5, 1)["crops"])


def test_crop_boxes_hold_the_visible_keypoints(source):
    ds = HandWindows(source, plain(augment=False))
    for i in range(0, len(ds), 3):
        s = ds[i]
        A = crop_affines(s["boxes"].double().numpy(), np.eye(3), (64, 48))
        kp = s["keypoints_2d"].double() @ A[..., :2].transpose(-1, -2) + A[..., None, :, 2]
        vis = s["visible"] & s["present"][..., None]
        inside = (kp[..., 0] >= 0) & (kp[..., 0] <= 48) & (kp[..., 1] >= 0) & (kp[..., 1] <= 64)
        assert inside[vis].all()


def test_flip_is_the_mirror_image_with_hands_swapped(source):
    base = HandWindows(source, plain(augment=False))
    flip_only = dict(augment=True, flip_prob=1.0, rotation_deg=0.0, scale_jitter=0.0, shift_jitter=0.0,
                     color_jitter=0.0, occlusion_prob=0.0)
    flipped = HandWindows(source, plain(**flip_only))
    a, b = base[6], flipped[6]
    w = float(a["image_size"][0])
    assert torch.equal(b["present"], a["present"].flip(-1))
    torch.testing.assert_close(b["keypoints_2d"][..., 0], w - a["keypoints_2d"].flip(1)[..., 0], atol=1e-3, rtol=0)
    torch.testing.assert_close(b["keypoints_3d"][..., 0], -a["keypoints_3d"].flip(1)[..., 0], atol=1e-6, rtol=0)
    # the new right hand's crop is the old left hand's crop, mirrored
    both = a["present"] & b["present"]
    torch.testing.assert_close(b["crops"][:, 0][both[:, 0]], a["crops"][:, 1].flip(-1)[both[:, 0]], atol=2e-2, rtol=0)
