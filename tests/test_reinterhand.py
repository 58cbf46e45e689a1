"""The Re:InterHand reader on a fixture written here in the published layout (captures with
Mugsy_cameras/cam_params.json, per-camera PNG frames, orig_fits or keypoints_orig keypoints,
mano_fits), with hand-worked values: the orig-fit and InterHand2.6M joint orders to ours,
millimetres to metres, the world frame to each camera's (X = R X + t), the right hand in
slot 0, absent / out-of-view hands counted, the official test captures, and one-line
errors for layout mistakes, malformed files and MANO-only captures."""

import json

import numpy as np
import pytest
from PIL import Image

from fourdhands.data.reinterhand import ORIG_FIT_TO_OPENPOSE, TEST_CAPTURES, ReInterHandSequences
from fourdhands.errors import UserError

W, H = 200, 300
TEST = TEST_CAPTURES[0]
TRAIN = "m--20221007--1215--HIR112--pilot--ProjectGoliathScript--Hands--two-hands"
CAMERAS = {
    "400002": {"R": np.eye(3).tolist(), "t": [0.0, 0.0, 1000.0], "focal": [1000.0, 1000.0], "princpt": [100.0, 150.0]},
    # turned half a turn about y: x and z change sign
    "400009": {"R": np.diag([-1.0, 1.0, -1.0]).tolist(), "t": [0.0, 0.0, 1000.0], "focal": [900.0, 950.0],
               "princpt": [100.0, 150.0]},
    "400011": {"R": np.eye(3).tolist(), "t": [0.0, 0.0, 1000.0], "focal": [1.0, 1.0], "princpt": [0.0, 0.0]},
}


def _dump(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _right(frame):
    """24 orig-fit joints (mm, world): joint k at x = 2k mm, 1 cm up, on the world origin's plane."""
    j = np.zeros((24, 3))
    j[:, 0] = 2.0 * np.arange(24)
    j[:, 1] = 10.0 + frame
    return j


def _left(frame):
    j = np.zeros((24, 3))
    j[:, 0] = -40.0 - np.arange(24)
    j[:, 1] = 20.0
    j[:, 2] = 100.0
    return j


def _cameras(capture, cameras):
    _dump(capture / "Mugsy_cameras" / "cam_params.json", cameras)


def _images(capture, camera, frames, lighting="envmap_per_frame"):
    folder = capture / "Mugsy_cameras" / lighting / "images" / camera
    folder.mkdir(parents=True, exist_ok=True)
    for f in frames:
        Image.new("RGB", (W, H), (f, 0, 0)).save(folder / f"{f:06d}.png")


@pytest.fixture
def root(tmp_path):
    test = tmp_path / TEST
    _cameras(test, CAMERAS)
    _images(test, "400002", [12, 0, 6])
    _images(test, "400009", [6, 0])  # 400011 has no images
    fits = test / "orig_fits"
    for f in (0, 6, 12):
        right = _right(f)
        if f == 12:
            right[:, 0] += 5000.0  # five metres to the side: out of the view
        if f != 6:  # frame 6: no right-hand file
            _dump(fits / "right" / "Keypoints" / f"keypoint-{f:06d}.json", right.tolist())
        left = _left(f).tolist()
        if f == 12:
            left[3][1] = None  # null in JSON -> NaN: not an annotation
        _dump(fits / "left" / "Keypoints" / f"keypoint-{f:06d}.json", left)
    _dump(test / "mano_fits" / "params" / "0_right.json",
          {"pose": (0.01 * np.arange(48)).tolist(), "shape": [0.5] * 10, "trans": [0.1, 0.2, 0.3]})

    train = tmp_path / TRAIN
    _cameras(train, {"cam0": {"R": np.eye(3).tolist(), "t": [0.0, 0.0, 500.0], "focal": [500.0, 500.0],
                              "princpt": [100.0, 150.0]}})
    _images(train, "cam0", [3])
    _images(train, "cam0", [3], "envmap_per_segment")
    ih = np.zeros((42, 3))  # InterHand2.6M order: per hand thumb tip..1, index, middle, ring, pinky, wrist
    ih[:21, 0] = np.arange(21)
    ih[21:, 0] = 50.0 + np.arange(21)
    ih[21:, 1] = 5.0
    _dump(train / "keypoints_orig" / "keypoints_orig" / "3.json", ih.tolist())
    (train / "frame_list.txt").write_text("seg_a 3\nseg_a 9\n")  # frame 9 has no image
    return tmp_path


def test_the_joint_map_is_the_official_loaders_by_name():
    fingers = [f"{f}_{i}" for f in ("Index", "Middle", "Ring") for i in range(1, 5)]
    orig = ["Wrist", *[f"Thumb_{i}" for i in range(5)], *fingers[:4], *fingers[4:8], *fingers[8:],
            *[f"Pinky_{i}" for i in range(5)], "Forearm_Stub"]
    ours = ["Wrist", *[f"{f}_{i}" for f in ("Thumb", "Index", "Middle", "Ring", "Pinky") for i in range(1, 5)]]
    assert len(orig) == 24 and list(ORIG_FIT_TO_OPENPOSE) == [orig.index(n) for n in ours]


def test_orig_fits_in_each_cameras_frame(root):
    source = ReInterHandSequences(root)  # the test split, per-frame lighting
    assert len(source) == 2 and source.cameras_without_images == 1
    a, b = source[0], source[1]
    assert (a.camera, b.camera) == ("400002", "400009") and a.frames == [0, 6, 12]
    gt = a.gt
    assert gt["frame_index"].tolist() == [0, 6, 12]
    assert gt["present"].tolist() == [[True, True], [False, True], [False, False]]
    assert a.unannotated == 1 and a.missing_hands == 2 and a.out_of_view == 1
    right = gt["keypoints_3d"][0, 0]
    # ours 1 (thumb CMC) is orig-fit joint 2 (Thumb_1), 4 its tip (Thumb_4), 17 pinky MCP (Pinky_1)
    np.testing.assert_allclose(right[0], [0.0, 0.010, 1.0])
    np.testing.assert_allclose(right[1], [0.004, 0.010, 1.0])
    np.testing.assert_allclose(right[4], [0.010, 0.010, 1.0])
    np.testing.assert_allclose(right[17], [0.038, 0.010, 1.0])
    np.testing.assert_allclose(right[20], [0.044, 0.010, 1.0])
    np.testing.assert_allclose(gt["keypoints_3d"][0, 1, 0], [-0.040, 0.020, 1.1])  # the left wrist, slot 1
    np.testing.assert_allclose(gt["v"][0], [-0.040, 0.010, 0.1])
    np.testing.assert_allclose(gt["K"][0], [[1000, 0, 100], [0, 1000, 150], [0, 0, 1]])
    assert gt["image_size"].tolist() == [W, H] and not bool(gt["has_mano"])
    # camera 400009: x and z turned, then t; 2D by hand with fx 900, fy 950
    gb = b.gt
    np.testing.assert_allclose(gb["keypoints_3d"][0, 0, 5], [-0.012, 0.010, 1.0])
    np.testing.assert_allclose(gb["keypoints_2d"][0, 0, 5], [900 * -0.012 + 100, 950 * 0.010 + 150])
    np.testing.assert_allclose(gb["keypoints_3d"][1, 1, 0], [0.040, 0.020, 0.9])
    assert a.frame(2).shape == (H, W, 3) and a.frame(2)[0, 0, 0] == 12  # frame order, not file order


def test_mano_fits_are_kept_as_fits_with_the_camera(root):
    seq = ReInterHandSequences(root)[0]
    gt = seq.gt
    assert gt["fit_pose"].shape == (3, 2, 48) and gt["fit_valid"].tolist() == [[True, False], [False, False],
                                                                              [False, False]]
    np.testing.assert_allclose(gt["fit_pose"][0, 0], 0.01 * np.arange(48))
    np.testing.assert_allclose(gt["fit_betas"][0, 0], [0.5] * 10)
    np.testing.assert_allclose(gt["fit_transl"][0, 0], [0.1, 0.2, 0.3])
    _, R, t = seq.capture.cameras[seq.camera]
    np.testing.assert_allclose(gt["fit_R"][0], R)
    np.testing.assert_allclose(gt["fit_t"][0], t / 1000)  # the camera's t is in mm, the fit's frame in metres
    assert bool(gt["fit_mean_relative"])


def test_keypoints_orig_in_interhand_order(root):
    source = ReInterHandSequences(root, "train")
    assert len(source) == 1
    gt = source[0].gt
    assert gt["present"].tolist() == [[True, True]]
    kp = gt["keypoints_3d"][0]
    # ours 0 (wrist) is InterHand 20, 1 (thumb CMC) is 3, 4 (thumb tip) is 0, 5 (index MCP) is 7
    np.testing.assert_allclose(kp[0, [0, 1, 4, 5, 8, 20], 0], [0.020, 0.003, 0.0, 0.007, 0.004, 0.016])
    np.testing.assert_allclose(kp[1, 0], [0.070, 0.005, 0.5])
    np.testing.assert_allclose(kp[0, 0, 1:], [0.0, 0.5])


def test_per_segment_frames_come_from_the_frame_list(root):
    seq = ReInterHandSequences(root, "train", "envmap_per_segment")[0]
    assert seq.frames == [3, 9]
    assert seq.gt["present"].tolist() == [[True, True], [False, False]] and seq.unannotated == 1
    with pytest.raises(UserError, match=r"cam0/000009.png: cannot read the image") as e:
        seq.frame(1)
    assert "\n" not in str(e.value)
    (root / TRAIN / "frame_list.txt").write_text("seg_a 3\nseg_a nine\n")
    with pytest.raises(UserError, match=r"frame_list.txt: line 2 is not '<segment> <frame>'"):
        ReInterHandSequences(root, "train", "envmap_per_segment")


def test_a_capture_with_only_mano_fits_needs_mano(tmp_path):
    capture = tmp_path / TEST_CAPTURES[1]
    _cameras(capture, CAMERAS)
    _images(capture, "400002", [0])
    _dump(capture / "mano_fits" / "params" / "0_right.json", {"pose": [0.0] * 48, "shape": [0.0] * 10,
                                                              "trans": [0.0] * 3})
    with pytest.raises(UserError, match="only MANO fits .* need the MANO model") as e:
        ReInterHandSequences(tmp_path)
    assert "\n" not in str(e.value) and TEST_CAPTURES[1] in str(e.value)


def test_layout_mistakes_name_the_first_missing_file(tmp_path):
    def fails(match, *args):
        with pytest.raises(UserError, match=match) as e:
            ReInterHandSequences(tmp_path, *args)
        assert "\n" not in str(e.value)

    fails("split must be one of train, test", "val")
    fails("lighting must be one of envmap_per_frame, envmap_per_segment", "test", "envmap")
    fails("no capture folders m--")
    capture = tmp_path / TEST
    capture.mkdir()
    fails(r"Mugsy_cameras/cam_params.json: missing")
    _cameras(capture, CAMERAS)
    fails(r"orig_fits: missing, and no keypoints_orig")
    (capture / "orig_fits" / "right" / "Keypoints").mkdir(parents=True)
    fails(r"orig_fits/left/Keypoints: missing")
    (capture / "orig_fits" / "left" / "Keypoints").mkdir(parents=True)
    fails(r"envmap_per_frame/images: missing")
    _cameras(capture, {"400002": {"t": [0, 0, 0], "focal": [1, 1], "princpt": [0, 0]}})
    fails(r"cam_params.json: camera 400002: no usable R")
    (capture / "Mugsy_cameras" / "cam_params.json").write_text("{not json")
    fails(r"cam_params.json: not valid JSON")


def test_a_malformed_keypoint_file_fails_on_first_use_naming_it(root):
    path = root / TEST / "orig_fits" / "right" / "Keypoints" / "keypoint-000000.json"
    path.write_text(json.dumps(_right(0)[:23].tolist()))
    seq = ReInterHandSequences(root)[0]  # indexing reads no annotation
    with pytest.raises(UserError, match=r"keypoint-000000.json: expected 24 x 3 numbers") as e:
        seq.gt
    assert "\n" not in str(e.value)
