"""The compose path, measured in the picture: transitions, stills with motion, captions,
overlays and fades, on media generated here (320x180, a second or two each)."""

from __future__ import annotations

import hashlib
import itertools
import re
from fractions import Fraction
from pathlib import Path

import av
import pytest

from tests.media.checks import (
    Picture,
    assert_contract_output,
    bounding_box,
    decode_mono,
    luma,
    rgb_frames,
    roughness,
    tone_level_db,
)
from tests.media.conftest import X264, ffmpeg
from worker.errors import InputError, PayloadError
from worker.media.assemble import assemble
from worker.media.confine import PIXEL_CEILING
from worker.media.ffmpeg import FFmpegError, input_args, run_ffmpeg
from worker.media.picture.captions import CaptionStyle, Word
from worker.media.picture.filters import fit_steps, video_job
from worker.media.picture.one_pass import MAX_CLIPS_PER_PASS, picture_args, split_timeline
from worker.media.picture.stills import image_input, image_steps
from worker.media.plan import ClipWindow, Geometry, make_plan
from worker.media.probe.examine import probe
from worker.media.probe.info import MATRICES, MediaInfo, VideoInfo
from worker.media.specs import (
    CaptionSpec,
    ClipSpec,
    ImageOverlaySpec,
    OutputSpec,
    TextOverlaySpec,
    TransitionSpec,
)

FPS = 30
SIZE = "320x180"
AAC = ["-c:a", "aac", "-b:a", "64k"]


class Made:
    """Generated inputs, each made once per test session."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def colour(self, name: str, seconds: float = 1.0) -> ClipSpec:
        """A flat-colour clip with a quiet tone, H.264 + AAC."""
        target = self.root / f"{name}-{seconds:g}.mp4"
        if not target.exists():
            ffmpeg(["-f", "lavfi", "-i", f"color=c={name}:s={SIZE}:r={FPS}:d={seconds}",
                    "-f", "lavfi", "-i", f"sine=f=440:d={seconds}", *X264, *AAC,
                    "-shortest"], target)  # fmt: skip
        return ClipSpec(target, probe(target, name))

    def pattern(self, seconds: float = 1.0) -> ClipSpec:
        """FFmpeg's test pattern (sharp bars, a moving gradient line), 16:9, H.264 + AAC."""
        target = self.root / f"testsrc-{seconds:g}.mp4"
        if not target.exists():
            ffmpeg(["-f", "lavfi", "-i", f"testsrc=s={SIZE}:r={FPS}:d={seconds}",
                    "-f", "lavfi", "-i", f"sine=f=440:d={seconds}", *X264, *AAC,
                    "-shortest"], target)  # fmt: skip
        return ClipSpec(target, probe(target, "testsrc"))

    def image(self, name: str, source: str, size: str = "640x360") -> Path:
        """A PNG drawn by a lavfi graph (`source` gets the size)."""
        target = self.root / f"{name}.png"
        if not target.exists():
            ffmpeg(["-f", "lavfi", "-i", source.format(size=size), "-frames:v", "1"], target)
        return target

    def square(self) -> Path:
        """A white square (a quarter of each side) in the middle of a black 640x360 picture."""
        return self.image(
            "square", "color=c=black:s={size},drawbox=x=240:y=135:w=160:h=90:c=white:t=fill"
        )

    def still(self, path: Path, **kwargs: object) -> ClipSpec:
        return ClipSpec(path, image_info(path), kind="image", **kwargs)  # type: ignore[arg-type]


def image_info(path: Path) -> MediaInfo:
    """What the pipeline's image probe reports for a still: one picture, no sound."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        video = VideoInfo(
            index=0, codec=stream.codec_context.name, profile=None,
            width=stream.codec_context.width, height=stream.codec_context.height,
            pix_fmt=stream.codec_context.pix_fmt or "rgb24", bit_depth=8,
            avg_frame_rate=None, r_frame_rate=None, time_base=Fraction(1, 25), rotation=0,
            sample_aspect_ratio=Fraction(1), color_transfer=None, color_primaries=None,
            color_space=MATRICES.get(stream.codec_context.colorspace), field_order=None,
            duration=None,
            extradata_sha1=hashlib.sha1(b"").hexdigest(),
        )  # fmt: skip
        name = container.format.name
    return MediaInfo(path, name, 0.0, path.stat().st_size, 1, video, None)


@pytest.fixture(scope="session")
def made(tmp_path_factory: pytest.TempPathFactory) -> Made:
    return Made(tmp_path_factory.mktemp("compose"))


def _frame_at(frames: list[Picture], seconds: float) -> Picture:
    return frames[round(seconds * FPS)]


def _is(colour: tuple[float, float, float], rgb: tuple[int, int, int], within: float = 30) -> bool:
    return max(abs(a - b) for a, b in zip(colour, rgb, strict=True)) <= within


# ---- transitions -------------------------------------------------------------------------------


async def test_transition_mixes_the_clips_and_shortens_the_video(made: Made, workdir: Path) -> None:
    red = made.colour("red")
    clips = [
        ClipSpec(red.path, red.info, transition=TransitionSpec("fade", 0.4)),
        made.colour("blue"),
    ]
    result = await assemble(clips, audio=None, output=OutputSpec(), workdir=workdir)

    assert result.join == "compose"
    assert_contract_output(result.output, 1.6, tolerance=0.05)
    frames = rgb_frames(result.output)
    assert len(frames) == 30 + 30 - 12
    assert _is(frames[10].mean(), (255, 0, 0))  # before the transition: red
    assert _is(frames[40].mean(), (0, 0, 255))  # after it: blue
    r, g, b = frames[18 + 6].mean()  # the transition's midpoint: half of each
    assert 80 < r < 180 and 80 < b < 180 and g < 30, (r, g, b)


async def test_cuts_and_transitions_follow_each_other(made: Made, workdir: Path) -> None:
    """A cut, then a transition, then a cut: every clip lands where the frame counts say."""
    red, blue = made.colour("red"), made.colour("blue")
    clips = [red, ClipSpec(blue.path, blue.info, transition=TransitionSpec("wipeleft", 0.5)),
             red, blue]  # fmt: skip
    result = await assemble(clips, audio=None, output=OutputSpec(), workdir=workdir)

    frames = rgb_frames(result.output)
    assert len(frames) == 4 * 30 - 15
    colours = [(255, 0, 0), (0, 0, 255), (255, 0, 0), (0, 0, 255)]
    for at, colour in zip((10, 40, 65, 90), colours, strict=True):  # red 3 starts at 45
        assert _is(frames[at].mean(), colour), at


async def test_a_clip_that_is_all_transition_joins_both_its_neighbours(
    made: Made, workdir: Path
) -> None:
    """Half a second in from red and half a second out to blue leave the lime second no frame
    of its own: the two transitions meet in its middle."""
    red, lime, blue = made.colour("red"), made.colour("lime"), made.colour("blue")
    fade = TransitionSpec("fade", 0.5)
    clips = [ClipSpec(red.path, red.info, transition=fade),
             ClipSpec(lime.path, lime.info, transition=fade), blue]  # fmt: skip
    result = await assemble(clips, audio=None, output=OutputSpec(), workdir=workdir)

    frames = rgb_frames(result.output)
    assert len(frames) == 3 * 30 - 2 * 15
    assert _is(frames[5].mean(), (255, 0, 0))
    r, g, b = frames[15 + 7].mean()  # red into lime, half way
    assert 80 < r < 180 and 80 < g < 180 and b < 30, (r, g, b)
    r, g, b = frames[30 + 7].mean()  # lime into blue, half way
    assert r < 30 and 80 < g < 180 and 80 < b < 180, (r, g, b)
    assert _is(frames[50].mean(), (0, 0, 255))


async def test_only_a_transitions_overlap_goes_through_xfade(
    made: Made, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """xfade works in 4:4:4: fed whole clips, it would convert every frame of the timeline up
    and back down (and everything after it would run at 4:4:4). Each of its inputs is a trim of
    exactly the overlap, and the rest of each clip goes straight to the one concat."""
    red, blue = made.colour("red"), made.colour("blue")
    wipe, fade = TransitionSpec("wipeleft", 0.4), TransitionSpec("fade", 0.2)
    clips = [ClipSpec(red.path, red.info, transition=wipe), blue,
             ClipSpec(red.path, red.info, transition=fade), blue]  # fmt: skip
    passes: list[list[str]] = []
    monkeypatch.setattr("worker.media.assemble.run_ffmpeg", _recording(passes))
    result = await assemble(clips, audio=None, output=OutputSpec(), workdir=workdir)

    assert len(rgb_frames(result.output)) == 4 * 30 - 12 - 6
    (graph,) = [args[args.index("-filter_complex") + 1] for args in passes
                if "-filter_complex_threads" in args]  # fmt: skip
    trims = {label: int(stop) - int(start) for start, stop, label in re.findall(
        r"trim=start_frame=(\d+):end_frame=(\d+),setpts=PTS-STARTPTS(\[\w+\])", graph)}  # fmt: skip
    xfades = re.findall(r"(\[\w+\])(\[\w+\])xfade=transition=(\w+)", graph)
    assert [(trims[a], trims[b], kind) for a, b, kind in xfades] == [
        (12, 12, "wipeleft"), (6, 6, "fade")]  # fmt: skip
    assert graph.count("concat=") == 1


async def test_every_transition_type_is_an_xfade_ffmpeg_knows(made: Made, workdir: Path) -> None:
    """All of the payload's transition names, in one video of short stills."""
    from worker.payload.models import TRANSITIONS

    path = made.square()
    clips = [made.still(path, duration=0.4, transition=TransitionSpec(kind, 0.1))
             for kind in TRANSITIONS]  # fmt: skip
    clips.append(made.still(path, duration=0.4))
    output = OutputSpec(width=64, height=36, fps=10)
    result = await assemble(clips, audio=None, output=output, workdir=workdir)

    assert len(rgb_frames(result.output)) == 4 * len(clips) - len(TRANSITIONS)


# ---- stills ------------------------------------------------------------------------------------


def _white_area(frame: Picture) -> float:
    """How much of the frame is white, in pixels (grey edge pixels count in part)."""
    return sum(frame.rgb[1::3]) / 255  # green stands for brightness in black and white


async def test_a_still_lasts_its_duration_and_zooms_smoothly(made: Made, workdir: Path) -> None:
    clips = [made.still(made.square(), duration=1.0, motion="zoom_in", zoom=0.5)]
    output = OutputSpec(width=320, height=180, fps=FPS)
    result = await assemble(clips, audio=None, output=output, workdir=workdir)

    assert result.join == "compose"
    assert_contract_output(result.output, 1.0, tolerance=0.05)
    frames = rgb_frames(result.output)
    assert len(frames) == 30
    areas = [_white_area(f) for f in frames]
    # the square is 80x45 in a 320x180 frame at first, and 1.5 times each side at the end
    assert areas[0] == pytest.approx(80 * 45, rel=0.05)
    assert areas[-1] == pytest.approx(80 * 45 * 1.5**2, rel=0.05)
    # smooth: it grows on every frame, by steps of similar size (no whole-pixel jumps)
    steps = [b - a for a, b in itertools.pairwise(areas)]
    assert all(step > 0 for step in steps), steps
    assert max(steps) < 2 * min(steps), steps


async def test_a_pan_travels_its_zoom_of_the_frame(made: Made, workdir: Path) -> None:
    clips = [made.still(made.square(), duration=1.0, motion="pan_right", zoom=0.2)]
    output = OutputSpec(width=320, height=180, fps=FPS)
    result = await assemble(clips, audio=None, output=output, workdir=workdir)

    frames = rgb_frames(result.output)

    def centre_x(frame: Picture) -> float:
        x0, _, x1, _ = bounding_box(frame.where(lambda r, g, b: g > 128))
        return (x0 + x1) / 2

    # the view moves right, so the square moves left by 0.2 of the frame's width
    assert centre_x(frames[0]) - centre_x(frames[-1]) == pytest.approx(0.2 * 320, abs=3)
    assert _white_area(frames[0]) == pytest.approx(80 * 45 * 1.2**2, rel=0.05)


@pytest.mark.parametrize(
    ("motion", "moves"),
    [("zoom_out", (0, 0, -1)), ("pan_left", (1, 0, 0)), ("pan_up", (0, 1, 0)),
     ("pan_down", (0, -1, 0))],
)  # fmt: skip
async def test_every_motion_goes_its_way(
    made: Made, workdir: Path, motion: str, moves: tuple[int, int, int]
) -> None:
    """(x, y, size) of the square from the first frame to the last: pans move the view, so
    the picture goes the other way; zoom_out shrinks it back to its fitted size."""
    clips = [made.still(made.square(), duration=0.5, motion=motion, zoom=0.2)]
    result = await assemble(clips, audio=None, output=OutputSpec(width=320, height=180),
                            workdir=workdir)  # fmt: skip
    frames = rgb_frames(result.output)
    first, last = (bounding_box(f.where(lambda r, g, b: g > 128)) for f in (frames[0], frames[-1]))
    centre_x = (last[0] + last[2] - first[0] - first[2]) / 2
    centre_y = (last[1] + last[3] - first[1] - first[3]) / 2
    size = (last[2] - last[0]) - (first[2] - first[0])
    for measured, sign in zip((centre_x, centre_y, size), moves, strict=True):
        if sign:  # moved that way by a good part of the zoom (0.2 of 320 or 180 px)
            assert measured * sign > 10, (centre_x, centre_y, size)
        else:  # and not along the other axes
            assert abs(measured) <= 1, (centre_x, centre_y, size)


@pytest.mark.parametrize(
    ("easing", "middle"),
    [("linear", 0.5), ("ease_in", 0.25), ("ease_out", 0.75), ("ease_in_out", 0.5)],
)
async def test_a_zoom_is_eased_as_asked(
    made: Made, workdir: Path, easing: str, middle: float
) -> None:
    """Halfway through (frame 15 of 31), the zoom has gone `middle` of its way, and it never
    steps back; ease_in starts slowly (ease_out the other way) and ease_in_out does both."""
    clips = [made.still(made.square(), duration=31 / FPS, motion="zoom_in", zoom=0.5,
                        easing=easing)]  # fmt: skip
    output = OutputSpec(width=320, height=180, fps=FPS)
    result = await assemble(clips, audio=None, output=output, workdir=workdir)

    areas = [_white_area(f) for f in rgb_frames(result.output)]
    assert len(areas) == 31
    assert areas[15] == pytest.approx(80 * 45 * (1 + 0.5 * middle) ** 2, rel=0.03)
    assert areas[-1] == pytest.approx(80 * 45 * 1.5**2, rel=0.03)
    steps = [b - a for a, b in itertools.pairwise(areas)]
    assert all(step > -20 for step in steps), steps  # monotonic, within the encoder's noise
    first, last = sum(steps[:5]), sum(steps[-5:])
    if easing == "ease_in":
        assert first < last / 3, steps
    elif easing == "ease_out":
        assert last < first / 3, steps
    elif easing == "ease_in_out":
        assert max(first, last) < sum(steps[13:18]) / 2, steps


def _laplacian_variance(path: Path, index: int = 0) -> float:
    """How sharp a frame is: the variance of the 4-neighbour Laplacian of its luma plane."""
    with av.open(str(path)) as container:
        frame = next(itertools.islice(container.decode(video=0), index, None))
    assert frame.format.name == "yuv420p", frame.format.name
    plane, width, height = frame.planes[0], frame.width, frame.height
    data = bytes(plane)
    rows = [data[y * plane.line_size :][:width] for y in range(height)]
    values = [
        above[x] + below[x] + row[x - 1] + row[x + 1] - 4 * row[x]
        for above, row, below in zip(rows, rows[1:], rows[2:], strict=False)
        for x in range(1, width - 1)
    ]
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / len(values)


def test_a_zoom_keeps_the_detail_of_the_source(made: Made) -> None:
    """A detailed picture at 4 times the frame, zoomed in by 0.3 over 31 frames, as
    the still's filters make it (losslessly kept: the encoder's loss is not theirs). The frames
    where the view is a whole number of pixels of a Lanczos render (scale 1.1, 1.2 and 1.3:
    frames 10, 20, 30) are compared with that render of the same view straight from the source,
    through the same colour conversion. The zoom's last frame keeps at least 90% of its
    sharpness (fitted to the frame and then enlarged, it kept 31%), and none falls below 60%
    (there the view lies between the canvas's pixels, and `perspective` interpolates
    bilinearly: 69% to 76%; fitted to the frame first, 37% to 45%)."""
    source = made.image("detail", "testsrc2=s={size}", size="1280x720")
    clip = made.still(source, duration=31 / FPS, motion="zoom_in", zoom=0.3)
    assert clip.info.video is not None
    geometry = Geometry(320, 180, Fraction(FPS))
    steps = image_steps(clip, ClipWindow(0.0, 31 / FPS, 31), geometry, "crop")
    made_here = made.root / "detail-zoom.mkv"
    ffmpeg([*image_input(source, clip.info, max_pixels=PIXEL_CEILING),
            "-filter_complex", "[0:v]" + ",".join(steps) + "[v]", "-map", "[v]",
            "-c:v", "ffv1"], made_here)  # fmt: skip

    kept = {}
    for index, scale in ((10, 1.1), (20, 1.2), (30, 1.3)):
        view = Geometry(round(320 * scale), round(180 * scale), geometry.fps)
        fitted = fit_steps(clip.info.video, view, "crop")
        lanczos = [f"{s}:flags=lanczos" if s.startswith("scale=") else s for s in fitted]
        reference = made.root / f"detail-{scale}.mkv"
        centre = f"crop=320:180:{(view.width - 320) // 2}:{(view.height - 180) // 2}"
        ffmpeg(["-i", str(source), "-vf", ",".join([*lanczos, centre, "format=yuv420p"]),
                "-frames:v", "1", "-c:v", "ffv1"], reference)  # fmt: skip
        kept[scale] = _laplacian_variance(made_here, index) / _laplacian_variance(reference)
    assert kept[1.3] >= 0.9, kept
    assert min(kept.values()) >= 0.6, kept


async def test_a_still_carries_its_voice_over(made: Made, workdir: Path) -> None:
    """A still has no sound of its own; its voice-over plays over it, and stops with it."""
    voice = made.root / "voice.mp3"
    ffmpeg(["-f", "lavfi", "-i", "aevalsrc=0.3*sin(2*PI*1000*t):s=48000:d=1.5",
            "-c:a", "libmp3lame"], voice)  # fmt: skip
    still = made.still(made.square(), duration=1.0, voice_path=voice,
                       voice_info=probe(voice, "voice", "audio"))  # fmt: skip
    result = await assemble([still, made.colour("black")], audio=None, output=OutputSpec(),
                            workdir=workdir)  # fmt: skip

    assert_contract_output(result.output, 2.0, tolerance=0.05)
    samples, rate = decode_mono(result.output)
    assert tone_level_db(samples, rate, 1000, 0.2, 0.8) > -30
    assert tone_level_db(samples, rate, 1000, 1.2, 1.8) < -60


async def test_a_still_is_fitted_like_a_video(made: Made, workdir: Path) -> None:
    """A 640x360 picture in a square output: pad puts black bars above and below."""
    clips = [made.still(made.image("white", "color=c=white:s={size}"), duration=0.5)]
    output = OutputSpec(width=180, height=180, fps=FPS)
    result = await assemble(clips, audio=None, output=output, workdir=workdir)

    frame = rgb_frames(result.output)[0]
    assert _is(frame.mean((0, 0, 180, 30)), (0, 0, 0), 10)
    assert _is(frame.mean((0, 70, 180, 110)), (255, 255, 255), 10)


# A 16:9 picture in a 180x320 frame is fitted to 180x102 at rows 108 to 209 (pad and overlay
# both put its corner on an even row); these bands stay clear of its edges.
TOP, MIDDLE, BOTTOM = (0, 0, 180, 100), (0, 114, 180, 204), (0, 218, 180, 320)


def picture_difference(a: Picture, b: Picture, box: tuple[int, int, int, int]) -> float:
    """Mean absolute difference of R, G and B inside `box` (0 = identical)."""
    x0, y0, x1, y1 = box
    total = 0
    for y in range(y0, y1):
        start, end = (y * a.width + x0) * 3, (y * a.width + x1) * 3
        total += sum(abs(p - q) for p, q in zip(a.rgb[start:end], b.rgb[start:end], strict=True))
    return total / ((x1 - x0) * (y1 - y0) * 3)


def assert_blurred_fill(blur: Picture, pad: Picture) -> None:
    """`blur` is `pad`'s picture, with bands that are not black but smooth and darker."""
    assert picture_difference(blur, pad, MIDDLE) < 2, "the fitted picture is pad's"
    picture = luma(blur.mean(MIDDLE))
    for band in (TOP, BOTTOM):
        assert luma(pad.mean(band)) < 3  # pad: black
        assert 25 < luma(blur.mean(band)) < 0.75 * picture, (luma(blur.mean(band)), picture)
        smooth, sharp = roughness(blur, band), roughness(blur, MIDDLE)
        assert smooth < min(2.0, sharp / 3), (smooth, sharp)  # blurred, not a copy of the bars


async def test_blur_fills_the_bands_with_a_blurred_darker_copy(made: Made, workdir: Path) -> None:
    """A 16:9 clip and a 16:9 still in a 9:16 frame (the compose path: one pass): the picture
    as pad fits it, and above and below it a smooth, darkened copy instead of black."""
    clips = [made.pattern(), made.still(made.image("bars", "testsrc=s={size}"), duration=0.5)]
    made_with = {}
    for fit in ("pad", "blur"):
        output = OutputSpec(width=180, height=320, fps=FPS, fit=fit)  # type: ignore[arg-type]
        result = await assemble(clips, audio=None, output=output, workdir=workdir / fit)
        assert result.join == "compose"
        assert_contract_output(result.output, 1.5, tolerance=0.05)
        made_with[fit] = rgb_frames(result.output)

    assert len(made_with["blur"]) == len(made_with["pad"]) == 45
    for n in (0, 20, 29, 30, 44):  # the video's frames, then the still's
        assert_blurred_fill(made_with["blur"][n], made_with["pad"][n])


async def test_blur_costs_nothing_when_the_picture_fills_the_frame(
    made: Made, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same aspect ratio, nothing to fill: `blur` is `pad`, the same graph and the same frames."""
    clips = [made.pattern(), made.still(made.image("bars", "testsrc=s={size}"), duration=0.5)]
    passes: list[list[str]] = []
    monkeypatch.setattr("worker.media.assemble.run_ffmpeg", _recording(passes))
    frames = {}
    for fit in ("pad", "blur"):
        output = OutputSpec(width=640, height=360, fps=FPS, fit=fit)  # type: ignore[arg-type]
        result = await assemble(clips, audio=None, output=output, workdir=workdir / fit)
        frames[fit] = [frame.rgb for frame in rgb_frames(result.output)]

    graphs = [args[args.index("-filter_complex") + 1] for args in passes
              if "-filter_complex_threads" in args]  # fmt: skip
    assert len(graphs) >= 2 and "boxblur" not in "".join(graphs)
    assert frames["blur"] == frames["pad"]


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
async def test_png_jpeg_and_webp_stills_keep_their_colour(
    made: Made, workdir: Path, suffix: str
) -> None:
    """Each still format opens through its own demuxer and converts to BT.709 correctly
    (JPEG and WebP are BT.601; a relabelled BT.601 picture comes out greener)."""
    path = made.root / f"flat{suffix}"
    ffmpeg(["-f", "lavfi", "-i", "color=c=0xC83C28:s=320x180", "-frames:v", "1",
            *(["-q:v", "1"] if suffix == ".jpg" else []),
            *(["-lossless", "1"] if suffix == ".webp" else [])], path)  # fmt: skip
    clips = [made.still(path, duration=0.3)]
    result = await assemble(clips, audio=None, output=OutputSpec(), workdir=workdir)

    assert (result.width, result.height, result.fps) == (320, 180, 30.0)
    assert _is(rgb_frames(result.output)[0].mean(), (200, 60, 40), 5)


def test_the_output_follows_the_first_video_not_a_still_before_it(made: Made) -> None:
    """A still has no frame rate, and a photo's size is rarely the video's: the first video
    clip sets both; stills alone give their own size at 30 fps."""
    from worker.media.plan import make_plan

    still = made.still(made.square(), duration=1.0)
    video = made.colour("red")
    plan = make_plan([still, video], None, OutputSpec())
    assert (plan.geometry.width, plan.geometry.height, plan.geometry.fps) == (320, 180, 30)
    assert plan.join == "compose" and plan.frames == 60
    alone = make_plan([still], None, OutputSpec())
    assert (alone.geometry.width, alone.geometry.height, alone.geometry.fps) == (640, 360, 30)


# ---- captions ----------------------------------------------------------------------------------

GREEN = (0, 255, 0)


def _green(r: int, g: int, b: int) -> bool:
    return g > 150 and r < 100 and b < 100


def _white(r: int, g: int, b: int) -> bool:
    return min(r, g, b) > 200


async def test_highlight_colours_the_word_being_spoken(made: Made, workdir: Path) -> None:
    words = (Word("AAA", 0.5, 1.0), Word("BBB", 1.0, 1.5))
    style = CaptionStyle(style="highlight", position="center", size=0.2,
                         highlight_color="#00FF00", outline=False)  # fmt: skip
    captions = CaptionSpec(style=style, words=words)
    clips = [made.colour("black", 2.0)]
    result = await assemble(clips, audio=None, output=OutputSpec(), workdir=workdir,
                            captions=captions)  # fmt: skip

    frames = rgb_frames(result.output)
    before = _frame_at(frames, 0.3)
    assert not before.where(_green) and not before.where(_white)  # nothing before the words
    first, second = _frame_at(frames, 0.75), _frame_at(frames, 1.25)
    for frame, lit_left in ((first, True), (second, False)):
        lit, plain = frame.where(_green), frame.where(_white)
        assert len(lit) > 100 and len(plain) > 100
        lit_x = bounding_box(lit)[2] if lit_left else bounding_box(lit)[0]
        plain_x = bounding_box(plain)[0] if lit_left else bounding_box(plain)[2]
        # the highlighted word is the one being spoken: left while AAA, right while BBB
        assert (lit_x < plain_x) if lit_left else (lit_x > plain_x), (lit_x, plain_x)


async def _caption_box(made: Made, workdir: Path, text: str) -> tuple[int, int]:
    style = CaptionStyle(position="center", size=0.12, outline=False)
    captions = CaptionSpec(style=style, words=(Word(text, 0.0, 1.0),))
    result = await assemble([made.colour("black")], audio=None, output=OutputSpec(),
                            workdir=workdir, captions=captions)  # fmt: skip
    x0, y0, x1, y1 = bounding_box(rgb_frames(result.output)[15].where(_white))
    return x1 - x0, y1 - y0


async def test_caption_text_cannot_style_itself(made: Made, workdir: Path) -> None:
    r"""`{\b1}` and `\N` in the words are drawn as characters: the line is wider than the
    letters alone (nothing vanished as a tag) and stays one line (no break)."""
    plain_w, plain_h = await _caption_box(made, workdir / "plain", "ABCD")
    tagged_w, tagged_h = await _caption_box(made, workdir / "tagged", r"{\b1}AB\NCD")
    assert tagged_w > plain_w * 1.8, (tagged_w, plain_w)
    assert tagged_h < plain_h * 1.5, (tagged_h, plain_h)


async def test_accented_latin_is_drawn_with_its_accents(made: Made, workdir: Path) -> None:
    """The bundled font has the glyphs: accents rise above the capitals (a missing glyph
    would be drawn as an empty box, no taller than a capital)."""
    plain_w, plain_h = await _caption_box(made, workdir / "plain", "EAO")
    accented_w, accented_h = await _caption_box(made, workdir / "accented", "ÉÀÔ")
    assert accented_h > plain_h * 1.15, (accented_h, plain_h)
    assert abs(accented_w - plain_w) <= plain_w * 0.1, (accented_w, plain_w)


async def test_transcripts_follow_their_clips_and_the_vtt_sidecar(
    made: Made, workdir: Path
) -> None:
    """clip 1 is trimmed to start at 0.5 s and starts 0.2 s early (a transition): its word
    spoken at 0.6 s of its source is on the output at 1.0 - 0.2 + 0.1 = 0.9 s."""
    red, blue = made.colour("red"), made.colour("blue", 2.0)
    clips = [
        ClipSpec(red.path, red.info, transition=TransitionSpec("fade", 0.2),
                 voice_transcript=(Word("one", 0.1, 0.3),)),
        ClipSpec(blue.path, blue.info, start=0.5,
                 transcript=(Word("gone", 0.1, 0.4), Word("two", 0.6, 0.9))),
    ]  # fmt: skip
    captions = CaptionSpec(style=CaptionStyle(max_words=1), vtt=True)
    result = await assemble(clips, audio=None, output=OutputSpec(), workdir=workdir,
                            captions=captions)  # fmt: skip

    assert result.captions_vtt == workdir / "captions.vtt"
    vtt = result.captions_vtt.read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT")
    assert "00:00:00.100 --> " in vtt and "\none\n" in vtt
    assert "00:00:00.900 --> " in vtt and "\ntwo\n" in vtt
    assert "gone" not in vtt  # cut away with the trim
    assert sorted(p.name for p in workdir.iterdir()) == ["captions.vtt", "output.mp4"]


# ---- overlays ----------------------------------------------------------------------------------


async def test_overlay_shows_only_between_start_and_end(made: Made, workdir: Path) -> None:
    logo = made.image("logo", "color=c=white:s={size}", size="100x50")
    overlays = [
        ImageOverlaySpec(logo, image_info(logo), position="top_left", width=0.25, margin=0.05,
                         start=0.5, end=1.5),
        ImageOverlaySpec(logo, image_info(logo), position="bottom_right", width=0.25,
                         margin=0.05, opacity=0.5),
    ]  # fmt: skip
    result = await assemble([made.colour("black", 2.0)], audio=None, output=OutputSpec(),
                            workdir=workdir, overlays=overlays)  # fmt: skip

    frames = rgb_frames(result.output)
    # 80 px wide (a quarter of 320), 40 high, 9 px (5% of 180) from the corner
    region, faded = (12, 12, 86, 46), (234, 134, 308, 168)
    for at, shown in ((0.3, False), (1.0, True), (1.7, False)):
        frame = _frame_at(frames, at)
        expected = (255, 255, 255) if shown else (0, 0, 0)
        assert _is(frame.mean(region), expected, 12), (at, frame.mean(region))
        assert _is(frame.mean((120, 30, 200, 150)), (0, 0, 0), 6)  # the rest stays black
        assert _is(frame.mean(faded), (128, 128, 128), 15), frame.mean(faded)  # half opaque


async def test_text_overlay_is_drawn_literally_in_its_window(made: Made, workdir: Path) -> None:
    overlays = [TextOverlaySpec(r"%{pts} {\b1}", position="bottom", size=0.15, start=0.0,
                                end=1.0)]  # fmt: skip
    result = await assemble([made.colour("black", 2.0)], audio=None, output=OutputSpec(),
                            workdir=workdir, overlays=overlays)  # fmt: skip

    frames = rgb_frames(result.output)
    shown = _frame_at(frames, 0.5).where(_white)
    x0, y0, x1, _ = bounding_box(shown)
    assert y0 > 180 / 2  # at the bottom
    assert x1 - x0 > 100  # twelve characters, not an expanded number
    assert not _frame_at(frames, 1.5).where(_white)


# ---- fades -------------------------------------------------------------------------------------


async def test_fades_start_and_end_on_black(made: Made, workdir: Path) -> None:
    output = OutputSpec(fade_in=0.3, fade_out=0.3, thumbnail=True)
    seen: list[float] = []
    result = await assemble([made.colour("red")], audio=None, output=output, workdir=workdir,
                            on_progress=seen.append)  # fmt: skip

    assert result.join == "compose"
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)
    assert result.thumbnail is not None and result.thumbnail.exists()
    assert {"plan", "decorations", "compose", "soundtrack", "mux"} <= set(result.timings)
    frames = rgb_frames(result.output)
    assert len(frames) == 30
    assert _is(frames[0].mean(), (0, 0, 0), 6)
    assert _is(frames[-1].mean(), (0, 0, 0), 6)
    assert _is(frames[15].mean(), (255, 0, 0))
    assert 40 < frames[4].mean()[0] < 220  # part way in


# ---- a long timeline in pieces ----------------------------------------------------------------


async def test_a_long_timeline_made_in_pieces_matches_one_pass(
    made: Made, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pieces split after a transition (inside a moving still) and at a cut; captions,
    overlays and fades keep their output times; the joined pieces equal the one-pass video."""
    red, blue = made.colour("red"), made.colour("blue")
    still = made.still(made.square(), duration=1.0, motion="zoom_in", zoom=0.3,
                       transition=TransitionSpec("wipeleft", 0.3))  # fmt: skip
    fade, slide = TransitionSpec("fade", 0.3), TransitionSpec("slideup", 0.2)
    clips = [ClipSpec(red.path, red.info, transition=fade), still, blue,
             ClipSpec(red.path, red.info, transition=slide), blue]  # fmt: skip
    words = tuple(Word(f"w{n}", n * 0.3, n * 0.3 + 0.25) for n in range(14))
    captions = CaptionSpec(style=CaptionStyle(style="highlight"), words=words)
    overlays = [TextOverlaySpec("Title", position="top", start=0.5, end=3.5)]
    output = OutputSpec(fade_in=0.5, fade_out=0.5)

    async def make(name: str) -> list[Picture]:
        result = await assemble(clips, audio=None, output=output, workdir=workdir / name,
                                captions=captions, overlays=overlays)  # fmt: skip
        assert_contract_output(result.output, 5 - 0.8, tolerance=0.05)
        return rgb_frames(result.output)

    whole = await make("whole")
    monkeypatch.setattr("worker.media.assemble.MAX_CLIPS_PER_PASS", 2)
    passes: list[list[str]] = []
    monkeypatch.setattr("worker.media.assemble.run_ffmpeg", _recording(passes))
    pieces = await make("pieces")

    assert sum("-filter_complex_threads" in args for args in passes) == 3  # three pieces
    assert len(pieces) == len(whole) == 150 - 24
    for n, (a, b) in enumerate(zip(whole, pieces, strict=True)):
        diff = sum(abs(x - y) for x, y in zip(a.rgb[::7], b.rgb[::7], strict=True))
        assert diff / len(a.rgb[::7]) < 3, n  # the same picture, give or take the encoder


def _recording(into: list[list[str]]):  # type: ignore[no-untyped-def]
    from worker.media.ffmpeg import run_ffmpeg

    async def run(args: list[str], **kwargs: object) -> None:
        into.append(list(args))
        await run_ffmpeg(args, **kwargs)  # type: ignore[arg-type]

    return run


# ---- refused before encoding -------------------------------------------------------------------


async def test_a_transition_on_the_last_clip_is_refused(made: Made, workdir: Path) -> None:
    red = made.colour("red")
    clips = [red, ClipSpec(red.path, red.info, transition=TransitionSpec("fade", 0.2))]
    with pytest.raises(PayloadError) as caught:
        await assemble(clips, audio=None, output=OutputSpec(), workdir=workdir)
    assert caught.value.field == "payload.clips[1].transition"
    assert "leads nowhere" in str(caught.value)
    assert not workdir.exists() or not any(workdir.iterdir())


async def test_a_transition_over_half_the_shorter_clip_is_refused(
    made: Made, workdir: Path
) -> None:
    red, still = made.colour("red"), made.still(made.square(), duration=0.5)
    clips = [ClipSpec(red.path, red.info, transition=TransitionSpec("fade", 0.3)), still]
    with pytest.raises(PayloadError) as caught:
        await assemble(clips, audio=None, output=OutputSpec(), workdir=workdir)
    assert caught.value.field == "payload.clips[0].transition.duration"
    assert "half of the shorter" in str(caught.value)


async def test_an_image_without_duration_is_refused(made: Made, workdir: Path) -> None:
    clips = [made.colour("red"), made.still(made.square())]
    with pytest.raises(PayloadError) as caught:
        await assemble(clips, audio=None, output=OutputSpec(), workdir=workdir)
    assert caught.value.field == "payload.clips[1].duration"
    assert str(caught.value) == "payload.clips[1].duration: is required for an image"


# ---- what FFmpeg is told about each input ------------------------------------------------------


def _per_input(args: list[str]) -> list[list[str]]:
    """Each input's options, from after the previous input's file up to and including its own."""
    inputs, start = [], 0
    for at, arg in enumerate(args):
        if arg == "-i":
            inputs.append(args[start : at + 2])
            start = at + 2
    return inputs


def _option(options: list[str], name: str) -> str:
    return options[options.index(name) + 1]


def test_every_input_gets_the_operators_pixel_limit_and_a_still_one_decoder_thread(
    made: Made, tmp_path: Path
) -> None:
    """`-max_pixels` is MAX_INPUT_PIXELS on every user's input (never above the
    ceiling), and a still's decoder (a clip or an overlay) runs one thread."""
    video, square = made.colour("red"), made.square()
    clips = [video, made.still(square, duration=1.0)]
    overlays = [ImageOverlaySpec(square, image_info(square))]
    output = OutputSpec(max_input_pixels=1_000_000)
    plan = make_plan(clips, None, output, overlays=overlays)
    [piece] = split_timeline(clips, plan, MAX_CLIPS_PER_PASS)
    args = picture_args(piece, plan, output, overlays=overlays, captions=None, texts=[],
                        destination=tmp_path / "out.mp4", threads=2)  # fmt: skip

    inputs = _per_input(args)
    assert [_option(i, "-max_pixels") for i in inputs] == ["1000000"] * 3
    assert [_option(i, "-threads") for i in inputs] == ["2", "1", "1"]
    assert [_option(i, "-f") for i in inputs[1:]] == ["png_pipe", "png_pipe"]
    for options in inputs:  # per-input options, before the file they bind to
        assert options.index("-max_pixels") < options.index("-i")
        assert options.index("-threads") < options.index("-i")
    again = video_job(video, plan.windows[0], plan.geometry, "pad", tmp_path / "v.mp4", 2,
                      max_pixels=1_000_000)  # fmt: skip
    assert [_option(i, "-max_pixels") for i in _per_input(again.args)] == ["1000000"]
    ceiling = input_args(square, max_pixels=PIXEL_CEILING * 4)
    assert _option(ceiling, "-max_pixels") == str(PIXEL_CEILING)


async def test_a_still_over_the_operators_pixel_limit_is_refused_before_and_by_ffmpeg(
    made: Made, workdir: Path
) -> None:
    """Past the probe, two more lines hold MAX_INPUT_PIXELS: the cost check refuses a 640x360
    still under a limit of 320x180 before anything is encoded, and FFmpeg's decoder, given the
    same limit as `-max_pixels`, would not decode it either."""
    clips = [made.still(made.square(), duration=0.5)]
    output = OutputSpec(width=320, height=180, max_input_pixels=320 * 180)
    with pytest.raises(InputError, match=r"^clips\[0\]: has pictures of 230400 pixels; at most"):
        await assemble(clips, audio=None, output=output, workdir=workdir)
    assert not (workdir / "output.mp4").exists()
    args = [*input_args(clips[0].path, formats=("png_pipe",), max_pixels=320 * 180),
            "-frames:v", "1", "-f", "null", "-"]  # fmt: skip
    with pytest.raises(FFmpegError) as caught:
        await run_ffmpeg(args, expected_duration=None, on_progress=None)
    assert "Picture size 640x360 exceeds specified max pixel count 57600" in caught.value.stderr
