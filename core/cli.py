"""The wrapper every stage's `__main__` runs its main() through."""
from __future__ import annotations

import sys
from collections.abc import Callable

from core import threads
from core.errors import PipelineError


def run_cli(main: Callable[[], None]) -> None:
    """Run a stage's main(); a PipelineError becomes one clear line on stderr and exit code 2. The stage is
    registered as running on this machine, so thread pools are shared with stages beside it (core.threads)."""
    try:
        threads.claim()
        main()
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
