"""Probing inputs in a confined child: what a file holds, read from its headers and packets, and
whether it is usable."""
