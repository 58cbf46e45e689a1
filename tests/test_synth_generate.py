"""The generation job and its on-disk format: same seed, same bytes; resume; reading back;
one-line errors."""

import hashlib
import importlib.util
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fourdhands.errors import UserError
from fourdhands.synth import SyntheticSequences, generate
from fourdhands.synth.appearance import SCIKIT_IMAGE_PHOTOS, sample_background
from fourdhands.synth.scene import Synthesizer

JOB = dict(sequences=3, frames=4, seed=5, split="train", image_size=(64, 48), shard_size=2, progress=False)


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    generate(out, **JOB)
    return out


def test_same_seed_gives_the_same_bytes(reference, tmp_path):
    generate(tmp_path, **JOB)
    assert _files(tmp_path) == _files(reference)
    assert sorted(_files(reference)) == ["manifest.json", "shard-00000.tar", "shard-00001.tar"]
    other = tmp_path / "other"
    generate(other, **{**JOB, "seed": 6})
    assert _files(other)["shard-00000.tar"] != _files(reference)["shard-00000.tar"]


def test_an_interrupted_run_resumes_to_the_same_bytes(reference, tmp_path, monkeypatch):
    original = Synthesizer.sequence

    def failing(self, split, seed, index, frames):
        if index == 2:  # inside the second shard
            raise KeyboardInterrupt
        return original(self, split, seed, index, frames)

    monkeypatch.setattr(Synthesizer, "sequence", failing)
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path, **JOB)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [s["path"] for s in manifest["shards"]] == ["shard-00000.tar"] and not manifest["complete"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "shard-00000.tar"]  # no partial shard
    assert len(SyntheticSequences(tmp_path)) == 2  # completed shards are readable

    monkeypatch.setattr(Synthesizer, "sequence", original)
    summary = generate(tmp_path, **JOB)
    assert summary["skipped"] == ["shard-00000.tar"] and summary["written"] == ["shard-00001.tar"]
    assert _files(tmp_path) == _files(reference)
    assert generate(tmp_path, **JOB)["written"] == []  # complete: nothing to do


def test_reader_gives_frames_ground_truth_and_meta(reference):
    ds = SyntheticSequences(reference)
    assert len(ds) == 3 and ds.ids == [0, 1, 2] and ds.complete
    assert ds.manifest["image_size"] == [64, 48] and ds.manifest["flat_hand_mean"] is True
    seq = ds[2]
    assert seq.num_frames == 4 and seq.meta["index"] == 2 and seq.meta["split"] == "train"
    assert seq.frame(3).shape == (48, 64, 3) and seq.frame(3).dtype == np.uint8
    g = seq.gt
    V = g["vertices"].shape[2]
    shapes = {"present": (4, 2), "global_orient": (4, 2, 3), "hand_pose": (4, 2, 45), "betas": (4, 2, 10),
              "transl": (4, 2, 3), "keypoints_3d": (4, 2, 21, 3), "vertices": (4, 2, V, 3),
              "keypoints_2d": (4, 2, 21, 2), "visible": (4, 2, 21), "boxes": (4, 2, 4), "v": (4, 3),
              "K": (4, 3, 3), "image_size": (2,)}
    assert {k: a.shape for k, a in g.items()} == shapes
    assert g["present"].dtype == bool and g["visible"].dtype == bool and g["vertices"].dtype == np.float32
    assert g["image_size"].tolist() == [64, 48]
    # members are where the index says: the same bytes as tar extraction gives
    with tarfile.open(reference / "shard-00001.tar") as tar:
        assert tar.extractfile("seq000002/frame0001.jpg").read() == seq.frame_bytes(1)
        info = tar.getmember("seq000002/frame0001.jpg")
        assert (info.mtime, info.uid, info.gid, info.uname) == (0, 0, 0, "")


def test_reader_names_what_is_missing_or_corrupt(reference, tmp_path):
    with pytest.raises(UserError, match="no such"):
        SyntheticSequences(tmp_path / "nowhere")
    with pytest.raises(UserError, match="no manifest.json"):
        SyntheticSequences(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(UserError, match="unreadable manifest"):
        SyntheticSequences(tmp_path)
    manifest = json.loads((reference / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="shard-00000.tar: shard listed in the manifest is missing"):
        SyntheticSequences(tmp_path)
    data = (reference / "shard-00000.tar").read_bytes()
    (tmp_path / "shard-00000.tar").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="shard-00000.tar"):
        SyntheticSequences(tmp_path)


def test_backgrounds_folder_photos_are_used_and_fingerprinted(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((30, 40, 3), (10, 200, 30), np.uint8)).save(photos / "green.png")
    out = tmp_path / "out"
    generate(out, **{**JOB, "sequences": 1, "frames": 1, "backgrounds": photos})
    assert json.loads((out / "manifest.json").read_text())["backgrounds"]["count"] == 1
    # 70 % of backgrounds are then the photo (here one flat green), the rest procedural
    drawn = [sample_background(np.random.default_rng(s), (40, 30), [photos / "green.png"]) for s in range(200)]
    green = np.mean([(b == (10, 200, 30)).all() for b in drawn])
    assert 0.6 < green < 0.8


def test_scikit_image_photos_are_a_background_source(tmp_path):
    skimage_data = Path(importlib.util.find_spec("skimage").origin).parent / "data"
    out = tmp_path / "out"
    generate(out, **{**JOB, "sequences": 1, "frames": 1, "backgrounds": "scikit-image"})
    digest = hashlib.sha1()
    for name in sorted(SCIKIT_IMAGE_PHOTOS):
        digest.update(name.encode() + b"\0" + (skimage_data / name).read_bytes())
    assert json.loads((out / "manifest.json").read_text())["backgrounds"] == {
        "count": len(SCIKIT_IMAGE_PHOTOS), "sha1": digest.hexdigest()}


def test_scikit_image_backgrounds_without_scikit_image_is_a_one_line_error(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "skimage" else real(name, *a))
    with pytest.raises(UserError, match="backgrounds 'scikit-image': scikit-image is not installed") as e:
        generate(tmp_path / "out", **{**JOB, "backgrounds": "scikit-image"})
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("change, message", [
    ({"sequences": 0}, "number of sequences must be a whole number >= 1, got 0"),
    ({"frames": -2}, "number of frames must be a whole number >= 1, got -2"),
    ({"seed": -1}, "seed must be a whole number >= 0"),
    ({"split": "valid"}, "unknown split 'valid' (choose from"),
    ({"image_size": (16, 200)}, "image size 16x200 is too small"),
    ({"backgrounds": "/no/such/folder"}, "backgrounds folder '/no/such/folder' does not exist"),
])
def test_bad_arguments_raise_one_line_user_errors(tmp_path, change, message):
    with pytest.raises(UserError) as e:
        generate(tmp_path / "out", **{**JOB, **change})
    assert message in str(e.value) and "\n" not in str(e.value)


def test_unwritable_or_foreign_output_folders_are_refused(reference, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="cannot create output folder|not a folder") as e:
        generate(blocker / "out", **JOB)
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="holds another synth job .seed 5, not 9."):
        generate(reference, **{**JOB, "seed": 9})
