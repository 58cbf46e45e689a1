"""The RenderIH reader on a fixture written here in the dataset's released layout
(``train/color_img/<id>.jpg``, ``train/color_annot/<id>.pkl``, and step 7's
``train/ori_handdict/<id>.npy``), with hand-worked values: keypoints from random MANO-format
files posed as RenderIH's ManoLayer does (PCA pose with the mean added back, root rotation
about the wrist, ``trans`` after posing, the left-hand shapedirs fix, then the camera's R, t),
or as step 7 saved them; right hand in slot 0; hands without parameters absent and counted;
without MANO the ``gt`` is a one-line UserError while the raw parameters stay readable;
pickles only through the allow-list."""

import os
import pickle

import numpy as np
import pytest
from PIL import Image

from _mano_fixture import random_mano_data, write_npz
from fourdhands.data.dataset import HandWindows
from fourdhands.data.renderih import RenderIHFrames
from fourdhands.data.sample import SampleConfig
from fourdhands.errors import UserError

K = np.array([[600.0, 0.0, 128.0], [0.0, 580.0, 120.0], [0.0, 0.0, 1.0]])
CAM_R = np.diag([1.0, -1.0, -1.0])  # half a turn about x: a proper rotation
CAM_T = np.array([0.0, 0.0, 0.6])
RZ90 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
#: OpenPose position -> index in (16 MANO joints, then 5 tips), written out independently
OPENPOSE_FROM_MANO = [0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20]
TIPS = [745, 317, 444, 556, 673]  # IntagHand's, as RenderIH's ManoLayer
MANO = random_mano_data(seed=3)
#: PCA coefficients whose finger pose (pca @ C + hands_mean) is zero: the rest hand
REST_PCA = -MANO["hands_mean"] @ np.linalg.inv(MANO["hands_components"])
BETAS = np.linspace(-1.0, 1.0, 10)


def _hand(R=np.eye(3), pose=REST_PCA, shape=np.zeros(10), trans=np.zeros(3)):
    """One hand's entry as step 6 writes it (float32, leading batch axis of 1)."""
    return {"R": np.asarray(R, np.float32)[None], "pose": np.asarray(pose, np.float32)[None],
            "shape": np.asarray(shape, np.float32)[None], "trans": np.asarray(trans, np.float32)[None],
            "oripose": np.zeros(48, np.float32)}


def _annotation(right, left):
    return {"inter_idx": 0, "image": {"file_name": "x.jpg"}, "annotation": {"hand_type": "interacting"},
            "mano_params": {"right": right, "left": left},
            "camera": {"R": CAM_R.astype(np.float32), "t": CAM_T.astype(np.float32)[None], "camera": K}}


def _write(folder, frame_id, annotation, colour=(0, 0, 0)):
    with open(folder / "color_annot" / f"{frame_id}.pkl", "wb") as fh:
        pickle.dump(annotation, fh)
    Image.new("RGB", (256, 256), colour).save(folder / "color_img" / f"{frame_id}.jpg")


@pytest.fixture
def root(tmp_path):
    folder = tmp_path / "renderih" / "train"
    (folder / "color_annot").mkdir(parents=True)
    (folder / "color_img").mkdir()
    _write(folder, "100", _annotation(_hand(R=RZ90, trans=[0.01, 0.02, 0.03]), _hand(shape=BETAS)), (200, 0, 0))
    _write(folder, "99", _annotation(_hand(), None))  # the left hand has no parameters
    _write(folder, "101", _annotation(None, None))  # neither hand: unannotated
    return tmp_path / "renderih"


@pytest.fixture
def mano(tmp_path):
    folder = tmp_path / "mano"
    folder.mkdir()
    write_npz(folder / "MANO_RIGHT.npz", MANO)
    write_npz(folder / "MANO_LEFT.npz", MANO)  # same x-column as the right: the left fix applies
    return folder


def _rest_keypoints(shapedirs, betas):
    """The rest hand's 21 keypoints (OpenPose order) with ``betas``, by MANO's definition."""
    v = MANO["v_template"] + shapedirs @ betas
    return np.concatenate([MANO["J_regressor"] @ v, v[TIPS]])[OPENPOSE_FROM_MANO]


def test_keypoints_posed_with_mano_then_the_camera(root, mano):
    source = RenderIHFrames(root, mano=mano)
    assert len(source) == 3 and source.ids == ["99", "100", "101"]  # numeric order
    gt = source[1].gt
    assert gt["present"].tolist() == [[True, True]] and not bool(gt["has_mano"])
    rest = _rest_keypoints(MANO["shapedirs"], np.zeros(10))
    # right: turned a quarter about z around its wrist, then trans, then the camera
    right = (rest - rest[0]) @ RZ90.T + rest[0] + [0.01, 0.02, 0.03]
    np.testing.assert_allclose(gt["keypoints_3d"][0, 0], right @ CAM_R.T + CAM_T, atol=1e-6)
    # left: its shapedirs' x-column flipped (RenderIH's fix_shape), rest pose
    fixed = MANO["shapedirs"].copy()
    fixed[:, 0, :] *= -1
    np.testing.assert_allclose(gt["keypoints_3d"][0, 1], _rest_keypoints(fixed, BETAS) @ CAM_R.T + CAM_T, atol=1e-5)
    # 2D by hand from the camera-frame wrist
    w = gt["keypoints_3d"][0, 0, 0]
    np.testing.assert_allclose(gt["keypoints_2d"][0, 0, 0], [600 * w[0] / w[2] + 128, 580 * w[1] / w[2] + 120])
    np.testing.assert_allclose(gt["v"][0], gt["keypoints_3d"][0, 1, 0] - gt["keypoints_3d"][0, 0, 0])
    assert gt["image_size"].tolist() == [256, 256] and gt["K"][0].tolist() == K.tolist()
    np.testing.assert_allclose(gt["mano_shape"][0, 1], BETAS, rtol=1e-6)  # raw parameters kept
    np.testing.assert_allclose(gt["mano_rot"][0, 0], RZ90)
    assert source[1].frame(0)[0, 0, 0] > 150  # frame 100's red image


def test_hands_without_parameters_are_absent_and_counted(root, mano):
    source = RenderIHFrames(root, mano=mano)
    assert source[0].gt["present"].tolist() == [[True, False]] and source[0].unannotated == 0
    assert not source[0].gt["joint_valid"][0, 1].any() and not source[0].gt["v"].any()
    assert source[2].gt["present"].tolist() == [[False, False]] and source[2].unannotated == 1


def test_step7_joints_are_used_without_mano(root):
    handdict = root / "train" / "ori_handdict"
    handdict.mkdir()
    joints = {side: np.arange(63, dtype=np.float32).reshape(21, 3) * 0.001 + [0.0, 0.0, z]
              for side, z in (("right", 0.5), ("left", 0.7))}
    np.save(handdict / "100.npy", {side: {"joints3d": j, "hms": []} for side, j in joints.items()})
    gt = RenderIHFrames(root)[1].gt
    np.testing.assert_allclose(gt["keypoints_3d"][0, 0], joints["right"], rtol=1e-6)  # slot 0: right
    np.testing.assert_allclose(gt["keypoints_3d"][0, 1], joints["left"], rtol=1e-6)
    s = HandWindows(RenderIHFrames(root), SampleConfig(crop_hw=(64, 48), seq_len=3, gap=1))[1]
    assert s["crops"].shape == (3, 2, 3, 64, 48) and bool(s["present"].all())


def test_without_mano_gt_says_so_and_the_raw_parameters_stay(root):
    frame = RenderIHFrames(root)[1]
    with pytest.raises(UserError, match="keypoints need MANO") as e:
        frame.gt
    assert "\n" not in str(e.value) and "100.pkl" in str(e.value)
    np.testing.assert_allclose(frame.raw["mano_pose_pca"][0], REST_PCA, rtol=1e-5)
    np.testing.assert_allclose(frame.raw["cam_t"], CAM_T)
    assert frame.raw["present"].tolist() == [True, True]
    with pytest.raises(UserError, match="open hand model cannot pose them"):
        RenderIHFrames(root, mano="open")


def test_pickles_naming_anything_else_are_refused(root):
    class Evil:
        def __reduce__(self):
            return os.system, ("echo pwned",)

    with open(root / "train" / "color_annot" / "99.pkl", "wb") as fh:
        pickle.dump({"camera": Evil()}, fh)
    with pytest.raises(UserError, match="refused to load '(posix|nt).system'") as e:
        RenderIHFrames(root)[0].raw
    assert "\n" not in str(e.value)
    (root / "train" / "ori_handdict").mkdir()
    np.save(root / "train" / "ori_handdict" / "100.npy", np.array(Evil(), dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match=r"100.npy: refused to load '(posix|nt).system'"):
        RenderIHFrames(root)[1].gt


def test_malformed_annotations_name_the_file_and_entry(root, mano):
    bad = _annotation(_hand(), _hand())
    bad["mano_params"]["left"]["pose"] = np.zeros((1, 44))
    with open(root / "train" / "color_annot" / "99.pkl", "wb") as fh:
        pickle.dump(bad, fh)
    with pytest.raises(UserError, match=r"99.pkl: entry mano_params/left/pose is not 45 numbers") as e:
        RenderIHFrames(root, mano=mano)[0].gt
    assert "\n" not in str(e.value)
    del bad["camera"]
    with open(root / "train" / "color_annot" / "99.pkl", "wb") as fh:
        pickle.dump(bad, fh)
    with pytest.raises(UserError, match=r"99.pkl: no entry camera"):
        RenderIHFrames(root)[0].raw


def test_layout_mistakes_are_one_line_errors_naming_the_file(root, tmp_path):
    (root / "train" / "color_img" / "100.jpg").unlink()
    with pytest.raises(UserError, match=r"100.jpg: cannot read the image"):
        RenderIHFrames(root)[1].frame(0)
    (root / "train" / "color_img" / "99.jpg").unlink()
    with pytest.raises(UserError, match=r"color_img/99.jpg: missing") as e:
        RenderIHFrames(root)
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match=r"color_annot: missing \(RenderIH layout"):
        RenderIHFrames(tmp_path / "nope")
    (tmp_path / "empty" / "train" / "color_annot").mkdir(parents=True)
    with pytest.raises(UserError, match="no <id>.pkl files"):
        RenderIHFrames(tmp_path / "empty")
    with pytest.raises(UserError, match="split must be one of train"):
        RenderIHFrames(root, "test")
