"""The picture: captions and their fonts, overlays, stills, each clip's filters, and the compose
join mode's one FFmpeg pass."""
