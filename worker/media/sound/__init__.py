"""The sound: each clip's sound on the output timeline, the music, ducking, loudness and AAC."""
