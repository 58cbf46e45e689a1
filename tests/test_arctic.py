"""The ARCTIC reader on a fixture written here in the toolkit's layout (meta/misc.json,
splits_json/protocol_p*.json, raw_seqs/, processed_seqs/ or splits/ as np.save'd dicts,
images/<subject>/<seq>/<view>/<%05d>.jpg), with hand-worked values: smplx MANO joint
order to ours, metres in each view's camera frame, the right hand in slot 0, ioi_offset
and the toolkit's ten skipped images, the toolkit's validity flags as absent hands
(counted), the egocentric camera from the annotations and the allocentric ones from
misc.json; and that without camera-frame annotations the reader says MANO is needed."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from fourdhands.data.arctic import SKIP, ArcticSequences, protocol_sequences, read_npy_dict
from fourdhands.errors import UserError

KEY = "s05/box_use_01"
FRAMES = 25  # annotation frames: 25 - 2 * 10 = 5 frames per view
OFFSET = 2  # image n shows annotation frame n - 2
EGO_SIZE, ALLO_SIZE = (80, 60), (60, 80)  # (W, H)
K_EGO = np.array([[700.0, 0.0, 40.0], [0.0, 710.0, 30.0], [0.0, 0.0, 1.0]])


def _allo_K(view):
    return [[500.0 + view, 0.0, 30.0], [0.0, 505.0, 40.0], [0.0, 0.0, 1.0]]


def _right(a, v):
    """Right-hand joints in smplx MANO order at annotation frame a, view v: joint i at x = i cm."""
    j = np.zeros((21, 3))
    j[:, 0] = np.arange(21) * 0.01
    j[:, 1] = 0.02 * v
    j[:, 2] = 0.5 + 0.01 * a
    return j


def _left(a, v):
    return _right(a, v) + [0.2, 0.0, 0.0]


def _entry():
    views = range(10)  # ego, 1..8, ego distorted
    right = np.array([[_right(a, v) for v in views] for a in range(FRAMES)], np.float32)
    left = np.array([[_left(a, v) for v in views] for a in range(FRAMES)], np.float32)
    right_valid, left_valid, is_valid = (np.ones((FRAMES, 9), np.int64) for _ in range(3))
    right_valid[9] = 0  # annotation frame 9 = image 11 = frame 1: right hand out of view
    is_valid[11] = 0  # frame 3: the object's centre out of view, neither hand scored
    rot_cam = np.arange(FRAMES * 9 * 3, dtype=np.float32).reshape(FRAMES, 9, 3)
    params = {f"{k}_{s}": np.full((FRAMES, n), i + (0.5 if s == "l" else 0.0), np.float32)
              for i, (k, n) in enumerate((("rot", 3), ("pose", 45), ("shape", 10), ("trans", 3))) for s in "rl"}
    params.update(K_ego=np.repeat(K_EGO[None], FRAMES, 0).astype(np.float32),
                  dist=np.tile(np.arange(8, dtype=np.float32) * 0.1, (FRAMES, 1)))
    cam = {"joints.right": right, "joints.left": left, "right_valid": right_valid, "left_valid": left_valid,
           "is_valid": is_valid, "rot_r_cam": rot_cam, "rot_l_cam": rot_cam + 1}
    return {"cam_coord": cam, "2d": {}, "bbox": np.zeros((FRAMES, 10, 3)), "params": params}


@pytest.fixture
def root(tmp_path):
    (tmp_path / "meta").mkdir()
    subject = {"image_size": [list(EGO_SIZE)] + [list(ALLO_SIZE)] * 8, "intris_mat": [_allo_K(v) for v in range(1, 9)],
               "world2cam": [np.eye(4).tolist()] * 8, "ioi_offset": OFFSET, "gender": "female"}
    misc = {"s01": subject, "s05": subject}
    (tmp_path / "meta" / "misc.json").write_text(json.dumps(misc))
    (tmp_path / "splits_json").mkdir()
    lists = {"train": ["s01/box_grab_01", KEY], "val": [KEY], "test": ["s03/box_use_01"]}
    for p in ("p1", "p2"):
        (tmp_path / "splits_json" / f"protocol_{p}.json").write_text(json.dumps(lists))
    (tmp_path / "raw_seqs" / "s05").mkdir(parents=True)
    np.save(tmp_path / "raw_seqs" / f"{KEY}.object.npy", np.zeros((FRAMES, 7), np.float32))
    np.save(tmp_path / "raw_seqs" / f"{KEY}.mano.npy", {"right": {}, "left": {}})
    (tmp_path / "processed_seqs" / "s05").mkdir(parents=True)
    np.save(tmp_path / "processed_seqs" / f"{KEY}.npy", _entry())
    for view in range(9):
        folder = tmp_path / "images" / KEY / str(view)
        folder.mkdir(parents=True)
        for n in range(SKIP, FRAMES - SKIP):
            Image.new("RGB", EGO_SIZE if view == 0 else ALLO_SIZE).save(folder / f"{n:05d}.jpg")
    return tmp_path


def _check_allocentric(source):
    assert len(source) == 8 and [s.view for s in source.sequences] == list(range(1, 9))
    seq = source[2]  # view 3
    assert seq.num_frames == FRAMES - 2 * SKIP and seq.image_path(0).name == "00010.jpg"
    gt = seq.gt
    assert gt["present"].tolist() == [[True, True], [False, True], [True, True], [False, False], [True, True]]
    assert seq.unannotated == 1
    a = SKIP - OFFSET  # frame 0 shows annotation frame 8
    j = gt["keypoints_3d"][0, 0]
    # our thumb tip (4) is smplx's joint 16 (vertex 744), our index MCP (5) its joint 1
    np.testing.assert_allclose(j[4], _right(a, 3)[16], atol=1e-6)
    np.testing.assert_allclose(j[5], _right(a, 3)[1], atol=1e-6)
    np.testing.assert_allclose(gt["keypoints_3d"][2, 1, 0], _left(a + 2, 3)[0], atol=1e-6)  # left in slot 1
    assert not gt["keypoints_3d"][3].any()  # absent hands hold zeros, not the unscored joints
    # 2D by hand with view 3's intrinsics: fx 503, fy 505, principal point (30, 40)
    x, y, z = _right(a, 3)[0]
    np.testing.assert_allclose(gt["keypoints_2d"][0, 0, 0], [503 * x / z + 30, 505 * y / z + 40], rtol=1e-6)
    assert gt["K"][0, 0, 0] == 503.0 and gt["image_size"].tolist() == list(ALLO_SIZE)
    np.testing.assert_allclose(gt["mano"][0, 1, [0, 3, 48, 58]], [0.5, 1.5, 2.5, 3.5])  # rot, pose, shape, trans
    np.testing.assert_allclose(gt["mano_rot_cam"][0, 0], np.arange(3) + (a * 9 + 3) * 3)
    assert not bool(gt["has_mano"]) and not gt["distortion"].any()
    assert seq.frame(4).shape == (ALLO_SIZE[1], ALLO_SIZE[0], 3)


def test_allocentric_views_from_processed_sequences(root):
    _check_allocentric(ArcticSequences(root))


def test_the_same_from_the_downloadable_split_file(root):
    os.remove(root / "processed_seqs" / f"{KEY}.npy")
    (root / "splits").mkdir()
    np.save(root / "splits" / "p1_val.npy", {"data_dict": {KEY: _entry()}, "imgnames": ["unused"]})
    _check_allocentric(ArcticSequences(root, "p1", "val"))


def test_the_egocentric_view(root):
    source = ArcticSequences(root, "p2", "val")
    assert len(source) == 1 and source[0].view == 0
    gt = source[0].gt
    np.testing.assert_allclose(gt["K"][2], K_EGO)  # the moving camera's intrinsics from the annotations
    np.testing.assert_allclose(gt["distortion"][0], np.arange(8) * 0.1, rtol=1e-6)
    x, y, z = _right(SKIP - OFFSET, 0)[0]
    np.testing.assert_allclose(gt["keypoints_2d"][0, 0, 0], [700 * x / z + 40, 710 * y / z + 30], rtol=1e-6)
    assert gt["image_size"].tolist() == list(EGO_SIZE) and source[0].frame(0).shape == (60, 80, 3)
    assert [s.view for s in ArcticSequences(root, "p2", "val", views=(0, 5))] == [0, 5]


def test_without_camera_frame_annotations_mano_is_required(root):
    os.remove(root / "processed_seqs" / f"{KEY}.npy")  # raw_seqs/*.mano.npy alone: world-frame MANO only
    with pytest.raises(UserError, match=r"processed_seqs/s05/box_use_01.npy: missing.*need MANO") as e:
        ArcticSequences(root)
    assert "\n" not in str(e.value) and "box_use_01.mano.npy" in str(e.value)


def test_annotations_are_read_on_first_use_and_named_when_malformed(root):
    bad = _entry()
    del bad["cam_coord"]["joints.left"]
    np.save(root / "processed_seqs" / f"{KEY}.npy", bad)
    source = ArcticSequences(root)  # indexing reads no annotation
    with pytest.raises(UserError, match=r"box_use_01.npy: no usable cam_coord.*KeyError.*joints.left") as e:
        source[0].gt
    assert "\n" not in str(e.value)
    os.remove(root / "processed_seqs" / f"{KEY}.npy")
    (root / "splits").mkdir()
    np.save(root / "splits" / "p1_val.npy", {"data_dict": {"s05/other_seq": _entry()}})
    with pytest.raises(UserError, match=r"p1_val.npy: data_dict has no entry s05/box_use_01"):
        ArcticSequences(root)[0].gt


def test_a_pickle_naming_anything_else_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return os.system, ("echo pwned",)

    np.save(tmp_path / "evil.npy", np.array({"cam_coord": Evil()}, dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match="refused to load '(posix|nt).system'"):
        read_npy_dict(tmp_path / "evil.npy")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    with pytest.raises(UserError, match="plain float64 array"):
        read_npy_dict(tmp_path / "plain.npy")


def test_the_splits_are_the_toolkits(root):
    path = root / "splits_json" / "protocol_p1.json"
    assert protocol_sequences(path, "train") == ["s01/box_grab_01"]  # the train list less val and test
    assert protocol_sequences(path, "val") == [KEY]
    with pytest.raises(UserError, match="ground truth is hidden"):
        ArcticSequences(root, "p1", "test")
    with pytest.raises(UserError, match="protocol must be one of p1, p2"):
        ArcticSequences(root, "p3")
    with pytest.raises(UserError, match="views are 0"):
        ArcticSequences(root, views=(9,))


def test_layout_mistakes_name_the_first_file_missing(root, tmp_path_factory):
    os.remove(root / "images" / KEY / "4" / "00010.jpg")
    with pytest.raises(UserError, match=r"images/s05/box_use_01/4/00010.jpg: missing"):
        ArcticSequences(root)
    os.remove(root / "raw_seqs" / f"{KEY}.object.npy")
    with pytest.raises(UserError, match=r"raw_seqs/s05/box_use_01.object.npy: missing"):
        ArcticSequences(root)
    (root / "splits_json" / "protocol_p1.json").write_text(json.dumps({"train": [], "val": ["box"], "test": []}))
    with pytest.raises(UserError, match=r"protocol_p1.json: val entry 'box' is not <subject>/<seq>"):
        ArcticSequences(root)
    misc = json.loads((root / "meta" / "misc.json").read_text())
    del misc["s05"]["ioi_offset"]
    (root / "meta" / "misc.json").write_text(json.dumps(misc))
    with pytest.raises(UserError, match=r"misc.json: subject s05 has no usable .*ioi_offset") as e:
        ArcticSequences(root)
    assert "\n" not in str(e.value)
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(UserError, match=r"meta/misc.json: missing \(ARCTIC layout"):
        ArcticSequences(empty)
