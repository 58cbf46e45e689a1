"""``fourdhands run`` end to end on a synthetic clip with true boxes (no detector needed):
the files, their agreement with each other, resuming, and user mistakes."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from fourdhands.checkpoint import save_checkpoint
from fourdhands.cli import main
from fourdhands.demo import score
from fourdhands.export import read_params
from fourdhands.media import VideoWriter
from fourdhands.model.config import model_config
from fourdhands.model.network import FourDHands
from fourdhands.run import RunSettings, run
from fourdhands.synth.generate import generate
from fourdhands.synth.shards import SyntheticSequences

F = 10


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    net = FourDHands(model_config("tiny", "full", image_size=(64, 48), seq_len=3))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "step-0000001", net,
                           {"train": {"sample": {"gap": 2}}})


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip")
    generate(root / "synth", sequences=1, frames=F, seed=3, split="interacting", image_size=(160, 120),
             progress=False)
    seq = SyntheticSequences(root / "synth")[0]
    gt = dict(seq.gt)
    with VideoWriter(root / "clip.mp4", 30.0, (160, 120)) as video:
        for t in range(F):
            video.write(seq.frame(t))
    frames = {str(t): [{"box": gt["boxes"][t, h].tolist(), "hand": side, "score": 0.9}
                       for h, side in enumerate(("right", "left")) if gt["present"][t, h]]
              for t in range(F)}
    (root / "boxes.json").write_text(json.dumps({"frames": frames}))
    (root / "images").mkdir()
    for t in range(3):
        Image.fromarray(seq.frame(t)).save(root / "images" / f"f{t}.png")
    return root, gt


def _settings(ckpt, clip, **kw):
    return RunSettings(ckpt=str(ckpt), boxes=str(clip[0] / "boxes.json"), progress=False, **kw)


@pytest.fixture(scope="module")
def result(tmp_path_factory, ckpt, clip):
    out = tmp_path_factory.mktemp("run") / "out"
    summary = run(clip[0] / "clip.mp4", out, _settings(ckpt, clip, focal=float(clip[1]["K"][0, 0, 0])))
    return out, summary


def test_every_frame_gets_parameters_meshes_pictures_and_the_videos(result):
    out, summary = result
    names = [f"frame_{t:06d}" for t in range(F)]
    for folder, ext in (("frames", "json"), ("frames", "npz"), ("overlay", "jpg"), ("side", "jpg"), ("meshes", "glb")):
        assert sorted(p.stem for p in (out / folder).glob(f"*.{ext}")) == names, folder
    assert {"overlay.mp4", "side.mp4"} <= {p.name for p in out.iterdir()}
    assert summary["frames"] == summary["frames_written"] == F
    assert summary["frames_with_both_hands"] == F and summary["window"] == 3 and summary["gap"] == 2
    assert set(summary["seconds_per_stage"]) >= {"decode", "detection", "crops", "backbone", "fusion",
                                                  "rendering", "writing"}
    assert json.loads((out / "summary.json").read_text())["frames"] == F
    assert not [p for p in out.rglob(".*")], "temporary files left behind"


def test_the_written_files_agree_with_each_other(result):
    import trimesh

    out, _ = result
    record = read_params(out / "frames" / "frame_000004.npz")
    as_json = read_params(out / "frames" / "frame_000004.json")
    assert record["flat_hand_mean"] is True or record["flat_hand_mean"] == 1
    K = record["K"]
    for side in ("right", "left"):
        hand = record[side]
        assert np.allclose(hand["keypoints_3d"], as_json[side]["keypoints_3d"], atol=1e-9)
        proj = hand["keypoints_3d"] @ K.T
        assert np.allclose(proj[:, :2] / proj[:, 2:], hand["keypoints_2d"], atol=1e-6)
        assert hand["hand_pose"].shape == (45,) and hand["betas"].shape == (10,)
    assert np.allclose(record["left"]["keypoints_3d"][0] - record["right"]["keypoints_3d"][0], record["v"])
    scene = trimesh.load(out / "meshes" / "frame_000004.glb")
    right = scene.geometry["right"]
    assert np.allclose(np.sort(right.vertices, 0), np.sort(record["right"]["vertices"], 0), atol=1e-5)


def test_overlay_shows_the_frame_and_the_side_video_plays(result, clip):
    from fourdhands.media import open_source

    out, _ = result
    with open_source(clip[0] / "clip.mp4") as video:
        frame = next(iter(video)).image.astype(float)
    overlay = np.asarray(Image.open(out / "overlay" / "frame_000000.jpg")).astype(float)
    assert overlay.shape == (120, 160, 3)
    # the frame shows through (the untrained test network's meshes cover most of it, blended
    # at 35 % frame), and something is drawn over it
    assert np.corrcoef(overlay.mean(2).ravel(), frame.mean(2).ravel())[0, 1] > 0.6
    assert np.abs(overlay - frame).mean() > 5
    with open_source(out / "overlay.mp4") as video:
        assert video.count in (None, F) and len(list(video)) == F


def test_demo_scoring_of_a_perfect_run_is_zero(result, clip, tmp_path):
    # replace every predicted hand by the truth: the metrics must be zero and all found
    out, _ = result
    fake = tmp_path / "fake"
    shutil.copytree(out / "frames", fake / "frames")
    gt = clip[1]
    from fourdhands.export import write_params

    for t in range(F):
        rec = read_params(fake / "frames" / f"frame_{t:06d}.npz")
        for h, side in enumerate(("right", "left")):
            rec[side]["keypoints_3d"] = gt["keypoints_3d"][t, h].astype(float)
            rec[side]["vertices"] = gt["vertices"][t, h].astype(float)
        rec["v"] = gt["v"][t].astype(float)
        write_params(fake / "frames" / f"frame_{t:06d}.npz", rec)
    m = score(fake, gt)
    assert m["found"] == {"right": 1.0, "left": 1.0}
    for side in ("right", "left"):
        assert m[side]["mpjpe"] < 1e-3 and m[side]["mpvpe"] < 1e-3 and m[side]["mrrpe"] < 1e-3


def test_interrupted_run_resumes_to_the_same_result(tmp_path, ckpt, clip, result, monkeypatch):
    from fourdhands import outputs
    from fourdhands.errors import UserError

    out = tmp_path / "out"
    real = outputs.RunOutputs.store  # on the background writer's thread
    calls = {"n": 0}

    def flaky(self, *a, **k):
        if calls["n"] == 4:
            raise KeyboardInterrupt
        calls["n"] += 1
        return real(self, *a, **k)

    monkeypatch.setattr(outputs.RunOutputs, "store", flaky)
    settings = _settings(ckpt, clip, focal=float(clip[1]["K"][0, 0, 0]), render=False)
    with pytest.raises(UserError, match="--resume"):
        run(clip[0] / "clip.mp4", out, settings)
    assert len(list((out / "frames").glob("*.npz"))) == 4
    assert not list(out.glob(".*")), "the streamed videos' temporary files were left behind"
    monkeypatch.setattr(outputs.RunOutputs, "store", real)
    with pytest.raises(UserError, match="already holds results"):
        run(clip[0] / "clip.mp4", out, settings)
    settings.resume = True
    summary = run(clip[0] / "clip.mp4", out, settings)
    assert summary["frames_already_done"] == 4 and summary["frames_written"] == F - 4
    for t in range(F):
        a = read_params(out / "frames" / f"frame_{t:06d}.npz")
        b = read_params(result[0] / "frames" / f"frame_{t:06d}.npz")
        assert np.allclose(a["right"]["vertices"], b["right"]["vertices"], atol=1e-6), t


def test_images_and_folders(tmp_path, ckpt, clip):
    root, _ = clip
    boxes = root / "images_boxes.json"
    frames = json.loads((root / "boxes.json").read_text())["frames"]
    boxes.write_text(json.dumps({"frames": {f"f{t}": frames[str(t)] for t in range(3)}}))
    settings = RunSettings(ckpt=str(ckpt), boxes=str(boxes), progress=False)
    s = run(root / "images", tmp_path / "folder", settings)
    assert s["kind"] == "folder" and s["frames_written"] == 3 and s["window"] == 3
    s = run(root / "images", tmp_path / "independent", RunSettings(ckpt=str(ckpt), boxes=str(boxes),
                                                                   progress=False, independent=True))
    assert s["frames_written"] == 3 and s["frames_with_both_hands"] == 3
    assert sorted(p.stem for p in (tmp_path / "independent" / "frames").glob("*.npz")) == ["f0", "f1", "f2"]
    # unusual pixel formats go through: grey, RGBA, 16-bit
    image = np.asarray(Image.open(root / "images" / "f0.png"))
    for mode, picture in (("L", Image.fromarray(image).convert("L")),
                          ("RGBA", Image.fromarray(image).convert("RGBA")),
                          ("I;16", Image.fromarray((image[..., 0].astype(np.uint16) * 257)))):
        path = tmp_path / f"f0_{mode.replace(';', '')}.png"
        picture.save(path)
        b = tmp_path / f"{path.stem}.json"
        b.write_text(json.dumps({"frames": {path.stem: frames["0"]}}))
        s = run(path, tmp_path / f"single_{path.stem}", RunSettings(ckpt=str(ckpt), boxes=str(b), progress=False))
        assert s["kind"] == "image" and s["frames_with_both_hands"] == 1, mode


def test_an_unreadable_photo_is_skipped_with_a_warning_and_counted(tmp_path, ckpt, clip, capsys):
    import shutil

    root, _ = clip
    photos = tmp_path / "photos"
    shutil.copytree(root / "images", photos)
    (photos / "f1.png").write_bytes(b"not a png at all")
    frames = json.loads((root / "boxes.json").read_text())["frames"]
    boxes = tmp_path / "b.json"
    boxes.write_text(json.dumps({"frames": {f"f{t}": frames[str(t)] for t in range(3)}}))
    argv = ["run", str(photos), "--independent", "--ckpt", str(ckpt), "--boxes", str(boxes), "--no-render"]
    capsys.readouterr()
    assert main([*argv, "-o", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "f1.png: not a readable image" in err and "skipped" in err
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["files_skipped"] == 1 and summary["frames_written"] == 2
    assert sorted(p.stem for p in (tmp_path / "o" / "frames").glob("*.npz")) == ["f0", "f2"]
    assert summary["output"] == str(tmp_path / "o")
    # --strict: the same run, then a non-zero exit at the end
    assert main([*argv, "-o", str(tmp_path / "s"), "--strict"]) == 2
    assert "1 unreadable files were skipped (--strict)" in capsys.readouterr().err
    assert len(list((tmp_path / "s" / "frames").glob("*.npz"))) == 2
    # a sequence folder keeps the rule: an unreadable frame stops the run
    assert main(["run", str(photos), "--ckpt", str(ckpt), "--boxes", str(boxes), "--no-render",
                 "-o", str(tmp_path / "q")]) == 2


def test_a_clip_without_hands_succeeds_empty(tmp_path, ckpt, clip, capsys):
    empty = tmp_path / "none.json"
    empty.write_text(json.dumps({"frames": {}}))
    assert main(["run", str(clip[0] / "clip.mp4"), "-o", str(tmp_path / "o"), "--ckpt", str(ckpt),
                 "--boxes", str(empty), "--no-render"]) == 0
    printed = capsys.readouterr().out
    assert "no hands were found" in printed
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["frames_without_hands"] == F
    assert not list((tmp_path / "o" / "meshes").glob("*.glb"))


def _one_line_error(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err


def test_bad_inputs_are_one_line_errors_and_write_nothing(tmp_path, ckpt, clip, capsys):
    root, _ = clip
    base = ["-o", str(tmp_path / "out"), "--ckpt", str(ckpt), "--boxes", str(root / "boxes.json")]
    _one_line_error(capsys, ["run", str(tmp_path / "missing.mp4"), *base], "no such file")
    bad_image = tmp_path / "bad.jpg"
    bad_image.write_bytes(b"\xff\xd8garbage")
    _one_line_error(capsys, ["run", str(bad_image), *base], "bad.jpg")
    cut = tmp_path / "cut.mp4"
    data = (root / "clip.mp4").read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    assert main(["run", str(cut), *base[:1], str(tmp_path / "cut_out"), *base[2:]]) == 2
    assert "cut.mp4" in capsys.readouterr().err
    zero = tmp_path / "zero.mp4"
    with VideoWriter(zero, 30.0, (64, 48)):
        pass
    _one_line_error(capsys, ["run", str(zero), *base], "no video frames")
    boxes = tmp_path / "boxes.json"
    boxes.write_text('{"frames": {"0": [{"box": [1, 2, -3, 4], "hand": "right"}]}}')
    _one_line_error(capsys, ["run", str(root / "clip.mp4"), *base[:4], "--boxes", str(boxes)], "boxes.json")
    other = tmp_path / "other"
    shutil.copytree(ckpt, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["model"]["backbone"] = "small"
    (other / "config.json").write_text(json.dumps(cfg))
    _one_line_error(capsys, ["run", str(root / "clip.mp4"), "-o", str(tmp_path / "out"), "--ckpt", str(other),
                             "--boxes", str(root / "boxes.json")], "made for backbone 'tiny', its config says 'small'")
    not_mano = tmp_path / "MANO_RIGHT.pkl"
    not_mano.write_bytes(b"not a pickle")
    _one_line_error(capsys, ["run", str(root / "clip.mp4"), *base, "--hand-model", str(not_mano)], "MANO_RIGHT.pkl")
    _one_line_error(capsys, ["run", str(root / "clip.mp4"), *base, "--focal", "-3"], "positive")
    assert not (tmp_path / "out").exists(), "a failed run wrote its output folder"


def test_refine_and_smooth_write_what_they_changed_and_say_it(tmp_path, ckpt, clip, result, capsys):
    from fourdhands.export import read_params
    from fourdhands.refine import TERMS, RefineConfig

    out = tmp_path / "refined"
    s = run(clip[0] / "clip.mp4", out, _settings(ckpt, clip, focal=float(clip[1]["K"][0, 0, 0]), render=False,
                                                   refine=True, smooth=True))
    assert s["frames_written"] == F
    t = s["temporal"]
    assert t["refine"] and t["smooth"] and t["refinement"]["frames"] >= F
    assert set(t["refinement"]["terms_per_frame"]) == set(TERMS) and t["refinement"]["depth_outliers"] == []
    terms = t["refinement"]["terms_per_frame"]
    weights = RefineConfig()

    def energy(when):
        return sum(getattr(weights, k) * v[when] for k, v in terms.items())
    assert energy("after") < energy("before")  # the optimisation lowered what it minimises
    # the written frames are the refined ones, and agree with themselves
    a = read_params(out / "frames" / "frame_000004.npz")["right"]
    b = read_params(result[0] / "frames" / "frame_000004.npz")["right"]
    assert not np.allclose(a["keypoints_3d"], b["keypoints_3d"])
    p = a["keypoints_3d"] @ read_params(out / "frames" / "frame_000004.npz")["K"].T
    np.testing.assert_allclose(a["keypoints_2d"], p[:, :2] / p[:, 2:], atol=1e-3)
    # the clip's animation, read back by trimesh: both hands, every frame's mesh
    import trimesh

    scene = trimesh.load(out / "animation.glb", force="scene")
    assert {"right_hand", "left_hand"} <= set(scene.graph.nodes) and s["animation"] == "animation.glb"
    # a single image has no motion: said, and left alone
    frames = json.loads((clip[0] / "boxes.json").read_text())["frames"]
    boxes = tmp_path / "f0.json"
    boxes.write_text(json.dumps({"frames": {"f0": frames["0"]}}))
    capsys.readouterr()
    one = run(clip[0] / "images" / "f0.png", tmp_path / "one", RunSettings(
        ckpt=str(ckpt), boxes=str(boxes), progress=False, refine=True, render=False))
    assert "--refine / --smooth act on a sequence" in capsys.readouterr().err
    assert one["temporal"] is None and one["animation"] is None
