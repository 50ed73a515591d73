"""The final soundtrack: the joined foreground, the music bed, ducking, loudness, fades, AAC.

sound.py lays every clip's sound on the output timeline as slot WAVs read through one or two
ffconcat listings per part (`Tracks`): the speech (each clip's own sound and its voice-over) and
the ambient layers. This module's two passes turn them into the AAC track.

Pass one measures, with `ebur128` at 48 kHz, the integrated loudness of two things apart: the
foreground (speech plus layers) and the music bed (the track looped and cut to the video's
length, as it comes). Pass two gives each its own fixed gain: the foreground to -16 LUFS
(EBU R128, the usual target for web and mobile playback), the music to -16 LUFS plus
20·log10(`volume`). So `audio.volume` 1.0 is as loud as the normalized foreground and 0.3 about
10.5 dB under it, whether the clips are silent or not. (One gain for the whole mix, as before,
lifted a quiet bed under silent clips back to the target, so every volume sounded the same.)
With `duck`, a sidechain compressor keyed by the normalized speech (not by the layers: an
ambient bed is not someone talking) pulls the music down while anyone speaks. Then a peak
limiter at the true-peak ceiling, the output's fades, the exact length, and AAC.

A fixed gain per part is "linear" normalization, which keeps the mix's dynamics (single-pass
`loudnorm` rides the gain up and down), and it is several times faster: `loudnorm` works at
192 kHz internally and was the slowest step of a re-encode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from worker.media.confine import CONCAT_FORMATS
from worker.media.ffmpeg import input_args
from worker.media.specs import MusicSpec

SAMPLE_RATE = 48_000
AUDIO_FORMAT = f"aformat=sample_fmts=fltp:sample_rates={SAMPLE_RATE}:channel_layouts=stereo"
LOUDNESS_TARGET_LUFS = -16.0
TRUE_PEAK_DBTP = -1.5
LOUDNESS_RANGE_LU = 11.0
AAC_BITRATE = "192k"
# Ducking: the key (speech) above about -46 dBFS starts compressing; ratio 20 means speech at a
# usual -20 to -30 dBFS pulls the music down by roughly 15 to 25 dB.
DUCK_THRESHOLD = 0.005
DUCK_RATIO = 20
DUCK_ATTACK_MS = 20
DUCK_RELEASE_MS = 400


MAX_GAIN_DB = 20.0  # never lift a near-silent part into loud noise
SILENT_LUFS = -60.0  # below this there is nothing to normalize
LOUDNESS_KEY = "lavfi.r128.I"
MUSIC_LOUDNESS_FILE = "music-loudness.txt"  # pass one's music measure, inside its `cwd`


@dataclass(frozen=True)
class Tracks:
    """The clips' sound on the output timeline, `samples` long at 48 kHz.

    Each entry is an ffconcat listing of slot WAVs that follow one another without overlapping;
    where transitions make clips overlap there are two listings (sound.py says how), summed
    here. `ambient` is empty when no clip has an audio layer.
    """

    speech: tuple[Path, ...]
    ambient: tuple[Path, ...]
    samples: int


@dataclass(frozen=True)
class Gains:
    """Pass two's fixed gains in dB; `music` is None when there is no music to play."""

    foreground: float
    music: float | None


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


def measure_args(tracks: Tracks, music: MusicSpec | None) -> list[str]:
    """Pass one: the foreground's integrated loudness on stdout (`lavfi.r128.I=…`), and the
    music bed's, at volume 1 and before ducking, in `MUSIC_LOUDNESS_FILE` (run it with that
    file's folder as `cwd`): two measures of one key cannot share one stream."""
    args, speech, ambient = _inputs(tracks, music)
    measure = f"ebur128=metadata=1,ametadata=mode=print:key={LOUDNESS_KEY}"
    graph = _foreground(tracks, speech, ambient, 0.0, key=False)
    graph.append(f"[fg]{measure}:file=-[fgm]")
    outputs = ["-map", "[fgm]", "-f", "null", "-"]
    if music is not None:
        index = len(speech) + len(ambient)
        graph.append(
            f"{_bed(index, tracks.samples, None)},{measure}:file={MUSIC_LOUDNESS_FILE}[mm]"
        )
        outputs += ["-map", "[mm]", "-f", "null", "-"]
    return [*args, "-filter_complex", ";".join(graph), *outputs]


def read_loudness(lines: str) -> float | None:
    """The last integrated loudness that `ametadata=mode=print` wrote, if any."""
    found = None
    for line in lines.splitlines():
        key, _, value = line.strip().partition("=")
        if key == LOUDNESS_KEY:
            found = parse_float(value)
    return found


def parse_float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def normalize_gain_db(integrated_lufs: float | None) -> float:
    """The fixed gain that brings a measured part to the target, within sane bounds."""
    if integrated_lufs is None or integrated_lufs <= SILENT_LUFS:
        return 0.0
    return min(MAX_GAIN_DB, LOUDNESS_TARGET_LUFS - integrated_lufs)


def music_gain_db(integrated_lufs: float | None, volume: float) -> float | None:
    """The music's gain: normalized like the foreground, then `volume` relative to the target
    (1.0 level with it, 0.3 about 10.5 dB under it); None for a volume of 0, meaning no music."""
    if volume <= 0:
        return None
    return normalize_gain_db(integrated_lufs) + 20 * math.log10(volume)


def encode_args(tracks: Tracks, music: MusicSpec | None, gains: Gains, fade_in: int,
                fade_out: int, output: Path) -> list[str]:  # fmt: skip
    """Pass two: the gains, ducking, a peak limiter, the fades (in samples), exact length, AAC.

    The limiter compensates its look-ahead (`latency`), so the sound stays where the picture is.
    """
    music = music if gains.music is not None else None
    args, speech, ambient = _inputs(tracks, music)
    duck = music is not None and music.duck
    graph = _foreground(tracks, speech, ambient, gains.foreground, key=duck)
    mixed = "[fg]"
    if music is not None:
        index = len(speech) + len(ambient)
        graph.append(f"{_bed(index, tracks.samples, gains.music)}[music]")
        bed = "[music]"
        if duck:
            graph.append(
                f"[music][key]sidechaincompress=threshold={DUCK_THRESHOLD}:ratio={DUCK_RATIO}"
                f":attack={DUCK_ATTACK_MS}:release={DUCK_RELEASE_MS}[bed]"
            )
            bed = "[bed]"
        graph.append(f"[fg]{bed}amix=inputs=2:duration=first:normalize=0[mix]")
        mixed = "[mix]"
    ceiling = 10 ** (TRUE_PEAK_DBTP / 20)
    steps = [
        f"alimiter=limit={ceiling:.4f}:level=false:attack=5:release=50:latency=true",
        AUDIO_FORMAT,
        "apad",
        f"atrim=end_sample={tracks.samples}",
        "asetpts=N/SR/TB",
    ]
    if fade_in > 0:
        steps.append(f"afade=t=in:ss=0:ns={fade_in}")
    if fade_out > 0:
        steps.append(f"afade=t=out:ss={tracks.samples - fade_out}:ns={fade_out}")
    graph.append(f"{mixed}{','.join(steps)}[a]")
    return [
        *args,
        "-filter_complex", ";".join(graph),
        "-map", "[a]", *aac_args(), "-map_metadata", "-1",
        str(output),
    ]  # fmt: skip


def aac_args() -> list[str]:
    """The one AAC track the contract promises: 48 kHz stereo."""
    return ["-c:a", "aac", "-b:a", AAC_BITRATE, "-ar", str(SAMPLE_RATE), "-ac", "2"]
