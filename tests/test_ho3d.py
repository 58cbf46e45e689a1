"""The HO-3D reader on a fixture written here in the toolkit's layout (meta pickles of NumPy
arrays, rgb images), with hand-worked values: MANO joint order to ours, OpenGL camera
coordinates to OpenCV's, unannotated frames absent and counted, and pickles read only
through the allow-list."""

import os
import pickle

import numpy as np
import pytest
from PIL import Image

from fourdhands.data.ho3d import MANO_TO_OPENPOSE, HO3DSequences
from fourdhands.data.sources import open_sequences
from fourdhands.errors import UserError

CAM = np.array([[610.0, 0.0, 320.0], [0.0, 615.0, 240.0], [0.0, 0.0, 1.0]])


def _mano_order_joints():
    """21 joints in MANO's order, OpenGL coordinates (z < 0 in front): joint i at x = i cm."""
    j = np.zeros((21, 3))
    j[:, 0] = np.arange(21) * 0.01
    j[:, 1] = 0.05  # 5 cm up
    j[:, 2] = -0.5  # half a metre in front of the camera
    return j


def _write(root, rec, frame_id, meta, ext=".jpg"):
    (root / "train" / rec / "meta").mkdir(parents=True, exist_ok=True)
    (root / "train" / rec / "rgb").mkdir(parents=True, exist_ok=True)
    with open(root / "train" / rec / "meta" / f"{frame_id}.pkl", "wb") as fh:
        pickle.dump(meta, fh, protocol=2)
    Image.new("RGB", (640, 480)).save(root / "train" / rec / "rgb" / f"{frame_id}{ext}")


@pytest.fixture
def root(tmp_path):
    annotated = {"camMat": CAM, "handJoints3D": _mano_order_joints(), "handPose": np.zeros(48),
                 "handBeta": np.zeros(10), "handTrans": np.array([0.0, 0.05, -0.5]), "objName": "003_cracker_box"}
    _write(tmp_path, "ABF10", "0000", annotated)
    _write(tmp_path, "ABF10", "0001", {**annotated, "handJoints3D": None, "handPose": None}, ext=".png")
    _write(tmp_path, "MC1", "0000", annotated)
    return tmp_path


def test_order_frame_and_unannotated_frames(root):
    source = open_sequences(f"ho3d:{root}")
    assert isinstance(source, HO3DSequences) and len(source) == 2
    seq = source[0]
    gt = seq.gt
    assert gt["present"].tolist() == [[True, False], [False, False]] and seq.unannotated == 1
    j = gt["keypoints_3d"][0, 0]
    # our thumb tip (4) is MANO-order joint 16, our index MCP (5) is joint 1; y and z flip
    np.testing.assert_allclose(j[4], [0.16, -0.05, 0.5])
    np.testing.assert_allclose(j[5], [0.01, -0.05, 0.5])
    assert MANO_TO_OPENPOSE[8] == 17 and sorted(MANO_TO_OPENPOSE) == list(range(21))
    # 2D by hand: the wrist at (0, -0.05, 0.5) projects to (320, 615 * -0.1 + 240)
    np.testing.assert_allclose(gt["keypoints_2d"][0, 0, 0], [320.0, 615 * -0.05 / 0.5 + 240])
    assert gt["image_size"].tolist() == [640, 480] and seq.frame(1).shape == (480, 640, 3)  # v2's png
    # the fit: flat-mean fullpose in OpenGL axes, y and z flipped to the camera's
    assert gt["fit_valid"].tolist() == [[True, False], [False, False]] and not bool(gt["fit_mean_relative"])
    np.testing.assert_allclose(gt["fit_transl"][0, 0], [0.0, 0.05, -0.5])
    np.testing.assert_allclose(gt["fit_R"][0], np.diag([1.0, -1.0, -1.0]))


def test_a_pickle_naming_anything_else_is_refused(root):
    class Evil:
        def __reduce__(self):
            return os.system, ("echo pwned",)

    with open(root / "train" / "MC1" / "meta" / "0000.pkl", "wb") as fh:
        pickle.dump({"camMat": Evil()}, fh, protocol=2)
    with pytest.raises(UserError, match="refused to load '(posix|nt).system'") as e:
        HO3DSequences(root)[1].gt
    assert "\n" not in str(e.value)


def test_layout_mistakes(tmp_path):
    with pytest.raises(UserError, match="train: missing"):
        HO3DSequences(tmp_path)
    (tmp_path / "train" / "SEQ" / "meta").mkdir(parents=True)
    with pytest.raises(UserError, match="no meta/<id>.pkl files"):
        HO3DSequences(tmp_path)
    with pytest.raises(UserError, match="split must be one of train, evaluation"):
        HO3DSequences(tmp_path, "test")
