"""The FreiHAND reader on a fixture written here in the dataset's published layout
(``training_{K,xyz,mano}.json``, ``training/rgb/%08d.jpg``), with hand-worked values: the
keypoints keep FreiHAND's order (which is ours), stay in metres and in the camera frame,
project with K, and every hand is the right one."""

import json

import numpy as np
import pytest
from PIL import Image

from fourdhands.data.dataset import HandWindows
from fourdhands.data.freihand import FreiHandFrames
from fourdhands.data.sample import SampleConfig
from fourdhands.data.sources import open_sequences
from fourdhands.errors import UserError

K = [[500.0, 0.0, 112.0], [0.0, 480.0, 100.0], [0.0, 0.0, 1.0]]


def _hand(shift):
    """21 keypoints (m): the wrist at (0, 0, 0.5) + shift, keypoint j at +j mm in x, and
    the index tip (8) straight below the wrist, 2 cm down."""
    xyz = np.zeros((21, 3))
    xyz[:, 0] = np.arange(21) * 0.001
    xyz[8] = [0.0, 0.02, 0.0]
    return (xyz + [0.0, 0.0, 0.5] + shift).tolist()


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "FreiHAND_pub_v2"
    (root / "training" / "rgb").mkdir(parents=True)
    hands = [_hand([0.0, 0.0, 0.0]), _hand([0.01, -0.02, 0.1]), _hand([-0.03, 0.0, 0.2])]
    (root / "training_K.json").write_text(json.dumps([K] * 3))
    (root / "training_xyz.json").write_text(json.dumps(hands))
    (root / "training_mano.json").write_text(json.dumps([[list(np.linspace(0, 1, 61))]] * 3))
    for i in (0, 1, 2, 32560, 32561, 32562):  # versions gs and hom
        Image.new("RGB", (224, 224), (40 * (i % 6), 0, 0)).save(root / "training" / "rgb" / f"{i:08d}.jpg")
    return root


def test_keypoints_order_units_frame_and_side(folder):
    source = open_sequences(f"freihand:{folder}")
    assert isinstance(source, FreiHandFrames) and len(source) == 3
    gt = source[1].gt
    assert gt["present"].tolist() == [[True, False]] and not bool(gt["has_mano"])
    # wrist first, keypoint j j mm to the right of it, metres, camera frame as given
    np.testing.assert_allclose(gt["keypoints_3d"][0, 0, 0], [0.01, -0.02, 0.6])
    np.testing.assert_allclose(gt["keypoints_3d"][0, 0, 5] - gt["keypoints_3d"][0, 0, 0], [0.005, 0.0, 0.0])
    # 2D by hand: the wrist at u = 500 * 0.01 / 0.6 + 112, v = 480 * -0.02 / 0.6 + 100
    np.testing.assert_allclose(gt["keypoints_2d"][0, 0, 0], [500 * 0.01 / 0.6 + 112, 480 * -0.02 / 0.6 + 100])
    # the index tip 2 cm below the wrist: straight down in the image
    tip, wrist = gt["keypoints_2d"][0, 0, 8], gt["keypoints_2d"][0, 0, 0]
    np.testing.assert_allclose(tip - wrist, [0.0, 480 * 0.02 / 0.6], atol=1e-9)
    assert gt["joint_valid"][0, 0].all() and not gt["joint_valid"][0, 1].any()
    np.testing.assert_allclose(gt["mano_theta"], np.linspace(0, 1, 61))
    # the fit: theta's pose and betas, camera frame, the translation unknown (placed on the wrist)
    np.testing.assert_allclose(gt["fit_pose"][0, 0], np.linspace(0, 1, 61)[:48])
    np.testing.assert_allclose(gt["fit_betas"][0, 0], np.linspace(0, 1, 61)[48:58])
    assert np.isnan(gt["fit_transl"][0, 0]).all() and gt["fit_valid"].tolist() == [[True, False]]
    assert bool(gt["fit_mean_relative"]) and (gt["fit_R"][0] == np.eye(3)).all()
    assert gt["image_size"].tolist() == [224, 224]


def test_image_versions_map_to_their_ids(folder):
    assert abs(int(FreiHandFrames(folder)[1].frame(0)[0, 0, 0]) - 40) <= 3  # sample 1's gs image
    hom = FreiHandFrames(folder, version="hom")
    assert hom[1].image_path.name == f"{32561:08d}.jpg"
    with pytest.raises(UserError, match="has no image version 'hom'"):
        FreiHandFrames(folder, split="evaluation", version="hom")


def test_samples_window_like_any_source(folder):
    s = HandWindows(FreiHandFrames(folder), SampleConfig(crop_hw=(64, 48), seq_len=3, gap=1))[2]
    assert s["crops"].shape == (3, 2, 3, 64, 48) and s["present"][:, 1].sum() == 0
    assert s["crops"][:, 1].abs().sum() == 0  # the absent left hand's crop is empty


def test_layout_mistakes_are_one_line_errors_naming_the_file(folder):
    (folder / "training_mano.json").unlink()
    with pytest.raises(UserError, match="training_mano.json: missing") as e:
        FreiHandFrames(folder)
    assert "\n" not in str(e.value)
    (folder / "training_mano.json").write_text(json.dumps([[0.0] * 61] * 2))
    with pytest.raises(UserError, match="list 3, 3 and 2 samples"):
        FreiHandFrames(folder)
    (folder / "training_mano.json").write_text(json.dumps([[0.0] * 61] * 3))
    (folder / "training_xyz.json").write_text(json.dumps([_hand([0, 0, 0]), [[0.0, 0.0]], _hand([0, 0, 0])]))
    with pytest.raises(UserError, match="training_xyz.json: entry 1 is not 21x3 numbers"):
        FreiHandFrames(folder)
    with pytest.raises(UserError, match="no such FreiHAND folder"):
        FreiHandFrames(folder / "nope")
