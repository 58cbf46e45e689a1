"""The one way this package reads a pickle it did not write (a user's MANO file, a
downloaded PyTorch checkpoint): an unpickler that resolves only allow-listed globals and
never imports a module, so no code named by the file can run.

What happens to a global outside the allow-list is the caller's choice (``refuse``): the
MANO reader raises a UserError naming it, the checkpoint reader maps it to an inert
stand-in so that a pickled training config becomes plain data.
"""

from __future__ import annotations

import pickle
import types
from collections.abc import Callable, Mapping
from typing import Any

#: ``refuse(module, name)`` -> the object to use instead, or raise.
Refusal = Callable[[str, str], Any]


class AllowListUnpickler(pickle.Unpickler):
    """Resolves the globals in ``allowed`` (``(module, name) -> object``, the names
    exactly as the file writes them, Python 2 spellings included) and hands every other
    one to ``refuse``. Extra keyword arguments go to :class:`pickle.Unpickler`.

    It defines no ``persistent_load``: a plain pickle holding a persistent id fails to
    load, and ``torch.load`` installs its own storage loader (a class-level method here
    would shadow it)."""

    def __init__(self, file, allowed: Mapping[tuple[str, str], Any], refuse: Refusal, **kwargs):
        super().__init__(file, **kwargs)
        self._allowed, self._refuse = allowed, refuse

    def find_class(self, module: str, name: str) -> Any:
        obj = self._allowed.get((module, name))
        return obj if obj is not None else self._refuse(module, name)


def _latin1_encode(text: Any, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as Python 3 protocol-2 pickles use it (bytes as latin1 str)."""
    if not isinstance(text, str) or encoding.replace("-", "").lower() not in ("latin1", "utf8"):
        raise pickle.UnpicklingError("unexpected _codecs.encode call")
    return text.encode(encoding)


def numpy_globals() -> dict[tuple[str, str], Any]:
    """The globals a pickle of plain NumPy arrays and builtins names (Python 2 and 3
    spellings, NumPy 1 and 2 module paths): what datasets' pickles hold besides their own
    classes."""
    import copyreg

    import numpy as np

    try:  # NumPy >= 2 keeps these in numpy._core; numpy.core is a deprecated alias
        from numpy._core import multiarray, numeric
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]

    allowed: dict[tuple[str, str], Any] = {}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    for module in ("numpy.core.numeric", "numpy._core.numeric"):  # protocol-5 arrays
        allowed[(module, "_frombuffer")] = numeric._frombuffer
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    for module in ("copy_reg", "copyreg"):  # Python 2 / 3 names
        allowed[(module, "_reconstructor")] = copyreg._reconstructor
    for module in ("__builtin__", "builtins"):
        allowed[(module, "object")] = object
        allowed[(module, "set")] = set
        allowed[(module, "frozenset")] = frozenset
    allowed[("_codecs", "encode")] = _latin1_encode
    return allowed


def pickle_module(allowed: Mapping[tuple[str, str], Any], refuse: Refusal) -> types.ModuleType:
    """A stand-in for the ``pickle`` module whose ``Unpickler`` / ``load`` are an
    :class:`AllowListUnpickler` with these rules, for APIs that take a pickle *module*
    (``torch.load(pickle_module=...)``, which replaces ``persistent_load`` with its own
    storage loader)."""

    class Bound(AllowListUnpickler):
        def __init__(self, file, **kwargs):
            super().__init__(file, allowed, refuse, **kwargs)

    module = types.ModuleType("fourdhands_allow_list_pickle")
    module.Unpickler = Bound
    module.load = lambda file, **kwargs: Bound(file, **kwargs).load()
    return module
