"""A job's `payload` (version 1), checked field by field into frozen dataclasses.

The payload is written by a web app and read by nobody else until a job fails, so every
message names the exact field (`payload.clips[2].url: …`) and says what is allowed: the
`error` column is what a web developer sees, and it should be enough to fix the request.

Choices where the contract is silent (shared/spec/video-jobs.md, `payload (version 1)`):

- `null` counts as absent for optional fields: JavaScript apps often send `"audio": null`.
- Unknown keys are ignored at every level, so an app may send keys a newer worker reads;
  a `version` other than 1, though, is refused, since its meaning could differ.
- URLs are checked for shape only (http/https with a host, or `storage://BUCKET/PATH` by the
  storage layer's own key rules). Whether an address is public is decided when it is
  fetched (`worker.fetch`), where DNS answers are checked at connect time.
- URLs are never echoed in messages: a signed URL carries its token in the query string.
- `output.width`/`height` are whole numbers from 16 to 4096, given together, and must be
  even: H.264 with 4:2:0 chroma needs even sizes, and rounding would quietly give the app a
  size it did not ask for. 4096 covers 4K (3840x2160) and DCI 4K in either orientation.
- `output.fps` is any number from 1 to 120 (29.97 is a real frame rate).
- `output.path` must end in `.mp4` (any case): the output is always an MP4, and appending
  the suffix would store the video under a key the app does not know.
- `start` defaults to 0 and `end` to the clip's end; the duration limit is checked after
  probing, by the pipeline.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from worker.errors import PayloadError
from worker.settings import Settings
from worker.storage.base import InvalidKeyError, check_bucket, check_key

Fit = Literal["pad", "crop"]

PAYLOAD_VERSION = 1
FITS: tuple[Fit, ...] = ("pad", "crop")
MIN_SIDE, MAX_SIDE = 16, 4096
MIN_FPS, MAX_FPS = 1, 120
MAX_URL_LENGTH = 4096
STORAGE_PREFIX = "storage://"
HTTP_SCHEMES = frozenset({"http", "https"})
URL_EXAMPLE = 'like "https://cdn.example.com/a.mp4" or "storage://BUCKET/PATH"'


@dataclass(frozen=True)
class Clip:
    """One clip, played in order; `start`/`end` trim it (seconds), `end` None = to its end."""

    url: str
    start: float = 0.0
    end: float | None = None
    voice_url: str | None = None


@dataclass(frozen=True)
class Audio:
    """A background track under the whole video."""

    url: str
    volume: float = 1.0
    duck: bool = False


@dataclass(frozen=True)
class Output:
    """How the result looks and where it goes; None sizes/fps follow the first clip."""

    width: int | None = None
    height: int | None = None
    fps: float | None = None
    fit: Fit = "pad"
    path: str | None = None
    thumbnail: bool = True


@dataclass(frozen=True)
class Payload:
    """A checked version-1 payload."""

    clips: tuple[Clip, ...]
    audio: Audio | None = None
    output: Output = field(default_factory=Output)

    def inputs(self) -> tuple[tuple[str, str], ...]:
        """Every input as (source, url), sources named as the contract names them in errors.

        `clips[N]`, `clips[N].voice_url` and `audio`, in playing order.
        """
        found: list[tuple[str, str]] = []
        for n, clip in enumerate(self.clips):
            found.append((f"clips[{n}]", clip.url))
            if clip.voice_url is not None:
                found.append((f"clips[{n}].voice_url", clip.voice_url))
        if self.audio is not None:
            found.append(("audio", self.audio.url))
        return tuple(found)


def default_output_key(job_id: uuid.UUID | str, user_id: uuid.UUID | str | None) -> str:
    """The contract's default storage key: `{user_id or 'anonymous'}/{job_id}.mp4`."""
    return f"{user_id or 'anonymous'}/{job_id}.mp4"


def output_key(payload: Payload, job_id: uuid.UUID | str, user_id: uuid.UUID | str | None) -> str:
    """The key the video is stored under: `output.path` when given, else the default."""
    return payload.output.path or default_output_key(job_id, user_id)


def parse_payload(raw: object, settings: Settings) -> Payload:
    """Check `raw` (the row's JSON value) and return it typed; raise PayloadError otherwise."""
    obj = _object(raw, "payload")
    _check_version(obj.get("version"))
    clips = _clips(obj.get("clips"), settings.max_clips)
    audio_raw = obj.get("audio")
    output_raw = obj.get("output")
    return Payload(
        clips=clips,
        audio=None if audio_raw is None else _audio(audio_raw),
        output=Output() if output_raw is None else _output(output_raw),
    )


# --- sections -------------------------------------------------------------------------------


def _check_version(value: object) -> None:
    if value is None:
        return
    if _is_number(value) and value == PAYLOAD_VERSION:
        return
    raise PayloadError(
        "payload.version",
        f"must be {PAYLOAD_VERSION} (the only payload version this worker understands) "
        f"or left out, got {_describe(value)}",
    )


def _clips(value: object, max_clips: int) -> tuple[Clip, ...]:
    where = "payload.clips"
    if value is None:
        raise PayloadError(where, 'is required: a list of clips like [{"url": "https://…"}]')
    if not isinstance(value, list):
        raise PayloadError(where, f"must be a list of clip objects, got {_describe(value)}")
    if not value:
        raise PayloadError(where, "must list at least one clip")
    if len(value) > max_clips:
        raise PayloadError(
            where, f"has {len(value)} clips; at most {max_clips} are allowed in one job"
        )
    return tuple(_clip(item, f"{where}[{n}]") for n, item in enumerate(value))


def _clip(value: object, where: str) -> Clip:
    obj = _object(value, where)
    url = _url(_required(obj, "url", where), f"{where}.url")
    start = _optional_seconds(obj.get("start"), f"{where}.start")
    end = _optional_seconds(obj.get("end"), f"{where}.end")
    if end is not None and end <= (start or 0.0):
        raise PayloadError(
            f"{where}.end",
            f"must be greater than start ({_number_text(start or 0.0)} s), "
            f"got {_number_text(end)} s",
        )
    voice = obj.get("voice_url")
    return Clip(
        url=url,
        start=start or 0.0,
        end=end,
        voice_url=None if voice is None else _url(voice, f"{where}.voice_url"),
    )


def _audio(value: object) -> Audio:
    where = "payload.audio"
    obj = _object(value, where)
    url = _url(_required(obj, "url", where), f"{where}.url")
    volume = obj.get("volume")
    duck = obj.get("duck")
    return Audio(
        url=url,
        volume=1.0 if volume is None else _number(volume, f"{where}.volume", 0, 1),
        duck=False if duck is None else _boolean(duck, f"{where}.duck"),
    )


def _output(value: object) -> Output:
    where = "payload.output"
    obj = _object(value, where)
    width, height = _size(obj.get("width"), obj.get("height"), where)
    fps = obj.get("fps")
    path = obj.get("path")
    thumbnail = obj.get("thumbnail")
    return Output(
        width=width,
        height=height,
        fps=None if fps is None else _number(fps, f"{where}.fps", MIN_FPS, MAX_FPS),
        fit=_fit(obj.get("fit"), f"{where}.fit"),
        path=None if path is None else _output_path(path, f"{where}.path"),
        thumbnail=True if thumbnail is None else _boolean(thumbnail, f"{where}.thumbnail"),
    )


def _size(width: object, height: object, where: str) -> tuple[int | None, int | None]:
    """Both sides or neither: one side alone leaves the aspect ratio undefined."""
    if width is None and height is None:
        return None, None
    if width is None:
        raise PayloadError(f"{where}.width", "is required when height is given (give both)")
    if height is None:
        raise PayloadError(f"{where}.height", "is required when width is given (give both)")
    return _side(width, f"{where}.width"), _side(height, f"{where}.height")


def _side(value: object, where: str) -> int:
    number = _whole(value, where, MIN_SIDE, MAX_SIDE)
    if number % 2:
        raise PayloadError(
            where, f"must be an even number of pixels (H.264 needs even sizes), got {number}"
        )
    return number


def _fit(value: object, where: str) -> Fit:
    if value is None:
        return "pad"
    for fit in FITS:
        if value == fit:
            return fit
    raise PayloadError(
        where,
        f'must be "pad" (letterbox to the size) or "crop" (fill and cut the edges), '
        f"got {_describe(value, echo=True)}",
    )


def _output_path(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise PayloadError(where, f"must be a storage key string, got {_describe(value)}")
    try:
        check_key(value)
    except InvalidKeyError as exc:
        raise PayloadError(
            where, f'must be a relative storage key like "user-123/video.mp4" ({_key_reason(exc)})'
        ) from None
    name = value.rsplit("/", 1)[-1]
    if not name.lower().endswith(".mp4") or len(name) <= len(".mp4"):
        raise PayloadError(
            where, 'must end in a file name with ".mp4" (the output is always an MP4)'
        )
    return value


# --- URLs -----------------------------------------------------------------------------------


def _url(value: object, where: str) -> str:
    """An http(s) URL with a host, or storage://BUCKET/PATH; the text is kept as given."""
    if not isinstance(value, str):
        raise PayloadError(
            where, f"must be an http(s) or storage:// URL string, got {_describe(value)}"
        )
    problem = _url_problem(value)
    if problem:
        raise PayloadError(where, f"must be an http(s) or storage:// URL {URL_EXAMPLE} ({problem})")
    return value


def _url_problem(url: str) -> str | None:
    if not url.strip():
        return "it is empty"
    if len(url) > MAX_URL_LENGTH:
        return f"it is longer than {MAX_URL_LENGTH} characters"
    if url != url.strip() or any(ord(c) < 32 or ord(c) == 127 for c in url):
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
        return _key_reason(exc)
    return None


def _key_reason(exc: InvalidKeyError) -> str:
    """The storage layer's reason without its echo of the key (`… is not allowed: why`)."""
    text = str(exc)
    head, sep, why = text.partition(" is not allowed: ")
    if sep:
        return why
    if "bucket name" in head:
        return "the bucket name may use only letters, digits, '.', '_' and '-'"
    return text


# --- scalars --------------------------------------------------------------------------------


def _object(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise PayloadError(where, f"must be a JSON object, got {_describe(value)}")
    return value


def _required(obj: Mapping[str, object], key: str, where: str) -> object:
    value = obj.get(key)
    if value is None:
        raise PayloadError(f"{where}.{key}", "is required")
    return value


def _is_number(value: object) -> bool:
    """JSON numbers only: Python's bool is an int, but `true` is not a number."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite(value: object) -> float | None:
    """`value` as a float when it is a finite JSON number, else None (NaN, inf, bool, …)."""
    if not _is_number(value):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]  # _is_number checked int | float
    except OverflowError:  # an integer too large for a float
        return None
    return number if math.isfinite(number) else None


def _number(value: object, where: str, low: float, high: float, what: str = "a number") -> float:
    number = _finite(value)
    if number is None:
        raise PayloadError(where, f"must be {what} from {low} to {high}, got {_describe(value)}")
    if not low <= number <= high:
        raise PayloadError(where, f"must be from {low} to {high}, got {_number_text(number)}")
    return number


def _whole(value: object, where: str, low: int, high: int) -> int:
    """A whole number; 1080.0 is accepted as 1080 (some encoders write integers that way)."""
    number = _number(value, where, low, high, what="a whole number")
    if not number.is_integer():
        raise PayloadError(where, f"must be a whole number, got {_number_text(number)}")
    return int(number)


def _optional_seconds(value: object, where: str) -> float | None:
    if value is None:
        return None
    seconds = _finite(value)
    if seconds is None:
        raise PayloadError(
            where, f"must be a number of seconds (0 or more), got {_describe(value)}"
        )
    if seconds < 0:
        raise PayloadError(where, f"must be 0 or more seconds, got {_number_text(seconds)}")
    return seconds


def _boolean(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise PayloadError(where, f"must be true or false, got {_describe(value)}")
    return value


def _number_text(value: object) -> str:
    """1.0 as "1", 1.5 as "1.5": what the developer wrote, not Python's float repr."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _describe(value: object, *, echo: bool = False) -> str:
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
        return _number_text(value)
    if isinstance(value, str):
        return f'"{value[:40]}"' if echo and len(value) <= 40 else "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
