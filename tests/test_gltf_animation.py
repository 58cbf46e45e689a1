"""The animated, skinned .glb of a clip, read back by an independent reader.

The writer builds the file with pygltflib; here it is parsed with plain NumPy (GLB header,
JSON chunk, BIN chunk, accessors) and skinned by a reference implementation of glTF's
rules (sampled node TRS -> global matrices, joint matrix = global . inverseBind, morph
targets then linear blend skinning over every JOINTS_n / WEIGHTS_n set), then compared
with the hand model's own vertices of every frame.
"""

import json
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _mano_fixture import random_mano_data  # noqa: E402

from fourdhands.errors import UserError  # noqa: E402
from fourdhands.gltf_animation import write_animation  # noqa: E402
from fourdhands.hands.joints import MANO_JOINT_NAMES  # noqa: E402
from fourdhands.hands.model import HandModel, load_hand_model  # noqa: E402

SIDES = ("right", "left")
FPS = 24.0
NUM_FRAMES = 5
HIDDEN = 2  # the left hand is absent in this frame


# ------------------------------------------------------------------ independent reader
_COMPONENTS = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32,
               5126: np.float32}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def read_glb(path):
    raw = Path(path).read_bytes()
    magic, version, length = struct.unpack_from("<4sII", raw, 0)
    assert magic == b"glTF" and version == 2 and length == len(raw)
    n, kind = struct.unpack_from("<I4s", raw, 12)
    assert kind == b"JSON"
    doc = json.loads(raw[20:20 + n])
    m, kind = struct.unpack_from("<I4s", raw, 20 + n)
    assert kind == b"BIN\0"
    return doc, raw[28 + n:28 + n + m]


def accessor(doc, blob, index):
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    assert "byteStride" not in view
    dtype, width = _COMPONENTS[acc["componentType"]], _WIDTH[acc["type"]]
    start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    a = np.frombuffer(blob, dtype=dtype, count=acc["count"] * width, offset=start)
    a = a.astype(np.float64).reshape(acc["count"], width)
    if acc["type"] == "MAT4":
        return a.reshape(-1, 4, 4).transpose(0, 2, 1)  # column-major
    return a


def quat_matrix(q):
    x, y, z, w = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def sample(times, values, t, interpolation, path):
    """glTF sampler semantics (LINEAR: lerp, slerp for rotations; STEP)."""
    values = values.reshape(len(times), -1)
    k = int(np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 1))
    if interpolation == "STEP" or k == len(times) - 1 or t <= times[0]:
        return values[k]
    a = (t - times[k]) / (times[k + 1] - times[k])
    v0, v1 = values[k], values[k + 1]
    if path != "rotation":
        return (1 - a) * v0 + a * v1
    d = np.dot(v0, v1)
    if d < 0:
        v1, d = -v1, -d
    om = np.arccos(np.clip(d, -1, 1))
    if om < 1e-9:
        return v0
    return (np.sin((1 - a) * om) * v0 + np.sin(a * om) * v1) / np.sin(om)


def animated_state(doc, blob, t):
    """Per node (T, R, S) and per mesh node its morph weights, at time t."""
    trs = [[np.asarray(n.get(k, d), float) for k, d in
            (("translation", [0, 0, 0]), ("rotation", [0, 0, 0, 1]), ("scale", [1, 1, 1]))]
           for n in doc["nodes"]]
    weights = {}
    for ch in doc["animations"][0]["channels"]:
        s = doc["animations"][0]["samplers"][ch["sampler"]]
        value = sample(accessor(doc, blob, s["input"])[:, 0], accessor(doc, blob, s["output"]), t,
                       s.get("interpolation", "LINEAR"), ch["target"]["path"])
        node, path = ch["target"]["node"], ch["target"]["path"]
        if path == "weights":
            weights[node] = value
        else:
            trs[node][("translation", "rotation", "scale").index(path)] = value
    return trs, weights


def global_matrices(doc, trs):
    out = {}

    def visit(i, parent):
        T, R, S = trs[i]
        local = np.eye(4)
        local[:3, :3] = quat_matrix(R) * S
        local[:3, 3] = T
        out[i] = parent @ local
        for c in doc["nodes"][i].get("children", []):
            visit(c, out[i])

    for root in doc["scenes"][doc.get("scene", 0)]["nodes"]:
        visit(root, np.eye(4))
    return out


def skinned_vertices(doc, blob, mesh_node, t):
    """World positions of the skinned mesh of ``mesh_node`` at time t, (V, 3)."""
    trs, weights = animated_state(doc, blob, t)
    G = global_matrices(doc, trs)
    node = doc["nodes"][mesh_node]
    mesh, skin = doc["meshes"][node["mesh"]], doc["skins"][node["skin"]]
    prim = mesh["primitives"][0]
    w = weights.get(mesh_node, np.asarray(mesh.get("weights", [])))
    pos = accessor(doc, blob, prim["attributes"]["POSITION"]).copy()
    for wk, target in zip(w, prim.get("targets", [])):
        pos += wk * accessor(doc, blob, target["POSITION"])
    ibm = accessor(doc, blob, skin["inverseBindMatrices"])
    joint_mats = np.stack([G[j] @ ibm[k] for k, j in enumerate(skin["joints"])])
    blended = np.zeros((len(pos), 4, 4))
    s = 0
    while f"JOINTS_{s}" in prim["attributes"]:
        ids = accessor(doc, blob, prim["attributes"][f"JOINTS_{s}"]).astype(int)
        ws = accessor(doc, blob, prim["attributes"][f"WEIGHTS_{s}"])
        blended += np.einsum("vk,vkab->vab", ws, joint_mats[ids])
        s += 1
    return np.einsum("vab,vb->va", blended[:, :3, :3], pos) + blended[:, :3, 3]


def node_index(doc, name):
    names = [n.get("name") for n in doc["nodes"]]
    assert names.count(name) == 1, name
    return names.index(name)


# ------------------------------------------------------------------ clip and models
@pytest.fixture(scope="module")
def open_models():
    return {side: load_hand_model("open", side) for side in SIDES}


def mano_models(flat_hand_mean=True):
    return {side: HandModel(random_mano_data(seed=3 + i), side, flat_hand_mean=flat_hand_mean,
                            dtype=torch.float64) for i, side in enumerate(SIDES)}


def random_clip(seed=0, hidden=HIDDEN):
    rng = np.random.default_rng(seed)
    frames = []
    for t in range(NUM_FRAMES):
        frame = {}
        for side in SIDES:
            frame[side] = {"global_orient": rng.normal(scale=1.5, size=3),
                           "hand_pose": rng.normal(scale=0.5, size=45),
                           "betas": rng.normal(size=10),
                           "transl": rng.normal(scale=0.1, size=3) + [0, 0, 0.6]}
        frames.append(frame)
    if hidden is not None:
        del frames[hidden]["left"]
    return frames


def model_vertices(model, params):
    with torch.no_grad():
        out = model(**{k: torch.as_tensor(np.asarray(v)[None]) for k, v in params.items()})
    return out.vertices[0].double().numpy()


def frame_times(doc, blob):
    """Frame t's time, t / fps exactly (not the stored float32 keyframe times), after
    checking the stored ones: within float32 rounding, never after t / fps."""
    s = doc["animations"][0]["samplers"][0]
    stored = accessor(doc, blob, s["input"])[:, 0]
    exact = np.arange(len(stored)) / doc["scenes"][0]["extras"]["fps"]
    assert np.all(stored <= exact) and np.allclose(stored, exact, rtol=2e-7, atol=0)
    return exact


FLIP = np.diag([1.0, -1.0, -1.0])  # OpenCV camera axes -> glTF (180 degrees about x)


@pytest.mark.parametrize("kind", ["open", "mano", "mano_hands_mean"])
def test_skinned_vertices_equal_the_model_in_every_frame(tmp_path, open_models, kind):
    models = {"open": lambda: open_models, "mano": mano_models,
              "mano_hands_mean": lambda: mano_models(flat_hand_mean=False)}[kind]()
    frames = random_clip(seed=len(kind))
    path = tmp_path / "clip.glb"
    write_animation(path, frames, models, FPS)
    doc, blob = read_glb(path)
    times = frame_times(doc, blob)
    assert len(times) == NUM_FRAMES and doc["scenes"][0]["extras"]["fps"] == FPS
    expected_targets = 10 if kind == "open" else 10 + 135
    worst = 0.0
    for side in SIDES:
        mesh_node = node_index(doc, f"{side}_hand_mesh")
        prim = doc["meshes"][doc["nodes"][mesh_node]["mesh"]]["primitives"][0]
        assert len(prim["targets"]) == expected_targets
        for t, frame in enumerate(frames):
            if side not in frame:
                continue
            got = skinned_vertices(doc, blob, mesh_node, times[t]) @ FLIP  # world -> camera frame
            want = model_vertices(models[side], frame[side])
            worst = max(worst, float(np.abs(got - want).max()))
    assert worst < 1e-5, worst
    # stored weights in [0, 1] (Blender's slider range); targetRanges map them to the betas
    for side in SIDES:
        mesh_node = node_index(doc, f"{side}_hand_mesh")
        mesh = doc["meshes"][doc["nodes"][mesh_node]["mesh"]]
        channel = next(c for c in doc["animations"][0]["channels"]
                       if c["target"] == {"node": mesh_node, "path": "weights"})
        stored = accessor(doc, blob, doc["animations"][0]["samplers"][channel["sampler"]]["output"])
        stored = stored.reshape(NUM_FRAMES, -1)
        assert stored.min() >= 0 and stored.max() <= 1
        lo, hi = np.array(mesh["extras"]["targetRanges"]).T
        present = [t for t, f in enumerate(frames) if side in f]
        betas = lo[:10] + stored[present, :10] * (hi - lo)[:10]
        np.testing.assert_allclose(betas, [frames[t][side]["betas"] for t in present], atol=1e-5)
        assert mesh["extras"]["targetNames"][:10] == [f"beta{k}" for k in range(10)]


def test_a_hand_absent_in_a_frame_is_scaled_to_zero_and_keeps_its_last_pose(tmp_path):
    models = mano_models()
    frames = random_clip(seed=5)
    path = tmp_path / "clip.glb"
    write_animation(path, frames, models, FPS)
    doc, blob = read_glb(path)
    times = frame_times(doc, blob)
    left, right = node_index(doc, "left_hand"), node_index(doc, "right_hand")
    scale_channels = [c for c in doc["animations"][0]["channels"] if c["target"]["path"] == "scale"]
    assert {c["target"]["node"] for c in scale_channels} == {left, right}
    for c in scale_channels:
        assert doc["animations"][0]["samplers"][c["sampler"]]["interpolation"] == "STEP"
    for t in range(NUM_FRAMES):
        trs, _ = animated_state(doc, blob, times[t])
        np.testing.assert_array_equal(trs[right][2], [1, 1, 1])
        np.testing.assert_array_equal(trs[left][2], [0, 0, 0] if t == HIDDEN else [1, 1, 1])
        # STEP: hidden for the whole interval after the hidden frame's time, shown before
        mid, _ = animated_state(doc, blob, times[t] + 0.5 / FPS)
        np.testing.assert_array_equal(mid[left][2], [0, 0, 0] if t == HIDDEN else [1, 1, 1])
    mesh_node = node_index(doc, "left_hand_mesh")
    hidden = skinned_vertices(doc, blob, mesh_node, times[HIDDEN])
    assert np.abs(hidden).max() < 1e-9  # collapsed to a point: invisible
    # with the scale put back, the hidden frame shows the last pose (frame HIDDEN - 1)
    doc["animations"][0]["channels"] = [c for c in doc["animations"][0]["channels"]
                                        if c not in scale_channels]
    held = skinned_vertices(doc, blob, mesh_node, times[HIDDEN]) @ FLIP
    want = model_vertices(models["left"], frames[HIDDEN - 1]["left"])
    assert np.abs(held - want).max() < 1e-5


def test_names_tree_camera_root_and_other_readers(tmp_path):
    models = mano_models()
    frames = random_clip(seed=7, hidden=None)
    for frame in frames:
        del frame["left"]  # the left hand never appears: it is left out
    path = tmp_path / "right_only.glb"
    write_animation(path, frames, models, FPS)
    doc, blob = read_glb(path)
    camera = node_index(doc, "camera")
    assert doc["nodes"][camera]["rotation"] == [1.0, 0.0, 0.0, 0.0]  # 180 degrees about x
    np.testing.assert_allclose(quat_matrix(np.array([1.0, 0, 0, 0])), FLIP, atol=1e-15)
    right = node_index(doc, "right_hand")
    assert doc["nodes"][camera]["children"] == [right]
    names = [n["name"] for n in doc["nodes"]]
    assert not any(n.startswith("left") for n in names)
    assert [m["name"] for m in doc["meshes"]] == ["right_hand"]
    skin = doc["skins"][0]
    assert [doc["nodes"][j]["name"] for j in skin["joints"]] == [f"right_{n}" for n in MANO_JOINT_NAMES]
    wrist = skin["joints"][0]
    assert doc["nodes"][right]["children"] == [wrist]
    parents = {c: p for p, n in enumerate(doc["nodes"]) for c in n.get("children", [])}
    tree = [-1] + [skin["joints"].index(parents[j]) for j in skin["joints"][1:]]
    assert tree == [int(p) for p in models["right"].parents]
    assert doc["scenes"][0]["extras"]["frame"].startswith("camera, OpenCV")
    assert len(doc["animations"]) == 1
    # a second, unrelated reader opens it too
    scene = trimesh.load(path, force="scene")
    assert list(scene.geometry) == ["right_hand"]
    assert len(scene.geometry["right_hand"].vertices) == models["right"].num_vertices


@pytest.mark.parametrize("case", ["empty", "no_hand", "suffix", "folder"])
def test_bad_input_is_a_one_line_user_error(tmp_path, case):
    models = mano_models()
    frames, path = random_clip(), tmp_path / "clip.glb"
    if case == "empty":
        frames = []
    elif case == "no_hand":
        frames = [{} for _ in range(3)]
    elif case == "suffix":
        path = tmp_path / "clip.gltf"
    else:
        path = tmp_path / "missing" / "clip.glb"
    with pytest.raises(UserError) as e:
        write_animation(path, frames, models, FPS)
    assert "\n" not in str(e.value) and str(e.value)
    assert not path.exists() and list(tmp_path.iterdir()) == []
