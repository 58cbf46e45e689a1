"""The main job (``fourdhands demo``) and the command line, as a user runs them."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from fourdhands.checkpoint import save_checkpoint
from fourdhands.cli import main
from fourdhands.model.config import model_config
from fourdhands.model.network import FourDHands


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    torch.manual_seed(0)
    net = FourDHands(model_config("tiny", "full", image_size=(64, 48), seq_len=3))
    ckpt = save_checkpoint(tmp_path_factory.mktemp("ckpt") / "step-0000001", net,
                           {"train": {"sample": {"gap": 2}}})
    out = tmp_path_factory.mktemp("demo") / "nested" / "out"
    assert main(["demo", "-o", str(out), "--ckpt", str(ckpt), "--detector", "boxes"]) == 0
    return out, ckpt


def test_demo_runs_the_pipeline_on_its_clip_and_scores_it(demo, capsys):
    out, _ = demo
    assert (out / "input" / "clip.mp4").is_file() and (out / "input" / "ground_truth.npz").is_file()
    for name in ("overlay.mp4", "side.mp4", "summary.json"):
        assert (out / "result" / name).is_file(), name
    report = json.loads((out / "metrics.json").read_text())
    # the summary names the folder the results are in, not the scratch folder they were written to
    assert json.loads((out / "result" / "summary.json").read_text())["output"] == str(out / "result")
    assert report["run"]["output"] == str(out / "result")
    gt = np.load(out / "input" / "ground_truth.npz")
    frames = len(gt["present"])
    assert report["run"]["frames"] == frames == len(list((out / "result" / "frames").glob("*.npz")))
    # true boxes: every true hand found, none invented
    assert report["metrics"]["found"] == {"right": 1.0, "left": 1.0}
    assert report["metrics"]["invented"] == {"right": 0, "left": 0}
    for side in ("right", "left"):
        m = report["metrics"][side]
        assert all(np.isfinite(m[k]) and m[k] > 0 for k in ("mpjpe", "mpvpe", "mrrpe", "mean_pose_mpjpe")), m
    # the reported figures are those of the written frames against the written truth,
    # recomputed here from their definitions (mm, every true hand found)
    from fourdhands.export import read_params

    records = [read_params(out / "result" / "frames" / f"frame_{t:06d}.npz") for t in range(frames)]
    for h, side in enumerate(("right", "left")):
        errors = []
        for t in np.nonzero(gt["present"][:, h])[0]:
            p, g = records[t][side]["keypoints_3d"], gt["keypoints_3d"][t, h].astype(float)
            errors.append(np.linalg.norm((p - p[0]) - (g - g[0]), axis=1).mean())
        assert report["metrics"][side]["mpjpe_wrist"] == pytest.approx(1000 * np.mean(errors), rel=1e-6)
    both = [t for t in range(frames) if gt["present"][t].all()]
    mrrpe = np.mean([np.linalg.norm(records[t]["v"] - gt["v"][t]) for t in both])
    assert report["metrics"]["right"]["mrrpe"] == pytest.approx(1000 * mrrpe, rel=1e-6)
    assert not [p for p in out.rglob(".*")], "temporary files left behind"


def test_demo_again_reuses_the_clip_and_replaces_the_result(demo):
    out, ckpt = demo
    clip = (out / "input" / "clip.mp4").stat().st_mtime_ns
    first = json.loads((out / "metrics.json").read_text())["metrics"]
    assert main(["demo", "-o", str(out), "--ckpt", str(ckpt), "--detector", "boxes"]) == 0
    assert (out / "input" / "clip.mp4").stat().st_mtime_ns == clip
    again = json.loads((out / "metrics.json").read_text())["metrics"]
    assert again["right"]["mpjpe"] == pytest.approx(first["right"]["mpjpe"])


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


def test_missing_mano_file_is_a_one_line_error(tmp_path, demo, capsys):
    missing = tmp_path / "MANO_RIGHT.pkl"
    assert main(["demo", "-o", str(tmp_path / "o"), "--ckpt", str(demo[1]), "--hand-model", str(missing)]) == 2
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
