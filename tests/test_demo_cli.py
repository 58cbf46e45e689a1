"""The main job (``fourdhands demo``) and the command line, as a user runs them."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from fourdhands.cli import main
from fourdhands.demo import HAND_COLORS, run_demo
from fourdhands.export import read_params
from fourdhands.hands import load_hand_model


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "nested" / "out"
    summary = run_demo(out)
    assert summary["out_dir"] == str(out)
    return out


def test_demo_writes_meshes_that_match_the_written_parameters(demo_dir):
    record = json.loads((demo_dir / "params.json").read_text())
    assert record["flat_hand_mean"] is True and record["units"] == "metres"
    assert record["hand_model"] == "open" and "OpenCV" in record["frame"]
    for side in ("right", "left"):
        mesh = trimesh.load(demo_dir / f"{side}_hand.obj", process=False)
        model = load_hand_model("open", side, dtype=torch.float64)
        p = {k: torch.tensor(record[side][k])[None] for k in ("global_orient", "hand_pose", "betas", "transl")}
        again = model(**p, flat_hand_mean=record["flat_hand_mean"])
        # OBJ stores ~6 significant digits
        np.testing.assert_allclose(mesh.vertices, again.vertices[0].numpy(), atol=1e-5)
        np.testing.assert_allclose(record[side]["keypoints_3d"], again.keypoints[0].numpy(), atol=1e-8)
        assert mesh.is_watertight
    # v is the left wrist minus the right wrist, and both hands are in front of the camera
    v = np.array(record["v_left_minus_right_wrist"])
    np.testing.assert_allclose(v, np.array(record["left"]["keypoints_3d"][0]) - record["right"]["keypoints_3d"][0])
    npz = read_params(demo_dir / "params.npz")
    assert npz["right"]["vertices"][:, 2].min() > 0.2 and npz["left"]["vertices"][:, 2].min() > 0.2
    np.testing.assert_allclose(npz["v_left_minus_right_wrist"], v)
    assert npz["flat_hand_mean"] is True and npz["units"] == "metres"
    both = trimesh.load(demo_dir / "hands.ply", process=False)
    assert len(both.vertices) == len(npz["right"]["vertices"]) + len(npz["left"]["vertices"])
    scene = trimesh.load(demo_dir / "hands.glb")
    assert set(scene.geometry) == {"right_hand", "left_hand"}


def test_demo_hands_touch_but_do_not_merge(demo_dir):
    npz = read_params(demo_dir / "params.npz")
    r, l = npz["right"]["vertices"], npz["left"]["vertices"]
    gaps = np.linalg.norm(r[::7, None] - l[None, ::7], axis=2)
    assert gaps.min() < 0.01  # interlocked: fingers within a centimetre of the other hand
    assert np.linalg.norm(r.mean(0) - l.mean(0)) > 0.02  # two hands, not one on top of the other


def test_demo_pictures_show_both_hands(demo_dir):
    for name in ("hands.png", "gallery.png"):
        img = np.asarray(Image.open(demo_dir / name).convert("RGB")).astype(int)
        assert img.shape[0] >= 200 and img.shape[1] >= 3 * img.shape[0] - 10
    img = np.asarray(Image.open(demo_dir / "hands.png").convert("RGB")).astype(int)
    # pixels dominated by each hand's colour (blue-ish left, warm right) cover real area
    blue = (img[..., 2] > img[..., 0] + 40).mean()
    warm = (img[..., 0] > img[..., 2] + 40).mean()
    assert blue > 0.02 and warm > 0.02, (blue, warm)
    assert set(HAND_COLORS) == {"right", "left"}


def test_demo_leaves_no_temporary_files(demo_dir):
    assert not [p for p in os.listdir(demo_dir) if p.startswith(".")]


def test_help_lists_the_commands():
    res = subprocess.run([sys.executable, "-m", "fourdhands.cli", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "demo" in res.stdout


def test_output_path_that_is_a_file_is_a_one_line_error(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("precious")
    assert main(["demo", "-o", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(target) in err and "not a folder" in err
    assert target.read_text() == "precious"


def test_output_below_a_file_is_a_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["demo", "-o", str(blocker / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot create output folder" in err


def test_missing_mano_file_is_a_one_line_error(tmp_path, capsys):
    missing = tmp_path / "MANO_RIGHT.pkl"
    assert main(["demo", "-o", str(tmp_path / "o"), "--hand-model", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "MANO_RIGHT.pkl" in err


def test_synth_command_uses_the_split_seed_and_rejects_bad_splits(tmp_path, capsys):
    out = tmp_path / "occ"
    assert main(["synth", str(out), "--split", "occluded", "--sequences", "1", "--frames", "3", "--size", "64x48"]) == 0
    assert json.loads((out / "manifest.json").read_text())["seed"] == 1004
    assert "generated 1 sequences" in capsys.readouterr().out
    assert main(["synth", str(tmp_path / "x"), "--split", "nonsense"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nonsense" in err
