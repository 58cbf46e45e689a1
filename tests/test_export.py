"""Exporters: meshes and parameters survive a round trip through the files."""

import json

import numpy as np
import pytest
import trimesh

from fourdhands.errors import UserError
from fourdhands.export import params_record, read_params, write_meshes, write_params


@pytest.fixture
def two_meshes():
    a = trimesh.creation.icosphere(subdivisions=1, radius=0.05)
    b = trimesh.creation.box(extents=(0.02, 0.03, 0.04))
    b.apply_translation([0.1, 0.0, 0.5])
    return {"right_hand": (a.vertices, a.faces, (1.0, 0.5, 0.25)), "left_hand": (b.vertices, b.faces)}


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".glb"])
def test_meshes_round_trip_through_trimesh(tmp_path, two_meshes, suffix):
    path = tmp_path / f"hands{suffix}"
    write_meshes(path, two_meshes)
    loaded = trimesh.load(path, process=False)
    if suffix == ".glb":
        assert set(loaded.geometry) == {"right_hand", "left_hand"}
        for name, (v, f, *_) in two_meshes.items():
            got = loaded.geometry[name]
            np.testing.assert_allclose(got.vertices, v, atol=1e-6)
            np.testing.assert_array_equal(got.faces, f)
    else:
        if isinstance(loaded, trimesh.Scene):
            loaded = trimesh.util.concatenate(list(loaded.geometry.values()))
        v = np.concatenate([m[0] for m in two_meshes.values()])
        np.testing.assert_allclose(loaded.vertices, v, atol=1e-6)
        n0 = len(two_meshes["right_hand"][0])
        f = np.concatenate([two_meshes["right_hand"][1], two_meshes["left_hand"][1] + n0])
        np.testing.assert_array_equal(loaded.faces, f)
    if suffix == ".ply":
        colours = np.asarray(loaded.visual.vertex_colors)[0, :3]
        np.testing.assert_array_equal(colours, [255, 127, 63])


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_params_round_trip_with_units_frame_and_convention_inside(tmp_path, suffix):
    rng = np.random.default_rng(0)
    hands = {side: {"global_orient": rng.normal(size=3), "hand_pose": rng.normal(size=(4, 45)),
                    "betas": rng.normal(size=10), "transl": rng.normal(size=3)}
             for side in ("right", "left")}
    record = params_record(hands, hand_model="open", flat_hand_mean=False, extra={"v": rng.normal(size=3)})
    path = tmp_path / f"p{suffix}"
    write_params(path, record)
    back = read_params(path)
    assert back["units"] == "metres" and "OpenCV" in back["frame"]
    assert back["flat_hand_mean"] is False and back["hand_model"] == "open"
    for side in hands:
        for k, a in hands[side].items():
            np.testing.assert_array_equal(back[side][k], a)
    np.testing.assert_array_equal(back["v"], record["v"])
    if suffix == ".json":
        assert json.loads(path.read_text())["flat_hand_mean"] is False


def test_bad_paths_are_one_line_errors(tmp_path, two_meshes):
    with pytest.raises(UserError, match="cannot write meshes as .stl"):
        write_meshes(tmp_path / "x.stl", two_meshes)
    with pytest.raises(UserError, match="does not exist"):
        write_meshes(tmp_path / "missing" / "x.obj", two_meshes)
    with pytest.raises(UserError, match="no such file"):
        read_params(tmp_path / "none.json")
    other = tmp_path / "other.json"
    other.write_text('{"a": 1}')
    with pytest.raises(UserError, match="not a fourdhands parameter file"):
        read_params(other)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(UserError, match="not a readable parameter file"):
        read_params(broken)


def test_nothing_half_written_when_export_fails(tmp_path, monkeypatch, two_meshes):
    path = tmp_path / "hands.obj"
    path.write_text("previous")

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(trimesh.Trimesh, "export", boom)
    with pytest.raises(RuntimeError):
        write_meshes(path, two_meshes)
    assert path.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["hands.obj"]
