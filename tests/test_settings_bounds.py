"""Operator settings are trusted, but a typo must still be one clear error, never a traceback
or a value that brings an overflow back within a payload's reach."""

from __future__ import annotations

import pytest

from worker.settings import Settings, SettingsError


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"WORKER_CONCURRENCY": "1e400"}, "WORKER_CONCURRENCY must be a whole number"),
        ({"MAX_OUTPUT_SECONDS": "1e300"}, "MAX_OUTPUT_SECONDS must be at most 86400"),
        ({"PORT": "65536"}, "PORT must be at most 65535"),
        ({"RETENTION_DAYS": "99999999999"}, "RETENTION_DAYS must be at most 36500"),
    ],
)
def test_a_setting_out_of_its_range_is_a_settings_error(env: dict[str, str], words: str) -> None:
    with pytest.raises(SettingsError, match=words):
        Settings.from_env(env)


def test_the_largest_allowed_values_are_accepted() -> None:
    env = {"MAX_OUTPUT_SECONDS": "86400", "PORT": "65535", "RETENTION_DAYS": "36500"}
    settings = Settings.from_env(env)
    allowed = (settings.max_output_seconds, settings.port, settings.retention_days)
    assert allowed == (86400, 65535, 36500)
