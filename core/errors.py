"""User-facing errors: their message tells the user what to do (core.cli prints them without a traceback)."""
from __future__ import annotations


class PipelineError(Exception):
    """An error caused by input or configuration; its message tells the user what to do."""
