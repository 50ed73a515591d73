"""The `video-worker` command line (also `python -m worker`); `main` is its entry point.

    parser.py        the arguments and `--help`, and `main`: parse, run one command, exit code
    commands.py      what each subcommand does
    enqueue_args.py  `enqueue`'s flags, and the payload they build
    follow.py        following a job until it ends (`enqueue --wait`, `status --wait`, the demo)
    terminal.py      a job's progress on a terminal
    demo.py          `video-worker demo`: one whole job end to end

Nothing below the command line imports it.
"""

from worker.cli.parser import main

__all__ = ["main"]
