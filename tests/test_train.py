"""Training and evaluation end to end on a tiny synthetic set: the loss goes down, a
resumed run equals an uninterrupted one, two DDP processes equal one, eval reports what
the metrics compute, and user mistakes are one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from scipy.spatial.transform import Rotation

from fourdhands import metrics
from fourdhands.checkpoint import load_checkpoint
from fourdhands.cli import main
from fourdhands.errors import UserError
from fourdhands.evaluate import evaluate, predict_split
from fourdhands.model.network import FourDHands
from fourdhands.synth.generate import generate
from fourdhands.train import _StepBatches, learning_rate_factor, load_config, train


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "interacting"
    generate(root, sequences=2, frames=6, seed=0, split="interacting", image_size=(96, 72), progress=False)
    return root


def write_config(path: Path, data: Path, out: Path, **over) -> Path:
    """A tiny run's config on ``data`` (``sources=[...]`` replaces the data list)."""
    cfg = {"out": str(out), "seed": 0, "steps": 4, "batch_size": 2, "workers": 0, "log_every": 1,
           "ckpt_every": 2, "lr": 1e-3,
           "model": {"preset": "tiny", "ablation": "cross_s", "image_size": [64, 48], "seq_len": 3},
           "data": over.pop("sources", [{"path": str(data)}]), "sample": {"augment": True, "gap": 1}}
    for k, v in over.items():
        if isinstance(v, dict):
            cfg[k] = {**cfg.get(k, {}), **v}
        else:
            cfg[k] = v
    path.write_text(json.dumps(cfg))  # JSON is YAML
    return path


def weights(ckpt: Path) -> dict:
    return load_file(str(ckpt / "model.safetensors"))


def test_a_few_steps_lower_the_loss(tmp_path, data):
    cfg = load_config(write_config(tmp_path / "c.yaml", data, tmp_path / "run", steps=40, ckpt_every=40,
                                   sample={"augment": False}, lr=3e-4))
    train(cfg, progress=False)
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()[1:]
    total = [float(r.split(",")[-1]) for r in rows]
    assert np.mean(total[-5:]) < 0.5 * np.mean(total[:5]), total


def test_resume_after_a_kill_equals_an_uninterrupted_run(tmp_path, data, monkeypatch):
    cfg_a = load_config(write_config(tmp_path / "a.yaml", data, tmp_path / "a"))
    final_a = train(cfg_a, progress=False)
    cfg_b = load_config(write_config(tmp_path / "b.yaml", data, tmp_path / "b"))
    real_iter = _StepBatches.__iter__

    def killed_after_two_steps(self):
        for i, keys in enumerate(real_iter(self)):
            if self.start + i == 2:
                raise KeyboardInterrupt  # the process dies after the step-2 checkpoint
            yield keys

    monkeypatch.setattr(_StepBatches, "__iter__", killed_after_two_steps)
    with pytest.raises(KeyboardInterrupt):
        train(cfg_b, progress=False)
    assert sorted(p.name for p in (tmp_path / "b").glob("step-*")) == ["step-0000002"]
    monkeypatch.setattr(_StepBatches, "__iter__", real_iter)
    final_b = train(cfg_b, progress=False)
    wa, wb = weights(final_a), weights(final_b)
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=0, atol=0, msg=k)


def test_two_ddp_processes_match_one_process(tmp_path, data):
    """One step on a global batch of 4 distinct windows: 2 ranks x 2 must give the same
    averaged gradient (its norm is logged) and the same weights as 1 process x 4. (Over
    more steps AdamW's per-coordinate normalisation amplifies float rounding, so the
    comparison is of one step, to float tolerance.)"""
    keys = next(iter(_StepBatches([12], [1.0], 4, 0, 0, 1, 0, 1)))
    assert len(set(keys)) == 4
    one = load_config(write_config(tmp_path / "one.yaml", data, tmp_path / "one", steps=1, ckpt_every=1,
                                   batch_size=4))
    final_one = train(one, progress=False)
    two = write_config(tmp_path / "two.yaml", data, tmp_path / "two", steps=1, ckpt_every=1, batch_size=4)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", "29513", "-m", "fourdhands.cli", "train", str(two)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]

    def grad_norm(run):
        header, row = (tmp_path / run / "log.csv").read_text().splitlines()[:2]
        return float(row.split(",")[header.split(",").index("grad_norm")])

    assert grad_norm("two") == pytest.approx(grad_norm("one"), rel=1e-5)
    wa, wb = weights(final_one), weights(tmp_path / "two" / "step-0000001")
    for k in wa:
        # a coordinate whose gradient is near zero may round either way, and AdamW's first
        # step turns it into up to lr (1e-3): one in ten thousand may, no more
        off = (wb[k] - wa[k]).abs()
        assert (off > 2e-5).float().mean() <= 1e-4 and off.max() <= 2e-3, k


def test_eval_reports_what_the_metrics_compute(tmp_path, data, monkeypatch):
    cfg = load_config(write_config(tmp_path / "c.yaml", data, tmp_path / "run", steps=2))
    ckpt = train(cfg, progress=False)
    before = sorted(p.name for p in ckpt.iterdir())
    monkeypatch.chdir(tmp_path)
    results = evaluate(ckpt, [str(data)], progress=False)  # by default into the working directory
    out = tmp_path / "eval" / "run-step-0000002"
    assert results["written"] == [str(out / "eval.json"), str(out / "eval.md")]
    assert sorted(p.name for p in ckpt.iterdir()) == before  # nothing written into the checkpoint
    saved = json.loads((out / "eval.json").read_text())
    assert (out / "eval.md").read_text().count("| interacting |") == 3
    net = load_checkpoint(ckpt)
    r = predict_split(net, data, gap=1)
    assert len(r["present"]) == 12  # every frame of both sequences, once
    part = predict_split(net, data, gap=1, frames=4)  # windows 0, 4, 7 and 11, spread evenly
    np.testing.assert_allclose(part["pred_kp"], r["pred_kp"][[0, 4, 7, 11]], atol=1e-6)
    ok = r["present"][:, 0]
    direct = metrics.mpjpe_intag(r["pred_kp"][:, 0], r["gt_kp"][:, 0], ok)
    assert saved["splits"]["interacting"]["right"]["mpjpe"] == pytest.approx(direct, rel=1e-9)
    both = r["present"].all(1)
    v_err = np.linalg.norm(r["pred_v"] - r["gt_v"], axis=1)[both].mean() * 1000
    assert results["splits"]["interacting"]["mean"]["mrrpe"] == pytest.approx(v_err, rel=1e-9)
    # orientation: against scipy's angle of the relative rotation
    rel = Rotation.from_matrix(np.swapaxes(r["pred_orient"][ok, 0], -1, -2) @ r["gt_orient"][ok, 0])
    assert saved["splits"]["interacting"]["right"]["orient"] == pytest.approx(
        np.degrees(rel.magnitude()).mean(), rel=1e-6)
    for protocol in ("IntagHand", "InterHand2.6M", "VIBE", "DexYCB"):
        assert protocol in json.dumps(saved["protocols"])


def _one_line_error(capsys, argv, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err


def test_learning_rate_warms_up_then_decays_linearly():
    # hand-worked: 4 warm-up steps reach 1 at step 3; decay over the 8 remaining steps
    got = [learning_rate_factor(s, 12, 4) for s in range(13)]
    want = [0.25, 0.5, 0.75, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0.0]
    assert got == pytest.approx(want)
    assert [learning_rate_factor(s, 4, 0) for s in range(5)] == pytest.approx([1, 0.75, 0.5, 0.25, 0])


def test_temporal_stage_starts_from_a_single_frame_run_and_keeps_the_encoder(tmp_path, data, capsys):
    spatial = train(load_config(write_config(tmp_path / "s.yaml", data, tmp_path / "s", steps=2)),
                    progress=False)
    encoder = ("backbone", "relation", "spatial", "hand_decoder")
    cfg = load_config(write_config(tmp_path / "t.yaml", data, tmp_path / "t", steps=2, init=str(spatial),
                                   freeze=list(encoder), model={"ablation": "full"}))
    capsys.readouterr()
    temporal = train(cfg, progress=False)
    # the run says which modules start fresh: the temporal ones, and nothing of the encoder
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("init:")]
    assert len(said) == 1 and said[0].endswith("these modules start fresh: temporal"), said
    before, after = weights(spatial), weights(temporal)
    assert any(k.startswith("temporal.") for k in after) and not any(k.startswith("temporal.") for k in before)
    for k, v in before.items():
        if k.startswith(encoder):
            assert torch.equal(v, after[k]), k  # frozen: bit for bit the single-frame run's
    changed = [k for k in before if k.startswith("hand_head.") and not torch.equal(before[k], after[k])]
    assert changed, "the heads should keep training"


def test_resuming_with_another_model_or_recipe_is_refused(tmp_path, data, capsys):
    # the same out folder after a change of ablation (or of lr) would resume a different
    # network from this checkpoint, its new modules silently left at their initial weights
    train(load_config(write_config(tmp_path / "a.yaml", data, tmp_path / "run", steps=2)), progress=False)
    changed = write_config(tmp_path / "b.yaml", data, tmp_path / "run", steps=4, model={"ablation": "full"})
    _one_line_error(capsys, ["train", str(changed)], "cannot resume: the run's model is")
    _one_line_error(capsys, ["train", str(write_config(tmp_path / "c.yaml", data, tmp_path / "run", steps=4,
                                                        lr=5e-4))], "cannot resume: the run's lr is 0.0005")
    # more steps is a resume, not a new run
    last = train(load_config(write_config(tmp_path / "d.yaml", data, tmp_path / "run", steps=4)), progress=False)
    assert last.name == "step-0000004"


def test_resume_refuses_a_checkpoint_whose_weights_do_not_fit(tmp_path, data):
    from safetensors.torch import save_file

    from fourdhands.checkpoint import resume_from
    from fourdhands.errors import UserError
    from fourdhands.model.network import FourDHands

    cfg = load_config(write_config(tmp_path / "a.yaml", data, tmp_path / "run", steps=2))
    last = train(cfg, progress=False)
    saved = json.loads((last / "config.json").read_text())["train"]
    w = weights(last)
    key = next(k for k in w if k.startswith("hand_head."))
    save_file({k: v for k, v in w.items() if k != key}, str(last / "model.safetensors"))
    net = FourDHands(cfg.model.config())
    with pytest.raises(UserError, match=f"cannot resume: the checkpoint lacks {key}"):
        resume_from(net, last, saved)


def test_user_mistakes_are_one_line_errors(tmp_path, data, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: 3\nbatchsize: 4\ndata: [{path: x}]\n")
    _one_line_error(capsys, ["train", str(bad)], "batchsize")
    _one_line_error(capsys, ["train", str(tmp_path / "none.yaml")], "no such config file")
    _one_line_error(capsys, ["train", str(write_config(tmp_path / "i.yaml", data, tmp_path / "i",
                                                        init=str(tmp_path)))], "not a checkpoint")
    _one_line_error(capsys, ["train", str(write_config(tmp_path / "f.yaml", data, tmp_path / "f",
                                                        freeze=["trunk"]))], "no module 'trunk'")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "manifest.json").write_text(json.dumps({"format": "fourdhands-synth/1", "shards": []}))
    cfg = write_config(tmp_path / "c.yaml", empty, tmp_path / "run")
    _one_line_error(capsys, ["train", str(cfg)], "empty")
    _one_line_error(capsys, ["eval", "--ckpt", str(tmp_path / "nockpt"), "--data", str(data)], "not a checkpoint")
    ckpt = tmp_path / "corrupt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"model": {"backbone": "tiny", "image_size": [64, 48]}}))
    (ckpt / "model.safetensors").write_bytes(b"\x00garbage")
    _one_line_error(capsys, ["eval", "--ckpt", str(ckpt), "--data", str(data)], "corrupt")


def test_shipped_configs_are_valid():
    for path in sorted(Path(__file__).parent.parent.glob("configs/*.yaml")):
        cfg = load_config(path)
        assert cfg.model.preset in ("tiny", "mediapipe", "huge") and cfg.sample["augment"] is True, path
        model = cfg.model.config()  # the model section makes a valid network config
        assert model.upright == (model.backbone == "mediapipe_hand"), path


def test_the_paper_mix_recipe_is_the_papers():
    cfg = load_config(Path(__file__).parent.parent / "configs" / "paper_mix.yaml")
    share = {}
    for s in cfg.data:
        group = s.kind if s.kind in ("interhand2.6m", "reinterhand") else "single-hand"
        share[group] = share.get(group, 0.0) + s.weight
    assert share == pytest.approx({"interhand2.6m": 0.35, "reinterhand": 0.35, "single-hand": 0.3})
    assert (cfg.model.preset, cfg.model.seq_len, cfg.sample["gap"], cfg.lr) == ("huge", 9, 5, 1e-5)


def test_packed_checkpoint_is_half_the_size_and_predicts_the_same(tmp_path):
    from fourdhands.checkpoint import save_checkpoint
    from fourdhands.model.config import model_config
    from fourdhands.model.network import FourDHands

    torch.manual_seed(0)
    net = FourDHands(model_config("tiny", "cross_s", image_size=(64, 48), seq_len=3)).eval()
    full = save_checkpoint(tmp_path / "step-0000001", net, {"train": {"seed": 0}},
                           {"step": 1, "optimizer": {}})
    assert main(["pack", str(full), str(tmp_path / "packed")]) == 0
    packed = tmp_path / "packed"
    assert sorted(p.name for p in packed.iterdir()) == ["config.json", "model.safetensors"]
    size = lambda p: (p / "model.safetensors").stat().st_size  # noqa: E731
    assert 0.45 < size(packed) / size(full) < 0.55
    assert json.loads((packed / "config.json").read_text())["train"] == {"seed": 0}
    again = load_checkpoint(packed)
    assert next(again.parameters()).dtype == torch.float32
    crops = torch.randn(1, 1, 2, 3, 64, 48)
    boxes = torch.tensor([[[[40.0, 50.0, 30.0, 40.0], [90.0, 50.0, 30.0, 40.0]]]])
    size_wh = torch.tensor([[160.0, 120.0]])
    with torch.no_grad():
        a, b = net(crops, boxes, size_wh), again(crops, boxes, size_wh)
    assert torch.allclose(a.keypoints, b.keypoints, atol=2e-3)  # float16 weights: sub-mm


def test_fresh_modules_are_named_by_their_highest_wholly_fresh_ancestor():
    from fourdhands.checkpoint import _covering_modules

    fresh = ["temporal.decoder.layers.0.w", "temporal.pos", "head.pose.w", "head.extra.w", "v"]
    loaded = {"head.shape.w", "backbone.w"}
    assert _covering_modules(fresh, loaded) == ["head.extra", "head.pose", "temporal", "v"]


INTERHAND = Path(__file__).resolve().parents[2] / "shared" / "samples" / "datasets" / "interhand26m"


@pytest.mark.skipif(not INTERHAND.is_dir(), reason=f"{INTERHAND} is not here")
def test_a_weighted_mix_of_synthetic_and_real_data_trains_and_says_what_supervises(tmp_path, data, capsys):
    import shutil

    real = tmp_path / "ih"
    shutil.copytree(INTERHAND, real)
    (real / "image2017.jpg").unlink()  # with skip_missing, left out and counted
    cfg = load_config(write_config(tmp_path / "m.yaml", data, tmp_path / "mix", steps=3, ckpt_every=3,
                                   sources=[{"path": str(data), "weight": 0.5},
                                            {"kind": "interhand2.6m", "path": str(real), "weight": 0.5,
                                             "skip_missing": True}]))
    capsys.readouterr()
    last = train(cfg, progress=False)
    assert last.name == "step-0000003"
    said = capsys.readouterr().err
    assert f"data interhand2.6m:{real}: no MANO ground truth read, so only the keypoint terms" in said
    assert f"data interhand2.6m:{real}: 1 frames left out, their images are missing" in said
    rows = (tmp_path / "mix" / "log.csv").read_text().splitlines()[1:]
    assert len(rows) == 3 and all(np.isfinite(float(r.split(",")[-1])) for r in rows)


def test_an_unknown_data_kind_is_a_one_line_error(tmp_path, data, capsys):
    _one_line_error(capsys, ["train", str(write_config(tmp_path / "k.yaml", data, tmp_path / "k",
                                                        sources=[{"kind": "freihandx", "path": str(data)}]))],
                    "unknown data kind 'freihandx'")


def test_a_weighted_mix_of_feature_caches_trains_on_both(tmp_path, data):
    from fourdhands.feature_cache import build_cache
    from fourdhands.train import sample_config

    base = load_config(write_config(tmp_path / "base.yaml", data, tmp_path / "unused"))
    model = base.model.config()
    for name, seed in (("a", 0), ("b", 1)):
        build_cache(FourDHands(model), [str(data)], tmp_path / name, sample_config(base, model), seed=seed,
                    progress=False)
    cfg = load_config(write_config(tmp_path / "m.yaml", data, tmp_path / "mix", steps=3, ckpt_every=3,
                                   caches=[{"path": str(tmp_path / "a"), "weight": 0.3},
                                           {"path": str(tmp_path / "b"), "weight": 0.7}]))
    assert train(cfg, progress=False).name == "step-0000003"
    with pytest.raises(UserError, match="give cache or caches, not both"):
        load_config(write_config(tmp_path / "both.yaml", data, tmp_path / "x", cache=str(tmp_path / "a"),
                                 caches=[{"path": str(tmp_path / "b")}]))


def test_the_log_says_what_supervises_each_kind_of_data():
    from fourdhands.train import _supervision

    fits = {"has_mano": np.asarray(False), "fit_valid": np.array([[True, False]])}
    assert _supervision({"has_mano": np.asarray(True)}, "open") is None  # synthetic: all terms, nothing to say
    assert _supervision(fits, "/m/MANO_RIGHT.pkl").startswith("its MANO fits become /m/MANO_RIGHT.pkl's parameters")
    assert _supervision(fits, "open").startswith("its MANO fits mean nothing to the open hand model, so only")
    none = {"has_mano": np.asarray(False), "fit_valid": np.zeros((1, 2), bool)}
    assert _supervision(none, "/m/MANO_RIGHT.pkl").startswith("no MANO ground truth read, so only the keypoint")
