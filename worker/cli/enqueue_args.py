"""`video-worker enqueue`'s flags, and the payload they build.

One rule makes the clip flags readable: a clip flag (`--duration`, `--transition`, `--layer` …)
applies to the clip named last before it, by a leading URL or by `--clip URL`:

    video-worker enqueue shot1.mp4 --transition fade:0.5 \\
        --clip first-frame.png --duration 3 --motion zoom_in --layer rain.mp3 volume=0.4 loop

Lists of objects (audio layers, overlays) and the caption style take `KEY=VALUE` settings named
as in the payload (`volume=0.4`, `position=top_right`, `box` alone for true); values are read as
JSON when they parse (numbers, true, false, null), else as text. A key the payload does not have
is refused here: the payload's parser ignores unknown keys, so a typo would vanish silently.
Files named by flags (transcripts, caption words) are JSON, read when the payload is built.

Over 300 lines on purpose: one argparse flag per payload field, grouped as the payload is
(clip, job, composition), beside the code that turns them into a payload.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.payload.models import (
    CAPTION_STYLES,
    FITS,
    MOTIONS,
    AudioLayer,
    Captions,
    ImageOverlay,
    TextOverlay,
    VideoOverlay,
)

# Settings each KEY=VALUE flag accepts: the model's fields but the one the flag itself gives.
LAYER_KEYS = tuple(k for k in AudioLayer.model_fields if k != "url")
IMAGE_OVERLAY_KEYS = tuple(k for k in ImageOverlay.json_keys.values() if k != "image")
TEXT_OVERLAY_KEYS = tuple(k for k in TextOverlay.json_keys.values() if k != "text")
VIDEO_OVERLAY_KEYS = tuple(k for k in VideoOverlay.json_keys.values() if k != "video")
OVERLAY_KEYS = {"image": IMAGE_OVERLAY_KEYS, "text": TEXT_OVERLAY_KEYS, "video": VIDEO_OVERLAY_KEYS}
CAPTION_KEYS = tuple(k for k in Captions.model_fields if k not in {"words", "srt_url", "vtt_url"})

# Flags that build a payload, refused beside --payload (which is the whole payload).
BUILDING_DESTS = (
    "audio",
    "volume",
    "duck",
    "width",
    "height",
    "fps",
    "fit",
    "path",
    "fade_in",
    "fade_out",
    "no_thumbnail",
    "caption_settings",
    "captions_words",
    "captions_srt",
    "captions_vtt",
    "overlays",
)

USAGE = """\
clip flags apply to the clip named last before them (a leading URL or --clip URL):
  enqueue a.mp4 --transition fade:0.5 --clip still.png --duration 3 --motion zoom_in
KEY=VALUE settings use the payload's names: --layer rain.mp3 volume=0.4 loop fade_in=1
"""


@dataclass(frozen=True)
class JsonFile:
    """A file a flag names, read (as JSON) only when the payload is built."""

    flag: str
    path: str

    def read(self) -> Any:
        try:
            text = Path(self.path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"{self.flag} {self.path}: {exc.strerror or exc}") from None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{self.flag} {self.path} is not valid JSON: {exc}") from None


def _clips(namespace: argparse.Namespace) -> list[dict[str, Any]]:
    clips: list[dict[str, Any]] | None = getattr(namespace, "clip_list", None)
    if clips is None:
        clips = []
        namespace.clip_list = clips
    return clips


class ClipUrls(argparse.Action):
    """Leading URLs and `--clip URL`: each starts a clip, in the order given."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        urls = values if isinstance(values, list) else [values]
        _clips(namespace).extend({"url": url} for url in urls)


class ClipSetting(argparse.Action):
    """A clip flag: sets one field of the clip named last before it (`const` is the field)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        clip = self.current_clip(namespace, option_string)
        field = self.const
        if field in clip:
            raise argparse.ArgumentError(
                self,
                f"given twice for the clip {clip['url']} (clip flags apply to the clip "
                "named last before them)",
            )
        clip[field] = self.convert(values, option_string)

    def current_clip(self, namespace: argparse.Namespace, flag: str | None) -> dict[str, Any]:
        clips = _clips(namespace)
        if not clips:
            raise argparse.ArgumentError(
                self,
                f"applies to the clip named before it: give a clip URL (or --clip URL) "
                f"before {flag}",
            )
        return clips[-1]

    def convert(self, value: Any, flag: str | None) -> Any:
        return value


class ClipFile(ClipSetting):
    """`--transcript FILE`, `--voice-transcript FILE`: a JSON transcript for the clip."""

    def convert(self, value: Any, flag: str | None) -> Any:
        return JsonFile(str(flag), value)


class ClipTransition(ClipSetting):
    """`--transition TYPE:SECONDS` into the next clip."""

    def convert(self, value: Any, flag: str | None) -> Any:
        kind, sep, seconds = str(value).partition(":")
        try:
            duration = float(seconds) if sep else None
        except ValueError:
            duration = None
        if not kind or duration is None:
            raise argparse.ArgumentError(
                self,
                f"must be TYPE:SECONDS, like fade:0.5 (the type is one of FFmpeg's xfade "
                f"transitions), got {value!r}",
            )
        return {"type": kind, "duration": duration}


class ClipLayer(ClipSetting):
    """`--layer URL [KEY=VALUE ...]`: one more audio layer on the clip (may repeat)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        clip = self.current_clip(namespace, option_string)
        url, *settings = values
        layer = {"url": url, **key_values(self, settings, LAYER_KEYS)}
        clip.setdefault("audio", []).append(layer)


class Overlay(argparse.Action):
    """`--overlay-image URL [KEY=VALUE ...]`, `--overlay-text TEXT [KEY=VALUE ...]`,
    `--overlay-video URL [KEY=VALUE ...]`: one more overlay on the output timeline, in the order
    given (`const` is "image", "text" or "video")."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        first, *settings = values
        keys = OVERLAY_KEYS[self.const]
        overlay = {self.const: first, **key_values(self, settings, keys)}
        overlays = getattr(namespace, "overlays", None) or []
        overlays.append(overlay)
        namespace.overlays = overlays


class CaptionSettings(argparse.Action):
    """`--captions KEY=VALUE ...` and `--caption-style STYLE` (`const` "style"): the look."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        given = getattr(namespace, "caption_settings", None) or {}
        if self.const:
            given[self.const] = values
        else:
            given.update(key_values(self, values, CAPTION_KEYS))
        namespace.caption_settings = given


def key_values(
    action: argparse.Action, items: Sequence[str], keys: Sequence[str]
) -> dict[str, Any]:
    """`KEY=VALUE` (VALUE as JSON when it parses, else text) or `KEY` alone (true)."""
    found: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if key not in keys:
            raise argparse.ArgumentError(
                action,
                f"{item!r} is not a setting here; use KEY=VALUE with KEY one of "
                f"{', '.join(keys)} (a clip URL after it? give it with --clip URL)",
            )
        found[key] = _value(text) if sep else True
    return found


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def add_enqueue_arguments(enq: argparse.ArgumentParser) -> None:
    """Every flag of `enqueue`: the payload's fields, clip by clip, then the whole job's."""
    enq.usage = (
        "%(prog)s [URL ...] [--clip URL ...] [clip flags after each clip] [job flags]\n"
        "       %(prog)s --payload JSON|@FILE [--wait] [--no-check]"
    )
    enq.epilog = USAGE
    enq.formatter_class = argparse.RawDescriptionHelpFormatter
    enq.add_argument(
        "clips",
        nargs="*",
        action=ClipUrls,
        metavar="URL",
        help="clip URLs (http(s):// or storage://bucket/key), videos or images",
    )
    enq.add_argument("--payload", help="the whole payload as JSON, or @file.json")
    _clip_arguments(enq.add_argument_group("clip flags (apply to the clip named last before)"))
    _job_arguments(enq)


def _clip_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--clip", action=ClipUrls, metavar="URL", help="one more clip")
    for flag, field, kind, shown, text in [
        ("--start", "start", float, "SECONDS", "trim: where the clip starts"),
        ("--end", "end", float, "SECONDS", "trim: where the clip ends"),
        ("--duration", "duration", float, "SECONDS", "how long a still image is shown"),
        ("--zoom", "zoom", float, "FRACTION", "how far the motion goes (0..1, default 0.15)"),
        ("--clip-volume", "volume", float, "VOLUME", "the clip's own sound, 0 (muted) to 1"),
        ("--voice", "voice_url", str, "URL", "a voice-over laid on the clip"),
    ]:
        group.add_argument(
            flag, action=ClipSetting, const=field, type=kind, metavar=shown, help=text
        )
    group.add_argument(
        "--motion",
        action=ClipSetting,
        const="motion",
        choices=MOTIONS,
        help="how a still image moves",
    )
    group.add_argument(
        "--transition",
        action=ClipTransition,
        const="transition",
        metavar="TYPE:SECONDS",
        help="into the next clip, e.g. fade:0.5",
    )
    group.add_argument(
        "--transcript",
        action=ClipFile,
        const="transcript",
        metavar="FILE",
        help="JSON words timed on the clip (Whisper, OpenAI, ElevenLabs)",
    )
    group.add_argument(
        "--voice-transcript",
        action=ClipFile,
        const="voice_transcript",
        metavar="FILE",
        help="JSON words timed on the clip's voice-over",
    )
    group.add_argument(
        "--layer",
        action=ClipLayer,
        nargs="+",
        metavar=("URL", "KEY=VALUE"),
        help=f"an audio layer in the clip's window; keys: {', '.join(LAYER_KEYS)}",
    )


def _job_arguments(enq: argparse.ArgumentParser) -> None:
    enq.add_argument("--audio", help="background music URL")
    enq.add_argument("--volume", type=float, help="music volume 0..1")
    enq.add_argument("--duck", action="store_true", help="lower the music under speech")
    enq.add_argument("--width", type=int)
    enq.add_argument("--height", type=int)
    enq.add_argument("--fps", type=float)
    enq.add_argument(
        "--fit", choices=FITS, help="pad (black bands), crop, or blur (a blurred copy fills them)"
    )
    enq.add_argument("--path", help="storage key of the output")
    enq.add_argument("--fade-in", type=float, metavar="SECONDS", help="from black and silence")
    enq.add_argument("--fade-out", type=float, metavar="SECONDS", help="to black and silence")
    enq.add_argument(
        "--no-thumbnail", action="store_true", help="store no poster (output.thumbnail false)"
    )
    enq.add_argument(
        "--captions",
        action=CaptionSettings,
        nargs="+",
        metavar="KEY=VALUE",
        help=f"caption look; keys: {', '.join(CAPTION_KEYS)}",
    )
    enq.add_argument(
        "--caption-style",
        action=CaptionSettings,
        const="style",
        choices=CAPTION_STYLES,
        help="same as --captions style=STYLE",
    )
    enq.add_argument(
        "--captions-words", metavar="FILE", help="JSON words timed on the output (captions.words)"
    )
    enq.add_argument("--captions-srt", metavar="URL", help="an SRT file (captions.srt_url)")
    enq.add_argument("--captions-vtt", metavar="URL", help="a WebVTT file (captions.vtt_url)")
    enq.add_argument(
        "--overlay-image",
        action=Overlay,
        const="image",
        nargs="+",
        metavar=("URL", "KEY=VALUE"),
        help=f"a logo or watermark; keys: {', '.join(IMAGE_OVERLAY_KEYS)}",
    )
    enq.add_argument(
        "--overlay-text",
        action=Overlay,
        const="text",
        nargs="+",
        metavar=("TEXT", "KEY=VALUE"),
        help=f"a title; keys: {', '.join(TEXT_OVERLAY_KEYS)}",
    )
    enq.add_argument(
        "--overlay-video",
        action=Overlay,
        const="video",
        nargs="+",
        metavar=("URL", "KEY=VALUE"),
        help=f"picture-in-picture or B-roll; keys: {', '.join(VIDEO_OVERLAY_KEYS)}",
    )


def _output(args: argparse.Namespace) -> dict[str, Any]:
    """`output` from its flags; empty when none was given."""
    output = {
        k: getattr(args, k)
        for k in ("width", "height", "fps", "fit", "path", "fade_in", "fade_out")
        if getattr(args, k) is not None
    }
    if getattr(args, "no_thumbnail", False):
        output["thumbnail"] = False
    return output


def payload_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The payload `enqueue` inserts: --payload as given, else built from the flags."""
    clips: list[dict[str, Any]] = getattr(args, "clip_list", None) or []
    if args.payload:
        if clips or any(getattr(args, dest, None) not in (None, False) for dest in BUILDING_DESTS):
            raise ValueError(
                "--payload is the whole payload: leave out the clip URLs and the flags that "
                "build one (--clip, --audio, --width, --captions …), or put them in it"
            )
        return _loaded(args.payload)
    if not clips:
        raise ValueError("give at least one clip URL, or --payload")
    payload: dict[str, Any] = {"clips": [_resolved(clip) for clip in clips]}
    if not args.audio and (args.volume is not None or args.duck):
        raise ValueError("--volume and --duck set the music: give it with --audio URL")
    if args.audio:
        audio: dict[str, Any] = {"url": args.audio, "duck": bool(args.duck)}
        if args.volume is not None:
            audio["volume"] = args.volume
        payload["audio"] = audio
    output = _output(args)
    if output:
        payload["output"] = output
    captions = _captions(args)
    if captions:
        payload["captions"] = captions
    if getattr(args, "overlays", None):
        payload["overlays"] = args.overlays
    return payload


def _loaded(text: str) -> dict[str, Any]:
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    try:
        payload: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--payload is not valid JSON: {exc}") from None
    return payload


def _resolved(clip: dict[str, Any]) -> dict[str, Any]:
    """The clip with its files read (transcripts)."""
    return {k: v.read() if isinstance(v, JsonFile) else v for k, v in clip.items()}


def _captions(args: argparse.Namespace) -> dict[str, Any]:
    captions: dict[str, Any] = {}
    if args.captions_words:
        captions["words"] = JsonFile("--captions-words", args.captions_words).read()
    if args.captions_srt:
        captions["srt_url"] = args.captions_srt
    if args.captions_vtt:
        captions["vtt_url"] = args.captions_vtt
    captions.update(getattr(args, "caption_settings", None) or {})
    return captions
