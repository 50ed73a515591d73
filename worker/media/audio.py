"""The final soundtrack: joined clip sound, music bed with ducking, loudness normalization.

On the re-encode path this pass joins the clips' WAV intermediates and encodes the whole
sound, once, to AAC, while the pictures are still encoding; the final mux then copies both.
The music is looped (`-stream_loop -1`) and cut to the video's length; with `duck`, a sidechain
compressor keyed by the speech mix (clip sound plus voice-overs) pulls it down while anyone
speaks. `loudnorm` (EBU R128) then brings the whole mix to a steady -16 LUFS, the usual target
for web and mobile playback.
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


def soundtrack_graph(music: MusicSpec | None, samples: int) -> str:
    """Filter graph from `[0:a]` (speech mix) and `[1:a]` (music, if any) to `[a]`.

    `samples` is the video's length in samples at 48 kHz; the mix is padded or cut to it.
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
    parts.append(
        f"{speech}loudnorm=I={LOUDNESS_TARGET_LUFS}:TP={TRUE_PEAK_DBTP}:LRA={LOUDNESS_RANGE_LU},"
        # loudnorm works (and outputs) at 192 kHz; bring it back, then fix the exact length
        f"aresample={SAMPLE_RATE},{AUDIO_FORMAT},apad,atrim=end_sample={samples}[a]"
    )
    return ";".join(parts)


def aac_args() -> list[str]:
    """The one AAC track the contract promises: 48 kHz stereo."""
    return ["-c:a", "aac", "-b:a", AAC_BITRATE, "-ar", str(SAMPLE_RATE), "-ac", "2"]


def soundtrack_args(
    listing: Path, music: MusicSpec | None, samples: int, output: Path
) -> list[str]:
    """FFmpeg arguments: the clips' sound (an ffconcat `listing` of WAVs) + music → AAC."""
    args = input_args(listing, formats=CONCAT_FORMATS, before=["-f", "concat", "-safe", "1"])
    if music is not None:
        args += input_args(music.path, before=["-stream_loop", "-1"])
    return [
        *args,
        "-filter_complex", soundtrack_graph(music, samples),
        "-map", "[a]", *aac_args(), "-map_metadata", "-1",
        str(output),
    ]  # fmt: skip
