"""The InterHand2.6M index on a fixture written here in the dataset's layout (the data,
camera, joint_3d and MANO_NeuralAnnot files): hand-worked values survive the streaming
read, the cache is used when the files are unchanged and rebuilt when they change,
nothing is written into the dataset's folder, and malformed entries are one-line errors
naming the file and the entry."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from fourdhands.data.interhand_index import load_index
from fourdhands.data.sources import open_sequences
from fourdhands.errors import UserError


def _write(folder, frames=3):
    folder.mkdir(parents=True, exist_ok=True)
    images, anns, joints, mano = [], [], {"7": {}}, {"7": {}}
    for t in range(frames):
        images.append({"id": 100 + t, "file_name": f"Capture7/seq/cam400002/image{t}.jpg", "width": 334,
                       "height": 512, "capture": 7, "camera": "400002", "frame_idx": 10 * t, "seq_name": "seq",
                       "subject": 2})
        anns.append({"id": 100 + t, "image_id": 100 + t, "bbox": [10, 20, 30, 40], "joint_valid": [[1]] * 42,
                     "hand_type": "interacting", "hand_type_valid": 1})
        world = np.zeros((42, 3))
        world[20] = [100.0 * t, 0.0, 0.0]  # right wrist, mm
        world[41] = [0.0, 50.0, 0.0]  # left wrist
        joints["7"][str(10 * t)] = {"world_coord": world.tolist(), "joint_valid": [[1]] * 42}
        mano["7"][str(10 * t)] = {"right": {"pose": [0.1 * t] * 48, "shape": [0.0] * 10, "trans": [0, 0, 1]},
                                   "left": None}
    anns[1]["joint_valid"] = [[1]] * 20 + [[0]] + [[1]] * 21  # frame 1: right wrist invalid
    (folder / "InterHand2.6M_train_data.json").write_text(json.dumps({"images": images, "annotations": anns}))
    camera = {"7": {"campos": {"400002": [0, 0, -1000]}, "camrot": {"400002": np.eye(3).tolist()},
                    "focal": {"400002": [1000, 1000]}, "princpt": {"400002": [167, 256]}}}
    (folder / "InterHand2.6M_train_camera.json").write_text(json.dumps(camera))
    (folder / "InterHand2.6M_train_joint_3d.json").write_text(json.dumps(joints))
    (folder / "InterHand2.6M_train_MANO_NeuralAnnot.json").write_text(json.dumps(mano))
    return folder


def test_values_through_the_stream_and_the_cache(tmp_path):
    folder = _write(tmp_path / "annotations" / "train")
    image = tmp_path / "images" / "train" / "Capture7" / "seq" / "cam400002" / "image0.jpg"
    image.parent.mkdir(parents=True)
    Image.new("RGB", (334, 512)).save(image)
    Image.new("RGB", (512, 334)).save(image.with_name("image1.jpg"))
    before = sorted(os.listdir(folder))
    for attempt in range(2):  # built, then read back from the cache
        seq = open_sequences(f"interhand2.6m:{folder}@train")[0]
        gt = seq.gt
        assert seq.num_frames == 3
        assert gt["present"].tolist() == [[True, True], [False, True], [True, True]]  # frame 1: no right root
        # campos 1 m behind the world origin: the right wrist of frame 2 is at (0.2, 0, 1) m
        np.testing.assert_allclose(gt["keypoints_3d"][2, 0, 0], [0.2, 0.0, 1.0])
        np.testing.assert_allclose(gt["keypoints_2d"][2, 0, 0], [1000 * 0.2 + 167, 256])
        np.testing.assert_allclose(gt["keypoints_3d"][0, 1, 0], [0.0, 0.05, 1.0])
        assert not gt["joint_valid"][1, 0].any() and gt["joint_valid"][1, 1].all()  # wrist invalid: hand invalid
        np.testing.assert_allclose(gt["fit_pose"][2, 0], 0.2)
        np.testing.assert_allclose(gt["fit_transl"][2, 0], [0, 0, 1])
        np.testing.assert_allclose(gt["fit_t"][2], [0, 0, 1.0])  # -camrot campos, metres
        assert gt["fit_valid"].tolist() == [[True, False]] * 3 and bool(gt["fit_mean_relative"])
        assert seq.image_path(0) == image and seq.frame(0).shape == (512, 334, 3)
        with pytest.raises(UserError, match="image1.jpg: image is 512x334 px, the annotations say 334x512"):
            seq.frame(1)
        cached = isinstance(seq.index.world, np.memmap)
        assert cached == (attempt == 1)
    assert sorted(os.listdir(folder)) == before  # nothing written into the dataset


def test_a_changed_file_is_read_again(tmp_path):
    folder = _write(tmp_path / "ih")
    assert open_sequences(f"interhand2.6m:{folder}@train")[0].num_frames == 3
    _write(folder, frames=2)
    assert open_sequences(f"interhand2.6m:{folder}@train")[0].num_frames == 2


def test_malformed_entries_name_the_file_and_entry(tmp_path):
    folder = _write(tmp_path / "ih")
    path = folder / "InterHand2.6M_train_data.json"
    data = json.loads(path.read_text())
    del data["annotations"][1]["hand_type"]
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"InterHand2.6M_train_data.json: annotation 101 is incomplete") as e:
        load_index(folder, "train")
    assert "\n" not in str(e.value)
    _write(folder)
    mano = folder / "InterHand2.6M_train_MANO_NeuralAnnot.json"
    mano.write_text(mano.read_text().replace('"shape": [0.0, 0.0', '"shape": [0.0', 1))
    with pytest.raises(UserError, match=r"capture 7, frame 0, right hand is not pose"):
        load_index(folder, "train")
    mano.write_text('{"7": {"0": ')
    with pytest.raises(UserError, match=r"MANO_NeuralAnnot.json: not valid JSON"):
        load_index(folder, "train")


def test_under_mano_the_neuralannot_fits_become_the_windows_parameters(tmp_path):
    """The fit posed smplx's way in the world, moved by the camera, is the mesh the
    window's (converted) parameters give; the left hand's null fit is no truth."""
    import torch
    from _mano_fixture import random_mano_data, write_npz
    from scipy.spatial.transform import Rotation

    from fourdhands.data.dataset import HandWindows
    from fourdhands.data.sample import SampleConfig
    from fourdhands.hands import load_hand_model
    from fourdhands.hands.model import HandModel

    data = random_mano_data(seed=5)
    data["hands_mean"] = np.random.default_rng(2).normal(0, 0.2, 45)
    mano = tmp_path / "mano"
    mano.mkdir()
    write_npz(mano / "MANO_RIGHT.npz", data)
    write_npz(mano / "MANO_LEFT.npz", data)
    folder = _write(tmp_path / "annotations" / "train")
    camrot = Rotation.from_euler("xyz", [10, -20, 30], degrees=True).as_matrix()
    cams = json.loads((folder / "InterHand2.6M_train_camera.json").read_text())
    cams["7"]["camrot"]["400002"] = camrot.tolist()
    (folder / "InterHand2.6M_train_camera.json").write_text(json.dumps(cams))
    image = tmp_path / "images" / "train" / "Capture7" / "seq" / "cam400002" / "image2.jpg"
    image.parent.mkdir(parents=True)
    Image.new("RGB", (334, 512)).save(image)

    windows = HandWindows(open_sequences(f"interhand2.6m:{folder}@train"), SampleConfig(crop_hw=(32, 24), seq_len=1),
                          hand_model=str(mano / "MANO_RIGHT.npz"))
    s = windows.sample(2, 0)  # frame 2: the fit's pose is 0.2 everywhere
    assert s["has_mano"].tolist() == [[True, False]]
    smplx_like = HandModel(data, "right", flat_hand_mean=False, dtype=torch.float64)
    world = smplx_like(global_orient=torch.full((1, 3), 0.2), hand_pose=torch.full((1, 45), 0.2),
                       betas=torch.zeros(1, 10), transl=torch.tensor([[0.0, 0.0, 1.0]])).vertices[0].numpy()
    want = (world - np.array([0, 0, -1.0])) @ camrot.T  # camrot (X - campos), metres
    ours = load_hand_model(str(mano / "MANO_RIGHT.npz"), "right", dtype=torch.float64)
    got = ours(global_orient=s["global_orient"][:, 0].double(), hand_pose=s["hand_pose"][:, 0].double(),
               betas=s["betas"][:, 0].double(), transl=s["transl"][:, 0].double()).vertices[0].numpy()
    np.testing.assert_allclose(got, want, atol=2e-6)  # float32 sample tensors
    # under the open hand model the same fits are not truth
    open_windows = HandWindows(open_sequences(f"interhand2.6m:{folder}@train"), SampleConfig(crop_hw=(32, 24), seq_len=1))
    assert not open_windows.sample(2, 0)["has_mano"].any()
