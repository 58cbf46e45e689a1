"""The DexYCB reader on a fixture written here in the toolkit's layout (subjects with 100
recordings, meta.yml, per-camera labels_%06d.npz and color_%06d.jpg, calibration YAML), with
hand-worked values: the setups' splits pick the toolkit's recordings and cameras, keypoints
stay in metres in each camera's frame, a left hand goes to slot 1, and unannotated frames
are absent hands, counted."""

import numpy as np
import pytest
import yaml
from PIL import Image

from fourdhands.data.dexycb import SERIALS, SPLITS, SUBJECTS, DexYCBSequences
from fourdhands.data.sources import open_sequences
from fourdhands.errors import UserError

FRAMES = 3


def _joints(t):
    j = np.zeros((21, 3))
    j[:, 0] = np.arange(21) * 0.002
    return j + [0.01 * t, -0.02, 0.6]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("DexYCB")
    (root / "calibration" / "intrinsics").mkdir(parents=True)
    (root / "calibration" / "mano_x").mkdir()
    (root / "calibration" / "mano_x" / "mano.yml").write_text(yaml.safe_dump({"betas": [0.5] * 10}))
    for k, serial in enumerate(SERIALS):
        (root / "calibration" / "intrinsics" / f"{serial}_640x480.yml").write_text(yaml.safe_dump(
            {"color": {"fx": 600.0 + k, "fy": 610.0, "ppx": 320.0, "ppy": 240.0}}))
    # subject 2 (the first of s0's test subjects): recordings 4 and 9 are in s0-test
    subject = root / SUBJECTS[2]
    for r in range(100):
        (subject / f"20200820_{r:06d}").mkdir(parents=True)
    for r, side in ((4, "left"), (9, "right")):
        rec = subject / f"20200820_{r:06d}"
        (rec / "meta.yml").write_text(yaml.safe_dump({"num_frames": FRAMES, "mano_sides": [side],
                                                      "mano_calib": ["x"]}))
        for serial in SERIALS:
            (rec / serial).mkdir()
            for t in range(FRAMES):
                joints = -np.ones((21, 3)) if t == 1 else _joints(t)  # frame 1: no hand annotated
                np.savez(rec / serial / f"labels_{t:06d}.npz", joint_3d=joints[None].astype(np.float32),
                         joint_2d=np.zeros((1, 21, 2), np.float32),
                         pose_m=np.arange(51, dtype=np.float32)[None] * 0.01 * (t != 1))
                Image.new("RGB", (640, 480)).save(rec / serial / f"color_{t:06d}.jpg")
    return root


def test_the_splits_are_the_toolkits():
    subjects, serials, recordings = SPLITS[("s0", "test")]
    assert list(subjects) == list(range(2, 10)) and list(serials) == list(range(8))
    assert recordings[:3] == [4, 9, 14] and len(recordings) == 20
    assert list(SPLITS[("s2", "test")][1]) == [7] and len(SPLITS[("s3", "test")][2]) == 15


def test_a_wrong_layout_names_the_first_file_missing(root):
    # s0-test wants recordings 4, 9, 14, ... of subjects 2-9; the fixture has only two
    with pytest.raises(UserError, match="20200820_000014/meta.yml: missing") as e:
        DexYCBSequences(root)
    assert "\n" not in str(e.value)


@pytest.fixture
def one_subject(root, monkeypatch):
    """s0-test restricted to the fixture's subject."""
    import fourdhands.data.dexycb as dexycb

    subjects, serials, recordings = SPLITS[("s0", "test")]
    monkeypatch.setitem(dexycb.SPLITS, ("s0", "test"), ((2,), serials, recordings[:2]))
    return root


def test_reading_a_split(one_subject):
    source = open_sequences(f"dexycb:{one_subject}")
    assert len(source) == 2 * len(SERIALS)  # two recordings, eight cameras each
    left, right = source[0], source[len(SERIALS)]
    assert left.slot == 1 and right.slot == 0  # recording 4 holds a left hand, 9 a right one
    gt = left.gt
    assert gt["present"].tolist() == [[False, True], [False, False], [False, True]]
    assert left.unannotated == 1
    np.testing.assert_allclose(gt["keypoints_3d"][2, 1], _joints(2))  # metres, camera frame, our order
    # 2D by hand with camera 0's intrinsics: fx 600, fy 610, principal point (320, 240)
    x, y, z = _joints(2)[0]
    np.testing.assert_allclose(gt["keypoints_2d"][2, 1, 0], [600 * x / z + 320, 610 * y / z + 240])
    assert source[1].K[0, 0] == 601.0  # each camera its own intrinsics
    assert not gt["present"][:, 0].any() and not bool(gt["has_mano"])
    assert left.frame(0).shape == (480, 640, 3)
    # the fit: pose_m's root, 45 PCA coefficients and translation, the subject's betas
    assert gt["fit_valid"].tolist() == [[False, True], [False, False], [False, True]]
    assert bool(gt["fit_pca"]) and bool(gt["fit_mean_relative"])
    np.testing.assert_allclose(gt["fit_pose"][0, 1], np.arange(48) * 0.01, atol=1e-6)
    np.testing.assert_allclose(gt["fit_transl"][0, 1], np.arange(48, 51) * 0.01, atol=1e-6)
    np.testing.assert_allclose(gt["fit_betas"][0, 1], 0.5)


def test_bad_setups_and_folders_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="no setup 's5' split 'test'"):
        open_sequences(f"dexycb:{tmp_path}@s5-test")
    with pytest.raises(UserError, match="no such DexYCB folder"):
        open_sequences(f"dexycb:{tmp_path / 'nope'}")
    with pytest.raises(UserError, match="_640x480.yml: missing"):
        open_sequences(f"dexycb:{tmp_path}")
