"""The payload's models: version 1 and the composition (docs/contract.md, docs/composition.md).

Rules every model follows (`Model`):

- `null` counts as absent for optional fields: JavaScript apps often send `"audio": null`.
- Unknown keys are ignored at every level, so an app may send keys a newer worker reads;
  a `version` other than 1, though, is refused, since its meaning could differ.
- Fields are declared in the order the checks should run: when a payload has several errors,
  the first one reported is the first in document order (clips before audio before output;
  within a clip, url before start before end …), as the sequential checks before these models
  reported it.
- Frozen: a parsed payload is a value; assigning to a field raises AttributeError.

Choices where the contract is silent:

- `output.width`/`height` are whole numbers from 16 to 4096, given together, and must be
  even: H.264 with 4:2:0 chroma needs even sizes, and rounding would quietly give the app a
  size it did not ask for. 4096 covers 4K (3840x2160) and DCI 4K in either orientation.
- `output.fps` is any number from 1 to 120 (29.97 is a real frame rate).
- `start` defaults to 0 and `end` to the clip's end; the duration limit is checked after
  probing, by the pipeline (so is a transition's length against its clips' lengths).
- One caption source on the output timeline: `captions.words`, `srt_url` or `vtt_url`.
- A `voice_transcript` needs the clip's `voice_url`: it is timed on that voice-over.

Over 300 lines on purpose: the whole payload of version 1 and its composition additions, one
model per object of the contract in the contract's order, so that the JSON Schema, the
messages and the contract can be read side by side; the field types live in fields.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, NotRequired, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    PlainValidator,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from typing_extensions import TypeAliasType, TypedDict  # pydantic's TypedDict on Python 3.11

from worker.errors import PayloadError
from worker.media.cost import MAX_OVERLAY_LAYERS, MAX_VIDEO_OVERLAYS
from worker.media.picture.captions import (
    MAX_CAPTION_WORDS,
    CaptionPosition,
    CaptionStyle,
    CaptionStyleName,
    Word,
    words_from_transcript,
)
from worker.media.picture.fonts import FontSet
from worker.media.picture.scripts import uncovered_problem

# The vocabularies the payload shares with the media code are defined there, once (specs.py and
# picture/captions.py); worker.payload re-exports `Fit`.
from worker.media.specs import (
    DEFAULT_DUCK_DB,
    DEFAULT_LOUDNESS_LUFS,
    Animation,
    Easing,
    Motion,
    Position,
)
from worker.media.specs import Fit as Fit
from worker.payload.fields import (
    FLAG,
    OUTPUT_PATH,
    Choice,
    Colour,
    Items,
    Number,
    Seconds,
    Text,
    Url,
    Whole,
    context_value,
    describe,
    is_number,
    max_seconds,
    number_text,
    problem,
)
from worker.settings import DEFAULT_MAX_OUTPUT_SECONDS

PAYLOAD_VERSION = 1
MAX_OVERLAYS = MAX_OVERLAY_LAYERS  # the cost bound's own number (worker/media/cost.py)
MAX_AUDIO_LAYERS = 8  # per clip
MAX_TEXT_CHARS = 500  # a text overlay
MAX_KEYFRAMES = 20  # per overlay: a motion's expressions grow with its keyframes, and nothing else

# FFmpeg's xfade transitions (all of them but `custom`, which takes expressions).
TransitionType = Literal[
    "fade", "fadeblack", "fadewhite", "fadegrays", "fadefast", "fadeslow", "dissolve",
    "wipeleft", "wiperight", "wipeup", "wipedown", "wipetl", "wipetr", "wipebl", "wipebr",
    "slideleft", "slideright", "slideup", "slidedown",
    "smoothleft", "smoothright", "smoothup", "smoothdown",
    "coverleft", "coverright", "coverup", "coverdown",
    "revealleft", "revealright", "revealup", "revealdown",
    "circleopen", "circleclose", "circlecrop", "rectcrop", "radial", "distance",
    "vertopen", "vertclose", "horzopen", "horzclose",
    "diagtl", "diagtr", "diagbl", "diagbr",
    "hlslice", "hrslice", "vuslice", "vdslice", "hlwind", "hrwind", "vuwind", "vdwind",
    "squeezeh", "squeezev", "zoomin", "pixelize", "hblur",
]  # fmt: skip

FITS: tuple[Fit, ...] = get_args(Fit)
MOTIONS: tuple[Motion, ...] = get_args(Motion)
EASINGS: tuple[Easing, ...] = get_args(Easing)
ANIMATIONS: tuple[Animation, ...] = get_args(Animation)
CAPTION_STYLES: tuple[CaptionStyleName, ...] = get_args(CaptionStyleName)
CAPTION_POSITIONS: tuple[CaptionPosition, ...] = get_args(CaptionPosition)
POSITIONS: tuple[Position, ...] = get_args(Position)
TRANSITIONS: tuple[TransitionType, ...] = get_args(TransitionType)

# The field types, by what they hold (fields.py has their checks).
UrlText = Annotated[str, Url()]
Secs = Annotated[float, Seconds()]
Length = Annotated[float, Seconds(positive=True)]
Side = Annotated[int, Whole(16, 4096, even=True)]


class Model(BaseModel):
    """What every payload object shares: a JSON object, null as absent, frozen, extras ignored."""

    # a field whose JSON key is a Python keyword (`from`) has that key as its alias
    model_config = ConfigDict(frozen=True, extra="ignore", validate_by_name=True)

    _names: ClassVar[tuple[str, ...]] = ()  # the JSON keys, in field order
    _required: ClassVar[frozenset[str]] = frozenset()
    json_keys: ClassVar[dict[str, str]] = {}  # field name → its JSON key

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.json_keys = {n: f.alias or n for n, f in cls.model_fields.items()}
        cls._names = tuple(cls.json_keys.values())
        cls._required = frozenset(
            cls.json_keys[n] for n, f in cls.model_fields.items() if f.is_required()
        )

    def __init__(self, *args: Any, **fields: Any) -> None:
        """Positional arguments in field order too, as the dataclasses these models replaced;
        keyword arguments by field name (`from_`) or JSON key."""
        if len(args) > len(self._names):
            raise TypeError(f"{type(self).__name__} takes at most {len(self._names)} arguments")
        keys = {self.json_keys.get(name, name): value for name, value in fields.items()}
        super().__init__(**dict(zip(self._names, args, strict=False)), **keys)

    # Validation calls a model's own __init__ only when it is not pydantic's, and then drops the
    # validation context (the clip limit); this mark (pydantic-settings uses it too) says this
    # one only maps positional arguments, so validation keeps building models directly.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: build a new one instead")

    @model_validator(mode="before")
    @classmethod
    def _json_object(cls, data: Any) -> Any:
        """Only a JSON object; its known keys, with null dropped (so the defaults apply).

        A required field left out or null reaches its check as None, which says "is required"
        (fields.py `_before`), in field order like every other error.
        """
        if isinstance(data, cls):
            return data
        if not isinstance(data, Mapping):
            raise problem(f"must be a JSON object, got {describe(data)}")
        present = {key: data[key] for key in cls._names if data.get(key) is not None}
        for name in cls._required:
            present.setdefault(name, None)
        cls._check_together(present)
        return present

    @classmethod
    def _check_together(cls, fields: dict[str, Any]) -> None:
        """Checks that need several fields before each is checked alone (none by default)."""


def _after_start(end: float | None, info: ValidationInfo) -> float | None:
    """`end` after `start` (when start itself was valid: otherwise its error is the one shown)."""
    start = info.data.get("start")
    if end is not None and isinstance(start, float) and end <= start:
        raise problem(
            f"must be greater than start ({number_text(start)} s), got {number_text(end)} s"
        )
    return end


# --- fonts and scripts ------------------------------------------------------------------------

FONT_NAME_CHARS = 100


def _font(name: str, info: ValidationInfo) -> str:
    """A family the worker has (`video-worker fonts`): checked against the operator's fonts,
    which parse_payload puts in the context (models built in Python are not checked)."""
    fonts = context_value(info, "fonts")
    if isinstance(fonts, FontSet) and fonts.resolve(name) is None:
        raise problem(fonts.unknown_font(name))
    return name


def _drawable(text: str, info: ValidationInfo) -> str:
    """Text every character of which some font of the worker covers (else the script, named)."""
    fonts = context_value(info, "fonts")
    found = fonts.first_uncovered(text) if isinstance(fonts, FontSet) else None
    if found is not None:
        raise problem(uncovered_problem(*found))
    return text


FontName = Annotated[
    str,
    Text(FONT_NAME_CHARS),
    AfterValidator(_font),
    Field(
        description='A font family of the worker: "sans" (Noto Sans), "serif" (Noto Serif) or '
        "a family `video-worker fonts` lists. Characters it lacks come from another family."
    ),
]


# --- transcripts ------------------------------------------------------------------------------


# A word's time, as the schema states it; the transcript reader (worker.media.picture.captions)
# checks it, against the operator's MAX_OUTPUT_SECONDS.
WordTime = Annotated[float, Field(ge=0, le=DEFAULT_MAX_OUTPUT_SECONDS)]


class TranscriptWord(TypedDict):
    """One timed word: `word` (or `text`), `start` and `end` in seconds. Entries whose `type` is
    "spacing" or "audio_event" (ElevenLabs Scribe) are skipped."""

    word: NotRequired[str]
    text: NotRequired[str]
    start: WordTime
    end: WordTime
    type: NotRequired[str]


class TranscriptSegment(TypedDict):
    """A segment of a Whisper or OpenAI `verbose_json` transcript; only its words are used."""

    words: list[TranscriptWord]


class WordsTranscript(TypedDict):
    """OpenAI or Whisper `verbose_json` with word timestamps, or ElevenLabs Scribe."""

    words: list[TranscriptWord]


class SegmentsTranscript(TypedDict):
    """Whisper `verbose_json` with segments, each with its words."""

    segments: list[TranscriptSegment]


# Named, so the schema (and the TypeScript generated from it) calls this shape `Transcript`.
Transcript = TypeAliasType(
    "Transcript", list[TranscriptWord] | WordsTranscript | SegmentsTranscript
)


def _transcript(value: object, info: ValidationInfo) -> tuple[Word, ...]:
    """The words of a transcript, by the caption module's own reader
    (worker.media.picture.captions).

    The job's words in all are bounded too: once a job is over the limit, later transcripts are
    refused without being read.
    """
    if isinstance(value, tuple) and all(isinstance(w, Word) for w in value):
        return value  # already words: a model built in Python
    left = context_value(info, "caption_words_left")
    if left is not None and left < 0:
        raise problem(f"must be left out: the job is over its {MAX_CAPTION_WORDS} caption words")
    try:
        words = words_from_transcript(
            value, "", max_words=MAX_CAPTION_WORDS, max_seconds=max_seconds(info)
        )
    except PayloadError as exc:
        raise problem(exc.problem, at=exc.field) from None
    for word in words:
        _drawable(word.text, info)
    if left is not None:
        assert isinstance(info.context, dict)
        info.context["caption_words_left"] = left = left - len(words)
        if left < 0:
            raise problem(
                f"has {len(words)} words, which brings the job's caption words to "
                f"{MAX_CAPTION_WORDS - left}; at most {MAX_CAPTION_WORDS} are allowed in one job "
                "(all transcripts and captions.words together)"
            )
    return tuple(words)


TranscriptWords = Annotated[
    tuple[Word, ...],
    PlainValidator(
        _transcript,
        json_schema_input_type=Transcript,
    ),
    Field(
        description='Timed words: {"words": [...]}, {"segments": [{"words": [...]}]} '
        "(Whisper, OpenAI verbose_json, ElevenLabs Scribe) or a bare list of words."
    ),
]


# --- clips ------------------------------------------------------------------------------------


class AudioLayer(Model):
    """An extra sound (ambient, effect) mixed only inside its clip's window."""

    url: Annotated[str, Url(), Field(description="The sound: an http(s) or storage:// URL.")]
    volume: Annotated[float, Number(0, 1), Field(description="0 (silent) to 1.")] = 1.0
    loop: Annotated[bool, FLAG, Field(description="Repeat it to fill the clip.")] = False
    start: Annotated[
        float, Seconds(), Field(description="Where it starts inside the clip, in seconds.")
    ] = 0.0
    fade_in: Annotated[float, Seconds(), Field(description="Fade-in, in seconds.")] = 0.0
    fade_out: Annotated[float, Seconds(), Field(description="Fade-out, in seconds.")] = 0.0


class Transition(Model):
    """How this clip leads into the next one (FFmpeg's xfade); the sound crossfades with it."""

    type: Annotated[
        TransitionType,
        Choice(
            TRANSITIONS,
            "must be one of FFmpeg's xfade transitions: "
            + ", ".join(f'"{t}"' for t in TRANSITIONS),
        ),
        Field(description="The xfade transition."),
    ]
    duration: Annotated[
        float,
        Seconds(positive=True),
        Field(description="Seconds, more than 0 and at most half of the shorter clip."),
    ]


class Clip(Model):
    """One clip, played in order: a video, or a still image (PNG, JPEG, WebP) with `duration`."""

    url: Annotated[
        str, Url(), Field(description="The video or image: an http(s) or storage:// URL.")
    ]
    start: Annotated[
        float, Seconds(), Field(description="Trim: where the clip starts, in seconds.")
    ] = 0.0
    end: Annotated[
        Secs | None,
        AfterValidator(_after_start),
        Field(description="Trim: where the clip ends, in seconds (null: at its end)."),
    ] = None
    voice_url: Annotated[UrlText | None, Field(description="A voice-over laid on this clip.")] = (
        None
    )
    duration: Annotated[
        Length | None,
        Field(description="How long a still image is shown, in seconds (required for images)."),
    ] = None
    motion: Annotated[Motion, Choice(MOTIONS), Field(description="How a still image moves.")] = (
        "none"
    )
    zoom: Annotated[
        float,
        Number(0, 1),
        Field(description="How far the motion goes: zoom_in scales from 1 to 1 + zoom."),
    ] = 0.15
    easing: Annotated[
        Easing,
        Choice(EASINGS),
        Field(description="How a still's motion speeds up and slows down over the clip."),
    ] = "linear"
    volume: Annotated[
        float, Number(0, 1), Field(description="The clip's own sound: 0 mutes it, 1 as it is.")
    ] = 1.0
    audio: Annotated[
        tuple[AudioLayer, ...],
        Items("audio layers", MAX_AUDIO_LAYERS, "per clip"),
        Field(description="Extra sounds mixed inside this clip's window."),
    ] = ()
    transcript: Annotated[
        TranscriptWords | None,
        Field(description="Captions timed on this clip's source (trims cut and shift them)."),
    ] = None
    voice_transcript: Annotated[
        TranscriptWords | None,
        Field(description="Captions timed from the start of this clip's voice-over."),
    ] = None
    transition: Annotated[
        Transition | None, Field(description="A transition into the next clip.")
    ] = None

    @field_validator("voice_transcript")
    @classmethod
    def _needs_voice(cls, words: tuple[Word, ...] | None, info: ValidationInfo) -> Any:
        if words is not None and "voice_url" in info.data and info.data["voice_url"] is None:
            raise problem("must come with the clip's voice_url (it is timed on that voice-over)")
        return words


def _clip_list(value: object, info: ValidationInfo) -> object:
    if value is None:
        raise problem('is required: a list of clips like [{"url": "https://…"}]')
    if not isinstance(value, list | tuple):
        raise problem(f"must be a list of clip objects, got {describe(value)}")
    if not value:
        raise problem("must list at least one clip")
    max_clips = context_value(info, "max_clips")
    if max_clips is not None and len(value) > max_clips:
        raise problem(f"has {len(value)} clips; at most {max_clips} are allowed in one job")
    return value


def _no_transition_after_last(clips: tuple[Clip, ...]) -> tuple[Clip, ...]:
    if clips and clips[-1].transition is not None:
        raise problem(
            "must be left out on the last clip: a transition leads into the next clip",
            at=f"[{len(clips) - 1}].transition",
        )
    return clips


# --- music, output ----------------------------------------------------------------------------


class Audio(Model):
    """A background track under the whole video, looped or cut to its length."""

    url: Annotated[str, Url(), Field(description="The music: an http(s) or storage:// URL.")]
    volume: Annotated[
        float,
        Number(0, 1),
        Field(description="Relative to the loudness target: 1 is as loud as the foreground."),
    ] = 1.0
    duck: Annotated[
        bool,
        FLAG,
        Field(
            description="Lower it by duck_db under speech and clip sound "
            "(default: true when duck_db is given, else false)."
        ),
    ] = False
    duck_db: Annotated[
        float,
        Number(3, 30),
        Field(description="How far ducking lowers the music, in dB: 3 to 30 (default 12)."),
    ] = DEFAULT_DUCK_DB

    @property
    def ducks(self) -> bool:
        """Whether the music ducks: `duck` when given, else whether `duck_db` was given (a depth
        says ducking is wanted; `"duck": false` turns it off whatever the depth)."""
        if "duck" in self.model_fields_set:
            return self.duck
        return "duck_db" in self.model_fields_set


class Output(Model):
    """How the result looks and where it goes; sizes and fps left out follow the first clip."""

    width: Annotated[
        Side | None,
        Field(description="Pixels, even, 16 to 4096; give it with height."),
    ] = None
    height: Annotated[
        Side | None,
        Field(description="Pixels, even, 16 to 4096; give it with width."),
    ] = None
    fps: Annotated[
        Annotated[float, Number(1, 120)] | None, Field(description="Frames per second.")
    ] = None
    fit: Annotated[
        Fit,
        Choice(
            FITS,
            'must be "pad" (letterbox to the size), "crop" (fill and cut the edges) '
            'or "blur" (the whole picture over a blurred, darkened copy of itself)',
        ),
        Field(
            description="pad: letterbox to the size; crop: fill it and cut the edges; blur: "
            "the whole picture, with a blurred, darkened copy of it filling the rest."
        ),
    ] = "pad"
    path: Annotated[
        Annotated[str, OUTPUT_PATH] | None,
        Field(
            description="The storage key, ending in .mp4 "
            "(default: {user_id or 'anonymous'}/{job id}.mp4)."
        ),
    ] = None
    thumbnail: Annotated[
        bool, FLAG, Field(description="Also store a poster image beside the video.")
    ] = True
    fade_in: Annotated[
        float, Seconds(), Field(description="Seconds of picture from black and sound from silence.")
    ] = 0.0
    fade_out: Annotated[
        float, Seconds(), Field(description="Seconds of picture to black and sound to silence.")
    ] = 0.0
    loudness: Annotated[
        float,
        Number(-24, -9),
        Field(description="The finished video's integrated loudness, LUFS: -24 to -9."),
    ] = DEFAULT_LOUDNESS_LUFS

    @classmethod
    def _check_together(cls, fields: dict[str, Any]) -> None:
        """Both sides or neither: one side alone leaves the aspect ratio undefined."""
        if "width" in fields and "height" not in fields:
            raise problem("is required when width is given (give both)", at=".height")
        if "height" in fields and "width" not in fields:
            raise problem("is required when height is given (give both)", at=".width")


# --- captions, overlays -----------------------------------------------------------------------


class Captions(Model):
    """Burned-in captions: where the words come from (besides clip transcripts) and their look."""

    words: Annotated[
        TranscriptWords | None, Field(description="Words timed on the output timeline.")
    ] = None
    srt_url: Annotated[
        UrlText | None, Field(description="An SRT file timed on the output timeline.")
    ] = None
    vtt_url: Annotated[
        UrlText | None, Field(description="A WebVTT file timed on the output timeline.")
    ] = None
    style: Annotated[
        CaptionStyleName,
        Choice(CAPTION_STYLES),
        Field(
            description="static: lines as they are; highlight: the spoken word in "
            "highlight_color; karaoke: the line fills as it is spoken; pop: the spoken word in "
            "highlight_color grows briefly (about 15%) around its centre; word_box: the spoken "
            "word on a rounded box in highlight_color."
        ),
    ] = "static"
    position: Annotated[
        CaptionPosition, Choice(CAPTION_POSITIONS), Field(description="Where the lines sit.")
    ] = "bottom"
    size: Annotated[
        Annotated[float, Number(0.01, 0.5)] | None,
        Field(
            description="Text height as a fraction of the frame's height (default 0.075 for a "
            "landscape or square output, 0.045 for a portrait one)."
        ),
    ] = None
    margin: Annotated[
        Annotated[float, Number(0, 0.45)] | None,
        Field(
            description="The gap between the position's edge and the captions, as a fraction "
            "of the frame's height (default 0.06 for a landscape or square output, 0.18 for a "
            "portrait one, clear of short-video apps' buttons); not used when centred."
        ),
    ] = None
    color: Annotated[str, Colour(), Field(description="Text colour, #RRGGBB.")] = "#FFFFFF"
    highlight_color: Annotated[
        str, Colour(), Field(description="The spoken word's colour, #RRGGBB.")
    ] = "#FFD400"
    uppercase: Annotated[bool, FLAG, Field(description="Show the words in capitals.")] = False
    max_words: Annotated[int, Whole(1, 20), Field(description="Words per caption line.")] = 4
    outline: Annotated[bool, FLAG, Field(description="A dark outline around the text.")] = True
    box: Annotated[bool, FLAG, Field(description="A dark box behind the text.")] = False
    vtt: Annotated[
        bool,
        FLAG,
        Field(description="Also store a WebVTT file beside the video (result.captions_path)."),
    ] = False
    font: FontName = "sans"

    @classmethod
    def _check_together(cls, fields: dict[str, Any]) -> None:
        given = [name for name in ("words", "srt_url", "vtt_url") if name in fields]
        if len(given) > 1:
            raise problem(
                f"must not be given with {given[0]}: give one of words, srt_url and vtt_url",
                at=f".{given[1]}",
            )

    def caption_style(self) -> CaptionStyle:
        """The look, as the caption renderer (worker.media.picture.captions) takes it."""
        return CaptionStyle(
            style=self.style,
            position=self.position,
            size=self.size,
            margin=self.margin,
            color=self.color,
            highlight_color=self.highlight_color,
            uppercase=self.uppercase,
            max_words=self.max_words,
            outline=self.outline,
            box=self.box,
            font=self.font,
        )


_START = Field(description="When it appears, in seconds on the output timeline.")
_END = Field(description="When it goes, in seconds on the output timeline (null: at the end).")


# Where an overlay's centre is, as a fraction of the frame: a little past its edges, so that
# an overlay can move in from outside the picture.
Place = Annotated[float, Number(-1, 2)]


class Keyframe(Model):
    """An overlay's values `t` seconds into its window; each value it leaves out follows the
    keyframes that set it (or the overlay's own)."""

    t: Annotated[float, Seconds(), Field(description="Seconds from the overlay's start.")]
    x: Annotated[
        Place | None, Field(description="The centre's x, a fraction of the frame's width.")
    ] = None
    y: Annotated[
        Place | None, Field(description="The centre's y, a fraction of the frame's height.")
    ] = None
    scale: Annotated[
        Annotated[float, Number(0, 4)] | None,
        Field(description="Its size, 1 as given: 0 to 4."),
    ] = None
    opacity: Annotated[
        Annotated[float, Number(0, 1)] | None, Field(description="0 (invisible) to 1.")
    ] = None


def _window(info: ValidationInfo) -> float | None:
    """The overlay's window in seconds when its `end` is given (else it is the output's end)."""
    start, end = info.data.get("start"), info.data.get("end")
    if isinstance(start, float) and isinstance(end, float):
        return end - start
    return None


def _keyframes_in_order(keys: tuple[Keyframe, ...], info: ValidationInfo) -> tuple[Keyframe, ...]:
    """Keyframe times increase, and stay inside the overlay's window."""
    window = _window(info)
    for n, key in enumerate(keys):
        if n and key.t <= keys[n - 1].t:
            raise problem(
                f"must be greater than keyframes[{n - 1}].t ({number_text(keys[n - 1].t)} s): "
                "keyframes are in time order",
                at=f"[{n}].t",
            )
        if window is not None and key.t > window + 1e-9:
            raise problem(
                f"must be within the overlay's window (end - start = {number_text(window)} s), "
                f"got {number_text(key.t)} s",
                at=f"[{n}].t",
            )
    return keys


def _a_third_of_the_window(seconds: float, info: ValidationInfo) -> float:
    """The entrance and the exit fit in the window: each at most a third of it. (With an open
    end the window is known only when the output is: the drawing keeps it to a third then.)"""
    window = _window(info)
    if window is not None and seconds > window / 3 + 1e-9:
        raise problem(
            f"must be at most a third of the overlay's window ({number_text(window)} s), "
            f"got {number_text(seconds)} s"
        )
    return seconds


_X = Field(description="Its centre's x, a fraction of the frame's width (overrides position).")
_Y = Field(description="Its centre's y, a fraction of the frame's height (overrides position).")
_FADE_IN = Field(description="Seconds it fades in over, from its start.")
_FADE_OUT = Field(description="Seconds it fades out over, to its end.")
_ANIMATION = Field(
    description="Its entrance, played in reverse as its exit: none, fade, slide_up, "
    "slide_down, slide_left, slide_right, pop (grows past its size and settles) or zoom."
)
AnimationName = Annotated[Animation, Choice(ANIMATIONS), _ANIMATION]
AnimationSeconds = Annotated[
    float,
    Seconds(positive=True),
    AfterValidator(_a_third_of_the_window),
    Field(description="Seconds the entrance (and the exit) takes: at most a third of its window."),
]
Keyframes = Annotated[
    tuple[Keyframe, ...],
    Items("keyframes", MAX_KEYFRAMES, "per overlay"),
    AfterValidator(_keyframes_in_order),
    Field(description="x, y, scale and opacity at times through its window, in time order."),
]
KeyEasing = Annotated[
    Easing, Choice(EASINGS), Field(description="How values move between keyframes.")
]

# An overlay's placement and timing, each field written once for the image, text and video
# overlays (their defaults differ, and so they stay with each class).
OverlayPosition = Annotated[Position, Choice(POSITIONS), Field(description="Where it sits.")]
OverlayWidth = Annotated[
    float, Number(0.01, 1), Field(description="Its width as a fraction of the frame's.")
]
Opacity = Annotated[float, Number(0, 1), Field(description="0 (invisible) to 1.")]
EdgeMargin = Annotated[
    float, Number(0, 0.5), Field(description="Distance from the edges, a fraction of the frame.")
]
Start = Annotated[Secs, _START]
End = Annotated[Secs | None, AfterValidator(_after_start), _END]
CentreX = Annotated[Place | None, _X]
CentreY = Annotated[Place | None, _Y]
FadeIn = Annotated[Secs, _FADE_IN]
FadeOut = Annotated[Secs, _FADE_OUT]


class ImageOverlay(Model):
    """An image (a logo, a watermark) over the whole timeline, transitions included."""

    image: Annotated[str, Url(), Field(description="The image: an http(s) or storage:// URL.")]
    position: OverlayPosition = "top_right"
    width: OverlayWidth = 0.15
    opacity: Opacity = 1.0
    margin: EdgeMargin = 0.03
    start: Start = 0.0
    end: End = None
    x: CentreX = None
    y: CentreY = None
    fade_in: FadeIn = 0.0
    fade_out: FadeOut = 0.0
    animation: AnimationName = "none"
    animation_duration: AnimationSeconds = 0.4
    keyframes: Keyframes = ()
    easing: KeyEasing = "linear"


class TextOverlay(Model):
    """A line of text (a title) over the whole timeline, transitions included."""

    text: Annotated[
        str,
        Text(MAX_TEXT_CHARS),
        AfterValidator(_drawable),
        Field(description="The text, shown literally."),
    ]
    position: OverlayPosition = "center"
    size: Annotated[
        float, Number(0.01, 0.5), Field(description="Text height as a fraction of the frame's.")
    ] = 0.06
    color: Annotated[str, Colour(), Field(description="Text colour, #RRGGBB.")] = "#FFFFFF"
    box: Annotated[bool, FLAG, Field(description="A dark box behind the text.")] = False
    start: Start = 0.0
    end: End = None
    font: FontName = "sans"
    x: CentreX = None
    y: CentreY = None
    fade_in: FadeIn = 0.0
    fade_out: FadeOut = 0.0
    animation: AnimationName = "none"
    animation_duration: AnimationSeconds = 0.4
    keyframes: Keyframes = ()
    easing: KeyEasing = "linear"
    max_width: Annotated[
        Annotated[float, Number(0.05, 1)] | None,
        Field(
            description="The widest a line may be, a fraction of the frame's width: longer "
            "text wraps (default: the frame less its margins)."
        ),
    ] = None


class VideoOverlay(Model):
    """A video over the timeline (picture-in-picture, B-roll), transitions included."""

    video: Annotated[str, Url(), Field(description="The video: an http(s) or storage:// URL.")]
    position: OverlayPosition = "top_right"
    width: OverlayWidth = 0.3
    opacity: Opacity = 1.0
    margin: EdgeMargin = 0.03
    start: Start = 0.0
    end: End = None
    from_: Annotated[
        Secs, Field(alias="from", description="Where in the video it starts playing, seconds.")
    ] = 0.0
    volume: Annotated[
        float,
        Number(0, 1),
        Field(description="Its sound in the mix: 0 (silent, the default) to 1."),
    ] = 0.0
    loop: Annotated[
        bool, FLAG, Field(description="Repeat it to fill its window (else it goes when it ends).")
    ] = False
    radius: Annotated[
        float,
        Number(0, 0.5),
        Field(description="Rounded corners: the radius as a fraction of the frame's width."),
    ] = 0.0
    x: CentreX = None
    y: CentreY = None
    fade_in: FadeIn = 0.0
    fade_out: FadeOut = 0.0
    animation: AnimationName = "none"
    animation_duration: AnimationSeconds = 0.4
    keyframes: Keyframes = ()
    easing: KeyEasing = "linear"


AnyOverlay = ImageOverlay | TextOverlay | VideoOverlay
_KINDS: dict[str, type[AnyOverlay]] = {
    "image": ImageOverlay, "text": TextOverlay, "video": VideoOverlay
}  # fmt: skip


def _overlay(value: object, info: ValidationInfo) -> AnyOverlay:
    """An overlay is an image, a text or a video overlay by which of `image`, `text` and
    `video` it has (exactly one)."""
    if isinstance(value, ImageOverlay | TextOverlay | VideoOverlay):
        return value
    if not isinstance(value, Mapping):
        raise problem(f"must be a JSON object, got {describe(value)}")
    given = [key for key in _KINDS if value.get(key) is not None]
    if len(given) != 1:
        raise problem(
            'must have one of "image" (a URL), "text" or "video" (a URL), '
            + (f"not both {given[0]} and {given[1]}" if given else "and has neither")
        )
    return _KINDS[given[0]].model_validate(value, context=info.context)


def _few_videos(overlays: tuple[AnyOverlay, ...]) -> tuple[AnyOverlay, ...]:
    """Each video overlay is decoded beside the clips: at most MAX_VIDEO_OVERLAYS of them."""
    videos = sum(isinstance(o, VideoOverlay) for o in overlays)
    if videos > MAX_VIDEO_OVERLAYS:
        raise problem(
            f"has {videos} video overlays; at most {MAX_VIDEO_OVERLAYS} are allowed in one job"
        )
    return overlays


class _OneKind:
    """Schema note: an overlay is exactly one kind. Both accept extra keys, so pydantic's
    `anyOf` would let an object with both `image` and `text` pass; `oneOf` refuses it."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["oneOf"] = schema.pop("anyOf")
        return schema


Overlay = Annotated[
    AnyOverlay,
    PlainValidator(_overlay, json_schema_input_type=AnyOverlay),
    _OneKind(),
]


# --- the payload ------------------------------------------------------------------------------


def _version(value: object) -> int:
    if is_number(value) and value == PAYLOAD_VERSION:
        return PAYLOAD_VERSION
    raise problem(
        f"must be {PAYLOAD_VERSION} (the only payload version this worker understands) "
        f"or left out, got {describe(value)}"
    )


class Payload(Model):
    """A video_jobs row's `payload` (version 1): clips played in order, optional music, the
    output's look and place, and the composition additions (captions, overlays, transitions,
    stills, audio layers, fades). Unknown keys are ignored; null counts as absent."""

    version: Annotated[
        Literal[1],
        BeforeValidator(_version),
        Field(description="The payload version: 1 (or left out)."),
    ] = 1
    clips: Annotated[
        tuple[Clip, ...],
        Field(min_length=1, description="The clips, played in order (at least one)."),
        BeforeValidator(_clip_list),
        AfterValidator(_no_transition_after_last),
    ]
    audio: Annotated[
        Audio | None, Field(description="A background track under the whole video.")
    ] = None
    output: Annotated[Output, Field(default_factory=Output, description="The result.")]
    captions: Annotated[
        Captions | None,
        Field(description="Captions: burned in whenever a transcript or caption source is given."),
    ] = None
    overlays: Annotated[
        tuple[Overlay, ...],
        Items("overlays", MAX_OVERLAYS, "in one job"),
        AfterValidator(_few_videos),
        Field(description="Images, text and videos over the whole timeline."),
    ] = ()

    def inputs(self) -> tuple[tuple[str, str], ...]:
        """Every input as (source, url), sources named as the contract names them in errors.

        `clips[N]`, `clips[N].voice_url`, `clips[N].audio[K]`, `audio`, `captions.srt_url`,
        `captions.vtt_url`, `overlays[N].image`, `overlays[N].video`: in playing order, then
        the timeline's own.
        """
        found: list[tuple[str, str]] = []
        for n, clip in enumerate(self.clips):
            found.append((f"clips[{n}]", clip.url))
            if clip.voice_url is not None:
                found.append((f"clips[{n}].voice_url", clip.voice_url))
            found.extend(
                (f"clips[{n}].audio[{k}]", layer.url) for k, layer in enumerate(clip.audio)
            )
        if self.audio is not None:
            found.append(("audio", self.audio.url))
        if self.captions is not None:
            for name in ("srt_url", "vtt_url"):
                url = getattr(self.captions, name)
                if url is not None:
                    found.append((f"captions.{name}", url))
        for n, overlay in enumerate(self.overlays):
            if isinstance(overlay, ImageOverlay):
                found.append((f"overlays[{n}].image", overlay.image))
            elif isinstance(overlay, VideoOverlay):
                found.append((f"overlays[{n}].video", overlay.video))
        return tuple(found)
