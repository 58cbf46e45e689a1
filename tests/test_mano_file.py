"""The MANO file loader on generated official-format files, and its refusals."""

import collections
import pickle
import pickletools
import sys

import numpy as np
import pytest

from _mano_fixture import (
    fake_chumpy_installed,
    random_mano_data,
    write_npz,
    write_official_pickle,
    write_py3_pickle,
)
from fourdhands.errors import UserError
from fourdhands.hands.mano_file import (
    REQUIRED_KEYS,
    fix_left_shapedirs,
    read_mano_file,
    validate_model_data,
)


@pytest.fixture(scope="module")
def data():
    return random_mano_data(seed=3)


def _assert_same(loaded, data):
    for key in REQUIRED_KEYS:
        if key == "kintree_table":
            continue
        np.testing.assert_array_equal(loaded[key], np.asarray(data[key]), err_msg=key)
    assert loaded["kintree_table"].tolist() == [
        [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14],
        list(range(16)),
    ]
    for key in REQUIRED_KEYS:
        if key in ("f", "kintree_table"):
            assert loaded[key].dtype == np.int64
        else:
            assert loaded[key].dtype == np.float64
            assert isinstance(loaded[key], np.ndarray)


def _user_error(path_or_text, excinfo):
    msg = str(excinfo.value)
    assert "\n" not in msg
    assert str(path_or_text) in msg
    return msg


def test_official_python2_style_pickle_loads_without_chumpy(tmp_path, data):
    path = write_official_pickle(tmp_path / "MANO_RIGHT.pkl", data)
    raw = path.read_bytes()
    # the fixture really mimics a Python-2 file: old names, chumpy classes, str opcodes
    globals_ = {arg for op, arg, _ in pickletools.genops(raw) if op.name == "GLOBAL"}
    assert {
        "chumpy.ch Ch",
        "chumpy.reordering Select",
        "scipy.sparse.csc csc_matrix",
        "numpy.core.multiarray _reconstruct",
        "__builtin__ set",
    } <= globals_
    opcodes = {op.name for op, _, _ in pickletools.genops(raw)}
    assert "BINSTRING" in opcodes and "BINUNICODE" not in opcodes
    assert raw[:2] == b"\x80\x02"

    assert "chumpy" not in sys.modules
    loaded = read_mano_file(path)
    assert "chumpy" not in sys.modules
    _assert_same(loaded, data)


def test_python3_protocol2_and_protocol5_pickles_load(tmp_path, data):
    for proto in (2, 5):
        path = write_py3_pickle(tmp_path / f"p{proto}.pkl", data, protocol=proto)
        _assert_same(read_mano_file(path), data)


def test_plain_numpy_pickle_loads(tmp_path, data):
    # what smplx's clean_ch tool writes: the chumpy objects replaced by plain arrays
    path = tmp_path / "clean.pkl"
    path.write_bytes(pickle.dumps({k: np.asarray(v) for k, v in data.items()}))
    _assert_same(read_mano_file(path), data)


def test_npz_loads(tmp_path, data):
    extra = dict(data, tip_vertex_ids=np.array([5, 6, 7, 8, 9]))
    loaded = read_mano_file(write_npz(tmp_path / "model.npz", extra))
    _assert_same(loaded, data)
    assert loaded["tip_vertex_ids"].tolist() == [5, 6, 7, 8, 9]


def test_missing_file(tmp_path):
    path = tmp_path / "nope" / "MANO_RIGHT.pkl"
    with pytest.raises(UserError) as e:
        read_mano_file(path)
    assert "does not exist" in _user_error(path, e)


@pytest.mark.parametrize(
    "module,name,payload",
    [
        ("os", "system", "touch {marker}"),
        ("posix", "system", "touch {marker}"),
        ("builtins", "eval", "open({marker!r}, 'w')"),
    ],
)
def test_pickle_with_a_disallowed_callable_is_refused_and_not_run(tmp_path, module, name, payload):
    marker = tmp_path / "pwned"
    arg = payload.format(marker=str(marker)).encode()
    crafted = (
        b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n"
        + b"X" + len(arg).to_bytes(4, "little") + arg + b"\x85R."
    )
    path = tmp_path / "evil.pkl"
    path.write_bytes(crafted)
    with pytest.raises(UserError) as e:
        read_mano_file(path)
    msg = _user_error(path, e)
    assert f"{module}.{name}" in msg and "refused" in msg
    assert not marker.exists()


def test_pickle_with_an_unlisted_class_is_refused(tmp_path, data):
    path = tmp_path / "ordered.pkl"
    path.write_bytes(pickle.dumps(collections.OrderedDict(v_template=data["v_template"]), protocol=2))
    with pytest.raises(UserError) as e:
        read_mano_file(path)
    assert "collections.OrderedDict" in _user_error(path, e)


def test_unknown_chumpy_class_is_refused(tmp_path, data):
    class Add:  # a chumpy op that official files do not contain
        def __init__(self, a):
            self.a = a

    Add.__module__, Add.__qualname__ = "chumpy.ch_ops", "add"
    import types

    mod = types.ModuleType("chumpy.ch_ops")
    mod.add = Add
    path = tmp_path / "op.pkl"
    with fake_chumpy_installed():
        sys.modules["chumpy.ch_ops"] = mod
        try:
            path.write_bytes(pickle.dumps(dict(data, shapedirs=Add(1)), protocol=2))
        finally:
            del sys.modules["chumpy.ch_ops"]
    with pytest.raises(UserError) as e:
        read_mano_file(path)
    assert "chumpy.ch_ops.add" in _user_error(path, e)


@pytest.mark.parametrize("key", ["posedirs", "J_regressor", "f"])
def test_missing_key(tmp_path, data, key):
    reduced = {k: v for k, v in data.items() if k != key}
    for path in (write_official_pickle(tmp_path / "m.pkl", reduced), write_npz(tmp_path / "m.npz", reduced)):
        with pytest.raises(UserError) as e:
            read_mano_file(path)
        msg = _user_error(path, e)
        assert f"'{key}'" in msg and "missing" in msg


@pytest.mark.parametrize(
    "key,bad_shape",
    [
        ("shapedirs", (778, 3, 9)),
        ("posedirs", (778, 3, 134)),
        ("J_regressor", (21, 778)),
        ("weights", (777, 16)),
        ("kintree_table", (2, 15)),
        ("hands_mean", (48,)),
        ("f", (10, 4)),
        ("v_template", (778, 2)),
    ],
)
def test_wrong_shape(tmp_path, data, key, bad_shape):
    bad = dict(data)
    bad[key] = np.zeros(bad_shape)
    path = write_npz(tmp_path / "m.npz", bad)
    with pytest.raises(UserError) as e:
        read_mano_file(path)
    msg = _user_error(path, e)
    assert f"'{key}'" in msg and str(bad_shape[0]) in msg


def test_bad_values(tmp_path, data):
    cases = {
        "nan.npz": dict(data, shapedirs=np.full((778, 3, 10), np.nan)),
        "faces.npz": dict(data, f=np.full((5, 3), 778)),
        "tree.npz": dict(data, kintree_table=np.array([[4294967295] + [3] * 15, list(range(16))])),
        "root.npz": dict(data, kintree_table=np.array([[0] * 16, list(range(16))])),
    }
    for name, bad in cases.items():
        path = write_npz(tmp_path / name, bad)
        with pytest.raises(UserError) as e:
            read_mano_file(path)
        _user_error(path, e)


def test_non_mano_files(tmp_path):
    text = tmp_path / "notes.pkl"
    text.write_text("this is not a pickle\nat all\n")
    lst = tmp_path / "list.pkl"
    lst.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    truncated = tmp_path / "trunc.pkl"
    truncated.write_bytes(pickle.dumps({"a": np.zeros(100)}, protocol=2)[:60])
    npz_bad = tmp_path / "bad.npz"
    npz_bad.write_bytes(b"PK\x03\x04 garbage")
    npz_obj = tmp_path / "obj.npz"
    np.savez(npz_obj, v_template=np.array([{"a": 1}], dtype=object))
    other_ext = tmp_path / "model.obj"
    other_ext.write_text("v 0 0 0\n")
    for path, words in [
        (text, "not a readable"),
        (lst, "not a MANO model"),
        (empty, "empty"),
        (truncated, "not a readable"),
        (npz_bad, "not a readable"),
        (npz_obj, "pickled Python objects"),
        (other_ext, "unsupported file type"),
        (tmp_path, "directory"),
    ]:
        with pytest.raises(UserError) as e:
            read_mano_file(path)
        assert words in _user_error(path, e), path


def test_validate_model_data_on_dicts(data):
    out = validate_model_data(data, "test model")
    assert out["v_template"] is not data["v_template"]  # a copy
    with pytest.raises(UserError, match="test model: missing keys 'shapedirs', 'weights'"):
        validate_model_data({k: v for k, v in data.items() if k not in ("shapedirs", "weights")}, "test model")
    with pytest.raises(UserError, match="not a MANO model"):
        validate_model_data([1, 2], "test model")


def test_fix_left_shapedirs():
    right = random_mano_data(seed=5)
    buggy_left = dict(right)  # the official bug: the left x-column equals the right's
    fixed = fix_left_shapedirs(buggy_left, right)
    np.testing.assert_array_equal(fixed["shapedirs"][:, 0], -right["shapedirs"][:, 0])
    np.testing.assert_array_equal(fixed["shapedirs"][:, 1:], right["shapedirs"][:, 1:])
    assert buggy_left["shapedirs"] is right["shapedirs"]  # the input is not modified
    # an already-correct left file is left alone (the fix is idempotent)
    again = fix_left_shapedirs(fixed, right)
    np.testing.assert_array_equal(again["shapedirs"], fixed["shapedirs"])
