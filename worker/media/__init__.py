"""Pure media code: local files in, local files out.

    probe/       what an input holds, read in a confined child (PyAV, image headers)
    picture/     the picture: each clip's filters, stills, captions and their fonts, overlays,
                 and the compose join mode's one FFmpeg pass
    sound/       the sound: each clip's sound on the output timeline, music, ducking, loudness
    plan.py      the join mode (copy, re-encode, compose), the size, the rate, each clip's window
    assemble.py  the plan carried out: the picture and the sound made and muxed, the poster

specs.py, cost.py, ffmpeg.py, confine.py and progress.py hold what all of them share.
"""
