"""Data specs (``KIND:PATH``) and real datasets as sequence sources: InterHand2.6M's 4 real
frames (../shared/samples/datasets/interhand26m) read as sequences, windowed like
synthetic data, and scored by ``fourdhands eval --data interhand2.6m:PATH`` with only
their annotated joints, equal to a computation made here from the raw files."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fourdhands.checkpoint import load_checkpoint, save_checkpoint
from fourdhands.cli import main
from fourdhands.data.dataset import HandWindows
from fourdhands.data.sample import SampleConfig
from fourdhands.data.sources import InterHandSequences, open_sequences, parse_spec
from fourdhands.errors import UserError
from fourdhands.evaluate import predict_split
from fourdhands.model.config import model_config
from fourdhands.model.network import FourDHands

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "datasets" / "interhand26m"
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"{SAMPLES} is not here")


def test_data_specs():
    assert parse_spec("interhand2.6m:/data/IH26M/test") == ("interhand2.6m", Path("/data/IH26M/test"))
    assert parse_spec("InterHand2.6M:x") == ("interhand2.6m", Path("x"))
    assert parse_spec("data/synth/interacting") == ("synth", Path("data/synth/interacting"))
    assert parse_spec("synth:data/s") == ("synth", Path("data/s"))
    assert parse_spec("C:\\\\data\\\\s") == ("synth", Path("C:\\\\data\\\\s"))  # a drive letter, not a kind
    with pytest.raises(UserError, match="unknown dataset kind 'freihandx'") as e:
        parse_spec("freihandx:/data")
    assert "\\n" not in str(e.value)


@pytest.fixture(scope="module")
def raw():
    data = json.loads((SAMPLES / "test_interhand2.6m_data.json").read_text())
    cams = json.loads((SAMPLES / "test_interhand2.6m_camera.json").read_text())
    joints = json.loads((SAMPLES / "test_interhand2.6m_joint_3d.json").read_text())
    return data, cams, joints


@needs_samples
def test_interhand_sequences_carry_the_files_joints_and_validity(raw):
    data, cams, joints = raw
    source = open_sequences(f"interhand2.6m:{SAMPLES}")
    assert isinstance(source, InterHandSequences) and len(source) == 4  # 4 captures / sequences
    images = {im["id"]: im for im in data["images"]}
    by_name = {}
    for i in range(len(source)):
        seq = source[i]
        assert seq.num_frames == 1 and seq.gt["has_mano"] == np.asarray(False)
        by_name[seq.image_path(0).name] = seq
    for ann in data["annotations"]:
        im = images[ann["image_id"]]
        seq = by_name[Path(im["file_name"]).name]
        gt = seq.gt
        cam = {k: np.asarray(cams[str(im["capture"])][k][str(im["camera"])], float)
               for k in ("campos", "camrot", "focal", "princpt")}
        world = np.asarray(joints[str(im["capture"])][str(im["frame_idx"])]["world_coord"], float)
        cam_mm = (world - cam["campos"]) @ cam["camrot"].T
        # the right wrist is the files' joint 20, the left's joint 41; ours are keypoint 0
        np.testing.assert_allclose(gt["keypoints_3d"][0, 0, 0], cam_mm[20] / 1000, atol=1e-9)
        np.testing.assert_allclose(gt["keypoints_3d"][0, 1, 0], cam_mm[41] / 1000, atol=1e-9)
        # 2D from R (X - campos) and the intrinsics lies in the annotated bbox (grown by 10 %)
        valid = np.asarray(ann["joint_valid"], float).reshape(42) > 0
        uv = cam_mm[:, :2] / cam_mm[:, 2:] * cam["focal"] + cam["princpt"]
        x, y, w, h = ann["bbox"]
        inside = (uv[:, 0] >= x - 0.1 * w) & (uv[:, 0] <= x + 1.1 * w) & (uv[:, 1] >= y - 0.1 * h) & \
                 (uv[:, 1] <= y + 1.1 * h)
        assert inside[valid].all()
        # the flags: which hands the annotation says are there
        want = {"right": [True, False], "left": [False, True], "interacting": [True, True]}[ann["hand_type"]]
        assert gt["present"][0].tolist() == want
        assert gt["joint_valid"][0, 0, 0] == valid[20] and gt["joint_valid"][0, 1, 0] == valid[41]


@needs_samples
def test_interhand_windows_are_samples_like_synthetic_ones():
    windows = HandWindows(open_sequences(f"interhand2.6m:{SAMPLES}"), SampleConfig(crop_hw=(64, 48), seq_len=3, gap=2))
    s = windows[0]
    assert s["crops"].shape == (3, 2, 3, 64, 48) and s["joint_valid"].shape == (3, 2, 21)
    assert s["has_mano"].shape == (3, 2) and not s["has_mano"].any()
    # a single image repeats: its window is the frame three times
    assert s["frames"].tolist() == [0, 0, 0]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    net = FourDHands(model_config("tiny", "full", image_size=(64, 48), seq_len=3))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "step-0000001", net, {"train": {"sample": {"gap": 1}}})


@needs_samples
def test_eval_on_interhand_scores_only_annotated_joints(tmp_path, ckpt, capsys):
    out = tmp_path / "eval"
    assert main(["eval", "--ckpt", str(ckpt), "--data", f"interhand2.6m:{SAMPLES}", "-o", str(out)]) == 0
    table = json.loads((out / "eval.json").read_text())["splits"]["interhand26m"]
    net = load_checkpoint(ckpt)
    r = predict_split(net, f"interhand2.6m:{SAMPLES}", gap=1)
    for h, side in enumerate(("right", "left")):
        errors = []
        for i in range(len(r["present"])):
            ok = r["present"][i, h] & r["joint_valid"][i, h]
            if r["present"][i, h] and ok[0]:
                p, g = r["pred_kp"][i, h], r["gt_kp"][i, h]
                errors += list(np.linalg.norm((p - p[0]) - (g - g[0]), axis=1)[ok])
        assert table[side]["mpjpe_wrist"] == pytest.approx(1000 * np.mean(errors), rel=1e-9)
        # no MANO ground truth: no vertex or orientation columns
        assert np.isnan(table[side]["mpvpe"]) and np.isnan(table[side]["orient"])
    both = r["present"].all(1) & r["joint_valid"][:, :, 0].all(1)
    assert both.sum() >= 1
    mrrpe = np.mean([np.linalg.norm(r["pred_v"][i] - r["gt_v"][i]) for i in np.nonzero(both)[0]])
    assert table["right"]["mrrpe"] == pytest.approx(1000 * mrrpe, rel=1e-9)
    # and the paper's Table 2 layout, with the same figures
    md = (out / "eval.md").read_text()
    assert "In the layout of the paper's Table 2" in md
    assert f"| interhand26m (4 frames) | {table['mean']['mpjpe']:.2f} | nan | {table['mean']['mrrpe']:.2f} |" in md


def test_split_metrics_score_only_annotated_joints_and_mano_columns_need_mano():
    from fourdhands.evaluate import split_metrics

    n = 2
    rng = np.random.default_rng(0)
    gt = rng.normal(0, 0.05, (n, 2, 21, 3))
    pred = gt.copy()
    pred[:, :, 5] += [0.03, 0.0, 0.0]  # an annotated joint 30 mm off
    pred[:, :, 6] += [1.0, 0.0, 0.0]  # an unannotated one 1 m off: must not count
    valid = np.ones((n, 2, 21), bool)
    valid[:, :, 6] = False
    eye = np.broadcast_to(np.eye(3), (n, 2, 3, 3)).copy()
    r = {"pred_kp": pred, "gt_kp": gt, "pred_verts": np.zeros((n, 2, 4, 3)), "gt_verts": np.zeros((n, 2, 4, 3)),
         "pred_orient": eye, "gt_orient": eye, "pred_v": np.zeros((n, 3)), "gt_v": np.zeros((n, 3)),
         "present": np.ones((n, 2), bool), "joint_valid": valid, "has_mano": np.zeros((n, 2), bool),
         "sequence": np.arange(n), "frame": np.zeros(n, int)}
    table = split_metrics(r)
    for side in ("right", "left"):
        assert table[side]["mpjpe_wrist"] == pytest.approx(30.0 / 20)  # 20 annotated joints, one 30 mm off
        assert np.isnan(table[side]["mpvpe"]) and np.isnan(table[side]["orient"])
    assert np.isnan(table["mean"]["orient"]) and table["mean"]["mpjpe_wrist"] == pytest.approx(1.5)


@needs_samples
def test_a_split_after_at_chooses_the_annotation_files(tmp_path):
    assert len(open_sequences(f"interhand2.6m:{SAMPLES}@test")) == 4
    with pytest.raises(UserError, match="val"):  # the sample folder holds only the test files
        open_sequences(f"interhand2.6m:{SAMPLES}@val")


def test_annotation_files_mistakes_are_one_line_errors_naming_the_file(tmp_path):
    from fourdhands.data.annotation_file import read_annotation

    (tmp_path / "a.json").write_text('{"x": [1, 2')
    (tmp_path / "b.yml").write_text("a: [1, 2\n")
    (tmp_path / "c.json").write_text("[1, 2]")
    for name, expect, words in [("a.json", object, "not valid JSON"), ("b.yml", object, "not valid YAML"),
                                ("c.json", dict, "expected a dict, found a list"),
                                ("d.json", object, "d.json: missing (the layout)")]:
        with pytest.raises(UserError) as e:
            read_annotation(tmp_path / name, expect, "the layout")
        assert words in str(e.value) and name in str(e.value) and "\n" not in str(e.value), str(e.value)
    assert read_annotation(tmp_path / "c.json", list) == [1, 2]


def test_paper_layout_tables_show_the_benchmarks_columns():
    from fourdhands.evaluate import paper_tables

    row = {"rr_mpjpe": 12.0, "rr_auc": 0.7512, "pa_mpjpe": 5.5, "pa_auc": 0.9, "mpjpe": 9.0}
    results = {"splits": {"dexycb_s0": {"kind": "dexycb", "frames": 10, "mean": row},
                          "interacting": {"kind": "synth", "frames": 5, "mean": row}}}
    lines = paper_tables(results)
    assert any("Table 3 (DexYCB)" in line for line in lines)
    assert "| dexycb_s0 (10 frames) | 12.00 | 75.12 | 5.50 | 90.00 |" in lines  # AUC as a percentage
    assert "| the paper's 4DHands | 8.37 | 83.4 | 4.75 | 90.4 |" in lines
    assert not any("interacting" in line for line in lines)  # synthetic splits have no paper table
    hic = {"splits": {"HIC": {"kind": "hic", "frames": 4, "mean": {"mpjpe": 9.0, "mpvpe": float("nan"),
                                                                   "mrrpe": 30.0}}}}
    lines = paper_tables(hic)
    assert "| HIC (4 frames) | 9.00 | nan | 30.00 |" in lines and "| the paper's 4DHands | 9.32 | 9.93 | 25.26 |" in lines


@needs_samples
def test_missing_images_stop_the_reader_or_are_left_out_and_counted(tmp_path, ckpt, capsys):
    import shutil

    folder = tmp_path / "ih"
    shutil.copytree(SAMPLES, folder)
    (folder / "image2017.jpg").unlink()
    # opening reads the index only; the missing image stops the run where its frame is read
    source = open_sequences(f"interhand2.6m:{folder}")
    missing = next(source[i] for i in range(len(source)) if source[i].image_path(0).name == "image2017.jpg")
    with pytest.raises(UserError, match="image2017.jpg") as e:
        missing.frame(0)
    assert "\n" not in str(e.value)
    capsys.readouterr()
    assert main(["eval", "--ckpt", str(ckpt), "--data", f"interhand2.6m:{folder}", "-o", str(tmp_path / "e0")]) == 2
    err = capsys.readouterr().err
    assert "image2017.jpg" in err and "Traceback" not in err
    source = open_sequences(f"interhand2.6m:{folder}", skip_missing=True)
    assert len(source) == 3 and source.missing_images == 1
    assert main(["eval", "--ckpt", str(ckpt), "--data", f"interhand2.6m:{folder}", "-o", str(tmp_path / "e"),
                 "--skip-missing"]) == 0
    assert "1 frames left out, their images are missing" in capsys.readouterr().err
    assert json.loads((tmp_path / "e" / "eval.json").read_text())["splits"]["ih"]["frames"] == 3


@pytest.mark.parametrize("spec, module, cls, args", [
    ("reinterhand:/d/RI@train-envmap_per_segment", "reinterhand", "ReInterHandSequences",
     ("/d/RI", "train", "envmap_per_segment")),
    ("reinterhand:/d/RI", "reinterhand", "ReInterHandSequences", ("/d/RI", "test", "envmap_per_frame")),
    ("arctic:/d/A@p2-train", "arctic", "ArcticSequences", ("/d/A", "p2", "train")),
    ("arctic:/d/A", "arctic", "ArcticSequences", ("/d/A", "p1", "val")),
    ("hic:/d/HIC@all", "hic", "HICSequences", ("/d/HIC", "all")),
    ("renderih:/d/R", "renderih", "RenderIHFrames", ("/d/R", "train")),
    ("dexycb:/d/D@s3-val", "dexycb", "DexYCBSequences", ("/d/D", "s3", "val")),
])
def test_each_kind_opens_its_reader_with_its_split(monkeypatch, spec, module, cls, args):
    import importlib

    calls = []
    mod = importlib.import_module(f"fourdhands.data.{module}")
    monkeypatch.setattr(mod, cls, lambda *a, **kw: calls.append((a, kw)) or "opened")
    assert open_sequences(spec, mano="/m") == "opened"
    (a, kw), = calls
    assert (str(a[0]), *a[1:]) == args
    if module in ("hic", "renderih"):
        assert kw == {"mano": "/m"}  # the readers whose joints need MANO get the user's files
