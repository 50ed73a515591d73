"""Benchmark a composition (run by hand: `.venv/bin/python bench/bench_compose.py`).

The job: six clips at 1280x720 (four videos, two stills with motion), three transitions,
highlight captions, an ambient layer on one clip, a logo, and music ducked under the clips'
sound. Made three ways in one run, taking turns, from the same generated media:

(a) video-worker's own assembly (`worker.media.assemble.assemble` on the composition's specs,
    worker/media/specs.py), in a child process that reports its own peak RSS and its FFmpeg
    children's separately. Target: peak RSS <= 150 MB.
(b) moviepy 2 doing the same composition at the same x264 preset and CRF.
    Target: worker >= 5x faster.
(c) one hand-written `ffmpeg -filter_complex` command that makes the same video in one process
    (the encoder's own limit). Target: worker <= 1.25x its time. It draws the captions the
    worker's way: the ASS document is the one the worker's caption child writes for this job
    (`render_captions`, untimed, before the rounds), read by libass through the worker's own
    fonts.conf (`installed().write_config`, passed by FONTCONFIG_FILE: `ffmpeg_env`), whose
    fontconfig cache is warmed once, as a machine that runs FFmpeg by hand has its cache built.
(d) the encoder alone: (c)'s video, decoded beforehand to raw frames and PCM (not timed), encoded
    again at the same settings. No composition can take less, so moviepy / (d) is the most any
    FFmpeg-based worker can be faster than moviepy on this machine, and it is printed too.

With `--fit blur`, the same job is made at 1080x1920 (9:16) with the blurred fill:
each 16:9 picture fitted whole over a blurred, darkened copy of itself, the same blur in (a),
(b) and (c).

With `--layers`, the layered job: the same composition at 1080x1920 with the blurred fill, and
over it a picture-in-picture video (looped, rounded corners, faded in and out, its sound in the
mix), an animated title (sliding down, and back up at its end) and a logo moving through
keyframes (eased in and out, scaled) instead of the still logo. (c) draws the title from the ASS
the worker writes for it (`text_document`), as it draws the captions; the logo's keyframes and
the PiP are written out by hand.

With `--scripts`, the caption words are in three scripts, a caption line of each in
turn: English, Japanese (tokens joined without spaces) and Arabic (right to left), the same
words in (a), (b) and (c). libass draws them with the worker's fonts, a character the caption
family (Noto Sans) lacks from the first fallback family that has it (fonts.py). moviepy draws
text with PIL, so (b) draws each line with the Bold face of the family that has its glyphs
(Noto Sans, Noto Sans CJK JP, Noto Sans Arabic: the files among the worker's font folders,
read with `worker.media.picture.fonts.read_faces`), placing the words right to left on an Arabic
line. PIL shapes Arabic (joined letter forms) only with libraqm (`PIL.features.check("raqm")`);
without it, (b) still draws the Arabic words, letters unjoined and left to right: moviepy's
result is a baseline for time, not for looks.

(a) needs the composition in `assemble`; (c) reads the captions the worker's child
writes from the same specs, so the bench needs a worker with fonts.py. It generates
its own media in a temporary folder; nothing is kept. The load average is printed before and
after the rounds: other work on the machine slows every way, so compare ratios within a run.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any, get_args

from worker.media.ffmpeg import ffmpeg_exe
from worker.media.picture.caption_layout import joined_without_space
from worker.media.picture.captions import CaptionStyle, Word, group_lines
from worker.media.picture.filters import X264_CRF, X264_PRESET
from worker.media.picture.fonts import CONFIG_NAME, ffmpeg_env, installed, read_faces
from worker.media.picture.scripts import within
from worker.media.sound.duck import Envelope, ramp_seconds

WIDTH, HEIGHT, FPS = 1280, 720, 30
FIT = "pad"  # or "blur", at BLUR_SIZE (`--fit blur`)
BLUR_SIZE = (1080, 1920)
# The blurred fill as the worker makes it (worker/media/picture/filters.py `blur_fill`) at
# 1080x1920: the fitted picture's centre at 9:16 made 136x240, box-blurred twice (radius 14,
# chroma 7), R, G and B times 0.55, scaled back up.
BLUR_SMALL, BLUR_RADIUS, BLUR_DARKEN = (136, 240), 14, 0.55
HIGHLIGHT = CaptionStyle(style="highlight")  # in the worker's caption font, Noto Sans
SCRIPTS = False  # `--scripts`: caption lines in English, Japanese and Arabic in turn
ENGLISH = "the quick brown fox jumps over the lazy dog again and again".split()
JAPANESE = ["素早い", "茶色の", "狐が", "怠けた", "犬を", "飛び越える", "何度も", "繰り返し"]
ARABIC = "الثعلب البني السريع يقفز فوق الكلب الكسول مرة بعد مرة".split()
MUSIC_VOLUME = 0.3
AMBIENT_VOLUME = 0.5
LOGO_WIDTH, LOGO_OPACITY, LOGO_MARGIN = 0.15, 0.8, 0.03
LAYERS = False  # `--layers`: the layered job's overlays (implies `--fit blur`)
# The picture-in-picture: a 4 s clip looped between PIP_START and PIP_END, its centre at
# (PIP_X, PIP_Y), PIP_WIDTH of the frame wide, corners rounded by PIP_RADIUS of the width.
PIP = ("pip.mp4", "testsrc2=s=640x360:r=30", "sine=f=880", 4.0)
PIP_X, PIP_Y, PIP_WIDTH, PIP_RADIUS, PIP_FADE, PIP_VOLUME = 0.7, 0.62, 0.5, 0.03, 0.3, 0.3
PIP_START, PIP_END = 2.0, 16.0
TITLE, TITLE_END, TITLE_SIZE, TITLE_ANIMATION = "Chapter 1", 4.0, 0.05, 0.5  # slides down
# The logo's keyframes: (t, x, y, scale), eased in and out between them.
LOGO_KEYS = ((0.0, 0.82, 0.1, 1.0), (9.0, 0.18, 0.1, 0.6), (18.0, 0.82, 0.1, 1.0))
ZOOM = 0.15


@dataclass(frozen=True)
class Clip:
    """One clip of the composition: a video (with or without sound) or a still with motion."""

    name: str
    seconds: float
    still: bool = False
    motion: str = "none"
    sound: bool = False
    ambient: bool = False
    transition: tuple[str, float] | None = None  # into the next clip


CLIPS = (
    Clip("v0.mp4", 4, sound=True, transition=("fade", 0.5)),
    Clip("still1.png", 3, still=True, motion="zoom_in"),
    Clip("v2.mp4", 4, sound=True, ambient=True, transition=("wipeleft", 0.5)),
    Clip("still3.png", 3, still=True, motion="pan_left"),
    Clip("v4.mp4", 4, transition=("slideleft", 0.5)),
    Clip("v5.mp4", 4, sound=True),
)
SOURCES = {
    "v0.mp4": ("testsrc2=s=1280x720:r=30", "sine=f=440"),
    "v2.mp4": ("smptehdbars=s=1280x720:r=30", "sine=f=550"),
    "v4.mp4": ("mandelbrot=s=1280x720:r=30", None),
    "v5.mp4": ("testsrc=s=1280x720:r=30", "sine=f=660"),
}


def starts() -> list[float]:
    """Each clip's start on the output timeline: transitions overlap their two clips."""
    at, found = 0.0, []
    for clip in CLIPS:
        found.append(at)
        at += clip.seconds - (clip.transition[1] if clip.transition else 0.0)
    return found


def total() -> float:
    return starts()[-1] + CLIPS[-1].seconds


def words() -> list[Word]:
    """A word every 0.4 s over the whole output, as a transcript on the output timeline."""
    count = int(total() / 0.4) - 1
    return [Word(token(n), n * 0.4 + 0.1, n * 0.4 + 0.45) for n in range(count)]


def token(n: int) -> str:
    """Word `n`: English, or with `--scripts` each caption line (`max_words` words, which
    `group_lines` keeps together: the words come evenly, no sentence ends) in English, Japanese
    and Arabic in turn, each script's words in their order."""
    if not SCRIPTS:
        return ENGLISH[n % len(ENGLISH)]
    per_line = HIGHLIGHT.max_words
    line, at = divmod(n, per_line)
    text = (ENGLISH, JAPANESE, ARABIC)[line % 3]
    return text[((line // 3) * per_line + at) % len(text)]


# --- media ----------------------------------------------------------------------------------------


def ffmpeg(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
                   check=True, env=env)  # fmt: skip


def fonts_env(root: Path) -> dict[str, str]:
    """FFmpeg's environment for the one command: libass reading the worker's fonts.conf."""
    return ffmpeg_env(root / CONFIG_NAME)


def make_media(root: Path) -> None:
    for name, (video, audio) in SOURCES.items():
        seconds = next(c.seconds for c in CLIPS if c.name == name)
        args = ["-f", "lavfi", "-t", str(seconds), "-i", video]
        if audio:
            args += ["-f", "lavfi", "-i", f"{audio}:r=48000:d={seconds}", "-c:a", "aac"]
        ffmpeg(*args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
               str(root / name))  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", "mandelbrot=s=1920x1080", "-frames:v", "1",
           str(root / "still1.png"))  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=1920x1080", "-frames:v", "1",
           str(root / "still3.png"))  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", "color=c=orange@0.9:s=320x160,format=rgba,"
           "drawbox=x=20:y=20:w=280:h=120:color=white@1:t=8", "-frames:v", "1",
           str(root / "logo.png"))  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", "anoisesrc=c=brown:a=0.3:r=48000:d=10", "-c:a", "aac",
           str(root / "ambient.m4a"))  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", "sine=f=220:r=48000:d=30", "-c:a", "aac", str(root / "music.m4a"))
    name, video, audio, seconds = PIP
    ffmpeg("-f", "lavfi", "-t", str(seconds), "-i", video, "-f", "lavfi", "-i",
           f"{audio}:r=48000:d={seconds}", "-c:a", "aac", "-c:v", "libx264", "-preset",
           "ultrafast", "-pix_fmt", "yuv420p", str(root / name))  # fmt: skip
    write_captions(root)
    if LAYERS:
        write_title(root)


def write_title(root: Path) -> None:
    """`root/title.ass`: the title as the worker writes it (overlays.py `text_document`)."""
    from worker.media.picture.overlays import text_document
    from worker.media.plan import Geometry

    title = worker_specs(root)["overlays"][1]
    geometry = Geometry(WIDTH, HEIGHT, Fraction(FPS))
    (root / "title.ass").write_text(text_document(title, geometry, total()), encoding="utf-8")


def write_captions(root: Path) -> None:
    """`root/captions.ass` as the worker writes it for this job (its caption child, from the
    specs and plan `assemble` makes: `render_captions`) and the worker's fonts.conf, with its
    fontconfig cache built once (a single frame drawn), for the one command."""
    from worker.media.confine import ChildLimits
    from worker.media.picture.caption_render import render_captions
    from worker.media.plan import make_plan

    specs = worker_specs(root)
    plan = make_plan(specs["clips"], specs["audio"], specs["output"],
                     captions=specs["captions"], overlays=specs["overlays"])  # fmt: skip
    made = asyncio.run(render_captions(
        specs["captions"], specs["clips"], plan, root, ChildLimits(),
        specs["output"].max_duration, installed(),
    ))  # fmt: skip
    assert made.ass == "captions.ass", made
    installed().write_config(root)
    ffmpeg("-f", "lavfi", "-i", f"color=s={WIDTH}x{HEIGHT}:d=0.1",
           "-vf", f"ass=filename={root / 'captions.ass'}", "-f", "null", "-",
           env=fonts_env(root))  # fmt: skip


# --- (c) one hand-written command -----------------------------------------------------------------

AFMT = "aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo"


def single_command(root: Path, out: Path) -> list[str]:
    """The whole composition as one FFmpeg run, written out by hand."""
    inputs: list[str] = []
    graph: list[str] = []
    for i, clip in enumerate(CLIPS):
        frames = round(clip.seconds * FPS)
        samples = round(frames * 48000 / FPS)
        if clip.still:
            inputs += ["-f", "png_pipe", "-i", str(root / clip.name)]
            graph.append(f"[{i}:v]{still_chain(clip, frames, i)}[v{i}]")
        else:
            inputs += ["-i", str(root / clip.name)]
            graph.append(f"[{i}:v]{fit_chain(i)},trim=end_frame={frames},setpts=N/{FPS}/TB[v{i}]")
        sound = f"[{i}:a:0]aresample=48000,{AFMT}" if clip.sound else "anullsrc=r=48000:cl=stereo"
        graph.append(f"{sound},apad,atrim=end_sample={samples},asetpts=N/SR/TB[a{i}]")
    n = len(CLIPS)
    ambient_at = next(i for i, c in enumerate(CLIPS) if c.ambient)
    seconds = CLIPS[ambient_at].seconds
    inputs += ["-stream_loop", "-1", "-i", str(root / "ambient.m4a")]
    graph.append(
        f"[{n}:a]aresample=48000,{AFMT},atrim=0:{seconds},volume={AMBIENT_VOLUME},"
        f"afade=t=in:d=0.5,afade=t=out:st={seconds - 0.5}:d=0.5[amb]"
    )
    graph.append(f"[a{ambient_at}][amb]amix=inputs=2:duration=first:normalize=0[a{ambient_at}m]")
    join_video(graph)
    join_sound(graph, ambient_at)
    inputs += ["-i", str(root / "logo.png"), "-stream_loop", "-1", "-i", str(root / "music.m4a")]
    logo_w, margin = round(WIDTH * LOGO_WIDTH), round(WIDTH * LOGO_MARGIN)
    graph.append(f"[joined]ass=filename={root / 'captions.ass'}[captioned]")  # FONTCONFIG_FILE
    if LAYERS:
        inputs += ["-stream_loop", "-1", "-t", f"{PIP_END - PIP_START:.3f}",
                   "-i", str(root / PIP[0])]  # fmt: skip
        graph += layers_graph(root, n + 1, n + 3)
    else:
        graph += [
            f"[{n + 1}:v]scale={logo_w}:-2,format=rgba,colorchannelmixer=aa={LOGO_OPACITY}[logo]",
            f"[captioned][logo]overlay=W-w-{margin}:{margin}:format=yuv420,format=yuv420p[v]",
        ]
    graph += music_graph(n + 2, root)
    return [
        *inputs, "-filter_complex", ";".join(graph), "-map", "[v]", "-map", "[a]",
        *encoder_args(), "-t", f"{total():.3f}", "-movflags", "+faststart", str(out),
    ]  # fmt: skip


def layers_graph(root: Path, logo: int, pip: int) -> list[str]:
    """`--layers`, by hand: the PiP (fitted, corners masked, faded, on its window), the title
    (libass, the worker's ASS), the logo on its eased keyframes (scaled per frame); the PiP's
    sound mixed into the clips' (`[speech]`, renamed from the join's `[speech0]`)."""
    frames = round((PIP_END - PIP_START) * FPS)
    w = round(WIDTH * PIP_WIDTH / 2) * 2
    h = round(w * 9 / 16 / 2) * 2
    r = round(WIDTH * PIP_RADIUS)
    corner = (f"255*clip({r}-hypot(max(0,max({r}-X-0.5,X+0.5-{w - r})),"
              f"max(0,max({r}-Y-0.5,Y+0.5-{h - r})))+0.5,0,1)")  # fmt: skip
    fade_out = PIP_END - PIP_START - PIP_FADE
    lw = round(WIDTH * LOGO_WIDTH / 2) * 2
    x, y, scale = (eased(LOGO_KEYS, k) for k in (1, 2, 3))
    delay = round(PIP_START * 48000)
    return [
        f"[{pip}:v]fps={FPS},scale={w}:{h},format=yuva420p,trim=end_frame={frames}[pipv]",
        f"color=c=white:s={w}x{h},trim=end_frame=1,format=gray,geq=lum='{corner}',"
        f"loop=loop={frames - 1}:size=1[mask]",
        f"[pipv][mask]alphamerge,fade=t=in:d={PIP_FADE}:alpha=1,"
        f"fade=t=out:st={fade_out}:d={PIP_FADE}:alpha=1,setpts=PTS-STARTPTS+{PIP_START}/TB[pip]",
        f"[captioned][pip]overlay=x={WIDTH * PIP_X:.1f}-w/2:y={HEIGHT * PIP_Y:.1f}-h/2"
        f":eof_action=pass:format=yuv420[pipped]",
        f"[pipped]ass=filename={root / 'title.ass'}[titled]",
        f"[{logo}:v]scale={lw * 2}:-2,format=rgba,colorchannelmixer=aa={LOGO_OPACITY},"
        f"format=yuva420p,loop=loop={round(total() * FPS) - 1}:size=1,settb=1/{FPS},setpts=N,"
        f"scale=w='2*trunc({lw}*{scale}/2)':h=-2:eval=frame[logo]",
        f"[titled][logo]overlay=x='W*{x}-w/2':y='H*{y}-h/2':format=yuv420,format=yuv420p[v]",
        f"[{pip}:a]aresample=48000,{AFMT},volume={PIP_VOLUME},"
        f"atrim=end_sample={frames * 1600},adelay={delay}S:all=1[pipa]",
        "[speech0][pipa]amix=inputs=2:duration=first:normalize=0[speech]",
    ]


def eased(keys: tuple[tuple[float, ...], ...], k: int) -> str:
    """Value k of `keys` in `t`, eased in and out (smoothstep) between keyframes."""
    expr = f"{keys[-1][k]}"
    for a, b in reversed(list(pairwise(keys))):
        p = f"clip((t-{a[0]})/{b[0] - a[0]},0,1)"
        expr = f"if(lt(t,{b[0]}),{a[k]}+({b[k] - a[k]})*{p}*{p}*(3-2*{p}),{expr})"
    return expr


def encoder_args() -> list[str]:
    """The output settings every FFmpeg run here shares with the worker (filters.py)."""
    return [
        "-c:v", "libx264", "-preset", X264_PRESET, "-crf", str(X264_CRF), "-profile:v", "high",
        "-pix_fmt", "yuv420p", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "192k", "-ar", "48000", "-ac", "2",
    ]  # fmt: skip


def raw_copies(video: Path, root: Path) -> tuple[Path, Path]:
    """`video` decoded to raw YUV frames and PCM sound, for (d) to encode without decoding."""
    frames, sound = root / "frames.yuv", root / "sound.wav"
    ffmpeg("-i", str(video), "-map", "0:v", "-f", "rawvideo", "-pix_fmt", "yuv420p", str(frames),
           "-map", "0:a", "-c:a", "pcm_f32le", str(sound))  # fmt: skip
    return frames, sound


def encoder_alone(frames: Path, sound: Path, out: Path) -> list[str]:
    """(d): only the encoder's work, on the finished picture and sound."""
    return [
        "-f", "rawvideo", "-pix_fmt", "yuv420p", "-video_size", f"{WIDTH}x{HEIGHT}",
        "-framerate", str(FPS), "-i", str(frames), "-i", str(sound),
        *encoder_args(), "-movflags", "+faststart", str(out),
    ]  # fmt: skip


def fit_chain(index: int) -> str:
    fill = blur_chain(index) if FIT == "blur" else (
        f"pad={WIDTH}:{HEIGHT}:(ow-iw)/2:(oh-ih)/2:color=black")  # fmt: skip
    return (
        f"scale={WIDTH}:{HEIGHT}:force_original_aspect_ratio=decrease:force_divisible_by=2,"
        f"{fill},setsar=1,fps={FPS},format=yuv420p"
    )


def blur_chain(index: int, w: int | None = None, h: int | None = None) -> str:
    """The fitted picture split: its centre at the `w` x `h` shape (default: the output's, read
    when called: `--fit blur` sets it after import), small, blurred, darkened and scaled up,
    and the picture laid over it in the middle."""
    w, h = w or WIDTH, h or HEIGHT
    d = BLUR_DARKEN
    picture, fill, back = f"[bp{index}]", f"[bf{index}]", f"[bb{index}]"
    return (
        f"split{picture}{fill};{fill}crop='min(iw,ih*{w}/{h})':'min(ih,iw*{h}/{w})',"
        f"scale={BLUR_SMALL[0]}:{BLUR_SMALL[1]},"
        f"boxblur={BLUR_RADIUS}:2:{BLUR_RADIUS // 2}:2,"
        f"lutyuv=y=16+(val-16)*{d}:u=128+(val-128)*{d}:v=128+(val-128)*{d},"
        f"scale={w}:{h}{back};{back}{picture}overlay=(W-w)/2:(H-h)/2"
    )


def still_chain(clip: Clip, frames: int, index: int) -> str:
    """The picture fitted once (Lanczos) to a canvas 1 + ZOOM times the frame (over the blurred
    fill with `--fit blur`) and repeated (`loop`), then moved by `perspective`, which samples a
    window of the canvas at fractional pixel positions (smooth, where zoompan steps by whole
    pixels) into the frame-sized top left of its output, cropped to the frame: the view is never
    enlarged from pixels shrunk to the frame. (`perspective` counts its frames, `in`, from 1.)"""
    p = f"((in-1)/{max(frames - 1, 1)})"
    if clip.motion == "zoom_in":
        scale, across = f"(1+{ZOOM}*{p})", "0.5"
    else:  # pan_left: the window travels ZOOM of the frame, right to left
        scale, across = f"(1+{ZOOM})", f"(1-{p})"
    cw, ch = 2 * round(WIDTH * (1 + ZOOM) / 2), 2 * round(HEIGHT * (1 + ZOOM) / 2)
    left, top = f"(W-W/{scale})*{across}", f"(H-H/{scale})*0.5"
    right, bottom = f"{left}+({cw}/{WIDTH})*W/{scale}", f"{top}+({ch}/{HEIGHT})*H/{scale}"
    corners = [("x0", left), ("y0", top), ("x1", right), ("y1", top),
               ("x2", left), ("y2", bottom), ("x3", right), ("y3", bottom)]  # fmt: skip
    options = ":".join(f"{name}='{expr}'" for name, expr in corners)
    fill = blur_chain(index, cw, ch) if FIT == "blur" else (
        f"pad={cw}:{ch}:(ow-iw)/2:(oh-ih)/2:color=black")  # fmt: skip
    canvas = (
        f"scale={cw}:{ch}:force_original_aspect_ratio=decrease:force_divisible_by=2:"
        f"flags=lanczos,{fill},format=yuv420p"
    )
    return (
        f"{canvas},loop=loop={frames - 1}:size=1:start=0,settb=1/{FPS},setpts=N,"
        f"perspective={options}:interpolation=linear:sense=source:eval=frame,"
        f"crop={WIDTH}:{HEIGHT}:0:0,setsar=1,fps={FPS},format=yuv420p,trim=end_frame={frames},"
        f"setpts=N/{FPS}/TB"
    )


def join_video(graph: list[str]) -> None:
    """The pictures in one concat; only a transition's overlap frames go through xfade (which
    works at 4:4:4: fed whole clips, it would convert every frame up and back down)."""
    segments = []
    for i, clip in enumerate(CLIPS):
        frames = round(clip.seconds * FPS)
        before = CLIPS[i - 1].transition if i else None
        head = round(before[1] * FPS) if before else 0
        tail = round(clip.transition[1] * FPS) if clip.transition else 0
        spans = {"h": (0, head), "b": (head, frames - tail), "t": (frames - tail, frames)}
        used = {name: span for name, span in spans.items() if span[1] > span[0]}
        graph.append(f"[v{i}]split={len(used)}" + "".join(f"[v{i}{n}]" for n in used))
        for name, (first, stop) in used.items():
            graph.append(f"[v{i}{name}]trim=start_frame={first}:end_frame={stop},"
                         f"setpts=PTS-STARTPTS[s{i}{name}]")  # fmt: skip
        if before:
            graph.append(f"[s{i - 1}t][s{i}h]xfade=transition={before[0]}:duration={before[1]}:"
                         f"offset=0,format=yuv420p[x{i}]")  # fmt: skip
            segments.append(f"[x{i}]")
        if "b" in used:
            segments.append(f"[s{i}b]")
    graph.append("".join(segments) + f"concat=n={len(segments)}:v=1:a=0[joined]")


def join_sound(graph: list[str], ambient_at: int) -> None:
    """The sound: clips joined by a transition crossfade (acrossfade), the rest concatenated."""
    pieces, i = [], 0
    label = {i: f"[a{i}m]" if i == ambient_at else f"[a{i}]" for i in range(len(CLIPS))}
    while i < len(CLIPS):
        sound = label[i]
        while CLIPS[i].transition is not None:
            seconds = CLIPS[i].transition[1]  # type: ignore[index]
            graph.append(f"{sound}{label[i + 1]}acrossfade=d={seconds}:c1=tri:c2=tri[c{i}]")
            sound = f"[c{i}]"
            i += 1
        pieces.append(sound)
        i += 1
    label = "[speech0]" if LAYERS else "[speech]"  # the PiP's sound joins it (layers_graph)
    graph.append("".join(pieces) + f"concat=n={len(pieces)}:v=0:a=1{label}")


def music_graph(index: int, root: Path) -> list[str]:
    """Music at its volume, ducked 12 dB while a clip has sound (the worker's envelope: ramps
    driven by `asendcmd`, here from the clips' windows written out), mixed, limited (fixed gain:
    one command cannot measure the loudness first, as the worker's soundtrack pass does)."""
    samples = round(total() * 48000)
    speaking = [(at, at + c.seconds) for c, at in zip(CLIPS, starts(), strict=True) if c.sound]
    commands = root / "duck.cmd"
    commands.write_text(Envelope(12.0, ramp_seconds(12.0), tuple(speaking)).commands())
    return [
        f"[{index}:a]aresample=48000,{AFMT},volume={MUSIC_VOLUME},atrim=end_sample={samples},"
        f"asetnsamples=n=480,asendcmd=f={commands},volume@duck=volume=1:eval=frame[bed]",
        "[speech][bed]amix=inputs=2:duration=first:normalize=0,"
        f"alimiter=limit=0.7943:level=false:attack=5:release=50,{AFMT}[a]",
    ]


# --- (b) moviepy ----------------------------------------------------------------------------------


def with_moviepy(root: Path, out: Path, fonts: dict[str, Any]) -> None:
    """The same composition in moviepy 2: clips placed on the timeline with crossfades and
    slides, stills zoomed or panned per frame, highlight captions as per-word-state images
    (drawn with `fonts`, the worker's: `pil_fonts`), a logo, and a music bed lowered while a
    clip has sound."""
    import numpy as np
    from moviepy import (
        AudioFileClip,
        ColorClip,
        CompositeAudioClip,
        CompositeVideoClip,
        ImageClip,
        VideoFileClip,
        afx,
        vfx,
    )

    placed, sounds, opened = [], [], []
    for clip, at in zip(CLIPS, starts(), strict=True):
        if clip.still:
            part = moviepy_still(ImageClip(str(root / clip.name)), clip)
        else:
            part = VideoFileClip(str(root / clip.name)).subclipped(0, clip.seconds)
            opened.append(part)
            if clip.sound and part.audio is not None:
                sounds.append(part.audio.with_start(at))
            part = part.without_audio()
            if FIT == "blur":
                part = part.image_transform(moviepy_blur_fill).with_duration(clip.seconds)
        before = CLIPS.index(clip) - 1
        if before >= 0 and CLIPS[before].transition is not None:
            kind, seconds = CLIPS[before].transition  # type: ignore[misc]
            effect = vfx.SlideIn(seconds, "right") if kind.startswith(("slide", "wipe")) else (
                vfx.CrossFadeIn(seconds))  # fmt: skip
            part = part.with_effects([effect])
        placed.append(part.with_start(at))
        if clip.ambient:
            ambient = AudioFileClip(str(root / "ambient.m4a"))
            opened.append(ambient)
            sounds.append(
                ambient.with_effects([afx.AudioLoop(duration=clip.seconds),
                                      afx.MultiplyVolume(AMBIENT_VOLUME),
                                      afx.AudioFadeIn(0.5), afx.AudioFadeOut(0.5)])
                .with_start(at)
            )  # fmt: skip
    length = total()
    background = ColorClip((WIDTH, HEIGHT), (0, 0, 0), duration=length)
    captions = moviepy_captions(ImageClip, fonts)
    logo = ImageClip(str(root / "logo.png"))
    layers, heard = (moviepy_layers(root, fonts, opened) if LAYERS
                     else ([moviepy_logo(logo, length)], []))  # fmt: skip
    sounds += heard
    video = CompositeVideoClip([background, *placed, *captions, *layers], size=(WIDTH, HEIGHT))
    speaking = [(at, at + c.seconds) for c, at in zip(CLIPS, starts(), strict=True) if c.sound]

    def duck(get_frame: Any, t: Any) -> Any:
        level = np.ones_like(np.asarray(t, dtype=float))
        for begin, end in speaking:
            level = np.where((t >= begin) & (t < end), 0.1, level)
        frame = get_frame(t)
        return frame * (level[:, None] if frame.ndim == 2 else level)

    music = AudioFileClip(str(root / "music.m4a"))
    opened.append(music)
    bed = music.subclipped(0, length).with_effects([afx.MultiplyVolume(MUSIC_VOLUME)])
    bed = bed.transform(duck, keep_duration=True)
    mix = CompositeAudioClip([*sounds, bed]).with_duration(length)
    video = video.with_audio(mix.with_effects([afx.AudioNormalize()]))
    video.write_videofile(
        str(out), fps=FPS, codec="libx264", audio_codec="aac", preset=X264_PRESET,
        ffmpeg_params=["-crf", str(X264_CRF), "-pix_fmt", "yuv420p"], threads=2, logger=None,
    )  # fmt: skip
    for item in opened:
        item.close()


def moviepy_logo(image: Any, length: float) -> Any:
    """The still logo: its share of the width, its opacity, top right."""
    logo = image.resized(width=round(WIDTH * LOGO_WIDTH))
    margin = round(WIDTH * LOGO_MARGIN)
    return (logo.with_opacity(LOGO_OPACITY).with_duration(length)
            .with_position((WIDTH - logo.w - margin, margin)))  # fmt: skip


def moviepy_layers(root: Path, fonts: dict[str, Any],
                   opened: list[Any]) -> tuple[list[Any], list[Any]]:  # fmt: skip
    """`--layers` in moviepy: the PiP (looped, resized, a rounded mask, crossfaded, its sound),
    the title (drawn with PIL as the captions are, on a dark box, sliding down while it fades
    in, and back), and the logo moved and resized per frame through its eased keyframes."""
    import numpy as np
    from moviepy import AudioFileClip, ImageClip, VideoFileClip, afx, vfx
    from PIL import Image, ImageDraw

    window = PIP_END - PIP_START
    pip = VideoFileClip(str(root / PIP[0])).without_audio()
    opened.append(pip)
    w = round(WIDTH * PIP_WIDTH / 2) * 2
    pip = pip.with_effects([vfx.Loop(duration=window)]).resized(width=w)
    mask = Image.new("L", (pip.w, pip.h), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, pip.w - 1, pip.h - 1),
                                           radius=round(WIDTH * PIP_RADIUS), fill=255)  # fmt: skip
    pip = (pip.with_mask(ImageClip(np.array(mask) / 255.0, is_mask=True).with_duration(window))
           .with_effects([vfx.CrossFadeIn(PIP_FADE), vfx.CrossFadeOut(PIP_FADE)])
           .with_start(PIP_START)
           .with_position((WIDTH * PIP_X - pip.w / 2, HEIGHT * PIP_Y - pip.h / 2)))  # fmt: skip
    sound = AudioFileClip(str(root / PIP[0]))
    opened.append(sound)
    heard = sound.with_effects([afx.AudioLoop(duration=window),
                                afx.MultiplyVolume(PIP_VOLUME)]).with_start(PIP_START)  # fmt: skip
    font = fonts[family_for([TITLE])]
    box = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), TITLE, font=font)
    pad = font.size // 4
    card = Image.new("RGBA", (box[2] + 2 * pad, box[3] + 2 * pad), (0, 0, 0, 115))
    ImageDraw.Draw(card).text((pad, pad), TITLE, font=font, fill="white")
    top = round(0.05 * min(WIDTH, HEIGHT))
    slide = 0.1 * HEIGHT

    def title_at(t: float) -> tuple[float, float]:
        p = min(1.0, t / TITLE_ANIMATION, (TITLE_END - t) / TITLE_ANIMATION)
        k = max(0.0, p) * (2 - max(0.0, p))
        # held inside the frame: moviepy 2.2's mask compositing fails on a clip partly above it
        # (a broadcast of an empty slice), so its title slides from y = 0, not from above
        return (WIDTH - card.width) / 2, max(0.0, top - (1 - k) * slide)

    title = (ImageClip(np.array(card), transparent=True).with_duration(TITLE_END)
             .with_effects([vfx.CrossFadeIn(TITLE_ANIMATION), vfx.CrossFadeOut(TITLE_ANIMATION)])
             .with_position(title_at))  # fmt: skip
    lw = round(WIDTH * LOGO_WIDTH)
    logo = ImageClip(str(root / "logo.png")).resized(width=lw * 2)

    def keyed(t: float, k: int) -> float:
        for a, b in pairwise(LOGO_KEYS):
            if t < b[0]:
                p = min(max((t - a[0]) / (b[0] - a[0]), 0.0), 1.0)
                return a[k] + (b[k] - a[k]) * p * p * (3 - 2 * p)
        return LOGO_KEYS[-1][k]

    def logo_at(t: float) -> tuple[float, float]:
        scale = keyed(t, 3)
        size = (lw * scale, lw * scale * logo.h / logo.w)
        return (
            max(0.0, WIDTH * keyed(t, 1) - size[0] / 2),
            max(0.0, HEIGHT * keyed(t, 2) - size[1] / 2),
        )  # inside the frame, as above

    logo = (logo.resized(lambda t: keyed(t, 3) / 2).with_opacity(LOGO_OPACITY)
            .with_duration(total()).with_position(logo_at))  # fmt: skip
    return [pip, title, logo], [heard]


def moviepy_still(image: Any, clip: Clip) -> Any:
    """Zoom or pan a still by cutting and scaling each frame from the full-size image, as
    moviepy's own `resized` and `cropped` do per frame."""
    from PIL import Image

    first = image.get_frame(0)
    source = Image.fromarray(moviepy_blur_fill(first) if FIT == "blur" else first)

    def moved(_get_frame: Any, t: float) -> Any:
        import numpy as np

        progress = min(t / clip.seconds, 1.0)
        if clip.motion == "zoom_in":
            scale = 1 + ZOOM * progress
            w, h = source.width / scale, source.height / scale
            left, top = (source.width - w) / 2, (source.height - h) / 2
        else:  # pan_left: the view travels ZOOM of the frame, right to left
            w, h = source.width / (1 + ZOOM), source.height / (1 + ZOOM)
            left, top = (source.width - w) * (1 - progress), (source.height - h) / 2
        box = (left, top, left + w, top + h)
        return np.asarray(source.resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC, box=box))

    return image.with_duration(clip.seconds).transform(moved).with_duration(clip.seconds)


def moviepy_blur_fill(frame: Any) -> Any:
    """One frame fitted whole over a blurred, darkened copy of itself, with PIL, as a moviepy
    user would write it (moviepy has no blur of its own): the same sizes and blur as (a)."""
    import numpy as np
    from PIL import Image, ImageFilter

    picture = Image.fromarray(frame)
    scale = min(WIDTH / picture.width, HEIGHT / picture.height)
    fw, fh = (2 * round(side * scale / 2) for side in picture.size)
    picture = picture.resize((fw, fh), Image.Resampling.BICUBIC)
    cw, ch = min(fw, fh * WIDTH / HEIGHT), min(fh, fw * HEIGHT / WIDTH)
    box = ((fw - cw) / 2, (fh - ch) / 2, (fw + cw) / 2, (fh + ch) / 2)
    small = picture.resize(BLUR_SMALL, Image.Resampling.BILINEAR, box=box)
    for _ in range(2):
        small = small.filter(ImageFilter.BoxBlur(BLUR_RADIUS))
    small = small.point(lambda v: round(v * BLUR_DARKEN))
    filled = small.resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC)
    filled.paste(picture, ((WIDTH - fw) // 4 * 2, (HEIGHT - fh) // 4 * 2))
    return np.asarray(filled)


def moviepy_captions(image_clip: Any, fonts: dict[str, Any]) -> list[Any]:
    """One RGBA image per word state (the line in white, the spoken word in yellow, outlined
    as the worker's), drawn with PIL, as moviepy's own TextClip draws text: each line in the
    Bold face of the first of the worker's caption family and its fallbacks that has the
    line's glyphs, the words spaced (or not) as the worker joins them, right to left on a
    right-to-left line."""
    import numpy as np
    from PIL import Image, ImageDraw

    size = HIGHLIGHT.font_size(WIDTH, HEIGHT)
    outline = max(1, round(size * 0.08))
    top = HEIGHT - HIGHLIGHT.margin_pixels(WIDTH, HEIGHT) - 2 * size
    shown = []
    for line in group_lines(words(), HIGHLIGHT.max_words):
        texts = [w.text for w in line.words]
        font, rtl = fonts[family_for(texts)], right_to_left(texts)
        for n, word in enumerate(line.words):
            end = line.words[n + 1].start if n + 1 < len(line.words) else line.end
            picture = Image.new("RGBA", (WIDTH, size * 2), (0, 0, 0, 0))
            draw = ImageDraw.Draw(picture)
            for k, (text, x) in enumerate(zip(texts, word_xs(draw, texts, font, rtl),
                                              strict=True)):  # fmt: skip
                colour = HIGHLIGHT.highlight_color if k == n else HIGHLIGHT.color
                draw.text((x, size // 2), text, font=font, fill=colour, stroke_width=outline,
                          stroke_fill="black", **direction(rtl))  # fmt: skip
            start = line.start if n == 0 else word.start
            shown.append(
                image_clip(np.array(picture), transparent=True)
                .with_start(start).with_duration(max(end - start, 0.04))
                .with_position(("center", top))
            )  # fmt: skip
    return shown


def word_xs(draw: Any, texts: list[str], font: Any, rtl: bool) -> list[float]:
    """Where each word starts so that the line is centred: left to right, or mirrored."""
    widths = [draw.textlength(text, font=font, **direction(rtl)) for text in texts]
    space = draw.textlength(" ", font=font)
    gaps = [0.0] + [0.0 if joined_without_space(a, b) else space for a, b in pairwise(texts)]
    x, xs = (WIDTH - sum(widths) - sum(gaps)) / 2, []
    for width, gap in zip(widths, gaps, strict=True):
        x += gap
        xs.append(x)
        x += width
    if rtl:
        xs = [WIDTH - x - width for x, width in zip(xs, widths, strict=True)]
    return xs


def right_to_left(texts: list[str]) -> bool:
    """Whether the line's first strongly directed character is right to left."""
    for char in "".join(texts):
        kind = unicodedata.bidirectional(char)
        if kind in ("L", "R", "AL"):
            return kind != "L"
    return False


def direction(rtl: bool) -> dict[str, str]:
    """PIL's `direction` for a right-to-left word: only with libraqm (it raises without)."""
    from PIL import features

    return {"direction": "rtl"} if rtl and features.check("raqm") else {}


def caption_families() -> list[str]:
    """The worker's caption family, then the families libass falls back to, in its order."""
    fallback = installed().fallback_families()
    return [HIGHLIGHT.font, *(f for f in fallback if f != HIGHLIGHT.font)]


def family_for(texts: list[str]) -> str:
    """The first caption family that has every character of the line."""
    fonts = installed()
    chars = [ord(c) for c in "".join(texts) if not c.isspace()]
    for family in caption_families():
        if all(within(fonts.families[family], c) for c in chars):
            return family
    raise LookupError(f"no font has every character of {' '.join(texts)!r}")


def pil_fonts() -> dict[str, Any]:
    """The Bold face (as the captions' style asks) of each family the captions' lines need,
    from the worker's own font files, loaded at the captions' size (before any timing: the
    faces are read from every font folder once)."""
    needed = {family_for([w.text for w in line.words])
              for line in group_lines(words(), HIGHLIGHT.max_words)}  # fmt: skip
    files: dict[str, list[Path]] = {}
    for face in read_faces(installed().dirs):
        if face.family in needed and face.path not in files.setdefault(face.family, []):
            files[face.family].append(face.path)
    return {family: line_sized(family, files.get(family, [])) for family in needed}


def line_sized(family: str, paths: list[Path]) -> Any:
    """The Bold face at the size libass gives the captions' font size: an ASS font size is
    the face's ascent plus descent, where PIL's is its em."""
    size = HIGHLIGHT.font_size(WIDTH, HEIGHT)
    ascent, descent = bold_font(family, paths, size).getmetrics()
    return bold_font(family, paths, round(size * size / (ascent + descent)))


def bold_font(family: str, paths: list[Path], size: int) -> Any:
    """`family`'s Bold face in the first of `paths` that has one: a static Bold face, or a
    variable font's Bold instance (libass picks the same from the pip packages' fonts)."""
    from PIL import ImageFont

    for path in paths:
        for index in range(32):  # the faces of a collection, in order
            try:
                font = ImageFont.truetype(str(path), size, index=index)
            except OSError:
                break
            name, style = font.getname()
            if name != family:
                continue
            if style == "Bold":
                return font
            try:
                font.set_variation_by_name("Bold")
            except (OSError, ValueError):
                continue
            return font
    raise LookupError(f"no Bold face of {family} among the worker's fonts")


# --- (a) the worker, in a child process -----------------------------------------------------------


class NotYet(Exception):
    """The worker on this branch cannot do the composition yet."""


def worker_child(root: Path) -> None:
    """Runs in its own process: build the specs, assemble, print timings and peak RSS. The
    fonts are read and this process's fontconfig cache is built before the clock starts, as a
    worker does once, before or at its first job (pipeline/handler.py, fonts.process_cache);
    what each job does with them (fonts.conf, the caption child) is timed."""
    fonts = installed()
    warm = root / "warm"
    warm.mkdir(exist_ok=True)
    (warm / "empty.ass").write_text("[Script Info]\nScriptType: v4.00+\n", encoding="utf-8")
    ffmpeg("-f", "lavfi", "-i", "color=s=64x64:d=0.04", "-vf",
           f"ass=filename={warm / 'empty.ass'}", "-f", "null", "-",
           env=ffmpeg_env(fonts.write_config(warm)))  # fmt: skip
    specs = worker_specs(root)
    started = time.perf_counter()
    result = asyncio.run(assemble_composition(specs, root / "worker", fonts))
    seconds = time.perf_counter() - started
    own = peak_rss_kib()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"seconds": seconds, "rss_kib": own, "ffmpeg_rss_kib": children,
                      "duration": result.duration, "join": result.join,
                      "timings": getattr(result, "timings", {})}))  # fmt: skip


def peak_rss_kib() -> int:
    """This process's own peak RSS, in KiB: VmHWM, which starts afresh at exec. RUSAGE_SELF's
    ru_maxrss does not: Linux keeps it across fork and exec, so a child of the bench (whose
    own RSS grows by hundreds of MB while moviepy runs in it) would report the bench's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def worker_specs(root: Path) -> dict[str, Any]:
    """The composition as worker/media/specs.py describes it, with every input probed."""
    from worker.media import specs as s

    needed = ("kind", "transition", "layers")
    if not all(f in s.ClipSpec.__dataclass_fields__ for f in needed):
        raise NotYet("worker.media.specs.ClipSpec has no composition fields")
    infos = probe_inputs(root)
    clips = []
    for clip in CLIPS:
        layers = ()
        if clip.ambient:
            layers = (
                s.LayerSpec(
                    root / "ambient.m4a",
                    infos["ambient.m4a"],
                    volume=AMBIENT_VOLUME,
                    loop=True,
                    fade_in=0.5,
                    fade_out=0.5,
                ),
            )
        clips.append(
            s.ClipSpec(
                root / clip.name,
                infos[clip.name],
                kind="image" if clip.still else "video",
                duration=clip.seconds if clip.still else None,
                motion=clip.motion,
                zoom=ZOOM,
                layers=layers,
                transition=s.TransitionSpec(*clip.transition) if clip.transition else None,
            )
        )
    return {
        "clips": clips,
        "audio": s.MusicSpec(
            root / "music.m4a", infos["music.m4a"], volume=MUSIC_VOLUME, duck=True
        ),
        "output": s.OutputSpec(width=WIDTH, height=HEIGHT, fps=FPS, fit=FIT),
        "captions": s.CaptionSpec(HIGHLIGHT, words=tuple(words())),
        "overlays": layer_specs(root, infos) if LAYERS else (
            s.ImageOverlaySpec(
                root / "logo.png",
                infos["logo.png"],
                position="top_right",
                width=LOGO_WIDTH,
                opacity=LOGO_OPACITY,
                margin=LOGO_MARGIN,
            ),
        ),
    }  # fmt: skip


def layer_specs(root: Path, infos: dict[str, Any]) -> tuple[Any, ...]:
    """`--layers`: the keyframed logo, the title and the PiP as worker/media/specs.py has them."""
    from worker.media import specs as s

    keys = tuple(s.Keyframe(t, x=x, y=y, scale=scale) for t, x, y, scale in LOGO_KEYS)
    return (
        s.ImageOverlaySpec(root / "logo.png", infos["logo.png"], width=LOGO_WIDTH,
                           opacity=LOGO_OPACITY,
                           motion=s.MotionSpec(keyframes=keys, easing="ease_in_out")),
        s.TextOverlaySpec(TITLE, position="top", size=TITLE_SIZE, box=True, end=TITLE_END,
                          motion=s.MotionSpec(animation="slide_down",
                                              animation_duration=TITLE_ANIMATION)),
        s.VideoOverlaySpec(root / PIP[0], infos[PIP[0]], width=PIP_WIDTH, start=PIP_START,
                           end=PIP_END, loop=True, radius=PIP_RADIUS, volume=PIP_VOLUME,
                           motion=s.MotionSpec(x=PIP_X, y=PIP_Y, fade_in=PIP_FADE,
                                               fade_out=PIP_FADE)),
    )  # fmt: skip


def probe_inputs(root: Path) -> dict[str, Any]:
    """Probe as the pipeline does (probe_all, in a child); stills and the logo as images."""
    from worker.media.probe.info import Kind
    from worker.media.probe.process import probe_all

    image_kind = "image" if "image" in get_args(Kind) else "clip"
    inputs: list[tuple[str, Path, Any]] = [
        (c.name, root / c.name, image_kind if c.still else "clip") for c in CLIPS
    ]
    inputs += [("logo.png", root / "logo.png", image_kind),
               ("ambient.m4a", root / "ambient.m4a", "audio"),
               ("music.m4a", root / "music.m4a", "audio")]  # fmt: skip
    if LAYERS:
        inputs.append((PIP[0], root / PIP[0], "clip"))
    try:
        return asyncio.run(probe_all(inputs))
    except Exception as exc:
        raise NotYet(f"the probe refuses a still image ({exc})") from exc


async def assemble_composition(specs: dict[str, Any], workdir: Path, fonts: Any) -> Any:
    from worker.media.assemble import assemble

    accepted = inspect.signature(assemble).parameters
    missing = [name for name in ("captions", "overlays", "fonts") if name not in accepted]
    if missing:
        raise NotYet(f"assemble() takes no {', '.join(missing)}")
    return await assemble(**specs, workdir=workdir, fonts=fonts)


def run_worker(root: Path) -> dict[str, Any]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--fit", FIT, *(["--scripts"] if SCRIPTS else []),
         *(["--layers"] if LAYERS else []),
         "--worker-child", str(root)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    wall = time.perf_counter() - started
    if proc.returncode == 3:
        raise NotYet(proc.stderr.strip().splitlines()[-1])
    if proc.returncode != 0:
        raise RuntimeError(f"the worker's assembly failed:\n{proc.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    report["wall"] = wall
    return report


ROOT = Path(__file__).resolve().parent.parent


# --- the run --------------------------------------------------------------------------------------


def timed(work: Any) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def duration_of(path: Path) -> float:
    from worker.media.probe.examine import probe

    return probe(path, path.name).duration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="turns of (a) and (c)")
    parser.add_argument("--moviepy-rounds", type=int, default=2)
    parser.add_argument("--fit", choices=("pad", "blur"), default="pad",
                        help="blur: the job at 1080x1920 with the blurred fill")  # fmt: skip
    parser.add_argument("--scripts", action="store_true",
                        help="caption lines in English, Japanese and Arabic in turn")  # fmt: skip
    parser.add_argument("--layers", action="store_true",
                        help="the layered job: a PiP, an animated title, a keyframed logo, and "
                        "the blurred fill at 1080x1920")  # fmt: skip
    parser.add_argument("--worker-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    choose_fit("blur" if args.layers else args.fit)
    global SCRIPTS, LAYERS
    SCRIPTS, LAYERS = args.scripts, args.layers
    if args.worker_child:
        try:
            worker_child(args.worker_child)
        except NotYet as exc:
            print(f"composition not in this worker yet: {exc}", file=sys.stderr)
            sys.exit(3)
        return
    with tempfile.TemporaryDirectory(prefix="bench-compose-") as tmp:
        run(Path(tmp), args.rounds, args.moviepy_rounds)


def choose_fit(fit: str) -> None:
    """`blur`: the whole job (captions, logo, every input's fit) at BLUR_SIZE, blur-filled."""
    global WIDTH, HEIGHT, FIT
    FIT = fit
    if fit == "blur":
        WIDTH, HEIGHT = BLUR_SIZE


def run(root: Path, rounds: int, moviepy_rounds: int) -> None:
    make_media(root)
    fonts = pil_fonts()
    load_before = os.getloadavg()
    single_out, moviepy_out = root / "single.mp4", root / "moviepy.mp4"
    worker: list[dict[str, Any]] = []
    single_s: list[float] = []
    moviepy_s: list[float] = []
    alone_s: list[float] = []
    alone: list[str] = []
    not_yet = None
    for round_ in range(rounds):
        if not_yet is None:
            try:
                worker.append(run_worker(root))
            except NotYet as exc:
                not_yet = str(exc)
        single = partial(ffmpeg, *single_command(root, single_out), env=fonts_env(root))
        single_s.append(timed(single))
        if round_ == 0:
            alone = encoder_alone(*raw_copies(single_out, root), root / "alone.mp4")
        alone_s.append(timed(partial(ffmpeg, *alone)))
        if round_ < moviepy_rounds:
            moviepy_s.append(timed(lambda: with_moviepy(root, moviepy_out, fonts)))
    load = f"{load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after"
    report(worker, min(single_s), min(moviepy_s), min(alone_s), not_yet, root, load)


def report(worker: list[dict[str, Any]], single: float, moviepy: float, alone: float,
           not_yet: str | None, root: Path, load: str) -> None:  # fmt: skip
    length = total()
    captions = "highlight captions in English, Japanese and Arabic" if SCRIPTS else (
        "highlight captions")  # fmt: skip
    logo = "a keyframed logo, a looped PiP video, an animated title" if LAYERS else "a logo"
    print(f"composition: 6 clips (2 stills with motion), 3 transitions, {captions}, an "
          f"ambient layer, {logo}, ducked music -> {WIDTH}x{HEIGHT}@{FPS} fit {FIT}, {length:g} s, "
          f"x264 {X264_PRESET} crf {X264_CRF}; best of each; load average (1 min) "
          f"{load}")  # fmt: skip
    print(f"    one ffmpeg command      : {single:8.2f} s  ({length / single:5.1f}x realtime, "
          f"output {duration_of(root / 'single.mp4'):.3f} s)")  # fmt: skip
    print(f"    moviepy                 : {moviepy:8.2f} s  ({length / moviepy:5.1f}x realtime, "
          f"output {duration_of(root / 'moviepy.mp4'):.3f} s)")  # fmt: skip
    print(f"    encoder alone (d)       : {alone:8.2f} s  (raw frames and PCM in, same settings)")
    print(f"    moviepy / one command   : {moviepy / single:8.2f}x")
    print(f"    moviepy / encoder alone : {moviepy / alone:8.2f}x   (no FFmpeg composition at "
          "these settings can be faster than moviepy by more, on this machine)")  # fmt: skip
    if not worker:
        print(f"    worker                  : not measured: composition not in this worker yet "
              f"({not_yet})")  # fmt: skip
        return
    best = min(worker, key=lambda r: r["seconds"])
    print(f"    worker assemble()       : {best['seconds']:8.2f} s  (child process "
          f"{best['wall']:.2f} s with start-up; output {best['duration']:.3f} s, "
          f"join {best['join']})")  # fmt: skip
    stages = ", ".join(f"{name} {spent:.2f}" for name, spent in best.get("timings", {}).items())
    print(f"    worker's stages (s)     : {stages}")
    print(f"    worker / moviepy        : {moviepy / best['seconds']:8.2f}x faster "
          "(target >= 5x)")  # fmt: skip
    print(f"    worker / one command    : {best['seconds'] / single:8.2f}x   (target <= 1.25x)")
    print(f"    worker / encoder alone  : {best['seconds'] / alone:8.2f}x")
    rss = max(r["rss_kib"] for r in worker) / 1024
    ffmpeg_rss = max(r["ffmpeg_rss_kib"] for r in worker) / 1024
    print(f"    worker peak RSS         : {rss:8.1f} MB  (target <= 150 MB; its largest FFmpeg "
          f"child {ffmpeg_rss:.1f} MB)")  # fmt: skip


if __name__ == "__main__":
    main()
