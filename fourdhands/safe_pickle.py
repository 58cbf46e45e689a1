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
