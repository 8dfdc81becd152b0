from __future__ import annotations

import pytest

from tests.mix.fixtures import build_inputs


@pytest.fixture(scope="session")
def inputs(tmp_path_factory):
    return build_inputs(tmp_path_factory.mktemp("mix-inputs"))
