"""Pure media code: local files in, local files out.

    probe/            what an input holds, read in a confined child (PyAV, image headers)
    picture/          the picture: each clip's filters, stills, captions and their fonts,
                      overlays, and the compose join mode's one FFmpeg pass
    sound/            the sound: each clip's sound on the output timeline, music, ducking,
                      loudness
    plan.py           the join mode (copy, re-encode, compose), the size, the rate, each clip's
                      window
    assemble.py       the plan carried out: the picture and the sound made and muxed, the poster
    child_process.py  a confined child seen from the worker: start it, ask it, kill it (the
                      probe, the caption child and the mix child each run in one)
    confine.py        the child's side of it (its kernel limits, its replies), and what confines
                      FFmpeg: the formats it may read, the pixel ceiling, dying with the worker

specs.py, cost.py, ffmpeg.py and progress.py hold what all of them share.
"""
