"""HandModel forward against an independent float64 computation, and load_hand_model."""

import sys
import types

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from _mano_fixture import random_mano_data, write_npz, write_official_pickle
from fourdhands.errors import UserError
from fourdhands.hands.model import HandModel, HandOutput, load_hand_model

# Written out here, independently of fourdhands.hands.joints.
MANO_NAMES = [
    "wrist", "index1", "index2", "index3", "middle1", "middle2", "middle3",
    "pinky1", "pinky2", "pinky3", "ring1", "ring2", "ring3", "thumb1", "thumb2", "thumb3",
]  # fmt: skip
PARENT_NAMES = {n: ("wrist" if n.endswith("1") else n[:-1] + str(int(n[-1]) - 1)) for n in MANO_NAMES[1:]}
TIP_NAMES = ["thumb4", "index4", "middle4", "ring4", "pinky4"]
OPENPOSE_NAMES = ["wrist"] + [f"{f}{i}" for f in ("thumb", "index", "middle", "ring", "pinky") for i in range(1, 5)]
INTAGHAND_TIPS = [745, 317, 444, 556, 673]
SMPLX_TIPS = [744, 320, 443, 554, 671]


def reference_forward(data, go, hp, betas, transl, flat_hand_mean, tips):
    """MANO by the definition, one sample at a time, float64, with explicit loops."""
    R_all = []
    out_v, out_j, out_k = [], [], []
    for b in range(go.shape[0]):
        finger = hp[b] + (0.0 if flat_hand_mean else data["hands_mean"])
        aa = np.concatenate([go[b], finger]).reshape(16, 3)
        R = [Rotation.from_rotvec(a).as_matrix() for a in aa]
        R_all.append(R)
        v_shaped = np.array(data["v_template"], dtype=np.float64)
        for k in range(betas.shape[1]):
            v_shaped = v_shaped + betas[b, k] * data["shapedirs"][:, :, k]
        J = data["J_regressor"] @ v_shaped
        feature = []
        for j in range(1, 16):
            feature.extend((R[j] - np.eye(3)).ravel())
        v_posed = v_shaped.copy()
        for p, f in enumerate(feature):
            v_posed += f * data["posedirs"][:, :, p]
        G = {}
        for j, name in enumerate(MANO_NAMES):
            local = np.eye(4)
            local[:3, :3] = R[j]
            if name == "wrist":
                local[:3, 3] = J[j]
                G[name] = local
            else:
                pj = MANO_NAMES.index(PARENT_NAMES[name])
                local[:3, 3] = J[j] - J[pj]
                G[name] = G[PARENT_NAMES[name]] @ local
        verts = np.zeros_like(v_posed)
        for j, name in enumerate(MANO_NAMES):
            A = G[name].copy()
            A[:3, 3] -= A[:3, :3] @ J[j]
            verts += data["weights"][:, j : j + 1] * (v_posed @ A[:3, :3].T + A[:3, 3])
        joints = np.stack([G[n][:3, 3] for n in MANO_NAMES])
        verts, joints = verts + transl[b], joints + transl[b]
        named = dict(zip(MANO_NAMES, joints))
        named.update(zip(TIP_NAMES, verts[tips]))
        out_v.append(verts)
        out_j.append(joints)
        out_k.append(np.stack([named[n] for n in OPENPOSE_NAMES]))
    return np.stack(out_v), np.stack(out_j), np.stack(out_k)


@pytest.fixture(scope="module")
def data():
    return random_mano_data(seed=11)


def _random_params(seed, B=4):
    rng = np.random.default_rng(seed)
    return dict(
        global_orient=rng.normal(scale=1.0, size=(B, 3)),
        hand_pose=rng.normal(scale=0.5, size=(B, 45)),
        betas=rng.normal(scale=1.5, size=(B, 10)),
        transl=rng.normal(scale=0.3, size=(B, 3)) + [0, 0, 0.5],
    )


def _torch(params, dtype=torch.float64):
    return {k: torch.as_tensor(v, dtype=dtype) for k, v in params.items()}


@pytest.mark.parametrize("flat", [True, False])
def test_forward_matches_independent_reference_float64(data, flat):
    model = HandModel(data, "right", flat_hand_mean=flat, dtype=torch.float64)
    p = _random_params(seed=1)
    out = model(**_torch(p))
    assert isinstance(out, HandOutput)
    assert out.vertices.shape == (4, 778, 3) and out.joints.shape == (4, 16, 3)
    assert out.keypoints.shape == (4, 21, 3) and out.faces.dtype == torch.long
    assert out.model_name == "mano" and out.side == "right"
    v, j, k = reference_forward(data, p["global_orient"], p["hand_pose"], p["betas"], p["transl"], flat, INTAGHAND_TIPS)
    np.testing.assert_allclose(out.vertices.numpy(), v, atol=1e-12, rtol=0)
    np.testing.assert_allclose(out.joints.numpy(), j, atol=1e-12, rtol=0)
    np.testing.assert_allclose(out.keypoints.numpy(), k, atol=1e-12, rtol=0)
    np.testing.assert_array_equal(out.faces.numpy(), data["f"].astype(np.int64))


def test_forward_float32_agrees_to_1e5(data):
    model = HandModel(data, "right")  # float32 by default
    assert model.v_template.dtype == torch.float32
    p = _random_params(seed=2)
    out = model(**_torch(p, torch.float32))
    assert out.vertices.dtype == torch.float32
    v, j, k = reference_forward(data, p["global_orient"], p["hand_pose"], p["betas"], p["transl"], True, INTAGHAND_TIPS)
    assert np.abs(out.vertices.numpy() - v).max() < 1e-5
    assert np.abs(out.keypoints.numpy() - k).max() < 1e-5
    # .to(dtype) casts the float buffers and keeps faces long
    m64 = model.to(torch.float64)
    assert m64.shapedirs.dtype == torch.float64 and m64.faces.dtype == torch.long
    out64 = m64(**_torch(p))
    assert np.abs(out64.vertices.numpy() - v).max() < 1e-7  # float32-rounded buffers


def test_flat_hand_mean_default_and_per_call_override(data):
    p = _torch(_random_params(seed=3))
    flat = HandModel(data, "right", dtype=torch.float64)
    assert flat.flat_hand_mean is True
    mean = HandModel(data, "right", flat_hand_mean=False, dtype=torch.float64)
    mean_pose = torch.as_tensor(data["hands_mean"]).expand(4, 45)
    # non-flat with hand_pose == flat with hand_pose + hands_mean
    a = mean(**p).vertices
    b = flat(**dict(p, hand_pose=p["hand_pose"] + mean_pose)).vertices
    torch.testing.assert_close(a, b, atol=1e-14, rtol=0)
    # the per-call flag overrides the attribute, both ways
    torch.testing.assert_close(flat(**p, flat_hand_mean=False).vertices, a, atol=0, rtol=0)
    torch.testing.assert_close(mean(**p, flat_hand_mean=True).vertices, flat(**p).vertices, atol=0, rtol=0)
    # zero pose: flat model gives the template's rest pose, non-flat does not
    rest = flat(betas=torch.zeros(1, 10, dtype=torch.float64)).vertices[0].numpy()
    np.testing.assert_allclose(rest, data["v_template"], atol=1e-15)
    assert np.abs(mean().vertices[0].numpy() - data["v_template"]).max() > 1e-3


@pytest.mark.parametrize("flat", [True, False])
def test_rotmats_path_equals_axis_angle_path(data, flat):
    model = HandModel(data, "right", flat_hand_mean=flat, dtype=torch.float64)
    p = _random_params(seed=4)
    finger = p["hand_pose"] + (0.0 if flat else data["hands_mean"])
    full = np.concatenate([p["global_orient"], finger], axis=1).reshape(-1, 3)
    rotmats = torch.as_tensor(Rotation.from_rotvec(full).as_matrix().reshape(4, 16, 3, 3))
    a = model(**_torch(p))
    b = model(rotmats=rotmats, betas=torch.as_tensor(p["betas"]), transl=torch.as_tensor(p["transl"]))
    # hands_mean is never added to rotmats, whatever the flag
    c = model(rotmats=rotmats, betas=torch.as_tensor(p["betas"]), transl=torch.as_tensor(p["transl"]),
              flat_hand_mean=not flat)  # fmt: skip
    for x, y in ((a, b), (b, c)):
        torch.testing.assert_close(x.vertices, y.vertices, atol=1e-13, rtol=0)
        torch.testing.assert_close(x.keypoints, y.keypoints, atol=1e-13, rtol=0)
    with pytest.raises(ValueError, match="not both"):
        model(rotmats=rotmats, global_orient=torch.zeros(4, 3))


def test_transl_shifts_everything_and_missing_args_default(data):
    model = HandModel(data, "right", dtype=torch.float64)
    p = _torch(_random_params(seed=5))
    with_t = model(**p)
    without = model(**{k: v for k, v in p.items() if k != "transl"})
    t = p["transl"][:, None]
    for name in ("vertices", "joints", "keypoints"):
        torch.testing.assert_close(getattr(with_t, name), getattr(without, name) + t, atol=1e-15, rtol=0)
    # missing betas = zeros; fewer than 10 betas are padded with zeros
    torch.testing.assert_close(
        model(global_orient=p["global_orient"]).vertices,
        model(global_orient=p["global_orient"], betas=torch.zeros(4, 10, dtype=torch.float64)).vertices,
    )
    torch.testing.assert_close(
        model(betas=p["betas"][:, :3]).vertices,
        model(betas=torch.cat([p["betas"][:, :3], torch.zeros(4, 7, dtype=torch.float64)], 1)).vertices,
    )
    assert model().vertices.shape == (1, 778, 3)
    # numpy inputs are accepted and cast to the model's dtype
    out_np = model(**_random_params(seed=5))
    torch.testing.assert_close(out_np.vertices, with_t.vertices)


def test_batch_independence(data):
    model = HandModel(data, "right", flat_hand_mean=False, dtype=torch.float64)
    p = _torch(_random_params(seed=6, B=5))
    full = model(**p)
    for i in range(5):
        one = model(**{k: v[i : i + 1] for k, v in p.items()})
        torch.testing.assert_close(full.vertices[i : i + 1], one.vertices, atol=1e-14, rtol=0)
        torch.testing.assert_close(full.keypoints[i : i + 1], one.keypoints, atol=1e-14, rtol=0)


def test_gradients_flow_to_all_parameters(data):
    model = HandModel(data, "right", dtype=torch.float64)
    p = {k: v.requires_grad_() for k, v in _torch(_random_params(seed=7, B=2)).items()}
    p["hand_pose"] = p["hand_pose"] * 0  # includes the exact zero-angle case
    model(**p).keypoints.square().sum().backward()
    for k in ("global_orient", "betas", "transl"):
        assert torch.isfinite(p[k].grad).all() and p[k].grad.abs().sum() > 0


def test_no_hardcoded_device(data):
    """Moving the model to another device moves every tensor it makes (checked on 'meta')."""
    model = HandModel(data, "right").to("meta")
    p = {k: torch.zeros(2, *v.shape[1:], device="meta") for k, v in _torch(_random_params(8, 2)).items()}
    out = model(**p)
    assert out.vertices.device.type == "meta" and out.keypoints.device.type == "meta"
    out = model(rotmats=torch.zeros(2, 16, 3, 3, device="meta"))
    assert out.joints.device.type == "meta"
    if torch.cuda.is_available():  # pragma: no cover - exercised on GPU machines
        m = HandModel(data, "right").cuda()
        q = _torch(_random_params(8, 2), torch.float32)
        out = m(**{k: v.cuda() for k, v in q.items()})
        ref = HandModel(data, "right")(**q)
        torch.testing.assert_close(out.vertices.cpu(), ref.vertices, atol=1e-5, rtol=0)


def test_bad_arguments(data):
    model = HandModel(data, "right")
    for kwargs, words in [
        (dict(global_orient=torch.zeros(2, 4)), "global_orient has shape (2, 4)"),
        (dict(hand_pose=torch.zeros(2, 48)), "hand_pose has shape (2, 48)"),
        (dict(betas=torch.zeros(2, 11)), "betas has shape (2, 11)"),
        (dict(transl=torch.zeros(3)), "transl has shape (3,)"),
        (dict(global_orient=torch.zeros(2, 3), hand_pose=torch.zeros(3, 45)), "batch sizes differ"),
    ]:
        # a caller's bug, not the user's: a ValueError with its traceback, not a UserError
        with pytest.raises(ValueError) as e:
            model(**kwargs)
        assert words in str(e.value) and not isinstance(e.value, UserError)
    with pytest.raises(ValueError, match="side"):
        HandModel(data, "middle")


def test_tip_conventions(data):
    p = _torch(_random_params(seed=9, B=1))
    out = HandModel(data, "right", tips="smplx", dtype=torch.float64)(**p)
    np.testing.assert_array_equal(out.keypoints[0, [4, 8, 12, 16, 20]].numpy(), out.vertices[0, SMPLX_TIPS].numpy())
    out = HandModel(data, "right", dtype=torch.float64)(**p)
    np.testing.assert_array_equal(out.keypoints[0, [4, 8, 12, 16, 20]].numpy(), out.vertices[0, INTAGHAND_TIPS].numpy())
    small = random_mano_data(seed=1, num_vertices=100, num_faces=20)
    with pytest.raises(UserError, match="100 vertices"):
        HandModel(small, "right")  # the MANO tip ids do not fit a 100-vertex mesh
    small_tips = random_mano_data(seed=1, num_vertices=100, num_faces=20, with_tips=True)
    m = HandModel(small_tips, "right", dtype=torch.float64)
    out = m(**p)
    np.testing.assert_array_equal(out.keypoints[0, [4, 8, 12, 16, 20]].numpy(),
                                  out.vertices[0, small_tips["tip_vertex_ids"]].numpy())  # fmt: skip


# ---------------------------------------------------------------------------- loading


def test_load_from_file_and_folder(tmp_path, data):
    write_official_pickle(tmp_path / "MANO_RIGHT.pkl", data)
    left = dict(data)
    write_npz(tmp_path / "MANO_LEFT.npz", left)
    m = load_hand_model(tmp_path / "MANO_RIGHT.pkl", "right", dtype=torch.float64)
    assert m.name == "mano" and m.side == "right" and m.source.endswith("MANO_RIGHT.pkl")
    m2 = load_hand_model(str(tmp_path), "left", flat_hand_mean=False, tips="smplx")
    assert m2.side == "left" and m2.flat_hand_mean is False and m2.source.endswith("MANO_LEFT.npz")
    assert m2.tip_vertex_ids.tolist() == SMPLX_TIPS and m2.v_template.dtype == torch.float32
    p = _random_params(seed=10, B=2)
    v, _, _ = reference_forward(data, p["global_orient"], p["hand_pose"], p["betas"], p["transl"], True, INTAGHAND_TIPS)
    np.testing.assert_allclose(m(**_torch(p)).vertices.numpy(), v, atol=1e-12)


def test_load_fix_left_shapedirs(tmp_path, data):
    write_official_pickle(tmp_path / "MANO_LEFT.pkl", data)  # buggy: same x-column as the right
    with pytest.raises(UserError) as e:
        load_hand_model(tmp_path / "MANO_LEFT.pkl", "left", fix_left_shapedirs=True)
    assert "MANO_RIGHT" in str(e.value) and str(tmp_path) in str(e.value)
    write_official_pickle(tmp_path / "MANO_RIGHT.pkl", data)
    plain = load_hand_model(tmp_path / "MANO_LEFT.pkl", "left", dtype=torch.float64)
    fixed = load_hand_model(tmp_path / "MANO_LEFT.pkl", "left", fix_left_shapedirs=True, dtype=torch.float64)
    np.testing.assert_array_equal(plain.shapedirs[:, 0].numpy(), data["shapedirs"][:, 0])
    np.testing.assert_array_equal(fixed.shapedirs[:, 0].numpy(), -data["shapedirs"][:, 0])
    np.testing.assert_array_equal(fixed.shapedirs[:, 1:].numpy(), data["shapedirs"][:, 1:])
    # no effect on the right hand
    right = load_hand_model(tmp_path / "MANO_RIGHT.pkl", "right", fix_left_shapedirs=True, dtype=torch.float64)
    np.testing.assert_array_equal(right.shapedirs.numpy(), data["shapedirs"])


def test_load_open_model_uses_its_own_tips(monkeypatch):
    open_data = random_mano_data(seed=12, num_vertices=300, num_faces=50, with_tips=True)
    calls = []

    def build_open_hand(side):
        calls.append(side)
        return open_data

    fake = types.ModuleType("fourdhands.hands.open_model")
    fake.build_open_hand = build_open_hand
    monkeypatch.setitem(sys.modules, "fourdhands.hands.open_model", fake)
    m = load_hand_model("open", "left", dtype=torch.float64)
    assert calls == ["left"] and m.name == "open" and m.side == "left" and m.num_vertices == 300
    assert m.tip_vertex_ids.tolist() == open_data["tip_vertex_ids"].tolist()
    m2 = load_hand_model("open", "right", tips=[1, 2, 3, 4, 5])
    assert m2.tip_vertex_ids.tolist() == [1, 2, 3, 4, 5]


def test_load_bad_specs(tmp_path, data):
    write_npz(tmp_path / "MANO_RIGHT.npz", data)
    for spec, side, words in [
        (tmp_path / "missing.pkl", "right", "does not exist"),
        (tmp_path / "MANO_RIGHT.npz", "left", "says right hand, and there is no MANO_LEFT"),
        (tmp_path / "empty_dir", "left", "no MANO_LEFT"),
        (42, "right", "'open' or a path"),
    ]:
        if "empty_dir" in str(spec):
            spec.mkdir()
        with pytest.raises(UserError) as e:
            load_hand_model(spec, side)
        msg = str(e.value)
        assert words in msg and "\n" not in msg, msg
    write_npz(tmp_path / "MANO_LEFT.npz", data)  # now the right file stands for its folder
    assert load_hand_model(tmp_path / "MANO_RIGHT.npz", "left").source.endswith("MANO_LEFT.npz")
    with pytest.raises(ValueError, match="side"):  # the side comes from code, not from a user
        load_hand_model("open", "both")
