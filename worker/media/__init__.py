"""Pure media code: local files in, local files out (probe, plan, encode, join)."""
