"""Fixtures of the training tests: a tiny prepared store (see ``_tiny``)."""

from __future__ import annotations

import pytest
from _tiny import make_store

from neurofm.data.store import PreparedStore


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> PreparedStore:
    return make_store(tmp_path_factory.mktemp("store"))
