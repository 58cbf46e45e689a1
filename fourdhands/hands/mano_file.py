"""Reading MANO model files (``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` or ``.npz``) without chumpy.

The official MANO files are Python-2 pickles. Some of their arrays are chumpy objects
(``chumpy.ch.Ch``, and classes of ``chumpy.reordering``), ``J_regressor`` is a SciPy
sparse CSC matrix whose class old pickles name ``scipy.sparse.csc.csc_matrix``, and the
array bytes are Python-2 ``str`` (hence ``encoding='latin1'``). Chumpy does not import on
current Python / NumPy, and a pickle is a program: loading one may call any importable
function. :func:`read_mano_file` therefore unpickles through
:class:`~fourdhands.safe_pickle.AllowListUnpickler`, which admits only an explicit
allow-list of the (module, name) pairs that such files contain; chumpy and SciPy classes are replaced by small stand-ins that only record
their pickled state and turn it into a dense array afterwards. Nothing else is imported
or called, and any other class is refused with a :class:`~fourdhands.errors.UserError`.

The result of :func:`read_mano_file` (and of :func:`validate_model_data`) is a plain dict:

=================  ==============  =========================================
key                shape           dtype / meaning
=================  ==============  =========================================
v_template         (V, 3)          float64, rest vertices (m)
shapedirs          (V, 3, 10)      float64, shape blend shapes
posedirs           (V, 3, 135)     float64, pose blend shapes
J_regressor        (16, V)         float64 (dense), joints from vertices
weights            (V, 16)         float64, skinning weights
kintree_table      (2, 16)         int64; row 0 = parent column, root = -1
f                  (F, 3)          int64, triangle vertex ids
hands_mean         (45,)           float64, mean finger pose (axis-angle)
hands_components   (45, 45)        float64, pose PCA basis (rows)
tip_vertex_ids     (5,)            int64, optional (thumb, index, middle,
                                   ring, pinky fingertip vertices)
=================  ==============  =========================================

All floating data is converted to dense float64; integer data (faces, tree, tip ids) to
int64. ``kintree_table`` is normalised so that row 1 is ``0..15`` and row 0 holds parent
*column indices* in kinematic order (every parent precedes its child), with the root's
parent (4294967295 in the official files) stored as -1.
"""

from __future__ import annotations

import abc
import io
import logging
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import UserError
from ..safe_pickle import AllowListUnpickler, numpy_globals

__all__ = [
    "NUM_JOINTS",
    "NUM_BETAS",
    "NUM_POSE_FEATURES",
    "REQUIRED_KEYS",
    "OPTIONAL_KEYS",
    "read_mano_file",
    "validate_model_data",
    "fix_left_shapedirs",
    "shapedirs_need_left_fix",
]

log = logging.getLogger(__name__)

NUM_JOINTS = 16
NUM_BETAS = 10
NUM_POSE_FEATURES = 9 * (NUM_JOINTS - 1)  # 135
_ROOT_PARENT_MARKERS = (-1, 4294967295)  # uint32(-1) in the official files

REQUIRED_KEYS = (
    "v_template",
    "shapedirs",
    "posedirs",
    "J_regressor",
    "weights",
    "kintree_table",
    "f",
    "hands_mean",
    "hands_components",
)
OPTIONAL_KEYS = ("tip_vertex_ids",)


def _one_line(text: str) -> str:
    """First line of ``text`` (messages of UserError must be one line)."""
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


# ---------------------------------------------------------------------------------------
# Stand-ins for the classes that official MANO pickles reference
# ---------------------------------------------------------------------------------------


class _BadContent(Exception):
    """Raised by stand-ins when the pickled state is not what the real class would store."""


def _state_dict(state: Any) -> dict:
    # BUILD passes the object's __getstate__ result: a dict, or (dict, slotstate).
    if isinstance(state, tuple) and len(state) == 2:
        merged: dict = {}
        for part in state:
            if part is not None:
                if not isinstance(part, dict):
                    raise _BadContent("object state is not a dict")
                merged.update(part)
        return merged
    if not isinstance(state, dict):
        raise _BadContent("object state is not a dict")
    return state


class _StandIn(abc.ABC):
    """Base of the stand-ins: records the pickled state, computes an array on demand.

    Real chumpy objects pickle their ``__dict__`` minus two weak-reference caches: the
    operands (``x`` for ``Ch``; ``a``, ``idxs``, ``preferred_shape`` for ``Select``, ...)
    plus bookkeeping (``_dirty_vars`` (a set), ``_itr``, ``_depends_on_deps``,
    ``_make_dense``, ``_make_sparse``). SciPy sparse matrices pickle their ``__dict__``
    (``data``, ``indices``, ``indptr``, ``_shape`` (``shape`` in very old SciPy),
    ``maxprint``, sometimes ``format``). Only the operands are read.
    """

    kind = "object"

    def __setstate__(self, state: Any) -> None:
        object.__setattr__(self, "_state", _state_dict(state))

    def _get(self, key: str) -> Any:
        state = getattr(self, "_state", None)
        if state is None or key not in state:
            raise _BadContent(f"{self.kind} object without '{key}'")
        return state[key]

    @abc.abstractmethod
    def to_array(self, depth: int = 0) -> np.ndarray:
        """The array this object stands for."""


class _ChStandIn(_StandIn):
    """``chumpy.ch.Ch``: a leaf holding an array in ``x``."""

    kind = "chumpy.ch.Ch"

    def to_array(self, depth: int = 0) -> np.ndarray:
        return _to_numeric(self._get("x"), depth + 1)


class _SelectStandIn(_StandIn):
    """``chumpy.reordering.Select``: ``a.ravel()[idxs]``, reshaped to ``preferred_shape``."""

    kind = "chumpy.reordering.Select"

    def to_array(self, depth: int = 0) -> np.ndarray:
        a = _to_numeric(self._get("a"), depth + 1)
        idxs = np.asarray(_to_numeric(self._get("idxs"), depth + 1)).astype(np.int64).ravel()
        out = a.ravel()[idxs]
        shape = self._state.get("preferred_shape")
        if shape is not None:
            out = out.reshape(tuple(int(s) for s in np.atleast_1d(shape)))
        return out


class _ReshapeStandIn(_StandIn):
    """``chumpy.reordering.Reshape``: ``a.reshape(newshape)``."""

    kind = "chumpy.reordering.Reshape"

    def to_array(self, depth: int = 0) -> np.ndarray:
        a = _to_numeric(self._get("a"), depth + 1)
        shape = self._get("newshape")
        return a.reshape(tuple(int(s) for s in np.atleast_1d(shape)))


class _SparseStandIn(_StandIn):
    """A SciPy compressed sparse matrix (CSC or CSR), rebuilt from its pickled fields."""

    kind = "scipy sparse matrix"
    sparse_format = "csc"

    def to_array(self, depth: int = 0) -> np.ndarray:
        import scipy.sparse as sp

        state = self._state
        shape = state.get("_shape", state.get("shape"))
        if shape is None:
            raise _BadContent("sparse matrix without a shape")
        shape = tuple(int(s) for s in shape)
        data = _to_numeric(self._get("data"), depth + 1)
        indices = np.asarray(_to_numeric(self._get("indices"), depth + 1)).astype(np.int64)
        indptr = np.asarray(_to_numeric(self._get("indptr"), depth + 1)).astype(np.int64)
        cls = sp.csc_matrix if self.sparse_format == "csc" else sp.csr_matrix
        try:
            matrix = cls((data, indices, indptr), shape=shape)
        except (ValueError, TypeError, IndexError) as exc:
            raise _BadContent(f"malformed sparse matrix ({_one_line(exc)})") from None
        return matrix.toarray()


class _CscStandIn(_SparseStandIn):
    kind = "scipy.sparse.csc_matrix"
    sparse_format = "csc"


class _CsrStandIn(_SparseStandIn):
    kind = "scipy.sparse.csr_matrix"
    sparse_format = "csr"


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """The explicit allow-list: (module, name) as written in the pickle -> object."""
    allowed = numpy_globals()  # arrays and builtins; chumpy's pickled _dirty_vars is a set
    allowed[("chumpy.ch", "Ch")] = _ChStandIn
    allowed[("chumpy", "Ch")] = _ChStandIn
    allowed[("chumpy.reordering", "Select")] = _SelectStandIn
    allowed[("chumpy.reordering", "Reshape")] = _ReshapeStandIn
    for module in ("scipy.sparse.csc", "scipy.sparse._csc", "scipy.sparse"):
        allowed[(module, "csc_matrix")] = _CscStandIn
    for module in ("scipy.sparse.csr", "scipy.sparse._csr", "scipy.sparse"):
        allowed[(module, "csr_matrix")] = _CsrStandIn
    return allowed


def _refuse(label: str):
    """What :class:`~fourdhands.safe_pickle.AllowListUnpickler` does with a global that is
    not in :func:`_allowed_globals`: a UserError naming it."""

    def refuse(module: str, name: str) -> Any:
        raise UserError(
            f"{label}: refused to load class '{module}.{name}': it is not among "
            "the classes a MANO file contains (a pickle can run code, so only an "
            "allow-list is loaded)"
        )

    return refuse


# ---------------------------------------------------------------------------------------
# Conversion and validation
# ---------------------------------------------------------------------------------------


def _to_numeric(value: Any, depth: int = 0) -> np.ndarray:
    """A dense numpy array from an ndarray, a stand-in, a SciPy sparse matrix or a list."""
    if depth > 64:
        raise _BadContent("nesting too deep")
    if isinstance(value, _StandIn):
        return np.asarray(value.to_array(depth))
    if hasattr(value, "toarray") and hasattr(value, "nnz"):  # a real SciPy sparse matrix
        return np.asarray(value.toarray())
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            items = [np.asarray(_to_numeric(v, depth + 1)) for v in value.ravel()]
            inner = items[0].shape if items else ()
            return np.stack(items).reshape(value.shape + inner) if items else value
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _fmt_shape(shape: tuple) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _convert(data: Mapping[str, Any], key: str, label: str, kind: str) -> np.ndarray:
    try:
        arr = _to_numeric(data[key])
    except _BadContent as exc:
        raise UserError(f"{label}: key '{key}' is malformed: {exc}") from None
    except (ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise UserError(f"{label}: key '{key}' is not a numeric array ({_one_line(exc)})") from None
    if arr.dtype.kind not in "biuf":
        raise UserError(f"{label}: key '{key}' is not numeric (dtype {arr.dtype})")
    if kind == "float":
        arr = np.array(arr, dtype=np.float64)  # a copy: callers own the result
        if not np.all(np.isfinite(arr)):
            raise UserError(f"{label}: key '{key}' contains NaN or infinite values")
        return arr
    # integer data (uint32 root markers fit in int64)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise UserError(f"{label}: key '{key}' must hold integers")
    return np.array(arr).astype(np.int64)


def _check_shape(arr: np.ndarray, expected: tuple, key: str, label: str) -> None:
    if arr.shape != expected:
        raise UserError(
            f"{label}: key '{key}' has shape {_fmt_shape(arr.shape)}, expected {_fmt_shape(expected)}"
        )


def _parents_from_kintree(table: np.ndarray, label: str) -> np.ndarray:
    """Parent column index per joint (root -1) from MANO's (2, 16) kintree_table."""
    ids = table[1]
    if sorted(ids.tolist()) != list(range(NUM_JOINTS)):
        raise UserError(
            f"{label}: key 'kintree_table' row 1 must list the joint ids 0..{NUM_JOINTS - 1}"
        )
    id_to_col = {int(j): c for c, j in enumerate(ids)}
    raw = table[0]
    if int(raw[0]) not in _ROOT_PARENT_MARKERS:
        raise UserError(
            f"{label}: key 'kintree_table': the first joint must be the root "
            f"(parent 4294967295 or -1), got parent {int(raw[0])}"
        )
    parents = np.full(NUM_JOINTS, -1, dtype=np.int64)
    for col in range(1, NUM_JOINTS):
        pid = int(raw[col])
        if pid not in id_to_col:
            raise UserError(
                f"{label}: key 'kintree_table': joint {col} has parent id {pid}, "
                "which is not a joint"
            )
        parent = id_to_col[pid]
        if parent >= col:
            raise UserError(
                f"{label}: key 'kintree_table': joint {col} has parent {parent}; parents "
                "must precede their children (kinematic order)"
            )
        parents[col] = parent
    return parents


def validate_model_data(data: Mapping[str, Any], label: str = "hand model") -> dict:
    """Check and normalise a MANO-format dict; return a new dict (see the module docstring).

    ``label`` names the source in error messages (e.g. "hand model file 'x.pkl'").
    Raises :class:`UserError` naming the label and the key for a missing key, a wrong
    shape, non-numeric or non-finite values, out-of-range faces / tip ids or a kinematic
    tree that is not in kinematic order. Extra keys are ignored.
    """
    if not isinstance(data, Mapping):
        raise UserError(
            f"{label}: not a MANO model (holds a {type(data).__name__}, expected a dict of arrays)"
        )
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        names = ", ".join(f"'{k}'" for k in missing)
        raise UserError(f"{label}: missing key{'s' if len(missing) > 1 else ''} {names}; not a MANO model")

    out: dict[str, np.ndarray] = {}
    v_template = _convert(data, "v_template", label, "float")
    if v_template.ndim != 2 or v_template.shape[1] != 3 or v_template.shape[0] < 1:
        raise UserError(
            f"{label}: key 'v_template' has shape {_fmt_shape(v_template.shape)}, expected (V, 3)"
        )
    V = v_template.shape[0]
    out["v_template"] = v_template
    float_shapes = {
        "shapedirs": (V, 3, NUM_BETAS),
        "posedirs": (V, 3, NUM_POSE_FEATURES),
        "J_regressor": (NUM_JOINTS, V),
        "weights": (V, NUM_JOINTS),
        "hands_mean": (3 * (NUM_JOINTS - 1),),
        "hands_components": (3 * (NUM_JOINTS - 1), 3 * (NUM_JOINTS - 1)),
    }
    for key, shape in float_shapes.items():
        arr = _convert(data, key, label, "float")
        _check_shape(arr, shape, key, label)
        out[key] = arr

    table = _convert(data, "kintree_table", label, "int")
    _check_shape(table, (2, NUM_JOINTS), "kintree_table", label)
    parents = _parents_from_kintree(table, label)
    out["kintree_table"] = np.stack([parents, np.arange(NUM_JOINTS, dtype=np.int64)])

    faces = _convert(data, "f", label, "int")
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.shape[0] < 1:
        raise UserError(f"{label}: key 'f' has shape {_fmt_shape(faces.shape)}, expected (F, 3)")
    if faces.min() < 0 or faces.max() >= V:
        raise UserError(f"{label}: key 'f' refers to vertices outside 0..{V - 1}")
    out["f"] = faces

    if "tip_vertex_ids" in data and data["tip_vertex_ids"] is not None:
        tips = _convert(data, "tip_vertex_ids", label, "int").reshape(-1)
        _check_shape(tips, (5,), "tip_vertex_ids", label)
        if tips.min() < 0 or tips.max() >= V:
            raise UserError(f"{label}: key 'tip_vertex_ids' refers to vertices outside 0..{V - 1}")
        out["tip_vertex_ids"] = tips
    return out


# ---------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------


def _read_pickle(path: Path, label: str) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{label}: cannot read the file ({_one_line(exc.strerror or exc)})") from None
    if not raw:
        raise UserError(f"{label}: the file is empty")
    try:
        return AllowListUnpickler(io.BytesIO(raw), _allowed_globals(), _refuse(label), encoding="latin1").load()
    except UserError:
        raise
    except _BadContent as exc:
        raise UserError(f"{label}: not a valid MANO pickle ({exc})") from None
    except RecursionError:
        raise UserError(f"{label}: not a valid MANO pickle (nesting too deep)") from None
    except Exception as exc:  # any failure while decoding a user's file is a bad file
        raise UserError(
            f"{label}: not a readable MANO pickle (corrupt or a different format: "
            f"{type(exc).__name__}: {_one_line(exc)})"
        ) from None


def _read_npz(path: Path, label: str) -> dict:
    import zipfile

    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"{label}: not a readable .npz file ({_one_line(exc)})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise UserError(f"{label}: not an .npz archive (a single .npy array?)")
    out: dict[str, Any] = {}
    with archive:
        for key in REQUIRED_KEYS + OPTIONAL_KEYS:
            if key not in archive.files:
                continue
            try:
                out[key] = archive[key]
            except ValueError:
                raise UserError(
                    f"{label}: key '{key}' holds pickled Python objects, which are not "
                    "loaded from .npz files; store it as a plain numeric array"
                ) from None
            except (OSError, zipfile.BadZipFile, EOFError) as exc:
                raise UserError(f"{label}: key '{key}' cannot be read ({_one_line(exc)})") from None
    return out


def read_mano_file(path: str | os.PathLike) -> dict:
    """Read an official MANO ``.pkl`` (or an ``.npz`` with the same keys) without chumpy.

    Returns the validated dict described in the module docstring (dense float64 arrays,
    int64 faces / tree). Raises :class:`UserError` (one line naming the file and the
    problem) for a missing or unreadable file, an unsupported extension, a corrupt
    pickle, a class outside the allow-list, a missing key or a wrong shape.
    """
    p = Path(path)
    label = f"hand model file '{p}'"
    if not p.exists():
        raise UserError(f"{label}: file does not exist")
    if p.is_dir():
        raise UserError(f"{label}: is a directory, expected a MANO .pkl or .npz file")
    suffix = p.suffix.lower()
    if suffix == ".pkl":
        raw = _read_pickle(p, label)
    elif suffix == ".npz":
        raw = _read_npz(p, label)
    else:
        raise UserError(f"{label}: unsupported file type '{p.suffix}' (expected .pkl or .npz)")
    return validate_model_data(raw, label)


def shapedirs_need_left_fix(left: Mapping[str, Any], right: Mapping[str, Any]) -> bool:
    """True when the left shapedirs' x-column matches the right's (the MANO_LEFT bug).

    The test of InterHand2.6M / IntagHand / InterWild:
    ``sum |L.shapedirs[:, 0, :] - R.shapedirs[:, 0, :]| < 1``.
    """
    ls = np.asarray(left["shapedirs"], dtype=np.float64)
    rs = np.asarray(right["shapedirs"], dtype=np.float64)
    if ls.shape != rs.shape:
        raise UserError(
            f"fix_left_shapedirs: left and right shapedirs differ in shape "
            f"({_fmt_shape(ls.shape)} vs {_fmt_shape(rs.shape)})"
        )
    return float(np.abs(ls[:, 0, :] - rs[:, 0, :]).sum()) < 1.0


def fix_left_shapedirs(left: Mapping[str, Any], right: Mapping[str, Any]) -> dict:
    """The InterHand2.6M / IntagHand fix of the official MANO_LEFT shapedirs.

    Returns a copy of ``left`` whose ``shapedirs[:, 0, :]`` (the x-column) has its sign
    flipped when :func:`shapedirs_need_left_fix` says so, else an unchanged copy. Apply it
    per dataset, never globally: DexYCB's annotations were made WITHOUT the fix. This is
    an explicit option (off by default in :func:`~fourdhands.hands.model.load_hand_model`).
    """
    out = dict(left)
    if shapedirs_need_left_fix(left, right):
        shapedirs = np.array(left["shapedirs"], dtype=np.float64)
        shapedirs[:, 0, :] *= -1.0
        out["shapedirs"] = shapedirs
        log.info("left-hand shapedirs: x-column sign flipped (InterHand2.6M/IntagHand fix)")
    else:
        log.info("left-hand shapedirs: already differ from the right; fix not applied")
    return out
