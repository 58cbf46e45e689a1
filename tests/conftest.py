"""Suite-wide settings: dataset indexes are cached in a temporary folder, never in the
user's ~/.cache."""

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _index_cache(tmp_path_factory):
    old = os.environ.get("FOURDHANDS_CACHE")
    os.environ["FOURDHANDS_CACHE"] = str(tmp_path_factory.mktemp("index-cache"))
    yield
    if old is None:
        os.environ.pop("FOURDHANDS_CACHE", None)
    else:
        os.environ["FOURDHANDS_CACHE"] = old
