"""User-facing errors and the CLI wrapper that prints them without a traceback."""
from __future__ import annotations

import sys
from typing import Callable


class PipelineError(Exception):
    """An error caused by input or configuration; its message tells the user what to do."""


def run_cli(main: Callable[[], None]) -> None:
    """Run a stage's main(); a PipelineError becomes one clear line on stderr and exit code 2. The stage is
    registered as running on this machine, so thread pools are shared with stages beside it (core.threads)."""
    from core import threads

    try:
        threads.claim()
        main()
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
