"""Keys a payload holds that this worker does not read: ignored, and named in `result.warnings`.

Unknown keys are ignored at every level (an app may send keys a newer worker reads), but a typo
(`"fade_inn"`, `"stlye"`) silently ignored is a bug the app cannot see. So every key the models
do not know is named, by its path as errors name fields (`overlays[0].fade_inn: unknown key,
ignored`), in the job's `result.warnings` and by `enqueue`. Transcripts are not walked: the
speech-to-text services put many keys of their own there (`probability`, `id`, `seek`, …),
and the contract reads only the words.

The walk follows the parsed models beside the raw JSON, so it visits only what parsing already
accepted; it is linear in the payload's size (itself bounded by MAX_PAYLOAD_BYTES), and the
list is cut at MAX_WARNINGS so a payload of a million unknown keys cannot grow the row.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel

MAX_WARNINGS = 50


def ignored_keys(raw: object, parsed: BaseModel) -> list[str]:
    """The unknown keys of `raw` (the row's JSON) that parsing into `parsed` ignored."""
    found: list[str] = []
    _walk(raw, parsed, "", found)
    if len(found) > MAX_WARNINGS:
        more = len(found) - MAX_WARNINGS
        found = [*found[:MAX_WARNINGS], f"… and {more} more unknown keys, ignored"]
    return found


def _walk(raw: object, model: BaseModel, path: str, found: list[str]) -> None:
    if not isinstance(raw, Mapping):
        return
    # each field by its JSON key (`from` for the field `from_`)
    keys = {n: f.alias or n for n, f in type(model).model_fields.items()}
    known = set(keys.values())
    found.extend(
        f"{_join(path, str(key))}: unknown key, ignored" for key in raw if key not in known
    )
    for name, key in keys.items():
        value, given = getattr(model, name), raw.get(key)
        if isinstance(value, BaseModel):
            _walk(given, value, _join(path, key), found)
        elif isinstance(value, tuple) and isinstance(given, list):
            for n, (item, item_raw) in enumerate(zip(value, given, strict=False)):
                if isinstance(item, BaseModel):
                    _walk(item_raw, item, f"{_join(path, key)}[{n}]", found)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
