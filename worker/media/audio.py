"""The final soundtrack: joined clip sound, music bed with ducking, loudness normalization.

On the re-encode path this pass joins the clips' WAV intermediates and encodes the whole
sound, once, to AAC, while the pictures are still encoding; the final mux then copies both.
The music is looped (`-stream_loop -1`) and cut to the video's length; with `duck`, a sidechain
compressor keyed by the speech mix (clip sound plus voice-overs) pulls it down while anyone
speaks. The mix is then brought to -16 LUFS (EBU R128), the usual target for web and mobile
playback, in two passes: the first writes the mix and measures its integrated loudness with
`ebur128` at 48 kHz; the second applies one fixed gain and a peak limiter and encodes AAC.
That is "linear" normalization, which keeps the mix's dynamics (single-pass `loudnorm` rides the
gain up and down), and it is several times faster: `loudnorm` works at 192 kHz internally and
was the slowest step of a re-encode.
"""

from __future__ import annotations

from pathlib import Path

from worker.media.ffmpeg import CONCAT_FORMATS, input_args
from worker.media.filters import AUDIO_FORMAT, SAMPLE_RATE
from worker.media.specs import MusicSpec

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


MAX_GAIN_DB = 20.0  # never lift a near-silent mix into loud noise
SILENT_LUFS = -60.0  # below this there is nothing to normalize
LOUDNESS_KEY = "lavfi.r128.I"


def soundtrack_graph(music: MusicSpec | None, samples: int) -> str:
    """Pass one, from `[0:a]` (speech mix) and `[1:a]` (music, if any) to `[a]`, the mix.

    `samples` is the video's length in samples at 48 kHz; the mix is padded or cut to it. A
    branch measures the integrated loudness and prints it on stdout (`lavfi.r128.I=…`).
    """
    parts: list[str] = []
    speech = "[0:a]"
    if music is not None:
        parts.append(
            f"[1:a:0]aresample={SAMPLE_RATE},{AUDIO_FORMAT},volume={music.volume:.4f},"
            f"atrim=end_sample={samples}[music]"
        )
        if music.duck:
            parts.append("[0:a]asplit=2[speech][key]")
            parts.append(
                f"[music][key]sidechaincompress=threshold={DUCK_THRESHOLD}:ratio={DUCK_RATIO}"
                f":attack={DUCK_ATTACK_MS}:release={DUCK_RELEASE_MS}[bed]"
            )
            speech, bed = "[speech]", "[bed]"
        else:
            bed = "[music]"
        parts.append(f"{speech}{bed}amix=inputs=2:duration=first:normalize=0[mix]")
        speech = "[mix]"
    parts.append(f"{speech}{AUDIO_FORMAT},apad,atrim=end_sample={samples},asplit=2[a][m]")
    parts.append(f"[m]ebur128=metadata=1,ametadata=mode=print:key={LOUDNESS_KEY}:file=-,anullsink")
    return ";".join(parts)


def mix_args(listing: Path, music: MusicSpec | None, samples: int, output: Path) -> list[str]:
    """Pass one: the clips' sound (an ffconcat `listing` of WAVs) + music → a WAV mix."""
    args = input_args(listing, formats=CONCAT_FORMATS, before=["-f", "concat", "-safe", "1"])
    if music is not None:
        args += input_args(music.path, before=["-stream_loop", "-1"])
    return [
        *args,
        "-filter_complex", soundtrack_graph(music, samples),
        "-map", "[a]", "-c:a", "pcm_s16le", "-map_metadata", "-1",
        str(output),
    ]  # fmt: skip


def normalize_gain_db(integrated_lufs: float | None) -> float:
    """The fixed gain that brings the measured mix to the target, within sane bounds."""
    if integrated_lufs is None or integrated_lufs <= SILENT_LUFS:
        return 0.0
    return min(MAX_GAIN_DB, LOUDNESS_TARGET_LUFS - integrated_lufs)


def encode_args(mix: Path, gain_db: float, samples: int, output: Path) -> list[str]:
    """Pass two: gain, a peak limiter at the true-peak ceiling, exact length, AAC."""
    ceiling = 10 ** (TRUE_PEAK_DBTP / 20)
    graph = (
        f"[0:a]volume={gain_db:.2f}dB,"
        f"alimiter=limit={ceiling:.4f}:level=false:attack=5:release=50,"
        f"{AUDIO_FORMAT},apad,atrim=end_sample={samples}[a]"
    )
    return [
        *input_args(mix),
        "-filter_complex", graph,
        "-map", "[a]", *aac_args(), "-map_metadata", "-1",
        str(output),
    ]  # fmt: skip


def aac_args() -> list[str]:
    """The one AAC track the contract promises: 48 kHz stereo."""
    return ["-c:a", "aac", "-b:a", AAC_BITRATE, "-ar", str(SAMPLE_RATE), "-ac", "2"]
