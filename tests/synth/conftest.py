"""One small synthetic store, generated once for all synth tests."""

from __future__ import annotations

import pytest
from synth_support import SMALL, Store, read_store

from recsvc.synth.generator import GenerateConfig, generate


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    config = GenerateConfig(out=tmp_path_factory.mktemp("synthetic"), **SMALL)
    return read_store(config, generate(config))
