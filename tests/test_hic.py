"""The HIC reader on a fixture written here in InterWild's layout (HIC.json, the sequences'
rgb PNGs, one PLY mesh per hand and frame) with MANO-format files whose J_regressor picks
single vertices, so every keypoint is a known vertex: the joint order becomes OpenPose's
with the fingertip vertices, metres stay in HIC's camera frame, right/left meshes go to
slots 0/1, frames come in frame order, the both-hands-visible subset is flagged and is
the default split, and unannotated frames are absent and counted. Without the MANO files
the reader says that they are needed."""

import json
import shutil

import numpy as np
import pytest
import trimesh
from PIL import Image

from _mano_fixture import random_mano_data, write_npz
from fourdhands.data.hic import K, HICSequences, find_index, read_hic_index
from fourdhands.errors import UserError

MESH_DIR = "IJCV16___Results_MANO___parms_for___joints21/IJCV16___fakeGT___IJCV___{seq}___Model_Hand_{side}___ncomps45"
#: (image id, sequence, frame number, hand_type or None for no annotation, right mesh?, left mesh?)
IMAGES = [
    (13, "01", 3, "interacting", True, True),  # listed out of frame order on purpose
    (10, "01", 0, "interacting", True, True),
    (11, "01", 1, "interacting", True, True),
    (12, "01", 2, "right", True, False),
    (14, "01", 4, None, False, False),
    (31, "08", 1, "interacting", False, True),  # "interacting" but one mesh: not both
    (30, "08", 0, "left", False, True),
]


def _right(k):
    """The right mesh of frame k: vertex i at (0.05 + 0.1 mm * i, 2 cm + k mm, 0.6 m)."""
    v = np.zeros((778, 3))
    v[:, 0] = 0.05 + 1e-4 * np.arange(778)
    v[:, 1] = 0.02 + 0.001 * k
    v[:, 2] = 0.6
    return v


def _left(k):
    v = _right(k)
    v[:, 0] -= 0.2
    v[:, 2] = 0.7
    return v


@pytest.fixture(scope="module")
def mano(tmp_path_factory):
    """MANO-format files whose joint j is vertex 20 j + 1 (no fingertip among them)."""
    folder = tmp_path_factory.mktemp("mano")
    for seed, side in ((1, "RIGHT"), (2, "LEFT")):
        data = random_mano_data(seed=seed)
        data["J_regressor"] = np.zeros((16, 778))
        data["J_regressor"][np.arange(16), 20 * np.arange(16) + 1] = 1.0
        write_npz(folder / f"MANO_{side}.npz", data)
    return folder


def _write_dataset(root):
    images, annotations = [], []
    for image_id, seq, k, hand_type, right, left in IMAGES:
        name = f"{seq}/1/rgb/{k:03d}.png"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (640, 480), (k * 40, 0, 0)).save(root / name)
        images.append({"id": image_id, "file_name": name, "width": 640, "height": 480, "seq_name": seq})
        if hand_type is None:
            continue
        ann = {"id": 100 + image_id, "image_id": image_id, "bbox": [0, 0, 640, 480], "hand_type": hand_type,
               "joint_2d": [[0, 0]] * 28, "joint_valid": [0] * 28}
        for side, has, mesh in (("right", right, _right), ("left", left, _left)):
            path = f"{MESH_DIR.format(seq=seq, side=side[0].upper())}/{k:03d}.ply" if has else None
            if has:
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                trimesh.Trimesh(mesh(k), [[0, 1, 2]], process=False).export(root / path)
            ann[f"{side}_mano_path"] = path
        annotations.append(ann)
    (root / "HIC.json").write_text(json.dumps({"images": images, "annotations": annotations}))
    return root


@pytest.fixture
def root(tmp_path):
    """InterWild's data/HIC/data."""
    return _write_dataset(tmp_path / "HIC" / "data")


def _edit_index(root, change):
    data = json.loads((root / "HIC.json").read_text())
    change(data)
    (root / "HIC.json").write_text(json.dumps(data))


def _one_line(excinfo):
    assert "\n" not in str(excinfo.value)
    return str(excinfo.value)


def test_all_split_order_frame_slots_and_unannotated(root, mano):
    source = HICSequences(root, "all", mano=mano)
    assert [s.seq_name for s in source.sequences] == ["01", "08"] and source.dropped == 0
    seq = source[0]
    assert seq.frame_numbers == [0, 1, 2, 3, 4]  # frame order, not HIC.json's listing order
    assert seq.both_visible.tolist() == [True, True, False, True, False]
    gt = seq.gt
    assert gt["present"].tolist() == [[True, True], [True, True], [True, False], [True, True], [False, False]]
    assert seq.unannotated == 1  # frame 4 has no annotation
    right, left = gt["keypoints_3d"][1]
    # OpenPose order: wrist = MANO joint 0 (vertex 1), thumb CMC = joint 13 (vertex 261),
    # thumb tip = vertex 745, index MCP = joint 1 (vertex 21), middle tip = vertex 444,
    # pinky MCP = joint 7 (vertex 141), pinky tip = vertex 673
    for ours, vertex in ((0, 1), (1, 261), (4, 745), (5, 21), (12, 444), (17, 141), (20, 673)):
        np.testing.assert_allclose(right[ours], _right(1)[vertex], atol=1e-6)
        np.testing.assert_allclose(left[ours], _left(1)[vertex], atol=1e-6)
    np.testing.assert_allclose(gt["vertices"][3, 0], _right(3), atol=1e-6)  # metres, camera frame
    assert not gt["vertices"][2, 1].any() and not gt["keypoints_3d"][2, 1].any()  # right-only frame
    # 2D by hand with HIC's camera: f = 525, principal point (319.5, 239.5)
    x, y, z = _right(1)[1]
    np.testing.assert_allclose(gt["keypoints_2d"][1, 0, 0], [525 * x / z + 319.5, 525 * y / z + 239.5], atol=1e-4)
    np.testing.assert_allclose(gt["v"][1], _left(1)[1] - _right(1)[1], atol=1e-6)  # left - right wrist
    assert not gt["v"][2].any()  # one hand only: no relative vector
    np.testing.assert_array_equal(gt["K"][0], K)
    assert gt["both_visible"].tolist() == seq.both_visible.tolist()
    assert gt["image_size"].tolist() == [640, 480] and not bool(gt["has_mano"])
    assert seq.frame(3).shape == (480, 640, 3) and seq.frame(3)[0, 0, 0] == 120  # frame number 3's image
    single = source[1]
    assert single.frame_numbers == [0, 1] and not single.both_visible.any()
    assert single.gt["present"].tolist() == [[False, True], [False, True]]


def test_both_is_the_default_split_and_keeps_runs(root, mano):
    source = HICSequences(root.parent, mano=mano / "MANO_RIGHT.npz")  # data/HIC and a MANO file work too
    assert [(s.seq_name, s.frame_numbers) for s in source.sequences] == [("01", [0, 1]), ("01", [3])]
    assert source.dropped == 4  # 01's frames 2 and 4, 08's two frames
    assert all(s.gt["present"].all() and s.gt["both_visible"].all() for s in source.sequences)
    np.testing.assert_allclose(source[1].gt["keypoints_3d"][0, 1, 0], _left(3)[1], atol=1e-6)


def test_fingertips_are_selectable(root, mano):
    # InterWild's evaluation takes vertex 445 for the middle fingertip
    source = HICSequences(root, mano=mano, tips=(745, 317, 445, 556, 673))
    np.testing.assert_allclose(source[0].gt["keypoints_3d"][0, 0, 12], _right(0)[445], atol=1e-6)


def test_without_the_mano_files_it_says_they_are_needed(root, tmp_path):
    with pytest.raises(UserError, match="J_regressor.*MANO_RIGHT.pkl") as e:
        HICSequences(root)
    _one_line(e)
    with pytest.raises(UserError, match="open hand model cannot"):
        HICSequences(root, mano="open")
    with pytest.raises(UserError, match="no MANO_RIGHT.pkl or .npz"):
        HICSequences(root, mano=tmp_path)


def test_layout_mistakes_name_the_first_missing_file(root, mano, tmp_path):
    with pytest.raises(UserError, match="no such HIC folder"):
        HICSequences(tmp_path / "nope", mano=mano)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"empty/HIC.json: missing \(HIC layout"):
        HICSequences(tmp_path / "empty", mano=mano)
    (root / "01/1/rgb/002.png").unlink()
    (root / "01/1/rgb/004.png").unlink()
    with pytest.raises(UserError, match=r"01/1/rgb/002.png: missing \(an image") as e:
        HICSequences(root, mano=mano)
    _one_line(e)
    _write_dataset(root)
    shutil.rmtree(root / MESH_DIR.format(seq="08", side="L"))
    with pytest.raises(UserError, match=r"Model_Hand_L___ncomps45/000.ply: missing \(a mesh"):
        HICSequences(root, "all", mano=mano)
    with pytest.raises(UserError, match="HIC split must be one of both, all"):
        HICSequences(root, "test", mano=mano)


@pytest.mark.parametrize("change, message", [
    (lambda d: d["annotations"][0].update(hand_type="both"), r"annotation 113 \(image 13\) has hand_type 'both'"),
    (lambda d: d["annotations"][0].pop("image_id"), "annotation 0 has no usable image_id"),
    (lambda d: d["annotations"][1].update(image_id=13), "image 13 has more than one annotation"),
    (lambda d: d["annotations"][0].update(image_id=99), "refers to image 99"),
    (lambda d: d["annotations"][0].update(right_mano_path=3), "right_mano_path is 3"),
    (lambda d: d["images"][2].pop("file_name"), "image 2 is incomplete or malformed"),
    (lambda d: d.pop("images"), "not COCO-style HIC annotations"),
])
def test_a_malformed_index_names_the_file_and_entry(root, change, message):
    _edit_index(root, change)
    with pytest.raises(UserError, match=message) as e:
        read_hic_index(find_index(root))
    assert str(root / "HIC.json") in _one_line(e)


def test_not_json_and_bad_meshes(root, mano):
    mesh = root / MESH_DIR.format(seq="01", side="R") / "000.ply"
    mesh.write_text("not a mesh")
    source = HICSequences(root, mano=mano)
    with pytest.raises(UserError, match="000.ply: not a readable PLY mesh") as e:
        source[0].gt
    _one_line(e)
    trimesh.Trimesh(_right(0)[:100], [[0, 1, 2]], process=False).export(mesh)
    with pytest.raises(UserError, match="000.ply: 100 vertices, expected MANO's 778"):
        HICSequences(root, mano=mano)[0].gt
    (root / "HIC.json").write_text("{")
    with pytest.raises(UserError, match="HIC.json: not valid JSON"):
        HICSequences(root, mano=mano)
