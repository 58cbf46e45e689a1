"""The InterHand2.6M reader on the 4 real frames of ../shared/samples/datasets/interhand26m
(mmpose's test sample of the official annotation files), checked against computations
made here independently from the raw JSON. Skipped when the samples are not there."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fourdhands.data.interhand import read_interhand_frames
from fourdhands.errors import UserError

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "datasets" / "interhand26m"
pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"{SAMPLES} is not here")

FILES = ("test_interhand2.6m_data.json", "test_interhand2.6m_camera.json", "test_interhand2.6m_joint_3d.json")


def raw(name):
    return json.loads((SAMPLES / name).read_text())


@pytest.fixture(scope="module")
def frames():
    return {f.image_path.name: f for f in read_interhand_frames(SAMPLES)}


def test_four_frames_with_their_hands(frames):
    assert sorted(frames) == ["image2017.jpg", "image29590.jpg", "image44669.jpg", "image69148.jpg"]
    expect = {"image69148.jpg": [True, True], "image44669.jpg": [True, True],
              "image29590.jpg": [False, True], "image2017.jpg": [True, False]}
    for name, f in frames.items():
        assert f.present.tolist() == expect[name], name
        assert f.keypoints_3d.shape == (2, 21, 3) and f.keypoints_2d.shape == (2, 21, 2)
        assert f.valid.shape == (2, 21) and f.valid.dtype == bool and f.boxes.shape == (2, 4)
        # every joint of a present hand is annotated valid in these frames, none of an absent one
        assert (f.valid == f.present[:, None]).all(), name
        W, H = f.image_size
        assert (W, H) == ((512, 334) if name == "image2017.jpg" else (334, 512))
        assert not f.boxes[~f.present].any()


def test_intrinsics_are_the_camera_files(frames):
    cams = raw(FILES[1])
    f = frames["image69148.jpg"]
    fx, fy = cams["3"]["focal"]["400026"]
    px, py = cams["3"]["princpt"]["400026"]
    assert np.allclose(f.K, [[fx, 0, px], [0, fy, py], [0, 0, 1]], rtol=0, atol=1e-9)


def _by_hand(R, c, X):
    """camrot @ (X - campos), written out in plain float64 arithmetic."""
    d = [X[i] - c[i] for i in range(3)]
    return [sum(R[r][k] * d[k] for k in range(3)) for r in range(3)]


def test_world_to_camera_worked_by_hand_and_wrist_is_joint_20_and_41(frames):
    cam = raw(FILES[1])["3"]
    R, c = cam["camrot"]["400026"], cam["campos"]["400026"]
    world = raw(FILES[2])["3"]["69148"]["world_coord"]
    f = frames["image69148.jpg"]
    # wrist: keypoint 0 of each hand = InterHand joint 20 (right) and 41 (left)
    for hand, joint in ((0, 20), (1, 41)):
        expected_mm = _by_hand(R, c, world[joint])
        assert np.allclose(f.keypoints_3d[hand, 0] * 1000, expected_mm, rtol=0, atol=1e-9)
        # pixels by hand too: u = fx x / z + cx
        (fx, fy), (px, py) = cam["focal"]["400026"], cam["princpt"]["400026"]
        x, y, z = expected_mm
        assert np.allclose(f.keypoints_2d[hand, 0], [fx * x / z + px, fy * y / z + py], rtol=0, atol=1e-9)
    # thumb tip is InterHand 0 / 21 and OpenPose 4; middle MCP (base of the middle) is
    # InterHand 11 / 32 and OpenPose 9; index MCP is InterHand 7 and OpenPose 5
    for hand_joint, ih in ((4, 0), (9, 11), (5, 7), (1, 3), (20, 16), (17, 19)):
        for hand, offset in ((0, 0), (1, 21)):
            assert np.allclose(f.keypoints_3d[hand, hand_joint] * 1000, _by_hand(R, c, world[ih + offset]),
                               rtol=0, atol=1e-9)


def test_the_camera_frame_is_opencv(frames):
    for f in frames.values():
        for h in np.flatnonzero(f.present):
            p = f.keypoints_3d[h][f.valid[h]]
            assert (p[:, 2] > 0.5).all() and (p[:, 2] < 2.0).all()  # in front, about a metre away


def test_projections_land_in_the_image(frames):
    for name, f in frames.items():
        W, H = f.image_size
        for h in np.flatnonzero(f.present):
            uv = f.keypoints_2d[h][f.valid[h]]
            assert (uv >= 0).all() and (uv[:, 0] < W).all() and (uv[:, 1] < H).all(), name


def test_annotation_bbox_is_the_union_of_the_hand_boxes_grown_by_1_2(frames):
    """The dataset's bbox (computed by its authors from their own 2D joints) is the box of
    both hands' projected valid joints, scaled by 1.2 about its centre: a check of the
    projection, the validity and the left/right split at once."""
    data = {im["id"]: im for im in raw(FILES[0])["images"]}
    for ann in raw(FILES[0])["annotations"]:
        f = frames[data[ann["image_id"]]["file_name"]]
        x, y, w, h = ann["bbox"]
        on = f.present
        lo = (f.boxes[on, :2] - f.boxes[on, 2:] / 2).min(axis=0)
        hi = (f.boxes[on, :2] + f.boxes[on, 2:] / 2).max(axis=0)
        assert np.allclose([x + w / 2, y + h / 2], (lo + hi) / 2, atol=0.05)
        assert np.allclose([w, h], 1.2 * (hi - lo), atol=0.05)
        assert np.allclose(f.bbox, [x + w / 2, y + h / 2, w, h])


def test_boxes_are_the_valid_keypoints_box(frames):
    for f in frames.values():
        for h in np.flatnonzero(f.present):
            uv = f.keypoints_2d[h][f.valid[h]]
            cx, cy, sx, sy = f.boxes[h]
            assert np.isclose(cx - sx / 2, uv[:, 0].min()) and np.isclose(cx + sx / 2, uv[:, 0].max())
            assert np.isclose(cy - sy / 2, uv[:, 1].min()) and np.isclose(cy + sy / 2, uv[:, 1].max())


def test_bones_are_hand_sized(frames):
    parents = [-1] + [0 if i % 4 == 0 else i for i in range(20)]
    for name, f in frames.items():
        for h in np.flatnonzero(f.present):
            k = f.keypoints_3d[h]
            assert 0.06 < np.linalg.norm(k[9] - k[0]) < 0.12, name  # wrist -> middle MCP
            bones = np.linalg.norm(k[1:] - k[parents[1:]], axis=1)
            assert (bones > 0.01).all() and (bones < 0.12).all(), (name, bones)
            # distal segments are shorter than the wrist-to-MCP palm segments
            palm = bones[[4, 8, 12, 16]]  # wrist -> index/middle/ring/pinky MCP
            tips = bones[[7, 11, 15, 19]]
            assert (tips < palm).all(), name


def test_joint_valid_agrees_with_the_joint_3d_file(frames):
    j3d = raw(FILES[2])
    for f in frames.values():
        jv = np.asarray(j3d[str(f.capture)][str(f.frame_idx)]["joint_valid"], bool).reshape(2, 21)
        # in InterHand order per hand the wrist is last; compare wrist validity and counts
        assert (jv[:, 20] == f.valid[:, 0]).all()
        assert (jv.sum(axis=1) == f.valid.sum(axis=1)).all()


def _copy(tmp_path):
    dst = tmp_path / "ih"
    shutil.copytree(SAMPLES, dst)
    for p in dst.iterdir():
        p.chmod(0o644)
    dst.chmod(0o755)
    return dst


def test_a_missing_file_is_a_one_line_error_naming_it(tmp_path):
    dst = _copy(tmp_path)
    (dst / FILES[1]).unlink()
    with pytest.raises(UserError) as e:
        read_interhand_frames(dst)
    msg = str(e.value)
    assert FILES[1] in msg and "\n" not in msg


def test_a_missing_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(UserError, match="no such folder"):
        read_interhand_frames(tmp_path / "nowhere")


def test_malformed_json_is_a_one_line_error_naming_the_file(tmp_path):
    dst = _copy(tmp_path)
    (dst / FILES[2]).write_text('{"3": {"69148": [')
    with pytest.raises(UserError) as e:
        read_interhand_frames(dst)
    msg = str(e.value)
    assert FILES[2] in msg and "not valid JSON" in msg and "\n" not in msg


def test_missing_entries_and_images_are_one_line_errors(tmp_path):
    dst = _copy(tmp_path)
    cams = json.loads((dst / FILES[1]).read_text())
    del cams["3"]
    (dst / FILES[1]).write_text(json.dumps(cams))
    with pytest.raises(UserError) as e:
        read_interhand_frames(dst)
    assert FILES[1] in str(e.value) and "capture 3" in str(e.value) and "\n" not in str(e.value)

    dst = _copy(tmp_path / "again")
    (dst / "image2017.jpg").unlink()
    with pytest.raises(UserError) as e:
        read_interhand_frames(dst)
    assert "image2017.jpg" in str(e.value) and "\n" not in str(e.value)


def test_the_shipped_network_places_real_hands_in_3d(frames):
    """A guard on the whole preprocessing chain (crops, upright turn, normalisation, crop
    frame, the shipped weights): the shipped network on these real frames, given their
    true boxes, 2D wrist/knuckle and intrinsics, stays near its measured wrist-aligned
    MPJPE (benchmarks/results/real_cpu.md); a broken stage sends it past 80 mm."""
    pytest.importorskip("mediapipe")
    from PIL import Image

    from fourdhands.pipeline import Reconstructor, TrackedHand
    from fourdhands.run import load_network

    net, _ = load_network(None, None, "cpu")
    errors = []
    for f in frames.values():
        image = np.asarray(Image.open(f.image_path).convert("RGB"))
        hands = tuple(TrackedHand(tuple(f.boxes[h]), 1.0, f.keypoints_2d[h]) if f.present[h] else None
                      for h in range(2))
        recon = Reconstructor(net, gap=1)
        result = (recon.push(image, hands, focal=float(np.mean(f.focal)), principal_point=f.principal_point)
                  + recon.finish())[0]
        for h, side in enumerate(("right", "left")):
            if f.present[h]:
                pred = result.hands[side].keypoints_3d
                pred, gt = pred - pred[:1], f.keypoints_3d[h] - f.keypoints_3d[h][:1]
                errors.append(np.linalg.norm(pred - gt, axis=-1)[f.valid[h]].mean())
    assert len(errors) == 6
    assert 1000 * np.mean(errors) < 60.0, errors
