"""The one restricted unpickler: allow-listed globals resolve, every other one goes to the
caller's refusal, and nothing named by the file runs or is imported."""

import collections
import io
import pickle
import sys

import pytest

from fourdhands.safe_pickle import AllowListUnpickler, pickle_module

CALLS = []


def side_effect(*args):
    CALLS.append(args)
    return "ran"


class Sneaky:
    def __reduce__(self):
        return side_effect, ("boom",)


def test_allowed_globals_resolve_and_others_are_refused_without_running():
    data = pickle.dumps({"ok": collections.OrderedDict(a=1), "bad": Sneaky()})
    refused = []

    def refuse(module, name):
        refused.append((module, name))
        return lambda *args: ("stand-in", args)

    allowed = {("collections", "OrderedDict"): collections.OrderedDict}
    out = AllowListUnpickler(io.BytesIO(data), allowed, refuse).load()
    assert out["ok"] == collections.OrderedDict(a=1) and type(out["ok"]) is collections.OrderedDict
    assert out["bad"] == ("stand-in", ("boom",))
    assert refused == [(__name__, "side_effect")] and CALLS == []


def test_a_refusal_may_raise_and_a_missing_module_is_never_imported():
    # the file names a module nobody has: looking it up must not try to import it
    data = pickle.dumps(Sneaky(), protocol=0).replace(__name__.encode(), b"no_such_module_xyz")  # text opcodes

    def refuse(module, name):
        raise ValueError(f"refused {module}.{name}")

    with pytest.raises(ValueError, match="refused no_such_module_xyz.side_effect"):
        pickle_module({}, refuse).load(io.BytesIO(data))
    assert "no_such_module_xyz" not in sys.modules and CALLS == []
