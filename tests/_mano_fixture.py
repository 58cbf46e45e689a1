"""Test helpers: random MANO-format models, their exact mirrors, and official-format files.

The official MANO files cannot be shipped (license), so the tests generate files in the
same format: Python-2-style protocol-2 pickles (array bytes and ASCII strings as Python 2
``str`` opcodes, ``numpy.core.multiarray`` / ``__builtin__`` / ``copy_reg`` names),
chumpy objects whose pickled state has the real ``chumpy.ch.Ch`` layout (their ``__dict__``
minus the weak-reference caches), and ``J_regressor`` as a SciPy CSC matrix named
``scipy.sparse.csc.csc_matrix``. Chumpy exists only while a file is written: fake
``chumpy`` modules are put in ``sys.modules`` and removed again.
"""

from __future__ import annotations

import contextlib
import pickle
import struct
import sys
import types
from pathlib import Path

import numpy as np
import scipy.sparse as sp

MANO_PARENTS = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]
ROOT_MARKER = 4294967295


def random_mano_data(
    seed: int = 0, num_vertices: int = 778, num_faces: int = 1538, with_tips: bool = False
) -> dict:
    """A random model with MANO's keys, shapes and value scales (metres, radians)."""
    rng = np.random.default_rng(seed)
    V = num_vertices
    # a hand-sized point cloud, wrist away from the origin as in MANO
    v_template = rng.uniform([-0.09, -0.02, -0.05], [0.09, 0.02, 0.05], size=(V, 3))
    v_template += np.array([0.09, 0.006, 0.006])
    shapedirs = rng.normal(scale=0.004, size=(V, 3, 10))
    posedirs = rng.normal(scale=0.002, size=(V, 3, 135))
    # sparse joint regressor: each joint averages ~8 vertices (rows sum to 1)
    J_regressor = np.zeros((16, V))
    for j in range(16):
        idx = rng.choice(V, size=8, replace=False)
        w = rng.uniform(0.1, 1.0, size=8)
        J_regressor[j, idx] = w / w.sum()
    # skinning weights: 1-3 joints per vertex, rows sum to 1
    weights = np.zeros((V, 16))
    for v in range(V):
        k = rng.integers(1, 4)
        idx = rng.choice(16, size=k, replace=False)
        w = rng.uniform(0.1, 1.0, size=k)
        weights[v, idx] = w / w.sum()
    faces = np.stack([rng.choice(V, size=3, replace=False) for _ in range(num_faces)])
    q, _ = np.linalg.qr(rng.normal(size=(45, 45)))
    data = {
        "v_template": v_template,
        "shapedirs": shapedirs,
        "posedirs": posedirs,
        "J_regressor": J_regressor,
        "weights": weights,
        "kintree_table": np.array([[ROOT_MARKER] + MANO_PARENTS[1:], list(range(16))], dtype=np.int64),
        "f": faces.astype(np.uint32),
        "hands_mean": rng.normal(scale=0.15, size=45),
        "hands_components": q * rng.uniform(0.2, 1.0, size=(45, 1)),
    }
    if with_tips:
        data["tip_vertex_ids"] = rng.choice(V, size=5, replace=False).astype(np.int64)
    return data


# ---------------------------------------------------------------------------------------
# Official-format pickles
# ---------------------------------------------------------------------------------------


class FakeCh:
    """Stands for chumpy.ch.Ch while writing; pickles with chumpy's layout."""

    def __init__(self, x):
        self.x = np.asarray(x, dtype=np.float64)

    def __getstate__(self):
        # chumpy's Ch.__getstate__: its __dict__ without '_parents' and '_cache'
        return {
            "x": self.x,
            "_dirty_vars": set(),
            "_itr": None,
            "_depends_on_deps": {},
            "_make_dense": False,
            "_make_sparse": False,
        }


class FakeSelect:
    """Stands for chumpy.reordering.Select (``a.ravel()[idxs]`` shaped ``preferred_shape``)."""

    def __init__(self, a, idxs, preferred_shape):
        self.a, self.idxs, self.preferred_shape = a, np.asarray(idxs), tuple(preferred_shape)

    def __getstate__(self):
        return {
            "a": self.a,
            "idxs": self.idxs,
            "preferred_shape": self.preferred_shape,
            "_dirty_vars": {"a"},
            "_itr": None,
            "_depends_on_deps": {},
            "_make_dense": False,
            "_make_sparse": False,
        }


FakeCh.__module__, FakeCh.__qualname__, FakeCh.__name__ = "chumpy.ch", "Ch", "Ch"
FakeSelect.__module__, FakeSelect.__qualname__, FakeSelect.__name__ = (
    "chumpy.reordering",
    "Select",
    "Select",
)


@contextlib.contextmanager
def fake_chumpy_installed():
    """Fake ``chumpy`` modules in sys.modules, only for the duration of a write."""
    names = ("chumpy", "chumpy.ch", "chumpy.reordering")
    saved = {n: sys.modules.get(n) for n in names}
    pkg = types.ModuleType("chumpy")
    ch = types.ModuleType("chumpy.ch")
    reordering = types.ModuleType("chumpy.reordering")
    ch.Ch = FakeCh
    reordering.Select = FakeSelect
    pkg.ch, pkg.reordering = ch, reordering
    sys.modules.update({"chumpy": pkg, "chumpy.ch": ch, "chumpy.reordering": reordering})
    try:
        yield
    finally:
        for n, mod in saved.items():
            if mod is None:
                sys.modules.pop(n, None)
            else:  # pragma: no cover
                sys.modules[n] = mod


def _py2_renames() -> dict[int, tuple[str, str]]:
    from numpy._core import multiarray

    return {
        id(multiarray._reconstruct): ("numpy.core.multiarray", "_reconstruct"),
        id(multiarray.scalar): ("numpy.core.multiarray", "scalar"),
        id(sp.csc_matrix): ("scipy.sparse.csc", "csc_matrix"),
        id(sp.csr_matrix): ("scipy.sparse.csr", "csr_matrix"),
    }


class Py2StylePickler(pickle._Pickler):
    """A protocol-2 pickler writing what Python 2 wrote: ``str`` opcodes for bytes and
    ASCII text, and the old module names of NumPy / SciPy globals."""

    dispatch = pickle._Pickler.dispatch.copy()

    def __init__(self, file):
        super().__init__(file, protocol=2)
        self._renames = _py2_renames()

    def _write_py2_str(self, raw: bytes) -> None:
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)

    def save_bytes(self, obj):
        self._write_py2_str(bytes(obj))
        self.memoize(obj)

    def save_str(self, obj):
        if obj.isascii():
            self._write_py2_str(obj.encode("ascii"))
            self.memoize(obj)
        else:  # Python 2 unicode
            pickle._Pickler.save_str(self, obj)

    dispatch[bytes] = save_bytes
    dispatch[str] = save_str

    def save_global(self, obj, name=None):
        renamed = self._renames.get(id(obj))
        if renamed is None:
            return super().save_global(obj, name)
        module, qualname = renamed
        self.write(pickle.GLOBAL + f"{module}\n{qualname}\n".encode("ascii"))
        self.memoize(obj)


def official_payload(data: dict, chumpy_keys=("v_template", "shapedirs", "posedirs", "weights", "hands_mean", "J"),
                     select_keys=("hands_components",)) -> dict:
    """The dict an official MANO pickle holds: chumpy objects, a sparse J_regressor, extras.

    Call inside :func:`fake_chumpy_installed`.
    """
    payload = {k: np.asarray(v) for k, v in data.items()}
    if "J_regressor" in payload and "v_template" in payload:
        payload["J"] = payload["J_regressor"] @ payload["v_template"]
    payload["hands_coeffs"] = np.zeros((4, 45))
    payload["bs_style"] = "lbs"
    payload["bs_type"] = "lrotmin"
    if "J_regressor" in payload:
        payload["J_regressor"] = sp.csc_matrix(payload["J_regressor"])
    for key in chumpy_keys:
        if key in payload:
            payload[key] = FakeCh(payload[key])
    for key in select_keys:
        if key not in payload:
            continue
        arr = np.asarray(payload[key])
        # a Select that picks every element of a flat Ch, in a shuffled storage order
        perm = np.random.default_rng(1).permutation(arr.size)
        storage = np.empty(arr.size)
        storage[perm] = arr.ravel()
        payload[key] = FakeSelect(FakeCh(storage), perm, arr.shape)
    return payload


def write_official_pickle(path: Path, data: dict, **kwargs) -> Path:
    """Write ``data`` as an official-format (Python-2 style, protocol 2) MANO pickle."""
    with fake_chumpy_installed():
        payload = official_payload(data, **kwargs)
        with open(path, "wb") as fh:
            Py2StylePickler(fh).dump(payload)
    assert "chumpy" not in sys.modules
    return Path(path)


def write_py3_pickle(path: Path, data: dict, protocol: int = 2) -> Path:
    """The same payload pickled by Python 3's own pickler (modern names, _codecs bytes)."""
    with fake_chumpy_installed():
        payload = official_payload(data)
        with open(path, "wb") as fh:
            pickle.dump(payload, fh, protocol=protocol)
    return Path(path)


def write_npz(path: Path, data: dict) -> Path:
    np.savez(path, **{k: np.asarray(v) for k, v in data.items()})
    return Path(path)
