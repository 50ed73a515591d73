"""Fixtures of the pipeline's own tests: the media generator of tests/media, once per session."""

from __future__ import annotations

import pytest

from tests.media.conftest import Media


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    return Media(tmp_path_factory.mktemp("pipeline-media"))
