"""The final soundtrack: the joined foreground, the music bed, ducking, loudness, fades, AAC.

soundtrack.py lays every clip's sound on the output timeline as slot WAVs read through one or two
ffconcat listings per part (`Tracks`): the speech (each clip's own sound and its voice-over) and
the ambient layers. This module's two passes turn them into the AAC track.

Pass one measures, with `ebur128` at 48 kHz in 100 ms frames, the loudness of two things
apart: the foreground (speech plus layers) and the music bed (the track looped and cut to the
video's length, as it comes); with `duck`, also the speech's level per frame (`astats`). Each
part gets its own gain: the foreground to the target (`output.loudness`, default -16 LUFS, EBU
R128's usual target for web and mobile), the music to the target plus 20·log10(`volume`). So
`audio.volume` 1.0 is as loud as the normalized foreground and 0.3 about 10.5 dB under it.
With `duck`, duck.py plans the music's envelope under the speech (not under the layers: an
ambient bed is not someone talking): down by `duck_db`, on ramps that never move more than 4 dB
in 100 ms. loudness.py then predicts the loudness of the mix those gains, the envelope and the
output's fades make, block by block, and one correction on both parts brings the finished mix
to the target whatever it holds (music alone for a while, silence, one loud clip). Pass two
applies it all, then a peak limiter at the true-peak ceiling, the fades, the exact length, and
AAC.

A fixed gain per part is "linear" normalization, which keeps the mix's dynamics (single-pass
`loudnorm` rides the gain up and down), and it is several times faster: `loudnorm` works at
192 kHz internally and was the slowest step of a re-encode.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from worker.media.confine import CONCAT_FORMATS
from worker.media.ffmpeg import input_args
from worker.media.sound.duck import COMMANDS_FILE, DUCK_FILTER
from worker.media.sound.mix_plan import (
    FOREGROUND_FILE,
    FRAME_SAMPLES,
    LEVEL_KEY,
    MOMENTARY_KEY,
    MUSIC_FILE,
    SAMPLE_RATE,
    SPEECH_FILE,
    Mix,
)
from worker.media.specs import MusicSpec

AUDIO_FORMAT = f"aformat=sample_fmts=fltp:sample_rates={SAMPLE_RATE}:channel_layouts=stereo"
# The limiter's sample-peak ceiling, under the contract's -1 dBTP: AAC and the peaks between
# samples add about half a dB (a limited mix measured -1.0 dBTP with a -1.5 ceiling).
TRUE_PEAK_DBTP = -2.0
AAC_BITRATE = "192k"
ENVELOPE_FRAME_SAMPLES = 480  # pass two re-reads the ducking gain every 10 ms


@dataclass(frozen=True)
class Tracks:
    """The clips' sound on the output timeline, `samples` long at 48 kHz.

    Each entry is an ffconcat listing of slot WAVs that follow one another without overlapping;
    where transitions make clips overlap there are two listings (soundtrack.py says how), summed
    here. `ambient` is empty when no clip has an audio layer.
    """

    speech: tuple[Path, ...]
    ambient: tuple[Path, ...]
    samples: int

    @property
    def frames(self) -> int:
        """How many 100 ms frames pass one measures (the last one may be shorter)."""
        return -(-self.samples // FRAME_SAMPLES)


def _inputs(tracks: Tracks, music: MusicSpec | None) -> tuple[list[str], list[int], list[int]]:
    """The `-i` arguments: speech listings, ambient listings, then the looped music (last)."""
    args: list[str] = []
    for listing in (*tracks.speech, *tracks.ambient):
        args += input_args(listing, formats=CONCAT_FORMATS, before=["-f", "concat", "-safe", "1"])
    if music is not None:
        args += input_args(music.path, before=["-stream_loop", "-1"])
    speech = list(range(len(tracks.speech)))
    ambient = list(range(len(tracks.speech), len(tracks.speech) + len(tracks.ambient)))
    return args, speech, ambient


def _join(indices: list[int], samples: int) -> str:
    """One part from its listings: the two tracks of overlapping clips are summed."""
    pads = "".join(f"[{i}:a:0]" for i in indices)
    head = (
        f"{pads}amix=inputs={len(indices)}:duration=longest:normalize=0,"
        if len(indices) > 1
        else pads
    )
    return f"{head}{AUDIO_FORMAT},apad,atrim=end_sample={samples}"


def _foreground(tracks: Tracks, speech: list[int], ambient: list[int], gain_db: float,
                key: bool) -> list[str]:  # fmt: skip
    """`[fg]` (speech + layers, times `gain_db`) and, with `key`, `[key]`: the speech alone."""
    gain = f",volume={gain_db:.2f}dB" if gain_db else ""
    split = ",asplit=2[speech][key]" if key else "[speech]"
    parts = [f"{_join(speech, tracks.samples)}{gain}{split}"]
    if ambient:
        parts.append(f"{_join(ambient, tracks.samples)}{gain}[ambient]")
        parts.append("[speech][ambient]amix=inputs=2:duration=first:normalize=0[fg]")
    else:
        parts.append("[speech]anull[fg]")
    return parts


def _bed(music_index: int, samples: int, gain_db: float | None) -> str:
    gain = f",volume={gain_db:.2f}dB" if gain_db else ""
    return (
        f"[{music_index}:a:0]aresample={SAMPLE_RATE},{AUDIO_FORMAT}{gain},"
        f"atrim=end_sample={samples},asetpts=N/SR/TB"
    )


def _printed(key: str, file: str) -> str:
    return f"ametadata=mode=print:key={key}:file={file}"


def measure_args(tracks: Tracks, music: MusicSpec | None) -> list[str]:
    """Pass one, run with its files' folder as `cwd`: per 100 ms frame, the momentary loudness
    of the foreground (FOREGROUND_FILE) and of the music bed at volume 1 (MUSIC_FILE), and with
    `duck` the speech's RMS level (SPEECH_FILE)."""
    args, speech, ambient = _inputs(tracks, music)
    duck = music is not None and music.duck
    frames = f"asetnsamples=n={FRAME_SAMPLES}:p=0"
    loudness = f"{frames},ebur128=metadata=1,{_printed(MOMENTARY_KEY, '{}')}"
    graph = _foreground(tracks, speech, ambient, 0.0, key=duck)
    graph.append(f"[fg]{loudness.format(FOREGROUND_FILE)}[fgm]")
    outputs = ["-map", "[fgm]", "-f", "null", "-"]
    if duck:
        levels = "astats=metadata=1:reset=1:measure_perchannel=none:measure_overall=RMS_level"
        graph.append(f"[key]{frames},{levels},{_printed(LEVEL_KEY, SPEECH_FILE)}[km]")
        outputs += ["-map", "[km]", "-f", "null", "-"]
    if music is not None:
        index = len(speech) + len(ambient)
        graph.append(f"{_bed(index, tracks.samples, None)},{loudness.format(MUSIC_FILE)}[mm]")
        outputs += ["-map", "[mm]", "-f", "null", "-"]
    return [*args, "-filter_complex", ";".join(graph), *outputs]


def encode_args(tracks: Tracks, music: MusicSpec | None, mix: Mix,
                output: Path) -> list[str]:  # fmt: skip
    """Pass two, run with pass one's folder as `cwd` (the envelope's COMMANDS_FILE is there):
    the gains, the ducking envelope, a peak limiter, the fades, exact length, AAC.

    The limiter compensates its look-ahead (`latency`), so the sound stays where the picture is.
    """
    music = music if mix.gains.music is not None else None
    args, speech, ambient = _inputs(tracks, music)
    graph = _foreground(tracks, speech, ambient, mix.gains.foreground, key=False)
    mixed = "[fg]"
    if music is not None:
        index = len(speech) + len(ambient)
        bed = _bed(index, tracks.samples, mix.gains.music)
        if mix.envelope is not None:
            bed += (
                f",asetnsamples=n={ENVELOPE_FRAME_SAMPLES},asendcmd=f={COMMANDS_FILE},"
                f"{DUCK_FILTER}=volume=1:eval=frame"
            )
        graph.append(f"{bed}[bed]")
        graph.append("[fg][bed]amix=inputs=2:duration=first:normalize=0[mix]")
        mixed = "[mix]"
    graph.append(f"{mixed}{','.join(_tail(tracks.samples, mix))}[a]")
    return [
        *args,
        "-filter_complex", ";".join(graph),
        "-map", "[a]", *aac_args(), "-map_metadata", "-1",
        str(output.absolute()),
    ]  # fmt: skip


def _tail(samples: int, mix: Mix) -> list[str]:
    """The limiter, the exact length and the output's fades."""
    ceiling = 10 ** (TRUE_PEAK_DBTP / 20)
    steps = [
        f"alimiter=limit={ceiling:.4f}:level=false:attack=5:release=50:latency=true",
        AUDIO_FORMAT,
        "apad",
        f"atrim=end_sample={samples}",
        "asetpts=N/SR/TB",
    ]
    if mix.fade_in > 0:
        steps.append(f"afade=t=in:ss=0:ns={mix.fade_in}")
    if mix.fade_out > 0:
        steps.append(f"afade=t=out:ss={samples - mix.fade_out}:ns={mix.fade_out}")
    return steps


def aac_args() -> list[str]:
    """The one AAC track the contract promises: 48 kHz stereo."""
    return ["-c:a", "aac", "-b:a", AAC_BITRATE, "-ar", str(SAMPLE_RATE), "-ac", "2"]
