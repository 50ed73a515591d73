"""Fixtures of the hostile-input corpus (see harness.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.media.conftest import Media


@pytest.fixture(scope="session")
def corpus_media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    return Media(tmp_path_factory.mktemp("corpus-media"))


@pytest.fixture(scope="session")
def good_clip(corpus_media: Media) -> Path:
    return corpus_media.path("h264_30")
