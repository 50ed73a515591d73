"""The whole sound of a video: each clip's sound in its window, joined with crossfades, then
music, loudness, fades and AAC (mixdown.py), as one file exactly as long as the picture.

    per clip (audio only, quick) → speech slot WAV: its own sound × `volume` (an image clip, a
                                   clip without sound or with volume 0 is silence), with the
                                   crossfade fades of its transitions, + its voice-over
                                 → ambient slot WAV (when any clip has layers): its layers,
                                   each delayed by `start`, looped or played once, faded,
                                   cut to the window
    slots → one ffconcat track, or two when transitions overlap clips → mixdown.py's two passes

Every length is counted in samples at 48 kHz. A clip's window lasts its frame count at the
output rate (so no clip's sound runs over or short of its picture and nothing drifts across
joins), and each transition makes its two clips overlap by its duration, in the picture's whole
frames (plan.py `overlap_frames`): the output lasts the sum of the windows minus the overlaps,
as the picture does.

A transition crossfades the two clips' own sounds: the first fades out and the next fades in
over the overlap with quarter-sine curves (equal power, so two unrelated sounds keep their
loudness through it), the same as `acrossfade=curve1=qsin:curve2=qsin`, and the two are summed.
Voice-overs and layers are not faded by it: they stay on their clips, so the overlap holds the
end of one clip's voice and the start of the next.

Overlapping slots cannot follow one another in one ffconcat listing, so a clip that begins with
a transition goes on the other track than the clip before it, led by the silence that puts it
at its place; since a transition is at most half of either clip, slots on one track never
overlap. Without transitions there is one track and no lead, as before: the concat demuxer
reads the slots one after another, so the join costs nothing however many clips there are.
(With two tracks the leads make the slots about twice the output's length on disk: a plain
read of more bytes, rather than a filter graph with an input per clip.)
Slots are 32-bit float WAV: clip sound plus voice (plus layers) can go over full scale before
normalization brings it down, and 16-bit PCM would clip it.

Over 300 lines on purpose: the sound of every clip, its layers, the crossfades, the music and
the fades are laid on one timeline of slots that only this module knows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from worker.media.confine import ChildLimits
from worker.media.ffmpeg import ProgressCallback, input_args, run_ffmpeg
from worker.media.plan import ClipWindow, Plan, overlap_frames
from worker.media.progress import WeightedProgress
from worker.media.sound.mix_plan import SAMPLE_RATE
from worker.media.sound.mix_process import plan_mix_confined
from worker.media.sound.mixdown import AUDIO_FORMAT, Tracks, encode_args, measure_args
from worker.media.specs import (
    ClipSpec,
    LayerSpec,
    MusicSpec,
    OutputSpec,
    VideoOverlaySpec,
    transition_durations,
)

CROSSFADE_CURVE = "qsin"
SLOT_CODEC = ["-c:a", "pcm_f32le"]
# Relative cost of make_soundtrack's stages, for one progress figure.
STAGE_WEIGHTS = {"clips": 0.3, "measure": 0.25, "encode": 0.45}


@dataclass(frozen=True)
class Slot:
    """One clip's place on the output timeline, in samples.

    `offset` is where the clip begins in the output and `samples` its window's length;
    `fade_in` / `fade_out` are the crossfades with the clip before and after it. On its
    `track` the slot follows the one before it after `lead` samples of silence.
    """

    offset: int
    samples: int
    fade_in: int
    fade_out: int
    track: int
    lead: int


def frame_samples(frames: int, fps: Fraction) -> int:
    """`frames` at the output rate, in samples (rounded to the nearest)."""
    return round(frames * SAMPLE_RATE / fps)


def window_samples(window: ClipWindow, fps: Fraction) -> int:
    """A window's length in samples, from its frame count, so sound and picture match."""
    return frame_samples(window.frames, fps)


def overlap_samples(seconds: float, fps: Fraction) -> int:
    """A transition's overlap in samples: the picture's count of it in whole frames (plan.py
    `overlap_frames`), so the two timelines shorten by the same amount."""
    return frame_samples(overlap_frames(seconds, fps), fps)


def layout(clips: Sequence[ClipSpec], plan: Plan) -> tuple[tuple[Slot, ...], int]:
    """Every clip's slot, and the output's length in samples (windows minus overlaps).

    An overlap is kept to at most half of either clip (the contract's limit on a transition,
    which the plan checks), so a clip's two crossfades never meet and slots on one track never
    overlap.
    """
    fps = plan.geometry.fps
    lengths = [window_samples(window, fps) for window in plan.windows]
    joins = [
        min(overlap_samples(seconds, fps), lengths[i] // 2, lengths[i + 1] // 2)
        for i, seconds in enumerate(transition_durations(clips))
    ]
    slots: list[Slot] = []
    ends = [0, 0]  # where each track's last slot ends
    offset, track = 0, 0
    for i, samples in enumerate(lengths):
        fade_in = joins[i - 1] if i else 0
        fade_out = joins[i] if i < len(joins) else 0
        if fade_in:
            track = 1 - track
        slots.append(Slot(offset, samples, fade_in, fade_out, track, offset - ends[track]))
        ends[track] = offset + samples
        offset += samples - fade_out
    return tuple(slots), offset


@dataclass(frozen=True)
class SlotJob:
    """One clip's sound: the FFmpeg arguments and the slot WAVs they write."""

    args: list[str]
    speech: Path
    ambient: Path | None
    samples: int


def has_own_sound(clip: ClipSpec) -> bool:
    """Whether the clip's own sound is heard: a video with an audio track and volume above 0."""
    return clip.kind == "video" and clip.info.audio is not None and clip.volume > 0


def slot_job(clip: ClipSpec, window: ClipWindow, slot: Slot, directory: Path, index: int,
             ambient: bool) -> SlotJob:  # fmt: skip
    """The FFmpeg arguments for `clip`'s speech slot (and, with `ambient`, its layers' slot).

    The clip's sound is cut with the picture's window (input seeking, as the picture is cut);
    only audio is decoded here, which is quick.
    """
    inputs: list[str] = []
    count = 0

    def add(path: Path, before: list[str]) -> str:
        nonlocal inputs, count
        inputs += input_args(path, before=before)
        count += 1
        return f"[{count - 1}:a:0]"

    n = slot.samples
    if has_own_sound(clip):
        source = add(clip.path, _trim(clip, window))
        base = f"{source}aresample={SAMPLE_RATE},{AUDIO_FORMAT}"
        if clip.volume != 1:
            base += f",volume={clip.volume:.4f}"
    else:
        base = f"anullsrc=r={SAMPLE_RATE}:cl=stereo,{AUDIO_FORMAT}"
    steps = [base, "apad", f"atrim=end_sample={n}", "asetpts=N/SR/TB"]
    if slot.fade_in:
        steps.append(f"afade=t=in:ss=0:ns={slot.fade_in}:curve={CROSSFADE_CURVE}")
    if slot.fade_out:
        steps.append(
            f"afade=t=out:ss={n - slot.fade_out}:ns={slot.fade_out}:curve={CROSSFADE_CURVE}"
        )
    graph = [",".join(steps) + "[clip]"]
    speech = "[clip]"
    if clip.voice_path is not None:
        voice = add(clip.voice_path, [])
        graph.append(f"{voice}aresample={SAMPLE_RATE},{AUDIO_FORMAT}[voice]")
        graph.append("[clip][voice]amix=inputs=2:duration=first:normalize=0[spoken]")
        speech = "[spoken]"
    graph.append(f"{speech}{_placed(slot)}[speech]")
    speech_path = directory / f"speech{index:03d}.wav"
    outputs = ["-map", "[speech]", *SLOT_CODEC, "-map_metadata", "-1", str(speech_path)]
    ambient_path = None
    if ambient:
        layers = [(layer, add(layer.path, _loop(layer))) for layer in clip.layers
                  if _audible(layer, n)]  # fmt: skip
        graph += _layers_graph(layers, slot)
        ambient_path = directory / f"ambient{index:03d}.wav"
        outputs += ["-map", "[ambient]", *SLOT_CODEC, "-map_metadata", "-1", str(ambient_path)]
    args = [*inputs, "-filter_complex", ";".join(graph), *outputs]
    return SlotJob(args, speech_path, ambient_path, slot.lead + n)


def _trim(clip: ClipSpec, window: ClipWindow) -> list[str]:
    if not window.start and clip.end is None:
        return []
    return ["-ss", f"{window.start:.6f}", "-t", f"{window.duration:.6f}"]


def _loop(layer: LayerSpec) -> list[str]:
    return ["-stream_loop", "-1"] if layer.loop else []


def _placed(slot: Slot) -> str:
    """The tail of a slot's chain: the lead silence, then timestamps from 0."""
    lead = f"adelay=delays={slot.lead}S:all=1," if slot.lead else ""
    return f"{lead}asetpts=N/SR/TB"


def _start(layer: LayerSpec) -> int:
    return max(0, round(layer.start * SAMPLE_RATE))


def _audible(layer: LayerSpec, window: int) -> bool:
    """A layer with volume 0, or starting at or after its clip's end, is never heard."""
    return layer.volume > 0 and _start(layer) < window


def _layers_graph(layers: list[tuple[LayerSpec, str]], slot: Slot) -> list[str]:
    """`[ambient]`: the layers laid over the clip's window, each from its `start`, played once
    (or looped to the window's end), faded in and out at its own ends, cut at the window."""
    n = slot.samples
    graph, labels = [], []
    for k, (layer, source) in enumerate(layers):
        start = _start(layer)
        room = n - start
        length = room
        if not layer.loop and layer.info.duration:
            length = max(1, min(room, round(layer.info.duration * SAMPLE_RATE)))
        steps = [f"{source}aresample={SAMPLE_RATE}", AUDIO_FORMAT]
        if layer.volume != 1:
            steps.append(f"volume={layer.volume:.4f}")
        steps += [f"atrim=end_sample={length}", "asetpts=N/SR/TB"]
        fade_in = min(length, round(layer.fade_in * SAMPLE_RATE))
        fade_out = min(length, round(layer.fade_out * SAMPLE_RATE))
        if fade_in > 0:
            steps.append(f"afade=t=in:ss=0:ns={fade_in}")
        if fade_out > 0:
            steps.append(f"afade=t=out:ss={length - fade_out}:ns={fade_out}")
        if start:
            steps.append(f"adelay=delays={start}S:all=1")
        graph.append(",".join(steps) + f"[layer{k}]")
        labels.append(f"[layer{k}]")
    if not labels:
        silence = f"anullsrc=r={SAMPLE_RATE}:cl=stereo,{AUDIO_FORMAT}"
        return [f"{silence},atrim=end_sample={slot.lead + n},asetpts=N/SR/TB[ambient]"]
    mixed = labels[0]
    if len(labels) > 1:
        graph.append(
            f"{''.join(labels)}amix=inputs={len(labels)}:duration=longest:normalize=0[layers]"
        )
        mixed = "[layers]"
    graph.append(f"{mixed}{AUDIO_FORMAT},apad,atrim=end_sample={n},{_placed(slot)}[ambient]")
    return graph


def write_listing(directory: Path, name: str, files: Sequence[Path]) -> Path:
    """An ffconcat list of slot files we wrote ourselves, by their plain names in `directory`,
    as the concat demuxer's safe mode (`-safe 1`) wants them."""
    lines = ["ffconcat version 1.0", *(f"file {path.name}" for path in files)]
    listing = directory / f"{name}.ffconcat"
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return listing


async def make_soundtrack(
    clips: Sequence[ClipSpec],
    plan: Plan,
    music: MusicSpec | None,
    output: OutputSpec,
    scratch: Path,
    out: Path,
    on_progress: ProgressCallback | None,
    overlays: Sequence[VideoOverlaySpec] = (),
    limits: ChildLimits | None = None,
) -> None:
    """Write the video's whole sound to `out` (AAC), exactly as long as the picture.

    Clip sound, voice-overs and layers in their windows, crossfaded at transitions; the video
    overlays' sound (those with a `volume`) in theirs, with the layers; music
    looped under it all at its volume relative to the loudness target, ducked if asked; the
    output's fades. Intermediates go in `scratch/sound`; the mix is planned by the mix child
    under `limits` (the operator's PROBE_TIMEOUT and PROBE_MEMORY_MB, as every confined child).
    Raises `FFmpegError` if FFmpeg fails.
    """
    if music is not None and music.volume <= 0:
        music = None  # volume 0 is no music: nothing to measure, mix or duck
    progress = WeightedProgress(STAGE_WEIGHTS, on_progress)
    directory = scratch / "sound"
    directory.mkdir(parents=True, exist_ok=True)
    slots, samples = layout(clips, plan)
    pairs = zip(clips, slots, strict=True)
    ambient = any(_audible(layer, slot.samples) for clip, slot in pairs for layer in clip.layers)
    jobs = [
        slot_job(clip, window, slot, directory, i, ambient)
        for i, (clip, window, slot) in enumerate(zip(clips, plan.windows, slots, strict=True))
    ]
    written, to_write = 0, sum(job.samples for job in jobs) or 1
    for job in jobs:
        await run_ffmpeg(job.args, expected_duration=None, on_progress=None)
        written += job.samples
        progress.stage("clips")(written / to_write)
    progress.finish("clips")

    tracks = _tracks(directory, jobs, slots, samples)
    heard = [o for o in overlays if overlay_heard(o, samples)]
    if heard:  # the video overlays' sound: one more ambient track, as long as the output
        await run_ffmpeg(overlay_sound_args(heard, samples, directory / OVERLAY_SOUND),
                         expected_duration=None, on_progress=None)  # fmt: skip
        listing = write_listing(directory, "overlays", [directory / OVERLAY_SOUND])
        tracks = replace(tracks, ambient=(*tracks.ambient, listing))
    seconds = samples / SAMPLE_RATE
    await run_ffmpeg(
        measure_args(tracks, music),
        expected_duration=seconds,
        on_progress=progress.stage("measure"),
        cwd=directory,
    )
    progress.finish("measure")
    fades = (_fade(output.fade_in, samples), _fade(output.fade_out, samples))
    mix = await plan_mix_confined(directory, tracks.samples, music, output.loudness, fades, limits)
    await run_ffmpeg(
        encode_args(tracks, music, mix, out),
        expected_duration=seconds,
        on_progress=progress.stage("encode"),
        cwd=directory,
    )
    progress.finish("encode")


def _tracks(directory: Path, jobs: list[SlotJob], slots: Sequence[Slot], samples: int) -> Tracks:
    """The ffconcat listings of the slots, one per track in use, per part."""
    used = sorted({slot.track for slot in slots})
    speech, ambient = [], []
    for track in used:
        mine = [job for job, slot in zip(jobs, slots, strict=True) if slot.track == track]
        speech.append(write_listing(directory, f"speech-{track}", [job.speech for job in mine]))
        files = [job.ambient for job in mine if job.ambient is not None]
        if files:
            ambient.append(write_listing(directory, f"ambient-{track}", files))
    return Tracks(tuple(speech), tuple(ambient), samples)


OVERLAY_SOUND = "overlays.wav"


def overlay_heard(overlay: VideoOverlaySpec, samples: int) -> bool:
    """A video overlay is heard with a `volume`, a sound track, and a window inside the output
    (`samples` long)."""
    return (
        overlay.volume > 0
        and overlay.info.audio is not None
        and round(overlay.start * SAMPLE_RATE) < samples
    )


def overlay_sound_args(overlays: Sequence[VideoOverlaySpec], samples: int,
                       out: Path) -> list[str]:  # fmt: skip
    """One WAV, `samples` long, of the video overlays' sound: each from its `from`, looped if
    asked, at its volume, faded with its picture's `fade_in` and `fade_out`, cut to its window
    and placed at its `start`; summed (each is within its window, as the picture is)."""
    inputs: list[str] = []
    graph, labels = [], []
    for k, overlay in enumerate(overlays):
        start = round(overlay.start * SAMPLE_RATE)
        end = samples if overlay.end is None else min(samples, round(overlay.end * SAMPLE_RATE))
        length = max(1, end - start)
        loop = ["-stream_loop", "-1"] if overlay.loop else []
        read = f"{length / SAMPLE_RATE + 0.1:.6f}"
        inputs += input_args(overlay.path,
                             before=["-ss", f"{overlay.from_:.6f}", *loop, "-t", read])  # fmt: skip
        graph.append(_overlay_chain(k, overlay, start, length) + f"[over{k}]")
        labels.append(f"[over{k}]")
    mixed = "".join(labels)
    if len(labels) > 1:
        mixed += f"amix=inputs={len(labels)}:duration=longest:normalize=0,"
    graph.append(f"{mixed}{AUDIO_FORMAT},apad,atrim=end_sample={samples},asetpts=N/SR/TB[out]")
    return [*inputs, "-filter_complex", ";".join(graph), "-map", "[out]", *SLOT_CODEC,
            "-map_metadata", "-1", str(out)]  # fmt: skip


def _overlay_chain(k: int, overlay: VideoOverlaySpec, start: int, length: int) -> str:
    """Input k's sound at its volume, `length` samples, faded, delayed to `start`."""
    steps = [f"[{k}:a:0]aresample={SAMPLE_RATE}", AUDIO_FORMAT, f"volume={overlay.volume:.4f}",
             f"atrim=end_sample={length}", "asetpts=N/SR/TB"]  # fmt: skip
    fade_in = _fade(overlay.motion.fade_in, length)
    fade_out = _fade(overlay.motion.fade_out, length)
    if fade_in:
        steps.append(f"afade=t=in:ss=0:ns={fade_in}")
    if fade_out:
        steps.append(f"afade=t=out:ss={length - fade_out}:ns={fade_out}")
    if start:
        steps.append(f"adelay=delays={start}S:all=1")
    return ",".join(steps)


def _fade(seconds: float, samples: int) -> int:
    return min(samples, max(0, round(seconds * SAMPLE_RATE)))
