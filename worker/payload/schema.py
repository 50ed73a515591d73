"""The payload's JSON Schema (draft 2020-12), generated from the models for web apps.

`video-worker schema` prints it; docs/payload.schema.json is that output, committed, and a test
fails when the two differ. Web apps can validate a payload before inserting the row, or generate
their TypeScript types from it (scripts/typescript_types.py writes docs/video-jobs.d.ts).

One rule is added to what pydantic writes: null counts as absent for optional fields (as the
worker reads them), so every optional property also accepts null.
"""

from __future__ import annotations

import json
from typing import Any

from worker.payload.models import Payload

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def payload_schema() -> dict[str, Any]:
    """The schema as a dict: pydantic's, with optional properties accepting null."""
    schema = Payload.model_json_schema()
    for definition in [schema, *schema.get("$defs", {}).values()]:
        _optional_accepts_null(definition)
    return {"$schema": DIALECT, **schema}


def schema_json() -> str:
    """The schema as the committed file holds it: two-space indents, a final newline."""
    return json.dumps(payload_schema(), indent=2, ensure_ascii=False) + "\n"


def _optional_accepts_null(definition: dict[str, Any]) -> None:
    """Each optional property of an object schema that does not accept null yet, made to."""
    required = set(definition.get("required", ()))
    for name, prop in definition.get("properties", {}).items():
        if name in required or _accepts_null(prop):
            continue
        notes = {k: prop.pop(k) for k in ("title", "description", "default") if k in prop}
        definition["properties"][name] = {"anyOf": [prop, {"type": "null"}], **notes}


def _accepts_null(prop: dict[str, Any]) -> bool:
    return prop.get("type") == "null" or any(
        option.get("type") == "null" for option in prop.get("anyOf", ())
    )
