"""The worker's side of the mix child (mix_child.py): ask it to plan the mix, get the plan.

Pass one's measures hold one entry per 100 ms of output; reading them and planning the ducking
envelope is done in the confined child (child_process.py starts it), not here, so the event
loop never waits on work that grows with the length of video an end user asked for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from worker.errors import InputError
from worker.media.child_process import confined_child
from worker.media.confine import ChildLimits
from worker.media.sound.duck import Envelope
from worker.media.sound.mix_child import COMMANDS_BYTES
from worker.media.sound.mix_plan import Gains, Mix, MusicLevel

MIX_CHILD = "worker.media.sound.mix_child"
SOURCE = "audio"  # how a failure of the child is named: the job's sound


async def plan_mix_confined(
    directory: Path, samples: int, music: MusicLevel | None, target: float,
    fades: tuple[int, int], limits: ChildLimits | None = None,
) -> Mix:  # fmt: skip
    """The mix's plan, made by the mix child from the measures in `directory` (which also
    receives the envelope's commands file)."""
    request = {
        "directory": str(directory),
        "samples": samples,
        "music": None if music is None else {
            "volume": music.volume, "duck": music.duck, "duck_db": music.duck_db,
        },
        "target": target,
        "fades": list(fades),
    }  # fmt: skip
    async with confined_child(
        limits or ChildLimits(), 1, module=MIX_CHILD, file_bytes=COMMANDS_BYTES
    ) as child:
        line = await child.exchange(request, SOURCE)
    return _mix(_made(line))


def _made(line: bytes) -> dict[str, Any]:
    try:
        reply = json.loads(line)
    except ValueError:
        reply = {}
    if not isinstance(reply.get("made"), dict):
        raise InputError(SOURCE, "could not be mixed: planning the soundtrack failed")
    made: dict[str, Any] = reply["made"]
    return made


def _mix(made: dict[str, Any]) -> Mix:
    shape = made["envelope"]
    envelope = None
    if shape is not None:
        segments = tuple((float(a), float(b)) for a, b in shape["segments"])
        envelope = Envelope(float(shape["depth"]), float(shape["ramp"]), segments)
    gains = made["gains"]
    music = gains["music"]
    return Mix(
        Gains(float(gains["foreground"]), None if music is None else float(music)),
        envelope,
        int(made["fade_in"]),
        int(made["fade_out"]),
    )
