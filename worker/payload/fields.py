"""The payload's field types: each one checks a JSON value and says in one sentence what is allowed.

Every check here runs *before* pydantic's own validation of the field and raises `Problem`, a
pydantic error that carries our sentence, so pydantic's generic messages ("Input should be a valid
number") never reach a web developer. The constraints pydantic knows (ranges, lengths, enums) are
declared too, first, so that the JSON Schema states them; by the time pydantic checks them the
value has already passed ours.

A check may name a place below the field it guards (`at=".height"`, `at="[3].transition"`): the
translation into `PayloadError` (worker/payload/__init__.py) appends it to the field's path.

Over 300 lines on purpose: one check per kind of field value (number, seconds, colour, text,
URL, storage key …), each with its sentence of what is allowed, and the annotations that put
them on the models; they are read as a catalogue.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import annotated_types
from pydantic import BeforeValidator, GetJsonSchemaHandler, StringConstraints, ValidationInfo
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from worker.settings import DEFAULT_MAX_OUTPUT_SECONDS
from worker.storage.base import InvalidKeyError, check_bucket, check_key

MAX_URL_LENGTH = 4096
STORAGE_PREFIX = "storage://"
HTTP_SCHEMES = frozenset({"http", "https"})
URL_EXAMPLE = 'like "https://cdn.example.com/a.mp4" or "storage://BUCKET/PATH"'
URL_PATTERN = r"^([Hh][Tt][Tt][Pp][Ss]?|storage)://"  # for the schema; the check is stricter
COLOUR_PATTERN = r"^#[0-9A-Fa-f]{6}$"
_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # one search, not a Python loop over a long URL


def problem(text: str, at: str = "") -> PydanticCustomError:
    """The error every check raises: our sentence, and where below the field it applies."""
    return PydanticCustomError("payload", "{problem}", {"problem": text, "at": at})


# --- scalar checks, one per kind of value ----------------------------------------------------


def is_number(value: object) -> bool:
    """JSON numbers only: Python's bool is an int, but `true` is not a number."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def finite(value: object) -> float | None:
    """`value` as a float when it is a finite JSON number, else None (NaN, inf, bool, …)."""
    if not is_number(value):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]  # is_number checked int | float
    except OverflowError:  # an integer too large for a float
        return None
    return number if math.isfinite(number) else None


def number_text(value: object) -> str:
    """1.0 as "1", 1.5 as "1.5", 1e308 as "1e+308": what the developer wrote, not Python's
    float repr nor a 309-digit integer."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def describe(value: object, *, echo: bool = False) -> str:
    """A value as a JSON developer would name it; strings are echoed only when `echo`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else "an infinite number"
    if isinstance(value, int) and abs(value) >= 10**15:
        return "a very large number"
    if isinstance(value, int | float):
        return number_text(value)
    if isinstance(value, str):
        # JSON-quoted, so a newline or a quote in it cannot break the one-line message
        return json.dumps(value, ensure_ascii=False) if echo and len(value) <= 40 else "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def check_number(value: object, low: float, high: float, what: str = "a number") -> float:
    number = finite(value)
    if number is None:
        raise problem(f"must be {what} from {low} to {high}, got {describe(value)}")
    if not low <= number <= high:
        raise problem(f"must be from {low} to {high}, got {number_text(number)}")
    return number


def check_whole(value: object, low: int, high: int) -> int:
    """A whole number; 1080.0 is accepted as 1080 (some encoders write integers that way)."""
    number = check_number(value, low, high, what="a whole number")
    if not number.is_integer():
        raise problem(f"must be a whole number, got {number_text(number)}")
    return int(number)


def check_seconds(value: object, most: float) -> float:
    """A moment, from 0 to `most` (MAX_OUTPUT_SECONDS)."""
    seconds = finite(value)
    if seconds is None:
        raise problem(
            f"must be a number of seconds from 0 to {number_text(most)} (MAX_OUTPUT_SECONDS), "
            f"got {describe(value)}"
        )
    if seconds < 0:
        raise problem(f"must be 0 or more seconds, got {number_text(seconds)}")
    return _at_most(seconds, most)


def check_duration(value: object, most: float) -> float:
    """A length, more than 0 and at most `most` (MAX_OUTPUT_SECONDS)."""
    seconds = finite(value)
    if seconds is None:
        raise problem(
            "must be a number of seconds greater than 0 and at most "
            f"{number_text(most)} (MAX_OUTPUT_SECONDS), got {describe(value)}"
        )
    if seconds <= 0:
        raise problem(f"must be greater than 0 seconds, got {number_text(seconds)}")
    return _at_most(seconds, most)


def _at_most(seconds: float, most: float) -> float:
    """No time in a payload is longer than the longest video the worker makes: past it, the
    arithmetic of planning (frames = seconds x fps) would overflow rather than say why."""
    if seconds > most:
        raise problem(
            f"must be at most {number_text(most)} seconds (MAX_OUTPUT_SECONDS), "
            f"got {number_text(seconds)}"
        )
    return seconds


def check_flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise problem(f"must be true or false, got {describe(value)}")
    return value


def check_colour(value: object) -> str:
    if not isinstance(value, str) or not _COLOUR.fullmatch(value):
        raise problem(
            f'must be a colour "#RRGGBB" like "#FFD400", got {describe(value, echo=True)}'
        )
    return value


def check_text(value: object, max_chars: int) -> str:
    if not isinstance(value, str):
        raise problem(f"must be a string of 1 to {max_chars} characters, got {describe(value)}")
    if not value.strip():
        raise problem(f"must be a string of 1 to {max_chars} characters, not blank")
    if len(value) > max_chars:
        raise problem(f"must be at most {max_chars} characters long, got {len(value)}")
    return value


def check_list(value: object, what: str, limit: int, per: str) -> list[Any] | tuple[Any, ...]:
    """A JSON array of at most `limit` items (a tuple too: models built in Python pass tuples)."""
    if not isinstance(value, list | tuple):
        raise problem(f"must be a list of {what}, got {describe(value)}")
    if len(value) > limit:
        raise problem(f"has {len(value)} {what}; at most {limit} are allowed {per}")
    return value


# --- URLs and storage keys -------------------------------------------------------------------


def check_url(value: object) -> str:
    """An http(s) URL with a host, or storage://BUCKET/PATH; the text is kept as given.

    URLs are never echoed in messages: a signed URL carries its token in the query string.
    Whether an address is public is decided when it is fetched (`worker.fetch`), where DNS
    answers are checked at connect time.
    """
    if not isinstance(value, str):
        raise problem(f"must be an http(s) or storage:// URL string, got {describe(value)}")
    why = url_problem(value)
    if why:
        raise problem(f"must be an http(s) or storage:// URL {URL_EXAMPLE} ({why})")
    return value


def url_problem(url: str) -> str | None:
    if not url.strip():
        return "it is empty"
    if len(url) > MAX_URL_LENGTH:
        return f"it is longer than {MAX_URL_LENGTH} characters"
    if url != url.strip() or _CONTROL.search(url):
        return "it has surrounding spaces or control characters"
    if url.startswith(STORAGE_PREFIX):
        return _storage_url_problem(url[len(STORAGE_PREFIX) :])
    return _http_url_problem(url)


def _http_url_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "it could not be parsed (check the host and port)"
    if not parts.scheme:
        return "it has no scheme (start it with https://)"
    if parts.scheme.lower() not in HTTP_SCHEMES:
        return f"its scheme is {parts.scheme[:20]!r}"
    if not host:
        return "it has no host"
    if port == 0:
        return "its port must be from 1 to 65535"
    return None


def _storage_url_problem(rest: str) -> str | None:
    """Checked by the storage layer's rules, so what parses here can also be fetched."""
    bucket, _, key = rest.partition("/")
    if not bucket:
        return "the bucket name after storage:// is missing"
    if not key:
        return "the object path after the bucket is missing"
    try:
        check_bucket(bucket)
        check_key(key)
    except InvalidKeyError as exc:
        return key_reason(exc)
    return None


def key_reason(exc: InvalidKeyError) -> str:
    """The storage layer's reason without its echo of the key (`… is not allowed: why`)."""
    text = str(exc)
    head, sep, why = text.partition(" is not allowed: ")
    if sep:
        return why
    if "bucket name" in head:
        return "the bucket name may use only letters, digits, '.', '_' and '-'"
    return text


def check_output_path(value: object) -> str:
    """A relative key ending in `.mp4` (any case): the output is always an MP4, and appending
    the suffix would store the video under a key the app does not know."""
    if not isinstance(value, str):
        raise problem(f"must be a storage key string, got {describe(value)}")
    try:
        check_key(value)
    except InvalidKeyError as exc:
        raise problem(
            f'must be a relative storage key like "user-123/video.mp4" ({key_reason(exc)})'
        ) from None
    name = value.rsplit("/", 1)[-1]
    if not name.lower().endswith(".mp4") or len(name) <= len(".mp4"):
        raise problem('must end in a file name with ".mp4" (the output is always an MP4)')
    return value


# --- Annotated metadata: the check and the constraints the schema shows ----------------------


def _before(check: Callable[[Any], Any]) -> BeforeValidator:
    """`check` as a before-validator. Optional fields never see null (the models drop it: null
    counts as absent), so a null that arrives here is a required field left out."""
    return _before_in_context(lambda value, _info: check(value))


def _before_in_context(check: Callable[[Any, ValidationInfo], Any]) -> BeforeValidator:
    """`_before` for a check that reads the validation context (the operator's limits)."""

    def required(value: object, info: ValidationInfo) -> Any:
        if value is None:
            raise problem("is required")
        return check(value, info)

    return BeforeValidator(required)


@dataclass(frozen=True)
class Number(annotated_types.GroupedMetadata):
    """A finite JSON number from `low` to `high` (inclusive)."""

    low: float
    high: float

    def __iter__(self) -> Iterator[object]:
        yield annotated_types.Ge(self.low)
        yield annotated_types.Le(self.high)
        yield _before(lambda value: check_number(value, self.low, self.high))


@dataclass(frozen=True)
class Whole(annotated_types.GroupedMetadata):
    """A whole number from `low` to `high`; `even` adds the H.264 rule for frame sizes."""

    low: int
    high: int
    even: bool = False

    def __iter__(self) -> Iterator[object]:
        yield annotated_types.Ge(self.low)
        yield annotated_types.Le(self.high)
        if self.even:
            yield annotated_types.MultipleOf(2)
        yield _before(self._check)

    def _check(self, value: object) -> int:
        number = check_whole(value, self.low, self.high)
        if self.even and number % 2:
            raise problem(
                f"must be an even number of pixels (H.264 needs even sizes), got {number}"
            )
        return number


@dataclass(frozen=True)
class Seconds(annotated_types.GroupedMetadata):
    """Seconds, 0 or more; with `positive`, more than 0 (a length rather than a moment).

    At most the operator's MAX_OUTPUT_SECONDS, which parse_payload puts in the validation
    context (`max_seconds`); a model built in Python has none and gets the default, which is
    also the schema's `maximum`. The maximum is stated for the schema only, not declared to
    pydantic as a constraint: an operator's larger value must not meet a second, fixed check.
    """

    positive: bool = False

    def __iter__(self) -> Iterator[object]:
        yield annotated_types.Gt(0) if self.positive else annotated_types.Ge(0)
        yield SchemaMaximum(DEFAULT_MAX_OUTPUT_SECONDS)
        yield _before_in_context(self._check)

    def _check(self, value: object, info: ValidationInfo) -> float:
        most = max_seconds(info)
        return check_duration(value, most) if self.positive else check_seconds(value, most)


def max_seconds(info: ValidationInfo) -> float:
    """The longest time a payload may name: the operator's MAX_OUTPUT_SECONDS, else the default."""
    most = context_value(info, "max_seconds")
    return float(most if most is not None else DEFAULT_MAX_OUTPUT_SECONDS)


@dataclass(frozen=True)
class SchemaMaximum:
    """`maximum` in the JSON Schema, for a bound a check of ours enforces (with its sentence)."""

    value: float

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["maximum"] = self.value
        return schema


@dataclass(frozen=True)
class Choice(annotated_types.GroupedMetadata):
    """One of `options` (the Literal type states them to the schema), said as `sentence`."""

    options: tuple[str, ...]
    sentence: str = ""

    def __iter__(self) -> Iterator[object]:
        yield _before(self._check)

    def _check(self, value: object) -> str:
        if isinstance(value, str) and value in self.options:
            return value
        allowed = self.sentence or "must be one of " + ", ".join(f'"{o}"' for o in self.options)
        raise problem(f"{allowed}, got {describe(value, echo=True)}")


@dataclass(frozen=True)
class Text(annotated_types.GroupedMetadata):
    """Text the end user wrote, not blank, at most `max_chars` characters."""

    max_chars: int

    def __iter__(self) -> Iterator[object]:
        yield annotated_types.MinLen(1)
        yield annotated_types.MaxLen(self.max_chars)
        yield _before(lambda value: check_text(value, self.max_chars))


@dataclass(frozen=True)
class Items(annotated_types.GroupedMetadata):
    """A JSON array of at most `limit` items, named `what` in messages ("audio layers")."""

    what: str
    limit: int
    per: str

    def __iter__(self) -> Iterator[object]:
        yield annotated_types.MaxLen(self.limit)
        yield _before(lambda value: check_list(value, self.what, self.limit, self.per))


@dataclass(frozen=True)
class Url(annotated_types.GroupedMetadata):
    """An http(s) or storage:// URL (see `check_url`); the schema gets its prefix and length."""

    def __iter__(self) -> Iterator[object]:
        yield from StringConstraints(max_length=MAX_URL_LENGTH, pattern=URL_PATTERN)
        yield _before(check_url)


@dataclass(frozen=True)
class Colour(annotated_types.GroupedMetadata):
    """A `#RRGGBB` colour."""

    def __iter__(self) -> Iterator[object]:
        yield from StringConstraints(pattern=COLOUR_PATTERN)
        yield _before(check_colour)


FLAG = _before(check_flag)
OUTPUT_PATH = _before(check_output_path)


def context_value(info: ValidationInfo, name: str) -> Any:
    """A value parse_payload put in the validation context; None for models built in Python."""
    context = info.context
    return context.get(name) if isinstance(context, dict) else None
