"""Payloads for property tests: drawn from the payload's own JSON Schema, then made hostile.

`schema_payloads` generates from `worker.payload.schema.payload_schema()` (what web apps
validate against) with hypothesis-jsonschema's `from_schema`, changed in two ways for speed,
neither hiding anything the worker reads:

1. The schema is tamed (`tame`):
   - every object gets `additionalProperties: false`: the parser ignores unknown keys at every
     level, and generating them (random names, random JSON under each) was most of the time;
     `hostile` adds unknown keys back at random places;
   - arrays hold at most 3 items and plain strings at most 40 characters: the limits on counts
     and lengths (clips, layers, overlays, words, text) have their own example tests, and a few
     items already reach every join, transition and caption path;
   - URLs (`pattern` `^(https?|storage)://`, up to 4096 characters) are one of a few valid
     ones: strings generated from that pattern almost never pass the stricter URL check, so
     nothing behind a URL would be reached; `hostile` puts junk URLs back. `output.path` (any
     string in the schema, a key ending in .mp4 in the parser) likewise is one of a few keys,
     valid and not;
   - a transcript word requires `word`: the parser needs `word` or `text`, which the schema
     does not say, and two of five generated payloads stopped there.
2. Objects, arrays and `anyOf`/`oneOf` are walked here (`from_payload_schema`), and only the
   leaves (numbers with their bounds, strings, enums, constants, null, booleans) go to
   `from_schema`: hypothesis-jsonschema 0.23 builds and canonicalises a property's strategy
   again each time it draws that property (about 0.35 s a payload here, over a minute for
   the CI budget), and its object and array strategies use a private Hypothesis API that
   Hypothesis 6.170.10 changed (`cu.many(...).more()`), where the leaves use none. An
   overlay's `oneOf` becomes a plain choice: with closed objects, an image overlay and a text
   overlay cannot both match. tests/property/test_payload_properties.py checks that every
   generated payload is valid against the committed schema, untamed.

`hostile(payload)` then changes one to three random places: a number (a time, a size, a
rate: where the overflows were) replaced by a huge, negative, non-finite or tiny one, or any
value by such a number, a wrong type, a deeply nested value, a long or control-character
string; a key dropped; an unknown key added.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from worker.payload.fields import URL_PATTERN, is_number
from worker.payload.schema import payload_schema

MAX_ITEMS = 3
MAX_CHARS = 40
URLS = [
    "https://cdn.example.com/a.mp4",
    "http://cdn.example.com:8080/b.png?token=abc",
    "storage://generated-videos/user-1/c.mp3",
]
OUTPUT_PATHS = ["user-1/out.mp4", "a/b/C.MP4", "../etc/passwd.mp4", "out.mov", "/abs.mp4"]
_NOTES = ("title", "description", "default")


def tame(node: Any) -> Any:
    """A copy of a schema (or a part of one) made fast to generate from (see the docstring)."""
    if isinstance(node, list):
        return [tame(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("pattern") == URL_PATTERN:
        return {"enum": URLS}
    out = {k: tame(v) for k, v in node.items() if k not in _NOTES}
    if "properties" in out:
        out["additionalProperties"] = False
        if "path" in out["properties"] and "fit" in out["properties"]:  # Output
            out["properties"]["path"] = {"anyOf": [{"enum": OUTPUT_PATHS}, {"type": "null"}]}
        if {"word", "text", "start"} <= set(out["properties"]):  # TranscriptWord
            out["properties"]["word"] = {"type": "string", "maxLength": MAX_CHARS}
            out["required"] = [*out.get("required", ()), "word"]
    if out.get("type") == "array":
        out["maxItems"] = min(out.get("maxItems", MAX_ITEMS), MAX_ITEMS)
    if out.get("type") == "string" and "enum" not in out and "pattern" not in out:
        out["maxLength"] = min(out.get("maxLength", MAX_CHARS), MAX_CHARS)
    return out


@cache
def tamed_schema() -> dict[str, Any]:
    return tame(payload_schema())  # type: ignore[no-any-return]


def from_payload_schema(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid against `node`, a part of the tamed schema: objects, arrays and choices
    walked here, every leaf by hypothesis-jsonschema's `from_schema`."""
    if "$ref" in node:
        name = node["$ref"].removeprefix("#/$defs/")
        return st.deferred(lambda: from_payload_schema(tamed_schema()["$defs"][name]))
    if "anyOf" in node or "oneOf" in node:
        return st.one_of([from_payload_schema(n) for n in node.get("anyOf", node.get("oneOf"))])
    if "properties" in node:
        required = set(node.get("required", ()))
        fields = {k: from_payload_schema(v) for k, v in node["properties"].items()}
        return st.fixed_dictionaries(
            {k: v for k, v in fields.items() if k in required},
            optional={k: v for k, v in fields.items() if k not in required},
        )
    if node.get("type") == "array":
        return st.lists(
            from_payload_schema(node["items"]),
            min_size=node.get("minItems", 0),
            max_size=node["maxItems"],
        )
    return from_schema(node)


schema_payloads: st.SearchStrategy[dict[str, Any]] = from_payload_schema(tamed_schema())

# --- plausible payloads: the rules a schema cannot state, applied ------------------------------


def plausible(raw: dict[str, Any]) -> dict[str, Any]:
    """A schema payload changed to follow the parser's rules across fields (end after start, a
    voice transcript with its voice, no transition on the last clip, one caption source, both
    output sides or neither), so that most reach planning rather than stop at parsing."""
    raw = copy.deepcopy(raw)
    clips = raw["clips"]
    for clip in clips:
        if clip.get("voice_url") is None:
            clip.pop("voice_transcript", None)
        _end_after_start(clip)
    clips[-1].pop("transition", None)
    for overlay in raw.get("overlays") or ():
        _end_after_start(overlay)
    captions = raw.get("captions") or {}
    given = [k for k in ("words", "srt_url", "vtt_url") if captions.get(k) is not None]
    for name in given[1:]:
        del captions[name]
    output = raw.get("output") or {}
    if (output.get("width") is None) != (output.get("height") is None):
        output.pop("width", None)
        output.pop("height", None)
    return raw


def _end_after_start(item: dict[str, Any]) -> None:
    if item.get("end") is not None and item["end"] <= (item.get("start") or 0):
        del item["end"]


plausible_payloads: st.SearchStrategy[dict[str, Any]] = schema_payloads.map(plausible)


# --- hostile values and mutations ---------------------------------------------------------------

huge_numbers = st.sampled_from(
    [1e308, -1e308, 1.7976931348623157e308, 10**400, -(10**400), 2**63, 2**64, -(2**63),
     5e-324, -5e-324, -0.0, -1, 1e15, 1800.0000001, 1801, 86400 * 365,
     float("nan"), float("inf"), float("-inf")]
)  # fmt: skip
wrong_types = st.one_of(
    st.none(), st.booleans(), st.just(""), st.just("1e308"), st.just("NaN"), st.just([]),
    st.just({}), st.just([None]), st.just({"url": 1}),
)  # fmt: skip
long_strings = st.one_of(
    st.integers(1_000, 100_000).map(lambda n: "x" * n),
    st.integers(1_000, 20_000).map(lambda n: "<" * n),
    st.integers(1_000, 20_000).map(lambda n: "\\" * n),
    st.text(st.characters(max_codepoint=0x1F), min_size=1, max_size=200),  # control characters
    st.text(max_size=200),
)
deep = st.integers(10, 200).map(lambda depth: _nested(depth))
hostile_values = st.one_of(
    huge_numbers,
    wrong_types,
    long_strings,
    deep,
    st.floats(),
    st.integers(),
    st.sampled_from(["https://", "storage://", "storage://b/../k", "ftp://x/a", "javascript:1"]),
)


def _nested(depth: int) -> object:
    value: object = 1
    for n in range(depth):
        value = [value] if n % 2 else {"words": value}
    return value


def _places(node: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every path to a value inside `node` (its own included, as the empty path)."""
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _places(value, (*path, key))
    elif isinstance(node, list):
        for n, value in enumerate(node):
            found += _places(value, (*path, n))
    return found


def _parent(root: Any, path: tuple[object, ...]) -> Any:
    for step in path[:-1]:
        root = root[step]
    return root


@st.composite
def _mutated(draw: st.DrawFn, payload: dict[str, Any]) -> object:
    """`payload` with one place changed: a value replaced, a key dropped or an unknown key."""
    raw: Any = copy.deepcopy(payload)
    places = _places(raw)[1:]  # not the payload itself: see hostile_payloads
    if not places:  # an empty object
        return {draw(_keys): draw(hostile_values)}
    numbers = [p for p in places if is_number(_parent(raw, p)[p[-1]])]
    action = draw(st.sampled_from(["number", "number", "replace", "drop", "add"]))
    if action == "number" and numbers:  # where the overflows were: a time, a size, a rate
        path = draw(st.sampled_from(numbers))
        _parent(raw, path)[path[-1]] = draw(huge_numbers)
        return raw
    path = draw(st.sampled_from(places))
    parent, last = _parent(raw, path), path[-1]
    if action in ("number", "replace"):
        parent[last] = draw(hostile_values)
    elif action == "drop" and isinstance(parent, dict):
        del parent[last]
    elif isinstance(parent, dict):
        parent[draw(_keys)] = draw(hostile_values)
    else:
        parent.append(draw(hostile_values))
    return raw


_keys = st.sampled_from(["extra", "url", "clips", "start", "end", "words", "__proto__"])


@st.composite
def hostile(draw: st.DrawFn, payload: dict[str, Any]) -> object:
    """`payload` changed at one to three random places (each change on the previous result)."""
    raw: object = payload
    for _ in range(draw(st.integers(1, 3))):
        if not isinstance(raw, dict):
            break
        raw = draw(_mutated(raw))
    return raw


# a whole payload that is not an object is one case among many, not a third of them
hostile_payloads: st.SearchStrategy[object] = st.one_of(
    schema_payloads.flatmap(hostile), hostile_values
)
