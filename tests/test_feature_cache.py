"""The feature cache: what it stores is what the network would compute from the crops,
windows cut from it share one augmentation, and an interrupted build resumes."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from fourdhands.data.dataset import HandWindows
from fourdhands.data.sample import SampleConfig, network_inputs
from fourdhands.errors import UserError
from fourdhands.feature_cache import CachedWindows, build_cache
from fourdhands.model.config import model_config
from fourdhands.model.network import FourDHands
from fourdhands.synth.generate import generate
from fourdhands.synth.shards import SyntheticSequences

CROP = (64, 48)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generate(root, sequences=3, frames=5, seed=2, split="interacting", image_size=(128, 96), progress=False)
    return root


def _net():
    torch.manual_seed(0)
    return FourDHands(model_config("tiny", "full", image_size=CROP, seq_len=3, upright=True, crop_frame=True)).eval()


def test_cached_samples_predict_what_the_crops_predict(data, tmp_path):
    net = _net()
    sample = SampleConfig(crop_hw=CROP, seq_len=3, gap=1, augment=True, upright=True)
    build_cache(net, [str(data)], tmp_path / "cache", sample, draws=2, seed=4, chunk=2, progress=False)
    cached = CachedWindows(tmp_path / "cache", seq_len=3, gap=1)
    assert len(cached) == 2 * 3 * 5  # two draws of every frame of every sequence

    # the same window straight from the data, with the cache's per-sequence key
    windows = HandWindows(SyntheticSequences(data), replace(sample, seq_len=1), seed=4)
    seq, draw = 1, 1  # cached sequence 4 = draw 1, folder 0, sequence 1
    index = int(cached.starts[4]) + 2
    item = cached[index]
    frames = item["frames"].tolist()
    direct = [windows.sample(int(windows._starts[seq]) + t, draw, key=(4, draw, 0, seq)) for t in frames]
    for key in ("boxes", "angles", "present", "keypoints_3d", "global_orient"):
        np.testing.assert_allclose(item[key].numpy(), np.stack([d[key][0].numpy() for d in direct]), atol=1e-6)
    crops = torch.stack([d["crops"][0] for d in direct])[None]
    batch = {k: v[None] for k, v in item.items()}
    with torch.no_grad():
        from_cache = net(**network_inputs(batch))
        from_crops = net(**{**network_inputs(batch), "trunk": None, "crops": crops})
    # float16 storage of the trunk (here the normalised crop itself) is the only difference
    torch.testing.assert_close(from_cache.camera_keypoints, from_crops.camera_keypoints, atol=2e-3, rtol=1e-3)
    # one augmentation for the whole sequence: the flip is the same in every frame
    gt = SyntheticSequences(data)[seq].gt
    flipped = [not np.allclose(d["keypoints_3d"][0].numpy(), gt["keypoints_3d"][t]) for d, t in zip(direct, frames)]
    assert len(set(flipped)) == 1


def test_an_interrupted_build_resumes_and_other_settings_are_refused(data, tmp_path):
    net = _net()
    sample = SampleConfig(crop_hw=CROP, seq_len=1, augment=True, upright=True)
    out = tmp_path / "cache"
    build_cache(net, [str(data)], out, sample, draws=1, seed=0, chunk=1, progress=False)
    def contents():
        return {p.name: {k: v.tobytes() for k, v in np.load(p).items()} for p in sorted(out.glob("chunk-*.npz"))}

    whole = contents()
    (out / "chunk-00002.npz").unlink()
    manifest = (out / "manifest.json").read_text().replace('"chunks_done": 3', '"chunks_done": 2')
    (out / "manifest.json").write_text(manifest)
    build_cache(net, [str(data)], out, sample, draws=1, seed=0, chunk=1, progress=False)
    assert contents() == whole
    with pytest.raises(UserError, match="other settings"):
        build_cache(net, [str(data)], out, sample, draws=2, seed=0, chunk=1, progress=False)
    with pytest.raises(UserError, match="not a feature cache"):
        CachedWindows(tmp_path / "nothing", 1, 1)


def test_cache_command_without_a_cache_folder_is_a_one_line_error(tmp_path, capsys):
    from fourdhands.cli import main

    config = tmp_path / "c.yaml"
    config.write_text("model: {preset: tiny, ablation: cross_s, image_size: [64, 48]}\ndata: [{path: nowhere}]\n")
    assert main(["cache", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "names no cache folder" in err, err
    assert main(["cache", str(tmp_path / "missing.yaml")]) == 2
    assert "no such config file" in capsys.readouterr().err


def test_a_cache_made_for_other_crops_or_another_backbone_is_refused(data, tmp_path):
    sample = SampleConfig(crop_hw=CROP, seq_len=1, gap=1, upright=True)
    build_cache(_net(), [str(data)], tmp_path / "cache", sample, seed=4, progress=False)
    cached = CachedWindows(tmp_path / "cache", seq_len=3, gap=1)
    cached.check_made_for("tiny", replace(sample, seq_len=3, gap=2, augment=True))  # window and recipe may differ
    for backbone, other, words in [
        ("tiny", replace(sample, box_expand=1.5), "box_expand 1.3, this run's is 1.5"),
        ("tiny", replace(sample, crop_hw=(96, 72)), "crop_hw [64, 48], this run's is (96, 72)"),
        ("tiny", replace(sample, upright=False), "upright True"),
        ("small", sample, "backbone 'tiny', this run's is 'small'"),
    ]:
        with pytest.raises(UserError, match="the feature cache was made with") as e:
            cached.check_made_for(backbone, other)
        assert words in str(e.value), str(e.value)
